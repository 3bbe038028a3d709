// Batched simulation of all users over T rounds under a policy in the SY ground-truth
// environment, with the budget enforced by the environment: a coupon is not issued when,
// redeemed, it could take realised spend over the budget, so spend never exceeds it.
//
// Users are processed in fixed blocks of kRolloutBlock (whatever the thread count), and
// every random draw is keyed by the user's id, so results do not depend on threads.
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "codt.h"
#include "env.h"

namespace saco {

constexpr int kRolloutBlock = 128;

enum class PolicyKind { kCodt = 0, kRandom = 1, kOracle = 2 };

// Who is simulated: SY users keyed by id (their draws), with static features either
// given (e.g. read from a file) or drawn from the feature stream of the seed.
struct RolloutUsers {
  std::vector<uint32_t> ids;
  std::vector<double> features;  // [ids.size(), env.features], or empty
};

struct RolloutSpec {
  SyConfig env;       // the ground truth: seed, features, action dims, dynamics
  uint32_t rounds = 10;
  double budget = std::numeric_limits<double>::infinity();
  PolicyKind policy = PolicyKind::kCodt;
  double lambda = 0;
  std::shared_ptr<const CodtModel> model;  // for kCodt
  bool record_plan = false;
  uint32_t threads = 0;
};

struct RolloutResult {
  double revenue = 0, cost = 0;
  uint64_t coupons = 0;          // coupons issued (any non-zero value)
  uint64_t blocked = 0;          // coupons withheld by the budget
  std::vector<double> revenue_by_round, cost_by_round;
  std::vector<int32_t> plan;     // [users, rounds, action dims] issued action indices (if recorded)
};

// Throws std::invalid_argument on inconsistent specs (model/env action sizes, rounds beyond context...).
void validate_rollout(const RolloutSpec& spec, const RolloutUsers& users);
RolloutResult rollout(const RolloutSpec& spec, const RolloutUsers& users);

}  // namespace saco
