#include "rollout.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>
#include <thread>

#include "pmath.h"
#include "pool.h"
#include "rng.h"

namespace saco {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

// Latent state of one simulated user.
struct UserState {
  uint32_t id = 0;
  std::vector<double> x;
  SyUser consts;
  double engagement = 0, fatigue = 0;
  double rtg_left = 0, ctg_left = 0;  // decision-time targets, decremented by realised reward/cost
};

// All the action combinations of the dimensions, index 0 first (for the Oracle).
std::vector<std::vector<int32_t>> all_actions(const SyConfig& env) {
  std::vector<std::vector<int32_t>> out{{}};
  for (const auto& dim : env.action_dims) {
    std::vector<std::vector<int32_t>> next;
    for (const auto& prefix : out) {
      for (size_t k = 0; k < dim.values.size(); ++k) {
        auto a = prefix;
        a.push_back(static_cast<int32_t>(k));
        next.push_back(std::move(a));
      }
    }
    out = std::move(next);
  }
  return out;
}

// One block of users: their latent states and (for CODT) their decoder.
struct Block {
  size_t begin = 0, end = 0;
  std::vector<UserState> users;
  std::unique_ptr<CodtDecoder> decoder;
  std::vector<float> lambda, inputs, logits;
};

class Simulation {
 public:
  Simulation(const RolloutSpec& spec, const RolloutUsers& users)
      : spec_(spec), weights_(draw_sy_weights(spec.env)), combos_(all_actions(spec.env)),
        n_(users.ids.size()), a_dims_(spec.env.action_dims.size()) {
    const size_t d = spec.env.features;
    for (size_t begin = 0; begin < n_; begin += kRolloutBlock) {
      Block block;
      block.begin = begin;
      block.end = std::min(n_, begin + kRolloutBlock);
      for (size_t i = block.begin; i < block.end; ++i) {
        UserState u;
        u.id = users.ids[i];
        u.x.resize(d);
        if (!users.features.empty()) {
          std::copy_n(users.features.begin() + static_cast<std::ptrdiff_t>(i * d), d, u.x.begin());
        } else {
          CounterStream stream(spec.env.seed, u.id, 0, kStreamFeatures);
          for (size_t j = 0; j < d; ++j) u.x[j] = stream.normal();
        }
        u.consts = sy_user_constants(weights_, u.x.data(), spec.env.features, spec.env.alpha_shift, spec.env.basket_scale, spec.env.basket_spread);
        if (spec.policy == PolicyKind::kCodt) spec.model->targets.at(spec.lambda, u.rtg_left, u.ctg_left);
        block.users.push_back(std::move(u));
      }
      blocks_.push_back(std::move(block));
    }
  }

  size_t blocks() const { return blocks_.size(); }

  // Observed state s_t of user u (as in generate_sy).
  void observe(const UserState& u, uint32_t t, float* s) const {
    const size_t d = spec_.env.features;
    const double so = spec_.env.sigma_obs;
    CounterStream obs(spec_.env.seed, u.id, t, kStreamObsNoise);
    for (size_t j = 0; j < d; ++j) s[j] = static_cast<float>(so > 0 ? u.x[j] + so * obs.normal() : u.x[j]);
    s[d] = static_cast<float>(so > 0 ? u.engagement + so * obs.normal() : u.engagement);
    s[d + 1] = static_cast<float>(so > 0 ? u.fatigue + so * obs.normal() : u.fatigue);
    s[d + 2] = static_cast<float>(static_cast<double>(t) / static_cast<double>(spec_.env.rounds));
  }

  // The policy's proposal for every user of a block at round t: proposed[(i - begin) * A + j].
  void propose(Block& b, uint32_t t, int32_t* proposed) {
    const size_t n = b.end - b.begin;
    if (spec_.policy == PolicyKind::kRandom) {
      // the uniform logger of SY, same stream: replays the logged actions exactly
      for (size_t i = 0; i < n; ++i) {
        CounterStream logger(spec_.env.seed, b.users[i].id, t, kStreamLogger);
        for (size_t j = 0; j < a_dims_; ++j) {
          const size_t K = spec_.env.action_dims[j].values.size();
          const size_t k = static_cast<size_t>(std::floor(logger.uniform() * static_cast<double>(K)));
          proposed[i * a_dims_ + j] = static_cast<int32_t>(std::min(k, K - 1));
        }
      }
      return;
    }
    if (spec_.policy == PolicyKind::kOracle) {
      for (size_t i = 0; i < n; ++i) {
        const UserState& u = b.users[i];
        double best = -INFINITY;
        size_t best_c = 0;
        for (size_t c = 0; c < combos_.size(); ++c) {
          const double value = sy_coupon_value(spec_.env, combos_[c].data(), u.consts.basket);
          const double p = sy_purchase_probability(spec_.env, u.consts, u.engagement, u.fatigue, value);
          const double score = p * u.consts.basket - spec_.lambda * p * value;
          if (score > best) {
            best = score;
            best_c = c;
          }
        }
        std::copy(combos_[best_c].begin(), combos_[best_c].end(), proposed + i * a_dims_);
      }
      return;
    }
    // CODT: append (RTG, CTG, s) tokens, read the action at the state token (greedy per dimension).
    const CodtModel& m = *spec_.model;
    const int d = m.config.state_dim;
    const int K = m.config.action_width();
    if (!b.decoder) {
      b.decoder = std::make_unique<CodtDecoder>(m, static_cast<int>(n), static_cast<int>(spec_.rounds));
      b.lambda.assign(n, static_cast<float>(spec_.lambda));
    }
    b.inputs.resize(n * static_cast<size_t>(std::max(d, K)));
    b.logits.resize(n * static_cast<size_t>(K));
    for (TokenKind kind : m.config.token_kinds()) {
      if (kind == TokenKind::kAction) break;
      for (size_t i = 0; i < n; ++i) {
        const UserState& u = b.users[i];
        if (kind == TokenKind::kRtg) b.inputs[i] = static_cast<float>(u.rtg_left);
        else if (kind == TokenKind::kCtg) b.inputs[i] = static_cast<float>(u.ctg_left);
        else observe(u, t, b.inputs.data() + i * d);
      }
      b.decoder->append(kind, static_cast<int>(t), b.inputs.data(), b.lambda.data(), kind == TokenKind::kState ? b.logits.data() : nullptr);
    }
    for (size_t i = 0; i < n; ++i) {
      int offset = 0;
      for (size_t j = 0; j < a_dims_; ++j) {
        const int Kj = m.config.action_sizes[j];
        const float* l = b.logits.data() + i * K + offset;
        proposed[i * a_dims_ + j] = static_cast<int32_t>(std::max_element(l, l + Kj) - l);
        offset += Kj;
      }
    }
  }

  // Feeds the issued actions to the policy and steps the environment; fills reward/cost per user.
  void step(Block& b, uint32_t t, const int32_t* issued, double* reward, double* cost) {
    const size_t n = b.end - b.begin;
    if (spec_.policy == PolicyKind::kCodt) {
      const int K = spec_.model->config.action_width();
      std::fill(b.inputs.begin(), b.inputs.begin() + static_cast<std::ptrdiff_t>(n * K), 0.0f);
      for (size_t i = 0; i < n; ++i) {
        int offset = 0;
        for (size_t j = 0; j < a_dims_; ++j) {
          b.inputs[i * K + offset + issued[i * a_dims_ + j]] = 1.0f;
          offset += spec_.model->config.action_sizes[j];
        }
      }
      b.decoder->append(TokenKind::kAction, static_cast<int>(t), b.inputs.data(), b.lambda.data(), nullptr);
    }
    const double eta = spec_.env.sequential ? spec_.env.eta : 0.0;
    for (size_t i = 0; i < n; ++i) {
      UserState& u = b.users[i];
      const double value = sy_coupon_value(spec_.env, issued + i * a_dims_, u.consts.basket);
      const double p = sy_purchase_probability(spec_.env, u.consts, u.engagement, u.fatigue, value);
      const bool purchase = CounterStream(spec_.env.seed, u.id, t, kStreamPurchase).uniform() < p;
      reward[i] = purchase ? u.consts.basket : 0.0;
      cost[i] = purchase ? value : 0.0;
      CounterStream noise(spec_.env.seed, u.id, t, kStreamEngagement);
      u.engagement = spec_.env.rho * u.engagement + eta * (purchase ? 1.0 : 0.0) + spec_.env.sigma * noise.normal();
      u.fatigue = spec_.env.phi * u.fatigue + (value > 0 ? 1.0 : 0.0);
      u.rtg_left -= reward[i];
      u.ctg_left -= cost[i];
    }
  }

  double coupon_value(size_t user, const int32_t* action) const {
    const Block& b = blocks_[user / kRolloutBlock];
    return sy_coupon_value(spec_.env, action, b.users[user - b.begin].consts.basket);
  }

  // What the user would pay out at round t under `action` (the same draw step() makes).
  double realised_cost(size_t user, uint32_t t, const int32_t* action) const {
    const Block& b = blocks_[user / kRolloutBlock];
    const UserState& u = b.users[user - b.begin];
    const double value = sy_coupon_value(spec_.env, action, u.consts.basket);
    const double p = sy_purchase_probability(spec_.env, u.consts, u.engagement, u.fatigue, value);
    return CounterStream(spec_.env.seed, u.id, t, kStreamPurchase).uniform() < p ? value : 0.0;
  }

  Block& block(size_t k) { return blocks_[k]; }

 private:
  const RolloutSpec& spec_;
  SyWeights weights_;
  std::vector<std::vector<int32_t>> combos_;
  size_t n_, a_dims_;
  std::vector<Block> blocks_;
};

// Runs body(k) for every block k over the threads; blocks are claimed dynamically.
void for_blocks(size_t count, unsigned threads, const std::function<void(size_t)>& body) {
  std::atomic<size_t> next{0};
  parallel_for(std::min<size_t>(threads, count), threads, [&](size_t, size_t) {
    for (size_t k = next++; k < count; k = next++) body(k);
  });
}

}  // namespace

void validate_rollout(const RolloutSpec& spec, const RolloutUsers& users) {
  validate_sy_config(spec.env);
  require(!users.ids.empty(), "users must not be empty");
  require(users.ids.size() <= 100000000u, "at most 1e8 users");
  require(users.features.empty() || users.features.size() == users.ids.size() * spec.env.features,
          "features must have users x features values");
  for (double v : users.features) require(std::isfinite(v), "features must be finite");
  require(spec.rounds >= 1 && spec.rounds <= spec.env.rounds, "rounds must be in [1, env.rounds]");
  require(!std::isnan(spec.budget) && spec.budget > 0, "budget must be > 0");
  require(std::isfinite(spec.lambda) && spec.lambda >= 0, "lambda must be finite and >= 0");
  if (spec.policy == PolicyKind::kCodt) {
    require(spec.model != nullptr, "the CODT policy needs a loaded model");
    const CodtConfig& c = spec.model->config;
    require(static_cast<int>(spec.rounds) <= c.context, "rounds beyond the model's context (" + std::to_string(c.context) + ")");
    require(c.state_dim == static_cast<int>(spec.env.features) + 3, "model state width " + std::to_string(c.state_dim) + " does not match the environment's " + std::to_string(spec.env.features + 3));
    require(c.action_sizes.size() == spec.env.action_dims.size(), "model and environment have different numbers of action dimensions");
    for (size_t j = 0; j < c.action_sizes.size(); ++j) {
      require(c.action_sizes[j] == static_cast<int>(spec.env.action_dims[j].values.size()), "model and environment disagree on the size of action dimension " + std::to_string(j));
    }
    require(spec.lambda <= spec.model->norm.lambda_max * (1 + 1e-6), "lambda beyond the model's range [0, lambdaMax]");
  }
}

RolloutResult rollout(const RolloutSpec& spec, const RolloutUsers& users) {
  validate_rollout(spec, users);
  Simulation sim(spec, users);
  const size_t n = users.ids.size();
  const size_t A = spec.env.action_dims.size();
  const unsigned threads = resolve_threads(spec.threads);
  RolloutResult result;
  result.revenue_by_round.assign(spec.rounds, 0.0);
  result.cost_by_round.assign(spec.rounds, 0.0);
  if (spec.record_plan) result.plan.assign(n * spec.rounds * A, 0);
  std::vector<int32_t> actions(n * A);
  std::vector<double> reward(n), cost(n);
  // cheapest action per dimension: what is issued when the budget withholds a coupon
  std::vector<int32_t> none(A);
  for (size_t j = 0; j < A; ++j) {
    const auto& v = spec.env.action_dims[j].values;
    none[j] = static_cast<int32_t>(std::min_element(v.begin(), v.end()) - v.begin());
  }
  const bool budgeted = std::isfinite(spec.budget);
  if (!budgeted) {
    // No budget: users never interact, so each block runs all its rounds at once and frees
    // its KV cache before the next (same per-user arithmetic as the round-by-round path).
    std::vector<double> rewards(n * spec.rounds), costs(n * spec.rounds);
    std::vector<uint64_t> coupons(sim.blocks(), 0);
    for_blocks(sim.blocks(), threads, [&](size_t k) {
      Block& b = sim.block(k);
      int32_t* a = actions.data() + b.begin * A;
      for (uint32_t t = 0; t < spec.rounds; ++t) {
        sim.propose(b, t, a);
        for (size_t i = b.begin; i < b.end; ++i) coupons[k] += sim.coupon_value(i, actions.data() + i * A) > 0 ? 1 : 0;
        sim.step(b, t, a, rewards.data() + t * n + b.begin, costs.data() + t * n + b.begin);
        if (spec.record_plan) {
          for (size_t i = b.begin; i < b.end; ++i) std::copy_n(actions.data() + i * A, A, result.plan.data() + (i * spec.rounds + t) * A);
        }
      }
      b.decoder.reset();
    });
    for (uint32_t t = 0; t < spec.rounds; ++t) {
      for (size_t i = 0; i < n; ++i) {
        result.revenue_by_round[t] += rewards[t * n + i];
        result.cost_by_round[t] += costs[t * n + i];
      }
      result.revenue += result.revenue_by_round[t];
      result.cost += result.cost_by_round[t];
    }
    for (uint64_t c : coupons) result.coupons += c;
    return result;
  }
  double spent = 0;
  for (uint32_t t = 0; t < spec.rounds; ++t) {
    for_blocks(sim.blocks(), threads, [&](size_t k) {
      Block& b = sim.block(k);
      sim.propose(b, t, actions.data() + b.begin * A);
    });
    // budget: users arrive in id order within a round; a coupon is withheld when, if
    // redeemed, it would take the spend realised so far over B
    double running = spent;
    for (size_t i = 0; i < n; ++i) {
      int32_t* a = actions.data() + i * A;
      const double v = sim.coupon_value(i, a);
      if (v > 0 && running + v > spec.budget) {
        std::copy(none.begin(), none.end(), a);
        ++result.blocked;
        continue;
      }
      if (v > 0) ++result.coupons;
      running += sim.realised_cost(i, t, a);
    }
    for_blocks(sim.blocks(), threads, [&](size_t k) {
      Block& b = sim.block(k);
      sim.step(b, t, actions.data() + b.begin * A, reward.data() + b.begin, cost.data() + b.begin);
    });
    for (size_t i = 0; i < n; ++i) {
      result.revenue_by_round[t] += reward[i];
      result.cost_by_round[t] += cost[i];
    }
    spent += result.cost_by_round[t];
    result.revenue += result.revenue_by_round[t];
    result.cost += result.cost_by_round[t];
    if (spec.record_plan) {
      for (size_t i = 0; i < n; ++i) std::copy_n(actions.data() + i * A, A, result.plan.data() + (i * spec.rounds + t) * A);
    }
  }
  return result;
}

}  // namespace saco
