// λ search: the dual price whose simulated spend meets the budget B (B - ε <= C <= B).
// Bisection (regula falsi with the Illinois fix) on the natural spend C(λ), which is
// (near) non-increasing; or Algorithm 2 of the paper verbatim, with NLopt's SLSQP.
// The final plan is the rollout at λ* with the budget enforced: a probe whose budget rule
// withholds nothing is that plan already (rollout.h fits_budget), so it is not run again.
//
// Subsampled bracketing (bisection, `subsample`): C and R are sums over users, so the
// bracket is found on a seeded random subsample, and a probe then grows from the subsample
// to every user (never running a user twice at one λ), dropped part-way when its estimate is
// clearly outside the band (dual.cc); λ* is decided by probes on every user, so the plan is
// exact and within the same tolerance.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "rollout.h"

namespace saco {

enum class SearchMethod { kBisection = 0, kSlsqp = 1 };

struct Probe {
  double lambda, revenue, cost;
  // Users the probe ran on; fewer than the population: a subsample's sums scaled to it,
  // with `se` the standard error of that spend estimate. A probe grown over more users
  // appears once per size it reached.
  uint64_t users = 0;
  double se = 0;
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
  // Bisection on a subsample first (off: every probe on every user, the exhaustive search).
  bool subsample = true;
  // Called after every probe (from the searching thread), e.g. to report progress.
  std::function<void(const Probe&, int rollouts)> on_probe;
};

struct SearchResult {
  double lambda = 0;
  RolloutResult plan;              // at lambda, budget enforced
  int rollouts = 0;                // on every user, including the final one when it ran apart from a probe
  int sample_rollouts = 0;         // on parts of the population (the subsample, and probes grown from it)
  uint64_t sample_users = 0;       // the most users a probe reached short of everyone (0: none)
  std::vector<Probe> trace;
  bool feasible = false;           // the natural spend at lambda is within the budget
  bool budget_not_binding = false; // C(0) <= B
  bool needs_more_than_lambda_max = false;
};

void validate_search(const SearchSpec& search);
SearchResult search_lambda(const RolloutSpec& base, const RolloutUsers& users, const SearchSpec& search);

}  // namespace saco
