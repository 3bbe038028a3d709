// The synthetic environment "SY" (DESIGN.md section 4): ground truth for users who respond
// to coupons round after round. Its step and observation exist once here, used by the log
// generator and by the rollouts (SyEnvironment). src/data/synth.ts is the readable reference of the same
// equations and must produce bit-identical logs for the same seed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "environment.h"
#include "tensor.h"

namespace saco {

enum class ActionKind { kCash = 0, kDiscount = 1 };

// One action dimension of a (possibly bundled) coupon. Cash values are currency; discount
// values are fractions of the user's basket value.
struct ActionDim {
  ActionKind kind = ActionKind::kCash;
  std::vector<double> values;
};

enum class LoggerKind { kUniform = 0, kBiased = 1 };

struct SyConfig {
  uint32_t users = 10000;
  uint32_t rounds = 10;
  uint32_t features = 8;
  uint64_t seed = 1;
  std::vector<ActionDim> action_dims;
  bool sequential = true;
  double rho = 0.8, eta = 0.5, gamma_e = 0.6, delta = 0.35, phi = 0.7;
  double sigma = 0.1, sigma_obs = 0.0;
  double alpha_shift = -1.5, basket_scale = 20.0, basket_spread = 0.3;
  LoggerKind logger = LoggerKind::kUniform;
  double logger_strength = 0.0;
  uint32_t threads = 0;  // 0: hardware concurrency
};

// Global parameters drawn from the seed: unit vectors w_alpha, w_beta, w_m of length features.
struct SyWeights {
  std::vector<double> w_alpha, w_beta, w_m;
};

// Per-user constants derived from the static features.
struct SyUser {
  double alpha = 0, beta = 0, basket = 0, targeting_score = 0;
};

// Row-major long log: row = user * rounds + round.
//   states  [users*rounds, features + 3]  (x, engagement, fatigue, round/rounds)
//   actions [users*rounds, action_dims]   (index into each dimension's values)
//   cost, reward, purchase_prob [users*rounds]
struct SyLogView {
  Span<double> states;
  Span<int32_t> actions;
  Span<double> cost;
  Span<double> reward;
  Span<double> purchase_prob;
};

// Throws std::invalid_argument naming the field when the config is out of range.
void validate_sy_config(const SyConfig& config);

SyWeights draw_sy_weights(const SyConfig& config);
SyUser sy_user_constants(const SyWeights& weights, const double* x, uint32_t features,
                         double alpha_shift, double basket_scale, double basket_spread);

// Monetary value of a (bundled) action for a user: the sum over dimensions.
double sy_coupon_value(const SyConfig& config, const int32_t* action, double basket);

// Probability of purchase given the latent state (equation of DESIGN.md section 4).
double sy_purchase_probability(const SyConfig& config, const SyUser& user, double engagement,
                               double fatigue, double coupon_value);

// One simulated user: static features, derived constants and the dynamic latent state.
struct SyLatent {
  uint32_t id = 0;
  std::vector<double> x;
  SyUser consts;
  double engagement = 0, fatigue = 0;
};

// What one action does to one user at one round (the purchase draw is keyed by user and round).
struct SyOutcome {
  double value = 0, probability = 0, reward = 0, cost = 0;
  bool purchase = false;
};

// A user at round 0: features given (`x`, features values) or drawn from the seed's stream.
SyLatent sy_initial_user(const SyConfig& config, const SyWeights& weights, uint32_t id, const double* x);
// The observed state s_t [features + 3]: (x, engagement, fatigue) plus σ_obs noise, t / rounds.
void sy_observe(const SyConfig& config, const SyLatent& user, uint32_t t, double* s);
SyOutcome sy_outcome(const SyConfig& config, const SyLatent& user, uint32_t t, const int32_t* action);
// Engagement and fatigue after the outcome of round t.
void sy_advance(const SyConfig& config, SyLatent& user, uint32_t t, const SyOutcome& outcome);

// Fills `out` (sizes checked) with the logged trajectories of every user.
void generate_sy(const SyConfig& config, const SyLogView& out);

// SY's ground truth behind the Environment seam (the rollouts' world).
class SyEnvironment final : public Environment {
 public:
  explicit SyEnvironment(SyConfig config);
  const SyConfig& config() const { return config_; }

  uint64_t seed() const override { return config_.seed; }
  uint32_t rounds() const override { return config_.rounds; }
  int state_dim() const override { return static_cast<int>(config_.features) + 3; }
  std::vector<int> action_sizes() const override;
  std::vector<int32_t> control_action() const override;
  void validate_users(const RolloutUsers& users) const override;
  std::unique_ptr<EnvBlock> reset(const RolloutUsers& users, size_t begin, size_t end) const override;
  void observe(const EnvBlock& block, uint32_t t, float* states) const override;
  double max_cost(const EnvBlock& block, size_t i, const int32_t* action) const override;
  void respond(const EnvBlock& block, uint32_t t, const int32_t* actions, double* reward, double* cost) const override;
  void step(EnvBlock& block, uint32_t t, const int32_t* actions, double* reward, double* cost) const override;
  bool expected(const EnvBlock& block, size_t i, uint32_t t, const int32_t* action, double& reward, double& cost) const override;

 private:
  SyConfig config_;
  SyWeights weights_;
};

}  // namespace saco
