// Scored: greedy in the scores of XGBoost outcome models (outcome.h: one pooled model, or one
// per joint action, each scoring its own action's rows). Each round every user
// gets argmax over joint actions a of r̂(x_a) − λ·ĉ(x_a), ties to the lower joint index, where
// x_a is the design row of src/sim/features.ts (state as observed, the one-hot of a, t/H, the
// history columns) and r̂ = P(r≠0|x)·E[r|r≠0,x], ĉ likewise (0 without cost heads). The history
// is the user's own path as the environment answered it (feedback(): the issued action and the
// realised reward and cost, rounded to float as a logged trajectory holds them), summarised by
// the simulator's mirror of buildFeatures (env_sim.h sim_design_row, sim_history_advance), so
// the rows equal those src/policy/scored.ts `scoredRollout` builds. The heads run as flat
// compiled trees (env_sim_trees.h, the simulator's fast path: XGBoost's CPU predictor's float
// sums in tree order), not through XGBoost's predict, whose per-call set-up cost more than the
// trees on a rollout block's few rows (2,000 users x 10 rounds: 650 ms a rollout, slower than
// the TypeScript rollout's whole-round calls); test/policy/scored-native.test.ts holds the plans
// equal to the TypeScript rollout, which scores with XGBoost itself. With a correction
// (policy_scored.h ScoredCorrection: DFCL's decision-focused fine-tune) the argmax is over the
// corrected scores r̃ − λ·c̃, as src/policy/dfcl.ts dfclScorer gives them.
//
// Two registrations of the one policy: "scored" (λ searched: DFCL's argmax r̂ − λ·ĉ) and
// "scored-fixed" (the λ given, no search: CMDP's greedy in Q, a model with reward heads only).
// Deterministic: its distribution is a point mass on the proposal.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "env_sim_trees.h"
#include "joint_action.h"
#include "policy_registry.h"
#include "policy_scored.h"

namespace saco {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

class ScoredPolicy final : public Policy {
 public:
  explicit ScoredPolicy(std::shared_ptr<const ScoredSpec> spec) : spec_(std::move(spec)) {
    require(spec_ != nullptr && !spec_->outcomes.empty(), "the scored policy needs an outcome model (spec.scored.outcome: an OutcomeModel id, or ids by joint action)");
    const SimLayout& L = spec_->layout;
    arm_model_ = spec_->arm_model.empty() ? std::vector<int32_t>(L.joint_count(), 0) : spec_->arm_model;
    require(arm_model_.size() == L.joint_count(), "spec.scored.armModel needs one model index per joint action (" + std::to_string(L.joint_count()) + ")");
    for (size_t k = 0; k < arm_model_.size(); ++k) {
      require(arm_model_[k] >= 0 && static_cast<size_t>(arm_model_[k]) < spec_->outcomes.size(),
              "spec.scored.armModel[" + std::to_string(k) + "] holds an index outside the models");
    }
    cost_ = spec_->outcomes[0] != nullptr && spec_->outcomes[0]->has_cost();
    for (size_t i = 0; i < spec_->outcomes.size(); ++i) {
      const auto& outcome = spec_->outcomes[i];
      const std::string which = spec_->outcomes.size() > 1 ? "outcome model " + std::to_string(i) : "the outcome model";
      require(outcome != nullptr, "the scored policy needs an outcome model");
      require(outcome->cols() == static_cast<uint64_t>(L.cols), which + " reads " + std::to_string(outcome->cols()) + " columns, its layout makes " + std::to_string(L.cols));
      require(outcome->has_reward(), "the scored policy needs reward heads (" + which + " has none)");
      require(outcome->has_cost() == cost_, "the scored policy's outcome models must all have cost heads, or none (" + which + " differs)");
      Heads h;
      for (int k = 0; k < (cost_ ? 4 : 2); ++k) {
        h[static_cast<size_t>(k)] = compile_outcome_head(outcome->heads()[static_cast<size_t>(k)], L.cols, "the scored policy's outcome model");
      }
      trees_.push_back(std::move(h));
    }
    const size_t A = L.action_sizes.size();
    K_ = L.joint_count();
    if (const auto& c = spec_->correction) {
      require(c->K == K_ && c->control < K_ && c->reward.size() == K_ * c->width() && c->cost.size() == K_ * c->width(),
              "spec.scored.correction must hold " + std::to_string(K_) + " joint actions (the model's)");
      for (int32_t j : c->columns) require(j >= 0 && j < L.cols && (j < L.action_offset || j >= L.round_offset), "spec.scored.correction.columns must be design columns outside the action one-hot");
    }
    joint_ = joint_table(L.action_sizes);  // [K, A] model indices
    // model index → environment index, and back
    to_env_.resize(A);
    to_model_.resize(A);
    for (size_t j = 0; j < A; ++j) {
      const auto K = static_cast<size_t>(L.action_sizes[j]);
      to_env_[j].resize(K);
      to_model_[j].assign(K, -1);
      for (size_t k = 0; k < K; ++k) {
        const int32_t e = spec_->env_action.empty() ? static_cast<int32_t>(k) : spec_->env_action[j][k];
        require(e >= 0 && static_cast<size_t>(e) < K && to_model_[j][static_cast<size_t>(e)] < 0,
                "spec.scored.envAction[" + std::to_string(j) + "] must map the model's values one to one onto the environment's");
        to_env_[j][k] = e;
        to_model_[j][static_cast<size_t>(e)] = static_cast<int32_t>(k);
      }
    }
  }

  void validate(const Environment& env, uint32_t rounds, double lambda) const override {
    const SimLayout& L = spec_->layout;
    const std::vector<int> sizes = env.action_sizes();
    require(sizes == L.action_sizes, "the outcome model's action sizes are not the environment's");
    require(env.state_dim() == L.state_dim,
            "the outcome model reads " + std::to_string(L.state_dim) + " state features, the environment observes " + std::to_string(env.state_dim()));
    require(std::isfinite(lambda), "the scored policy needs a finite λ");
    require(rounds <= L.rounds, "the outcome model was fitted on " + std::to_string(L.rounds) + " rounds, the rollout has " + std::to_string(rounds));
    // users who start mid-campaign bring a history this policy does not hear of
    if (const auto* sim = dynamic_cast<const SimEnvironment*>(&env)) {
      require(sim->rounds() == sim->layout().rounds, "the scored policy starts users at round 0 of the simulator (startRound 0)");
    }
  }

  std::unique_ptr<PolicyState> start(const Environment&, const EnvBlock& block, uint32_t, double lambda) const override {
    auto s = std::make_unique<State>();
    const size_t n = block.size();
    s->lambda = lambda;
    s->history.resize(n);
    s->rows.resize(K_ * n * static_cast<size_t>(spec_->layout.cols));
    for (auto* v : {&s->p_reward, &s->e_reward, &s->p_cost, &s->e_cost}) v->resize(K_ * n);
    s->reward.resize(K_);
    s->cost.resize(K_);
    return s;
  }

  void act(PolicyState& state, const Environment&, const EnvBlock& block, uint32_t t, const float* states, int32_t* actions) const override {
    State& s = static_cast<State&>(state);
    const SimLayout& L = spec_->layout;
    const size_t n = block.size(), A = L.action_sizes.size(), d = static_cast<size_t>(L.state_dim), p = static_cast<size_t>(L.cols);
    // rows [K, n, p]: every joint action for every user; each action's n rows by its model's heads
    for (size_t k = 0; k < K_; ++k) {
      for (size_t i = 0; i < n; ++i) sim_design_row(L, states + i * d, joint_.data() + k * A, t, s.history[i], s.rows.data() + (k * n + i) * p);
    }
    for (size_t k = 0; k < K_; ++k) {
      const auto m = static_cast<size_t>(arm_model_[k]);
      const float* x = s.rows.data() + k * n * p;
      float* outs[4] = {s.p_reward.data() + k * n, s.e_reward.data() + k * n, s.p_cost.data() + k * n, s.e_cost.data() + k * n};
      for (size_t h = 0; h < (cost_ ? 4 : 2); ++h) trees_[m][h].predict(x, n, p, outs[h]);
      if (cost_) spec_->outcomes[m]->zero_free_costs(x, n, p, outs[2]);  // as OutcomeModel::predict
    }
    double* reward = s.reward.data();
    double* cost = s.cost.data();
    for (size_t i = 0; i < n; ++i) {
      for (size_t k = 0; k < K_; ++k) {
        const size_t r = k * n + i;
        reward[k] = static_cast<double>(s.p_reward[r]) * static_cast<double>(s.e_reward[r]);
        cost[k] = cost_ ? static_cast<double>(s.p_cost[r]) * static_cast<double>(s.e_cost[r]) : 0.0;
      }
      if (spec_->correction) correct(*spec_->correction, s.rows.data() + i * p, n * p, reward, cost);
      double best = -std::numeric_limits<double>::infinity();
      size_t choice = 0;
      for (size_t k = 0; k < K_; ++k) {
        const double v = reward[k] - s.lambda * cost[k];
        if (v > best) {
          best = v;
          choice = k;
        }
      }
      for (size_t j = 0; j < A; ++j) actions[i * A + j] = to_env_[j][static_cast<size_t>(joint_[choice * A + j])];
    }
  }

  void probability(const PolicyState&, const Environment& env, const EnvBlock& block, uint32_t, const int32_t* proposed, const int32_t* issued,
                   double* p) const override {
    point_mass_probability(block.size(), env.action_sizes().size(), proposed, issued, p);
  }

  void feedback(PolicyState& state, uint32_t t, const int32_t* issued, const double* reward, const double* cost) const override {
    State& s = static_cast<State&>(state);
    const SimLayout& L = spec_->layout;
    const size_t A = L.action_sizes.size();
    std::vector<int32_t> a(A);
    for (size_t i = 0; i < s.history.size(); ++i) {
      for (size_t j = 0; j < A; ++j) a[j] = to_model_[j][static_cast<size_t>(issued[i * A + j])];
      // a logged trajectory holds float32 rewards and costs (src/data/trajectories.ts)
      sim_history_advance(L, s.history[i], t, a.data(), static_cast<float>(reward[i]), static_cast<float>(cost[i]));
    }
  }

  size_t state_bytes(size_t users, uint32_t) const override {
    return users * (K_ * (static_cast<size_t>(spec_->layout.cols) * sizeof(float) + 4 * sizeof(float)) + sizeof(SimHistory));
  }

 private:
  struct State final : PolicyState {
    double lambda = 0;
    std::vector<SimHistory> history;
    std::vector<float> rows, p_reward, e_reward, p_cost, e_cost;
    std::vector<double> reward, cost;  // [K] one user's scores
  };

  // DFCL's correction (policy_scored.h ScoredCorrection) of one user's scores reward, cost [K]
  // in place; row: the user's design row of joint action 0, the next action's `stride` floats
  // on. The C++ copy of src/policy/dfcl.ts designBasis + applyCorrection (the same sums in the
  // same order), held to it action for action by test/policy/scored-native.test.ts.
  static void correct(const ScoredCorrection& c, const float* row, size_t stride, double* reward, double* cost) {
    const size_t Q = c.width(), J = c.columns.size();
    const double r0 = reward[c.control], c0 = cost[c.control];  // the uncorrected control
    for (size_t a = 0; a < c.K; ++a) {
      const float* x = row + a * stride;
      const double* wr = c.reward.data() + a * Q;
      const double* wc = c.cost.data() + a * Q;
      double dr = wr[0], dc = wc[0];  // φ_0 = 1, then the standardised columns, then the uplifts
      for (size_t j = 0; j < J; ++j) {
        const double phi = (static_cast<double>(x[c.columns[j]]) - c.mean[j]) / c.scale[j];
        dr += wr[1 + j] * phi;
        dc += wc[1 + j] * phi;
      }
      if (c.uplift) {
        const double ur = (reward[a] - r0) / c.uplift_scale[0], uc = (cost[a] - c0) / c.uplift_scale[1];
        dr += wr[1 + J] * ur;
        dc += wc[1 + J] * ur;
        dr += wr[2 + J] * uc;
        dc += wc[2 + J] * uc;
      }
      reward[a] += dr;
      cost[a] += dc;
    }
  }
  using Heads = std::array<CompiledTrees, 4>;  // pReward, eReward, pCost, eCost (the cost heads only with cost_)
  std::shared_ptr<const ScoredSpec> spec_;
  std::vector<Heads> trees_;  // per outcome model
  std::vector<int32_t> arm_model_;  // [K] joint action → model
  bool cost_ = false;
  size_t K_ = 0;
  std::vector<int32_t> joint_;
  std::vector<std::vector<int32_t>> to_env_, to_model_;
};

std::shared_ptr<const Policy> make(const PolicyArgs& args) { return std::make_shared<ScoredPolicy>(args.scored); }

const PolicyRegistrar kSearched("scored", false, make);
const PolicyRegistrar kFixed("scored-fixed", false, make);

}  // namespace
}  // namespace saco
