// Batched simulation of users over T rounds under any Policy in any Environment, with the
// budget enforced the same way for every environment: users arrive in id order within a
// round and a coupon is withheld when its largest possible cost would take the spend
// realised so far over B, so realised spend never exceeds B.
//
// Users are processed in fixed blocks of kRolloutBlock (whatever the thread count), and
// every random draw is keyed by the user's id, so results do not depend on threads.
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "environment.h"
#include "policy.h"

namespace saco {

constexpr int kRolloutBlock = 128;

struct RolloutSpec {
  std::shared_ptr<const Environment> env;
  std::shared_ptr<const Policy> policy;
  uint32_t rounds = 10;
  double budget = std::numeric_limits<double>::infinity();
  double lambda = 0;
  bool record_plan = false;
  uint32_t threads = 0;
};

struct RolloutResult {
  double revenue = 0, cost = 0;
  uint64_t coupons = 0;          // coupons issued (any action whose largest cost is > 0)
  uint64_t blocked = 0;          // coupons withheld by the budget
  std::vector<double> revenue_by_round, cost_by_round;
  std::vector<int32_t> plan;     // [users, rounds, action dims] issued action indices (if recorded)
};

// Throws std::invalid_argument on inconsistent specs (model/env sizes, rounds beyond context...).
void validate_rollout(const RolloutSpec& spec, const RolloutUsers& users);
RolloutResult rollout(const RolloutSpec& spec, const RolloutUsers& users);

}  // namespace saco
