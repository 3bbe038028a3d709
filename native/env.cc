#include "env.h"

#include <cmath>
#include <stdexcept>

#include "pmath.h"
#include "pool.h"
#include "rng.h"

namespace saco {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

void require_finite(double value, const char* name) {
  require(std::isfinite(value), std::string("SyConfig.") + name + " must be a finite number");
}

std::vector<double> unit_vector(uint64_t seed, uint32_t which, uint32_t length) {
  CounterStream stream(seed, kGlobalUser, 0, kStreamWeights + which);
  std::vector<double> w(length);
  double norm2 = 0;
  for (uint32_t j = 0; j < length; ++j) {
    w[j] = stream.normal();
    norm2 += w[j] * w[j];
  }
  const double norm = std::sqrt(norm2);
  for (uint32_t j = 0; j < length; ++j) w[j] = w[j] / norm;
  return w;
}

double dot(const std::vector<double>& w, const double* x, uint32_t n) {
  double s = 0;
  for (uint32_t j = 0; j < n; ++j) s += w[j] * x[j];
  return s;
}

// Index drawn by the logging policy for one action dimension.
int32_t log_action(const SyConfig& config, const ActionDim& dim, const SyUser& user,
                   CounterStream& stream) {
  const size_t k_count = dim.values.size();
  const double u = stream.uniform();
  if (config.logger == LoggerKind::kUniform) {
    const size_t k = static_cast<size_t>(std::floor(u * static_cast<double>(k_count)));
    return static_cast<int32_t>(k < k_count ? k : k_count - 1);
  }
  // Biased logger: a deployed targeting policy that gives bigger coupons to users it
  // believes more coupon-sensitive (the score is w_beta . x, the sensitivity's argument).
  double vmax = 0;
  for (double v : dim.values) vmax = std::fabs(v) > vmax ? std::fabs(v) : vmax;
  std::vector<double> logits(k_count);
  double lmax = -1e300;
  for (size_t k = 0; k < k_count; ++k) {
    const double scaled = vmax > 0 ? dim.values[k] / vmax : 0.0;
    logits[k] = config.logger_strength * user.targeting_score * scaled;
    lmax = logits[k] > lmax ? logits[k] : lmax;
  }
  double total = 0;
  for (size_t k = 0; k < k_count; ++k) {
    logits[k] = pmath::exp(logits[k] - lmax);
    total += logits[k];
  }
  const double target = u * total;
  double cumulative = 0;
  for (size_t k = 0; k < k_count; ++k) {
    cumulative += logits[k];
    if (target < cumulative) return static_cast<int32_t>(k);
  }
  return static_cast<int32_t>(k_count - 1);
}

}  // namespace

void validate_sy_config(const SyConfig& c) {
  require(c.users >= 1 && c.users <= 100000000u, "SyConfig.users must be in [1, 1e8]");
  require(c.rounds >= 1 && c.rounds <= 100000u, "SyConfig.rounds must be in [1, 1e5]");
  require(c.features >= 1 && c.features <= 1024u, "SyConfig.features must be in [1, 1024]");
  require(static_cast<uint64_t>(c.users) * c.rounds <= 0x7FFFFFFFull,
          "SyConfig.users * rounds must be below 2^31");
  require(c.seed <= 9007199254740991ull, "SyConfig.seed must be an integer in [0, 2^53)");
  require(!c.action_dims.empty() && c.action_dims.size() <= 16,
          "SyConfig.actionDims must have 1 to 16 dimensions");
  for (const auto& dim : c.action_dims) {
    require(!dim.values.empty() && dim.values.size() <= 256,
            "SyConfig.actionDims[].values must have 1 to 256 entries");
    for (double v : dim.values) {
      require(std::isfinite(v) && v >= 0, "SyConfig.actionDims[].values must be finite and >= 0");
      if (dim.kind == ActionKind::kDiscount) {
        require(v <= 1, "SyConfig.actionDims[].values of a discount must be fractions in [0, 1]");
      }
    }
  }
  require_finite(c.rho, "rho");
  require_finite(c.eta, "eta");
  require_finite(c.gamma_e, "gammaE");
  require_finite(c.delta, "delta");
  require_finite(c.phi, "phi");
  require_finite(c.sigma, "sigma");
  require_finite(c.sigma_obs, "sigmaObs");
  require_finite(c.alpha_shift, "alphaShift");
  require_finite(c.basket_scale, "basketScale");
  require_finite(c.basket_spread, "basketSpread");
  require_finite(c.logger_strength, "logging.strength");
  require(c.sigma >= 0 && c.sigma_obs >= 0, "SyConfig.sigma and sigmaObs must be >= 0");
  require(c.basket_scale > 0, "SyConfig.basketScale must be > 0");
  require(c.threads <= 1024, "threads must be in [0, 1024]");
}

SyWeights draw_sy_weights(const SyConfig& config) {
  return SyWeights{unit_vector(config.seed, 0, config.features),
                   unit_vector(config.seed, 1, config.features),
                   unit_vector(config.seed, 2, config.features)};
}

SyUser sy_user_constants(const SyWeights& w, const double* x, uint32_t features,
                         double alpha_shift, double basket_scale, double basket_spread) {
  SyUser user;
  user.alpha = dot(w.w_alpha, x, features) + alpha_shift;
  user.targeting_score = dot(w.w_beta, x, features);
  user.beta = pmath::softplus(user.targeting_score);
  user.basket = basket_scale * pmath::exp(basket_spread * dot(w.w_m, x, features));
  return user;
}

double sy_coupon_value(const SyConfig& config, const int32_t* action, double basket) {
  double value = 0;
  for (size_t j = 0; j < config.action_dims.size(); ++j) {
    const ActionDim& dim = config.action_dims[j];
    const double v = dim.values[static_cast<size_t>(action[j])];
    value += dim.kind == ActionKind::kCash ? v : v * basket;
  }
  return value;
}

double sy_purchase_probability(const SyConfig& config, const SyUser& user, double engagement,
                               double fatigue, double coupon_value) {
  const double delta = config.sequential ? config.delta : 0.0;
  const double effect = user.beta * pmath::log(1.0 + coupon_value) * pmath::exp(-delta * fatigue);
  return pmath::sigmoid(user.alpha + config.gamma_e * engagement + effect);
}

void generate_sy(const SyConfig& config, const SyLogView& out) {
  validate_sy_config(config);
  const size_t rows = static_cast<size_t>(config.users) * config.rounds;
  const size_t d = config.features;
  const size_t state_dim = d + 3;
  const size_t a_dims = config.action_dims.size();
  require_size(out.states, rows * state_dim, "states");
  require_size(out.actions, rows * a_dims, "actions");
  require_size(out.cost, rows, "cost");
  require_size(out.reward, rows, "reward");
  require_size(out.purchase_prob, rows, "purchaseProb");

  const SyWeights weights = draw_sy_weights(config);
  const double eta = config.sequential ? config.eta : 0.0;

  parallel_for(config.users, resolve_threads(config.threads), [&](size_t begin, size_t end) {
    std::vector<double> x(d);
    std::vector<int32_t> action(a_dims);
    for (size_t i = begin; i < end; ++i) {
      const uint32_t uid = static_cast<uint32_t>(i);
      CounterStream feature_stream(config.seed, uid, 0, kStreamFeatures);
      for (size_t j = 0; j < d; ++j) x[j] = feature_stream.normal();
      const SyUser user = sy_user_constants(weights, x.data(), config.features, config.alpha_shift,
                                            config.basket_scale, config.basket_spread);
      double engagement = 0, fatigue = 0;
      Span<double> states = out.states.subspan(i * config.rounds * state_dim, config.rounds * state_dim);
      Span<int32_t> actions = out.actions.subspan(i * config.rounds * a_dims, config.rounds * a_dims);
      for (uint32_t t = 0; t < config.rounds; ++t) {
        const size_t row = i * config.rounds + t;
        double* s = states.data() + t * state_dim;
        CounterStream obs(config.seed, uid, t, kStreamObsNoise);
        for (size_t j = 0; j < d; ++j) s[j] = config.sigma_obs > 0 ? x[j] + config.sigma_obs * obs.normal() : x[j];
        s[d] = config.sigma_obs > 0 ? engagement + config.sigma_obs * obs.normal() : engagement;
        s[d + 1] = config.sigma_obs > 0 ? fatigue + config.sigma_obs * obs.normal() : fatigue;
        s[d + 2] = static_cast<double>(t) / static_cast<double>(config.rounds);

        CounterStream logger(config.seed, uid, t, kStreamLogger);
        for (size_t j = 0; j < a_dims; ++j) action[j] = log_action(config, config.action_dims[j], user, logger);
        for (size_t j = 0; j < a_dims; ++j) actions.data()[t * a_dims + j] = action[j];

        const double value = sy_coupon_value(config, action.data(), user.basket);
        const double p = sy_purchase_probability(config, user, engagement, fatigue, value);
        CounterStream purchase_stream(config.seed, uid, t, kStreamPurchase);
        const bool purchase = purchase_stream.uniform() < p;
        out.purchase_prob[row] = p;
        out.reward[row] = purchase ? user.basket : 0.0;
        out.cost[row] = purchase ? value : 0.0;

        CounterStream noise(config.seed, uid, t, kStreamEngagement);
        engagement = config.rho * engagement + eta * (purchase ? 1.0 : 0.0) + config.sigma * noise.normal();
        fatigue = config.phi * fatigue + (value > 0 ? 1.0 : 0.0);
      }
    }
  });
}

}  // namespace saco
