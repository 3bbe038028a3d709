// The Environment seam (DESIGN.md section 6): what a rollout needs from a world of users —
// reset a block of users, observe them, and answer an action with reward and cost. SY's
// ground truth (env_sy.h) is the first implementation, the learned simulator the next.
// The rollout (rollout.h) sees only this interface and applies the budget rule itself, so
// the rule is the same for every environment.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace saco {

// Who is simulated: users keyed by id (every random draw is keyed by the id), with optional
// per-user static features [ids.size(), features_per_user] (e.g. read from a log).
struct RolloutUsers {
  std::vector<uint32_t> ids;
  std::vector<double> features;
};

// The latent state of a block of users; each environment keeps its own kind.
class EnvBlock {
 public:
  virtual ~EnvBlock() = default;
  size_t size() const { return ids.size(); }
  std::vector<uint32_t> ids;
};

class Environment {
 public:
  virtual ~Environment() = default;

  virtual uint64_t seed() const = 0;
  virtual uint32_t rounds() const = 0;
  // Width of one observed state.
  virtual int state_dim() const = 0;
  // Number of values of each action dimension.
  virtual std::vector<int> action_sizes() const = 0;
  // The no-treatment action, one index per dimension: what the budget issues instead of a
  // coupon it withholds.
  virtual std::vector<int32_t> control_action() const = 0;

  // Throws std::invalid_argument when these users cannot be simulated (e.g. feature widths).
  virtual void validate_users(const RolloutUsers& users) const = 0;
  // Users [begin, end) of `users` at round 0.
  virtual std::unique_ptr<EnvBlock> reset(const RolloutUsers& users, size_t begin, size_t end) const = 0;
  // states [n, state_dim]: what the policy sees of each user at round t.
  virtual void observe(const EnvBlock& block, uint32_t t, float* states) const = 0;
  // The largest cost user i of the block can cause under `action` (the budget's test).
  virtual double max_cost(const EnvBlock& block, size_t i, const int32_t* action) const = 0;
  // The realised reward and cost of every user under actions [n, A] at round t, without
  // changing the state (step() draws the same outcome).
  virtual void respond(const EnvBlock& block, uint32_t t, const int32_t* actions, double* reward, double* cost) const = 0;
  // Applies actions [n, A] at round t: fills the realised reward and cost, advances the state.
  virtual void step(EnvBlock& block, uint32_t t, const int32_t* actions, double* reward, double* cost) const = 0;
  // Expected reward and cost of user i under `action` at round t, when the environment knows
  // them (the Oracle's input); false when it does not.
  virtual bool expected(const EnvBlock& block, size_t i, uint32_t t, const int32_t* action, double& reward, double& cost) const {
    (void)block, (void)i, (void)t, (void)action, (void)reward, (void)cost;
    return false;
  }
};

}  // namespace saco
