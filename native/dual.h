// λ search: the dual price whose simulated spend meets the budget B (B - ε <= C <= B).
// Bisection (regula falsi with the Illinois fix) on the natural spend C(λ), which is
// (near) non-increasing; or Algorithm 2 of the paper verbatim, with NLopt's SLSQP.
// Every probe is a full rollout; the final plan is a rollout with the budget enforced.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "rollout.h"

namespace saco {

enum class SearchMethod { kBisection = 0, kSlsqp = 1 };

struct Probe {
  double lambda, revenue, cost;
};

struct SearchSpec {
  SearchMethod method = SearchMethod::kBisection;
  double budget = 0;
  double epsilon = 0;        // absolute tolerance below B
  double lambda_max = 1;
  int max_rollouts = 40;
  // Algorithm 2
  int max_iterations = 8;
  double noise = 0.05;       // as a fraction of lambda_max
  double lr = 0;             // λ += lr * (C - B); 0: 0.5 * lambda_max / B
  uint64_t seed = 1;
  // Called after every probe (from the searching thread), e.g. to report progress.
  std::function<void(const Probe&, int rollouts)> on_probe;
};

struct SearchResult {
  double lambda = 0;
  RolloutResult plan;              // at lambda, budget enforced
  int rollouts = 0;                // including the final one
  std::vector<Probe> trace;
  bool feasible = false;           // the natural spend at lambda is within the budget
  bool budget_not_binding = false; // C(0) <= B
  bool needs_more_than_lambda_max = false;
};

void validate_search(const SearchSpec& search);
SearchResult search_lambda(const RolloutSpec& base, const RolloutUsers& users, const SearchSpec& search);

}  // namespace saco
