// The learned offline simulator behind the Environment seam (DESIGN.md section 6, issue 13):
// users who answer coupons the way a fitted OutcomeModel (native/outcome.h) says, round after
// round, so the same rollout, budget rule and λ search that run in SY run on a real log's users.
//
// A user is a state s_t (the log's state features) plus the history the design matrix reads
// (src/sim/features.ts: how often and how recently they were treated, the last action, the
// reward and cost so far, the rounds with a reward). Round t, action a:
//
//   design row x = [s_t | one-hot(a) | t/H | history]                 (H: the layout's rounds)
//   u ~ U(0,1) from (seed, user, t, kStreamSimOutcome)
//   reward r = [u < P(r≠0|x)] · E[r|r≠0,x] · ε_r    cost c = [u < P(c≠0|x)] · min(E[c|c≠0,x] · ε_c, c_max(a))
//   s_{t+1,j} = clip(s_t,j + Δ_j(x, r, c) + sd_j · N(0,1))      j dynamic (transition heads)
//   s_{t+1,j} = clock_j(t+1)                                    j a clock (the same for every user at a round)
//   s_{t+1,j} = s_t,j                                           j static
//
// Choices, and why:
// - One uniform u decides both hurdles (a comonotone coupling): a coupon that costs only when
//   redeemed has P(c≠0) ≤ P(r≠0), and with one u a cost never comes without the purchase it
//   pays for. Independent draws would create (r = 0, c > 0) rounds the log never holds, and the
//   transition heads, which read (r, c), would extrapolate from them.
// - The amounts are the conditional means times a multiplicative noise ε drawn from the
//   empirical ratios y / ŷ of held-out users (a quantile table, rescaled to mean 1 so the
//   sampled mean stays the model's mean): samples carry the spread of baskets the trees do not
//   explain, and expected() stays exactly P·E.
// - c_max(a), the budget's test (max_cost), is the largest cost logged under the joint action a
//   (every logged cost when a was never logged); sampled costs are clipped to it, so the
//   budget rule's promise (realised spend never exceeds B) holds in the simulator as in SY.
// - Dynamic features are clipped to their logged range: trees say nothing beyond it.
//
// Every draw is keyed by (seed, user id, absolute round, stream), so results do not depend on
// the thread count or the block a user falls in. Predictions run per block, round and model
// with the heads' trees compiled to flat arrays (env_sim_trees.h; checked against XGBoost when
// the simulator is created), and an amount is predicted only where its hurdle was passed.
//
// Users start at round `start_round` (0: a fresh start) from given states, optionally with
// their history so far (a log's users "from their logged history on").
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "env_sim_trees.h"
#include "env_sy.h"
#include "environment.h"
#include "outcome.h"

namespace saco {

// The design matrix's columns (src/sim/features.ts `FeatureLayout`), as numbers.
struct SimLayout {
  int state_dim = 0;
  std::vector<int> action_sizes;
  std::vector<int32_t> control;  // the no-treatment value index per dimension
  uint32_t rounds = 0;           // H of t/H and of since_treated when never treated
  // derived by finish(): first column of each block, and the width
  int action_offset = 0, round_offset = 0, history_offset = 0, cols = 0;

  // Computes the offsets; throws std::invalid_argument on an inconsistent layout.
  void finish();
  int history_width() const { return 5 + static_cast<int>(action_sizes.size()); }
  size_t joint_count() const;
  // The joint index of an action [A] (the last dimension fastest, as jointActions in TS).
  int32_t joint(const int32_t* action) const;
};

// What the history columns of one user summarise (features.ts buildFeatures, per user).
struct SimHistory {
  double treated = 0;        // rounds whose action was not the control on every dimension
  int64_t last_treated = -1; // the last such round; -1: never
  std::vector<int32_t> prev; // the previous real round's action; empty: none (-1 in the row)
  double reward_sum = 0, cost_sum = 0, reward_rounds = 0;
};

// Writes the design row of round t (state [d], action [A], history) into row [cols].
// The one C++ mirror of buildFeatures' row; tested for parity against it.
void sim_design_row(const SimLayout& layout, const float* state, const int32_t* action, uint32_t t, const SimHistory& h, float* row);
// Round t (real) becomes history: the mirror of buildFeatures' update.
void sim_history_advance(const SimLayout& layout, SimHistory& h, uint32_t t, const int32_t* action, double reward, double cost);
// The history columns [history_width] of h at round t (as in the design row).
void sim_history_columns(const SimLayout& layout, const SimHistory& h, uint32_t t, float* out);
// The inverse: h from history columns written at round t (a user starting mid-log).
SimHistory sim_history_from_columns(const SimLayout& layout, const float* columns, uint32_t t);

// buildFeatures of whole trajectories (users N, rounds T; states [N,T,d], actions [N,T,A],
// rewards/costs [N,T] as float32, mask [N,T]): rows of the real cells in user-major order.
std::vector<float> sim_design_matrix(const SimLayout& layout, uint64_t users, uint32_t rounds, const float* states, const int32_t* actions,
                                     const float* rewards, const float* costs, const uint8_t* mask);

// A fitted simulator: its outcome models and what the TS side measured when fitting them.
struct SimSpec {
  // Which outcome model answers each joint action [joint actions]: one pooled model (all 0),
  // or one model per action ("per arm", a T-learner), which on SY removes the bias a pooled
  // model's one-hot action leaves on the control (+8-18% revenue, see src/sim/simulator.ts).
  std::vector<int32_t> arm_model;
  SimLayout layout;
  std::vector<int32_t> dynamic;       // state indices with transition heads, in the model's order
  std::vector<float> dynamic_min, dynamic_max;  // [dynamic] the logged range (clip)
  std::vector<int32_t> clock;         // state indices that are a function of the round only
  std::vector<float> clock_values;    // [rounds, clock] their logged value at each round
  std::vector<double> reward_noise;   // quantiles of ε_r at k/(Q-1), mean 1; empty: ε = 1
  std::vector<double> cost_noise;     // the same for ε_c
  std::vector<double> max_cost;       // [joint actions] c_max(a)
  // [models] 1 where every logged row of the model's actions had a cost exactly when it had a
  // reward (a coupon paid when redeemed): P(c≠0) is then P(r≠0), one head instead of two
  // nearly equal ones (faster, and the two hurdles cannot disagree). Empty: none.
  std::vector<uint8_t> same_hurdle;
};

class SimModel {
 public:
  // Throws std::invalid_argument when spec and models disagree (columns, transition heads), or
  // when the compiled trees disagree with XGBoost on `check_rows` [m, cols] (design rows of
  // the log; may be empty).
  SimModel(std::vector<std::shared_ptr<const OutcomeModel>> models, SimSpec spec, const std::vector<float>& check_rows = {});
  size_t model_count() const { return models_.size(); }
  const OutcomeModel& model(size_t m) const { return *models_[m]; }
  // The model that answers joint action k.
  size_t model_of(int32_t joint) const { return static_cast<size_t>(spec_.arm_model[static_cast<size_t>(joint)]); }
  const SimSpec& spec() const { return spec_; }

  // The hurdle parts of model m for design rows [n, cols], by the compiled trees; any output
  // may be null (skipped). As OutcomeModel::predict, rows of a zero-cost control get P(c≠0) 0.
  void predict(size_t m, const float* rows, uint64_t n, float* p_reward, float* e_reward, float* p_cost, float* e_cost) const;
  // The transition heads' deltas [n, k] for rows [n, cols + 2] = [x | r | c].
  void predict_delta(size_t m, const float* rows, uint64_t n, float* delta) const;

 private:
  void compile_and_check(const std::vector<float>& check_rows);
  struct Compiled {
    CompiledTrees p_reward, e_reward, p_cost, e_cost;
    std::vector<CompiledTrees> next;
  };
  std::vector<std::shared_ptr<const OutcomeModel>> models_;
  std::vector<Compiled> compiled_;
  SimSpec spec_;
};

// Simulators handed to JavaScript by id (> 0), shared read-only by every thread.
int64_t sim_add(std::shared_ptr<const SimModel> sim);
std::shared_ptr<const SimModel> sim_get(int64_t id);
bool sim_remove(int64_t id);
size_t sim_count();

struct SimEnvConfig {
  uint64_t seed = 1;
  uint32_t start_round = 0;
  // Validation on SY only: expected() answers with SY's true expectations evaluated on the
  // simulated observed state (x, engagement, fatigue, t/T), so the Oracle that runs in the
  // simulator is the same function of the state as the one in SY's ground truth.
  std::shared_ptr<const SyConfig> expected_from_sy;
};

class SimEnvironment final : public Environment {
 public:
  SimEnvironment(std::shared_ptr<const SimModel> sim, SimEnvConfig config);

  uint64_t seed() const override { return config_.seed; }
  uint32_t rounds() const override { return spec().layout.rounds - config_.start_round; }
  int state_dim() const override { return spec().layout.state_dim; }
  std::vector<int> action_sizes() const override { return spec().layout.action_sizes; }
  std::vector<int32_t> control_action() const override { return spec().layout.control; }
  // features per user: the state at the start [d], or the state and the history columns [d + history_width].
  void validate_users(const RolloutUsers& users) const override;
  std::unique_ptr<EnvBlock> reset(const RolloutUsers& users, size_t begin, size_t end) const override;
  void observe(const EnvBlock& block, uint32_t t, float* states) const override;
  double max_cost(const EnvBlock& block, size_t i, const int32_t* action) const override;
  void respond(const EnvBlock& block, uint32_t t, const int32_t* actions, double* reward, double* cost) const override;
  void step(EnvBlock& block, uint32_t t, const int32_t* actions, double* reward, double* cost) const override;
  bool expected(const EnvBlock& block, size_t i, uint32_t t, const int32_t* action, double& reward, double& cost) const override;

  const SimLayout& layout() const { return spec().layout; }
  // The design rows [n, cols] the block's users would be scored on at round t under actions [n, A].
  void design_rows(const EnvBlock& block, uint32_t t, const int32_t* actions, float* rows) const;

  struct Block;

 private:
  const SimSpec& spec() const { return sim_->spec(); }
  // Fills the block's per-user outcome parts (P and E of both hurdles) for `actions` at t.
  void outcome_parts(const Block& b, uint32_t t, const int32_t* actions) const;
  void draw(const Block& b, uint32_t t, const int32_t* actions, double* reward, double* cost) const;

  std::shared_ptr<const SimModel> sim_;
  SimEnvConfig config_;
  SyWeights sy_weights_;
};

// A rollout of `rounds` rounds under the uniform random policy (the Random policy's draws),
// recording what the environment saw: states [n, T, d], the design rows of the issued actions
// [n, T, cols], actions [n, T, A], rewards and costs [n, T]. For tests of the history features
// against src/sim/features.ts; one block, one thread.
struct SimTrace {
  std::vector<float> states, rows, rewards, costs;
  std::vector<int32_t> actions;
};
SimTrace sim_trace(const SimEnvironment& env, const RolloutUsers& users, uint32_t rounds);

}  // namespace saco
