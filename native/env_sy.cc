#include "env_sy.h"

#include <algorithm>

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

SyLatent sy_initial_user(const SyConfig& config, const SyWeights& weights, uint32_t id, const double* x) {
  SyLatent user;
  user.id = id;
  user.x.resize(config.features);
  if (x != nullptr) {
    std::copy_n(x, config.features, user.x.begin());
  } else {
    CounterStream stream(config.seed, id, 0, kStreamFeatures);
    for (double& v : user.x) v = stream.normal();
  }
  user.consts = sy_user_constants(weights, user.x.data(), config.features, config.alpha_shift,
                                  config.basket_scale, config.basket_spread);
  return user;
}

void sy_observe(const SyConfig& config, const SyLatent& user, uint32_t t, double* s) {
  const size_t d = config.features;
  const double so = config.sigma_obs;
  CounterStream obs(config.seed, user.id, t, kStreamObsNoise);
  for (size_t j = 0; j < d; ++j) s[j] = so > 0 ? user.x[j] + so * obs.normal() : user.x[j];
  s[d] = so > 0 ? user.engagement + so * obs.normal() : user.engagement;
  s[d + 1] = so > 0 ? user.fatigue + so * obs.normal() : user.fatigue;
  s[d + 2] = static_cast<double>(t) / static_cast<double>(config.rounds);
}

SyOutcome sy_outcome(const SyConfig& config, const SyLatent& user, uint32_t t, const int32_t* action) {
  SyOutcome o;
  o.value = sy_coupon_value(config, action, user.consts.basket);
  o.probability = sy_purchase_probability(config, user.consts, user.engagement, user.fatigue, o.value);
  o.purchase = CounterStream(config.seed, user.id, t, kStreamPurchase).uniform() < o.probability;
  o.reward = o.purchase ? user.consts.basket : 0.0;
  o.cost = o.purchase ? o.value : 0.0;
  return o;
}

void sy_advance(const SyConfig& config, SyLatent& user, uint32_t t, const SyOutcome& outcome) {
  const double eta = config.sequential ? config.eta : 0.0;
  CounterStream noise(config.seed, user.id, t, kStreamEngagement);
  user.engagement = config.rho * user.engagement + eta * (outcome.purchase ? 1.0 : 0.0) + config.sigma * noise.normal();
  user.fatigue = config.phi * user.fatigue + (outcome.value > 0 ? 1.0 : 0.0);
}

void generate_sy(const SyConfig& config, const SyLogView& out) {
  validate_sy_config(config);
  const size_t rows = static_cast<size_t>(config.users) * config.rounds;
  const size_t state_dim = config.features + 3;
  const size_t a_dims = config.action_dims.size();
  require_size(out.states, rows * state_dim, "states");
  require_size(out.actions, rows * a_dims, "actions");
  require_size(out.cost, rows, "cost");
  require_size(out.reward, rows, "reward");
  require_size(out.purchase_prob, rows, "purchaseProb");

  const SyWeights weights = draw_sy_weights(config);
  parallel_for(config.users, resolve_threads(config.threads), [&](size_t begin, size_t end) {
    std::vector<int32_t> action(a_dims);
    for (size_t i = begin; i < end; ++i) {
      SyLatent user = sy_initial_user(config, weights, static_cast<uint32_t>(i), nullptr);
      Span<double> states = out.states.subspan(i * config.rounds * state_dim, config.rounds * state_dim);
      Span<int32_t> actions = out.actions.subspan(i * config.rounds * a_dims, config.rounds * a_dims);
      for (uint32_t t = 0; t < config.rounds; ++t) {
        const size_t row = i * config.rounds + t;
        sy_observe(config, user, t, states.data() + t * state_dim);
        CounterStream logger(config.seed, user.id, t, kStreamLogger);
        for (size_t j = 0; j < a_dims; ++j) action[j] = log_action(config, config.action_dims[j], user.consts, logger);
        std::copy(action.begin(), action.end(), actions.data() + t * a_dims);
        const SyOutcome o = sy_outcome(config, user, t, action.data());
        out.purchase_prob[row] = o.probability;
        out.reward[row] = o.reward;
        out.cost[row] = o.cost;
        sy_advance(config, user, t, o);
      }
    }
  });
}

// ---- SyEnvironment ---------------------------------------------------------------------------

namespace {

struct SyBlock final : EnvBlock {
  std::vector<SyLatent> users;
};

const SyBlock& sy_block(const EnvBlock& b) { return static_cast<const SyBlock&>(b); }

}  // namespace

SyEnvironment::SyEnvironment(SyConfig config) : config_(std::move(config)) {
  validate_sy_config(config_);
  weights_ = draw_sy_weights(config_);
}

std::vector<int> SyEnvironment::action_sizes() const {
  std::vector<int> sizes;
  for (const auto& dim : config_.action_dims) sizes.push_back(static_cast<int>(dim.values.size()));
  return sizes;
}

// The cheapest value of each dimension (no coupon on SY, whose values include 0).
std::vector<int32_t> SyEnvironment::control_action() const {
  std::vector<int32_t> none;
  for (const auto& dim : config_.action_dims) {
    none.push_back(static_cast<int32_t>(std::min_element(dim.values.begin(), dim.values.end()) - dim.values.begin()));
  }
  return none;
}

void SyEnvironment::validate_users(const RolloutUsers& users) const {
  require(users.features.empty() || users.features.size() == users.ids.size() * config_.features,
          "features must have users x " + std::to_string(config_.features) + " values");
  for (double v : users.features) require(std::isfinite(v), "features must be finite");
}

std::unique_ptr<EnvBlock> SyEnvironment::reset(const RolloutUsers& users, size_t begin, size_t end) const {
  auto block = std::make_unique<SyBlock>();
  const size_t d = config_.features;
  for (size_t i = begin; i < end; ++i) {
    const double* x = users.features.empty() ? nullptr : users.features.data() + i * d;
    block->users.push_back(sy_initial_user(config_, weights_, users.ids[i], x));
    block->ids.push_back(users.ids[i]);
  }
  return block;
}

void SyEnvironment::observe(const EnvBlock& block, uint32_t t, float* states) const {
  const auto& users = sy_block(block).users;
  const size_t sd = config_.features + 3;
  std::vector<double> s(sd);
  for (size_t i = 0; i < users.size(); ++i) {
    sy_observe(config_, users[i], t, s.data());
    for (size_t j = 0; j < sd; ++j) states[i * sd + j] = static_cast<float>(s[j]);
  }
}

// A coupon costs its value when redeemed, nothing otherwise.
double SyEnvironment::max_cost(const EnvBlock& block, size_t i, const int32_t* action) const {
  return sy_coupon_value(config_, action, sy_block(block).users[i].consts.basket);
}

void SyEnvironment::respond(const EnvBlock& block, uint32_t t, const int32_t* actions, double* reward, double* cost) const {
  const auto& users = sy_block(block).users;
  const size_t A = config_.action_dims.size();
  for (size_t i = 0; i < users.size(); ++i) {
    const SyOutcome o = sy_outcome(config_, users[i], t, actions + i * A);
    reward[i] = o.reward;
    cost[i] = o.cost;
  }
}

void SyEnvironment::step(EnvBlock& block, uint32_t t, const int32_t* actions, double* reward, double* cost) const {
  auto& users = static_cast<SyBlock&>(block).users;
  const size_t A = config_.action_dims.size();
  for (size_t i = 0; i < users.size(); ++i) {
    const SyOutcome o = sy_outcome(config_, users[i], t, actions + i * A);
    reward[i] = o.reward;
    cost[i] = o.cost;
    sy_advance(config_, users[i], t, o);
  }
}

bool SyEnvironment::expected(const EnvBlock& block, size_t i, uint32_t t, const int32_t* action, double& reward, double& cost) const {
  (void)t;
  const SyLatent& u = sy_block(block).users[i];
  const double value = sy_coupon_value(config_, action, u.consts.basket);
  const double p = sy_purchase_probability(config_, u.consts, u.engagement, u.fatigue, value);
  reward = p * u.consts.basket;
  cost = p * value;
  return true;
}

}  // namespace saco
