// The synthetic environment "SY" (DESIGN.md section 4): ground truth for users who respond
// to coupons round after round. src/data/synth.ts is the readable reference of the same
// equations and must produce bit-identical logs for the same seed.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

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

// Fills `out` (sizes checked) with the logged trajectories of every user.
void generate_sy(const SyConfig& config, const SyLogView& out);

}  // namespace saco
