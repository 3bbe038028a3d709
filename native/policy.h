// The Policy seam (DESIGN.md section 6): what decides each user's action, round after round.
// A policy acts on a block of users given what the environment lets it observe and λ, and
// hears back what happened (the issued action, reward and cost) so it can keep a history.
// One file per policy (policy_<name>.cc); policy_registry.cc maps names to them.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "environment.h"

namespace saco {

// What a policy keeps for one block of users across rounds (e.g. a KV cache).
class PolicyState {
 public:
  virtual ~PolicyState() = default;
};

// The probability a deterministic policy gives the issued actions [n, A]: 1 where a user's
// issued action is its proposal, 0 where the budget issued the control instead.
inline void point_mass_probability(size_t n, size_t A, const int32_t* proposed, const int32_t* issued, double* p) {
  for (size_t i = 0; i < n; ++i) p[i] = std::equal(proposed + i * A, proposed + (i + 1) * A, issued + i * A) ? 1.0 : 0.0;
}

class Policy {
 public:
  virtual ~Policy() = default;

  // Throws std::invalid_argument when the policy cannot act in this environment for these
  // rounds at this λ (e.g. a model's widths or context).
  virtual void validate(const Environment& env, uint32_t rounds, double lambda) const = 0;
  // The λ range the search may use (the model's, for a learned policy).
  virtual double lambda_max(double fallback) const { return fallback; }
  virtual std::unique_ptr<PolicyState> start(const Environment& env, const EnvBlock& block, uint32_t rounds, double lambda) const = 0;
  // Bytes the state of a block of `users` keeps over `rounds` (e.g. a KV cache): what the
  // rollout adds up to check, before it starts, that a population fits in memory.
  virtual size_t state_bytes(size_t users, uint32_t rounds) const { (void)users, (void)rounds; return 0; }
  // actions [n, A] for round t, from states [n, state_dim] as observed.
  virtual void act(PolicyState& state, const Environment& env, const EnvBlock& block, uint32_t t,
                   const float* states, int32_t* actions) const = 0;
  // The probability this policy's own decision distribution gives, at round t, to each user's
  // issued action [n, A], written to p[n]. `proposed` is what act() returned this round and
  // `issued` what the environment received: the same, or the control action where the budget
  // withheld a coupon. Called after act() and before feedback() of round t (so the state still
  // holds what act() computed). A stochastic policy gives its sampling probability, a greedy
  // one the probability of the distribution it takes the mode of (see each policy's file); a
  // policy that defines none leaves this default: NaN for every user.
  virtual void probability(const PolicyState& state, const Environment& env, const EnvBlock& block, uint32_t t, const int32_t* proposed,
                           const int32_t* issued, double* p) const {
    (void)state, (void)env, (void)t, (void)proposed, (void)issued;
    std::fill_n(p, block.size(), std::numeric_limits<double>::quiet_NaN());
  }
  // What happened at round t: the actions actually issued (the budget may have withheld
  // some), reward and cost per user.
  virtual void feedback(PolicyState& state, uint32_t t, const int32_t* issued, const double* reward, const double* cost) const {
    (void)state, (void)t, (void)issued, (void)reward, (void)cost;
  }

  // True when the policy learns from every user's outcomes between rounds (a bandit's
  // posterior): the rollout then runs round by round even without a budget, and calls
  // end_round.
  virtual bool learns_across_users() const { return false; }
  // Called on the rollout's thread once every user has stepped round t (for t + 1 < rounds),
  // with every block's state in block order (users in id order): merge what the blocks heard
  // in feedback() and give each block what round t + 1 acts on.
  virtual void end_round(uint32_t t, const std::vector<PolicyState*>& blocks) const { (void)t, (void)blocks; }
};

}  // namespace saco
