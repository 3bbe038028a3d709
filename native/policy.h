// The Policy seam (DESIGN.md section 6): what decides each user's action, round after round.
// A policy acts on a block of users given what the environment lets it observe and λ, and
// hears back what happened (the issued action, reward and cost) so it can keep a history.
// One file per policy (policy_<name>.cc); policy_registry.cc maps names to them.
#pragma once
#include <cstdint>
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
