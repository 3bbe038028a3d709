// Batched simulation of users over T rounds under any Policy in any Environment, with the
// budget enforced the same way for every environment: users arrive in waves of wave_users
// in id order, within a wave round by round and in id order within a round, and a coupon is
// withheld when its largest possible cost would take the spend realised so far over B, so
// realised spend never exceeds B. Only one wave's users are alive at once (memory bounded
// by a wave, not the population); with a single wave of everyone this is the round-major
// order (users in id order within a round), which policies that learn across users keep.
//
// Users are processed in fixed blocks of kRolloutBlock (whatever the thread count), and
// every random draw is keyed by the user's id, so results do not depend on threads.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "environment.h"
#include "policy.h"

namespace saco {

// 16 users: a block of the default CODT keeps its KV caches (~1 MB over 10 rounds) in a
// core's L2 while it runs all its rounds; 128 streamed them from memory at every token.
constexpr int kRolloutBlock = 16;
// The budget-enforced replay's default wave: 16,384 users (~1.1 GB of KV cache for the
// default CODT over 10 rounds), so a population up to that size arrives round-major
// exactly, and a larger one holds one wave's caches at a time.
constexpr uint32_t kDefaultWaveUsers = 16384;

struct RolloutSpec {
  std::shared_ptr<const Environment> env;
  std::shared_ptr<const Policy> policy;
  uint32_t rounds = 10;
  double budget = std::numeric_limits<double>::infinity();
  double lambda = 0;
  bool record_plan = false;
  uint32_t threads = 0;
  // Users per wave of the budget-enforced replay (rounded up to whole blocks; 0: one wave of
  // everyone, the round-major order). Without a budget the order changes nothing.
  uint32_t wave_users = kDefaultWaveUsers;
  // Bytes the rollout may hold at its peak (0: what the system has available now).
  uint64_t memory_limit = 0;
  // With a budget: run the natural rollout first (block by block, every core, caches kept
  // hot) and keep it when the budget rule replayed on it in the arrival order withholds
  // nothing; it is then exactly the enforced rollout. Otherwise the enforced replay runs
  // too. Off: the enforced replay only (for a budget known to bind).
  bool optimistic = true;
  // Without a budget: also replay the budget rule at this budget on the natural rollout
  // (RolloutResult::fits_budget), so that a λ probe whose rule withholds nothing is the plan.
  double check_budget = std::numeric_limits<double>::infinity();
  // With record_plan: also record RolloutResult::details, per (user, round) of the plan (a
  // rollout that records no plan records no details either). Off by default: it costs
  // R x 25 bytes per user and, per issued action, one Policy::probability and one
  // Environment::expected call (the simulator predicts every joint action for that).
  bool record_details = false;
  // Without a budget: also return each (round, user)'s reward, cost and the largest possible
  // cost of the proposal (RolloutResult::user_*), so that rollouts of disjoint parts of a
  // population can be put together into the rollout of the whole (dual.cc grows a probe
  // from its subsample to every user this way).
  bool record_users = false;
};

// What a recorded plan says of each (user, round) besides the issued action: all [users,
// rounds], laid out like RolloutResult::plan (RolloutSpec::record_details).
struct PlanDetails {
  // Policy::probability of the issued action at the round it was issued (NaN: the policy
  // defines none, e.g. Thompson sampling).
  std::vector<double> probability;
  // Environment::expected reward and cost of the issued action, for the user's state at that
  // round (NaN: the environment does not know them).
  std::vector<double> expected_reward, expected_cost;
  // 1: the budget withheld the policy's coupon and issued the control action instead.
  std::vector<uint8_t> withheld;
};

struct RolloutResult {
  double revenue = 0, cost = 0;
  uint64_t coupons = 0;          // coupons issued (any action whose largest cost is > 0)
  uint64_t blocked = 0;          // coupons withheld by the budget
  std::vector<double> revenue_by_round, cost_by_round;
  std::vector<int32_t> plan;     // [users, rounds, action dims] issued action indices (if recorded)
  PlanDetails details;           // [users, rounds] each (if recorded: record_plan and record_details)
  // The budget rule (at budget, or check_budget without one) withheld nothing: the rollout
  // is both the natural one and the budget-enforced one at its λ.
  bool fits_budget = false;
  // With RolloutSpec::record_users: [rounds, users] each (round t of user i at t * users + i).
  std::vector<double> user_reward, user_cost, user_largest;
};

// A rollout that would not fit in memory (checked before it starts), or an allocation that
// failed: says how many users would fit.
class OutOfMemory : public std::runtime_error {
 public:
  OutOfMemory(const std::string& what, uint64_t users_fit) : std::runtime_error(what), users_fit(users_fit) {}
  uint64_t users_fit;
};

// Bytes a rollout of `users` holds at its peak: results, plan (and its details), and the states of the users
// alive at once (a wave, or a block per thread without a budget).
uint64_t rollout_bytes(const RolloutSpec& spec, size_t users);

// The budget rule replayed on a natural rollout: users arrive in waves of `wave_users` (rounded
// up to whole blocks; 0: everyone, round-major), within a wave round by round and in id order
// within a round; true when a coupon (largest(t, i) > 0) would have been withheld because the
// spend realised so far plus its largest cost exceeds `budget`. `largest(t, i)`, `cost(t, i)`:
// user i's at round t.
template <class Largest, class Cost>
bool budget_rule_withholds(const Largest& largest, const Cost& cost, size_t n, uint32_t rounds, uint32_t wave_users, double budget) {
  // waves of whole blocks, as rollout() makes them (the last block of the population may be short)
  const size_t wave = wave_users == 0 ? n : (static_cast<size_t>(wave_users) + kRolloutBlock - 1) / kRolloutBlock * kRolloutBlock;
  double spent = 0;
  for (size_t u0 = 0; u0 < n; u0 += wave) {
    const size_t u1 = std::min(n, u0 + wave);
    for (uint32_t t = 0; t < rounds; ++t) {
      double running = spent, round_cost = 0;
      for (size_t i = u0; i < u1; ++i) {
        const double most = largest(t, i);
        if (most > 0 && running + most > budget) return true;
        running += cost(t, i);
      }
      for (size_t i = u0; i < u1; ++i) round_cost += cost(t, i);
      spent += round_cost;
    }
  }
  return false;
}

// Throws std::invalid_argument on inconsistent specs (model/env sizes, rounds beyond context...).
void validate_rollout(const RolloutSpec& spec, const RolloutUsers& users);
RolloutResult rollout(const RolloutSpec& spec, const RolloutUsers& users);

}  // namespace saco
