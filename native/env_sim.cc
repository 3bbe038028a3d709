#include "env_sim.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "joint_action.h"
#include "pool.h"
#include "registry.h"
#include "rng.h"

namespace saco {
namespace {

// Streams of the simulator's draws (beyond the numbers src/data/rng.ts names).
constexpr uint32_t kStreamSimOutcome = 32;  // the hurdle uniform, then the two amount noises
constexpr uint32_t kStreamSimState = 33;    // the transition noises

constexpr uint32_t kNoRound = std::numeric_limits<uint32_t>::max();

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

// ε from a quantile table at k/(Q-1), linearly interpolated at u; 1 without a table.
double noise(const std::vector<double>& q, double u) {
  if (q.empty()) return 1.0;
  const double pos = u * static_cast<double>(q.size() - 1);
  const size_t k = static_cast<size_t>(pos);
  if (k + 1 >= q.size()) return q.back();
  return q[k] + (pos - static_cast<double>(k)) * (q[k + 1] - q[k]);
}

void check_noise(const std::vector<double>& q, const char* name) {
  if (q.empty()) return;
  require(q.size() >= 2 && q.size() <= 100000, std::string("simulator ") + name + ": a quantile table needs 2 to 100000 values");
  for (size_t k = 0; k < q.size(); ++k) {
    require(std::isfinite(q[k]) && q[k] >= 0, std::string("simulator ") + name + ": quantiles must be finite and >= 0");
    require(k == 0 || q[k] >= q[k - 1], std::string("simulator ") + name + ": quantiles must be non-decreasing");
  }
}

// Never destroyed, like the outcome registry: a simulator holds boosters, which must not be
// freed after XGBoost's own statics at process exit.
Registry<const SimModel>& sim_registry() {
  static auto* r = new Registry<const SimModel>();
  return *r;
}

}  // namespace

// ---- layout and history: the mirror of src/sim/features.ts ----------------------------------

void SimLayout::finish() {
  require(state_dim >= 0 && state_dim <= (1 << 16), "simulator layout: stateDim must be in [0, 65536]");
  require(!action_sizes.empty() && action_sizes.size() <= 16, "simulator layout: 1 to 16 action dimensions");
  require(control.size() == action_sizes.size(), "simulator layout: one control value per action dimension");
  int width = 0;
  for (size_t j = 0; j < action_sizes.size(); ++j) {
    require(action_sizes[j] >= 1 && action_sizes[j] <= 4096, "simulator layout: action sizes must be in [1, 4096]");
    require(control[j] >= 0 && control[j] < action_sizes[j], "simulator layout: control value outside its dimension");
    width += action_sizes[j];
  }
  require(joint_count() <= 65536, "simulator layout: at most 65536 joint actions");
  require(rounds >= 1 && rounds <= 100000, "simulator layout: rounds must be in [1, 100000]");
  action_offset = state_dim;
  round_offset = action_offset + width;
  history_offset = round_offset + 1;
  cols = history_offset + history_width();
}

size_t SimLayout::joint_count() const { return saco::joint_count(action_sizes); }

int32_t SimLayout::joint(const int32_t* action) const { return joint_index(action_sizes, action); }

void sim_history_columns(const SimLayout& layout, const SimHistory& h, uint32_t t, float* out) {
  const size_t A = layout.action_sizes.size();
  out[0] = static_cast<float>(h.treated);
  out[1] = static_cast<float>(h.last_treated < 0 ? static_cast<double>(layout.rounds) : static_cast<double>(static_cast<int64_t>(t) - h.last_treated));
  for (size_t j = 0; j < A; ++j) out[2 + j] = h.prev.empty() ? -1.0f : static_cast<float>(h.prev[j]);
  out[2 + A] = static_cast<float>(h.reward_sum);
  out[3 + A] = static_cast<float>(h.cost_sum);
  out[4 + A] = static_cast<float>(h.reward_rounds);
}

void sim_design_row(const SimLayout& layout, const float* state, const int32_t* action, uint32_t t, const SimHistory& h, float* row) {
  std::copy(state, state + layout.state_dim, row);
  std::fill(row + layout.action_offset, row + layout.round_offset, 0.0f);
  int offset = layout.action_offset;
  for (size_t j = 0; j < layout.action_sizes.size(); ++j) {
    row[offset + action[j]] = 1.0f;
    offset += layout.action_sizes[j];
  }
  row[layout.round_offset] = static_cast<float>(static_cast<double>(t) / static_cast<double>(layout.rounds));
  sim_history_columns(layout, h, t, row + layout.history_offset);
}

void sim_history_advance(const SimLayout& layout, SimHistory& h, uint32_t t, const int32_t* action, double reward, double cost) {
  const size_t A = layout.action_sizes.size();
  bool treated = false;
  for (size_t j = 0; j < A; ++j) treated = treated || action[j] != layout.control[j];
  if (treated) {
    h.treated += 1;
    h.last_treated = t;
  }
  h.prev.assign(action, action + A);
  h.reward_sum += reward;
  h.cost_sum += cost;
  if (reward > 0) h.reward_rounds += 1;
}

SimHistory sim_history_from_columns(const SimLayout& layout, const float* c, uint32_t t) {
  const size_t A = layout.action_sizes.size();
  SimHistory h;
  h.treated = c[0];
  h.last_treated = c[0] > 0 && c[1] < static_cast<float>(layout.rounds) ? static_cast<int64_t>(t) - static_cast<int64_t>(c[1]) : -1;
  if (c[2] >= 0) {
    h.prev.resize(A);
    for (size_t j = 0; j < A; ++j) h.prev[j] = static_cast<int32_t>(c[2 + j]);
  }
  h.reward_sum = c[2 + A];
  h.cost_sum = c[3 + A];
  h.reward_rounds = c[4 + A];
  return h;
}

std::vector<float> sim_design_matrix(const SimLayout& layout, uint64_t users, uint32_t rounds, const float* states, const int32_t* actions,
                                     const float* rewards, const float* costs, const uint8_t* mask) {
  const size_t d = static_cast<size_t>(layout.state_dim), A = layout.action_sizes.size(), p = static_cast<size_t>(layout.cols);
  size_t real = 0;
  for (uint64_t c = 0; c < users * rounds; ++c) real += mask[c] != 0 ? 1 : 0;
  std::vector<float> x(real * p);
  size_t r = 0;
  for (uint64_t i = 0; i < users; ++i) {
    SimHistory h;
    for (uint32_t t = 0; t < rounds; ++t) {
      const uint64_t c = i * rounds + t;
      if (mask[c] == 0) {
        h.prev.clear();  // the next real round has no previous action (-1)
        continue;
      }
      sim_design_row(layout, states + c * d, actions + c * A, t, h, x.data() + r * p);
      sim_history_advance(layout, h, t, actions + c * A, rewards[c], costs[c]);
      ++r;
    }
  }
  return x;
}

// ---- the fitted simulator ---------------------------------------------------------------------

SimModel::SimModel(std::vector<std::shared_ptr<const OutcomeModel>> models, SimSpec spec, const std::vector<float>& check_rows)
    : models_(std::move(models)), spec_(std::move(spec)) {
  require(!models_.empty() && models_.size() <= 65536, "simulator: needs 1 to 65536 outcome models");
  SimLayout& L = spec_.layout;
  L.finish();
  require(spec_.arm_model.size() == L.joint_count(), "simulator: armModel needs one model index per joint action (" + std::to_string(L.joint_count()) + ")");
  for (int32_t m : spec_.arm_model) require(m >= 0 && static_cast<size_t>(m) < models_.size(), "simulator: armModel holds an index outside the models");
  const size_t d = static_cast<size_t>(L.state_dim);
  std::vector<int> role(d, 0);  // 0 static, 1 dynamic, 2 clock
  for (const auto& model : models_) {
    require(model != nullptr, "simulator: no outcome model");
    require(model->cols() == static_cast<uint64_t>(L.cols), "simulator: an outcome model reads " + std::to_string(model->cols()) + " columns, the layout has " + std::to_string(L.cols));
    require(model->has_reward() && model->has_cost(), "simulator: the outcome models need their reward and cost heads");
    require(spec_.dynamic.size() == model->next_count(), "simulator: " + std::to_string(spec_.dynamic.size()) + " dynamic features, an outcome model has " + std::to_string(model->next_count()) + " transition heads");
    for (size_t j = 0; j < spec_.dynamic.size(); ++j) {
      require(model->next_from()[j] == spec_.dynamic[j], "simulator: transition head " + std::to_string(j) + " reads column " + std::to_string(model->next_from()[j]) + ", not state " + std::to_string(spec_.dynamic[j]));
    }
  }
  for (size_t j = 0; j < spec_.dynamic.size(); ++j) {
    const int32_t s = spec_.dynamic[j];
    require(s >= 0 && static_cast<size_t>(s) < d && role[static_cast<size_t>(s)] == 0, "simulator: dynamic features must be distinct state indices");
    role[static_cast<size_t>(s)] = 1;
  }
  require(spec_.dynamic_min.size() == spec_.dynamic.size() && spec_.dynamic_max.size() == spec_.dynamic.size(), "simulator: one logged range per dynamic feature");
  for (size_t j = 0; j < spec_.dynamic.size(); ++j) {
    require(std::isfinite(spec_.dynamic_min[j]) && std::isfinite(spec_.dynamic_max[j]) && spec_.dynamic_min[j] <= spec_.dynamic_max[j], "simulator: a dynamic feature's range must be finite, min <= max");
  }
  for (int32_t s : spec_.clock) {
    require(s >= 0 && static_cast<size_t>(s) < d && role[static_cast<size_t>(s)] == 0, "simulator: clock features must be distinct state indices, not dynamic");
    role[static_cast<size_t>(s)] = 2;
  }
  require(spec_.clock_values.size() == static_cast<size_t>(L.rounds) * spec_.clock.size(), "simulator: clockValues needs rounds x clock values");
  for (float v : spec_.clock_values) require(std::isfinite(v), "simulator: clockValues must be finite");
  check_noise(spec_.reward_noise, "rewardNoise");
  check_noise(spec_.cost_noise, "costNoise");
  require(spec_.max_cost.size() == L.joint_count(), "simulator: maxCost needs one value per joint action (" + std::to_string(L.joint_count()) + ")");
  for (double c : spec_.max_cost) require(std::isfinite(c) && c >= 0, "simulator: maxCost must be finite and >= 0");
  require(spec_.same_hurdle.empty() || spec_.same_hurdle.size() == models_.size(), "simulator: sameHurdle needs one flag per outcome model");
  if (spec_.same_hurdle.empty()) spec_.same_hurdle.assign(models_.size(), 0);
  compile_and_check(check_rows);
}

namespace {

CompiledTrees compile_head(const OutcomeHead& head, uint64_t cols) { return compile_outcome_head(head, static_cast<int64_t>(cols), "simulator"); }

}  // namespace

void SimModel::compile_and_check(const std::vector<float>& check_rows) {
  const uint64_t p = static_cast<uint64_t>(spec_.layout.cols);
  for (const auto& model : models_) {
    const auto& heads = model->heads();
    Compiled c{compile_head(heads[OutcomeModel::kPReward], p), compile_head(heads[OutcomeModel::kEReward], p), compile_head(heads[OutcomeModel::kPCost], p),
               compile_head(heads[OutcomeModel::kECost], p), {}};
    for (size_t j = 0; j < model->next_count(); ++j) c.next.push_back(compile_head(heads[OutcomeModel::kFirstNext + j], p + 2));
    compiled_.push_back(std::move(c));
  }
  // the fast path against XGBoost (the reference) on the log's rows
  require(check_rows.size() % p == 0, "simulator: checkRows must hold rows of " + std::to_string(p) + " columns");
  const uint64_t n = check_rows.size() / p;
  if (n == 0) return;
  const size_t k = spec_.dynamic.size();
  std::vector<float> want(n), got(n), with_outcome(n * (p + 2)), next(n * k), delta(n * k);
  std::vector<float> reward(n), cost(n);
  for (uint64_t r = 0; r < n; ++r) {
    // outcomes that vary over the rows, so the transition heads' outcome splits are exercised
    reward[r] = static_cast<float>(r % 3) * 7.5f;
    cost[r] = static_cast<float>(r % 2) * 2.0f;
    std::copy_n(check_rows.data() + r * p, p, with_outcome.data() + r * (p + 2));
    with_outcome[r * (p + 2) + p] = reward[r];
    with_outcome[r * (p + 2) + p + 1] = cost[r];
  }
  auto close = [](float a, float b) { return std::fabs(a - b) <= 1e-5f * (1.0f + std::fabs(b)); };
  for (size_t m = 0; m < models_.size(); ++m) {
    for (int h = 0; h < 4; ++h) {
      float* outs_ref[4] = {nullptr, nullptr, nullptr, nullptr};
      float* outs_fast[4] = {nullptr, nullptr, nullptr, nullptr};
      outs_ref[h] = want.data();
      outs_fast[h] = got.data();
      // one hurdle for both: the cost's probability is the reward's
      if (h == OutcomeModel::kPCost && spec_.same_hurdle[m] != 0) std::swap(outs_ref[OutcomeModel::kPCost], outs_ref[OutcomeModel::kPReward]);
      models_[m]->predict(check_rows.data(), n, outs_ref[0], outs_ref[1], outs_ref[2], outs_ref[3], 1);
      predict(m, check_rows.data(), n, outs_fast[0], outs_fast[1], outs_fast[2], outs_fast[3]);
      for (uint64_t r = 0; r < n; ++r) {
        require(close(got[r], want[r]), "simulator: the compiled trees of " + models_[m]->heads()[static_cast<size_t>(h)].name + " (model " + std::to_string(m) + ") give " + std::to_string(got[r]) +
                                            " where XGBoost gives " + std::to_string(want[r]) + " (row " + std::to_string(r) + ")");
      }
    }
    if (k == 0) continue;
    models_[m]->predict_next(check_rows.data(), reward.data(), cost.data(), n, next.data(), 1);
    predict_delta(m, with_outcome.data(), n, delta.data());
    for (uint64_t r = 0; r < n; ++r) {
      for (size_t j = 0; j < k; ++j) {
        const float mine = check_rows[r * p + static_cast<uint64_t>(spec_.dynamic[j])] + delta[r * k + j];
        require(close(mine, next[r * k + j]), "simulator: the compiled transition head " + std::to_string(j) + " (model " + std::to_string(m) + ") disagrees with XGBoost");
      }
    }
  }
}

void SimModel::predict(size_t m, const float* rows, uint64_t n, float* p_reward, float* e_reward, float* p_cost, float* e_cost) const {
  const Compiled& c = compiled_[m];
  const uint64_t p = static_cast<uint64_t>(spec_.layout.cols);
  if (p_reward != nullptr) c.p_reward.predict(rows, n, p, p_reward);
  if (e_reward != nullptr) c.e_reward.predict(rows, n, p, e_reward);
  if (e_cost != nullptr) c.e_cost.predict(rows, n, p, e_cost);
  if (p_cost != nullptr) {
    if (spec_.same_hurdle[m] == 0) c.p_cost.predict(rows, n, p, p_cost);
    else if (p_reward != nullptr) std::copy_n(p_reward, n, p_cost);
    else c.p_reward.predict(rows, n, p, p_cost);
    models_[m]->zero_free_costs(rows, n, p, p_cost);
  }
}

void SimModel::predict_delta(size_t m, const float* rows, uint64_t n, float* delta) const {
  const Compiled& c = compiled_[m];
  const size_t k = c.next.size();
  const uint64_t w = static_cast<uint64_t>(spec_.layout.cols) + 2;
  std::vector<float> one(n);
  for (size_t j = 0; j < k; ++j) {
    c.next[j].predict(rows, n, w, one.data());
    for (uint64_t r = 0; r < n; ++r) delta[r * k + j] = one[r];
  }
}

int64_t sim_add(std::shared_ptr<const SimModel> sim) {
  if (!sim) throw std::invalid_argument("sim_add: no simulator");
  return sim_registry().add(std::move(sim));
}
std::shared_ptr<const SimModel> sim_get(int64_t id) { return sim_registry().get(id); }
bool sim_remove(int64_t id) { return sim_registry().remove(id); }
size_t sim_count() { return sim_registry().size(); }

// ---- SimEnvironment ---------------------------------------------------------------------------

// Users' states and histories, and the outcome parts predicted for them this round. The
// caches are `mutable`: a block is used by one thread at a time (native/rollout.cc), and
// respond(), step() and expected() of the same round share one prediction.
struct SimEnvironment::Block final : EnvBlock {
  std::vector<float> state;  // [n, d]
  std::vector<SimHistory> history;
  mutable uint32_t parts_round = kNoRound;
  mutable std::vector<int32_t> parts_joint;           // [n] joint action the parts are for; -1: none
  mutable std::vector<float> p_reward, e_reward, p_cost, e_cost;  // [n]; an amount only where its hurdle passed
  mutable std::vector<double> u;                                  // [n] the round's hurdle uniform
  mutable uint32_t all_round = kNoRound;
  mutable std::vector<float> all_reward, all_cost;    // [n, K] expected, every joint action
  mutable std::vector<float> rows, scratch, subset;
};

SimEnvironment::SimEnvironment(std::shared_ptr<const SimModel> sim, SimEnvConfig config) : sim_(std::move(sim)), config_(std::move(config)) {
  require(sim_ != nullptr, "simulator environment: no simulator");
  require(config_.seed <= 9007199254740991ull, "simulator environment: seed must be an integer in [0, 2^53)");
  require(config_.start_round < spec().layout.rounds, "simulator environment: startRound must be below the simulator's " + std::to_string(spec().layout.rounds) + " rounds");
  if (config_.expected_from_sy) {
    const SyConfig& c = *config_.expected_from_sy;
    validate_sy_config(c);
    require(static_cast<int>(c.features) + 3 == spec().layout.state_dim, "simulator environment: expectedFrom SY needs states (x[" + std::to_string(c.features) + "], engagement, fatigue, round_frac)");
    std::vector<int> sizes;
    for (const auto& dim : c.action_dims) sizes.push_back(static_cast<int>(dim.values.size()));
    require(sizes == spec().layout.action_sizes, "simulator environment: expectedFrom SY has other action dimensions than the simulator");
    sy_weights_ = draw_sy_weights(c);
  }
}

void SimEnvironment::validate_users(const RolloutUsers& users) const {
  const SimLayout& L = spec().layout;
  const size_t n = users.ids.size(), d = static_cast<size_t>(L.state_dim), w = d + static_cast<size_t>(L.history_width());
  require(n > 0 && (users.features.size() == n * d || users.features.size() == n * w),
          "the simulator needs each user's starting state: features must hold users x " + std::to_string(d) + " values (the state), or users x " + std::to_string(w) +
              " (the state, then the history columns at the start round)");
  for (double v : users.features) require(std::isfinite(v), "features must be finite");
  if (users.features.size() == n * w) {
    const size_t A = L.action_sizes.size();
    for (size_t i = 0; i < n; ++i) {
      const double* h = users.features.data() + i * w + d;
      const std::string who = "user " + std::to_string(users.ids[i]) + ": history ";
      require(h[0] >= 0 && h[0] <= config_.start_round && std::floor(h[0]) == h[0], who + "'treated' must be a count of earlier rounds");
      require(h[0] == 0 ? h[1] == L.rounds : (h[1] >= 1 && h[1] <= config_.start_round && std::floor(h[1]) == h[1]), who + "'since_treated' must be the rounds since the last treated one (the rounds when never treated)");
      const bool none = h[2] < 0;
      for (size_t j = 0; j < A; ++j) {
        require(none ? h[2 + j] == -1 : (h[2 + j] >= 0 && h[2 + j] < L.action_sizes[j] && std::floor(h[2 + j]) == h[2 + j]), who + "'prev' must be -1 on every dimension or one value index each");
      }
      require(h[4 + A] >= 0 && h[4 + A] <= config_.start_round, who + "'reward_rounds' must be a count of earlier rounds");
    }
  }
}

std::unique_ptr<EnvBlock> SimEnvironment::reset(const RolloutUsers& users, size_t begin, size_t end) const {
  const SimSpec& s = spec();
  const SimLayout& L = s.layout;
  const size_t n = end - begin, d = static_cast<size_t>(L.state_dim), w = d + static_cast<size_t>(L.history_width());
  const bool with_history = users.features.size() == users.ids.size() * w && w != d;
  const size_t stride = with_history ? w : d;
  // no states given (a policy's probe of the environment, e.g. the Oracle's validate): zeros
  const bool given = users.features.size() >= users.ids.size() * d;
  auto b = std::make_unique<Block>();
  b->ids.assign(users.ids.begin() + static_cast<std::ptrdiff_t>(begin), users.ids.begin() + static_cast<std::ptrdiff_t>(end));
  b->state.resize(n * d);
  b->history.resize(n);
  std::vector<float> columns(static_cast<size_t>(L.history_width()));
  for (size_t i = 0; i < n; ++i) {
    const double* f = given ? users.features.data() + (begin + i) * stride : nullptr;
    for (size_t j = 0; j < d; ++j) b->state[i * d + j] = f != nullptr ? static_cast<float>(f[j]) : 0.0f;
    // a clock feature is what the log held at the start round, whatever was given
    for (size_t j = 0; j < s.clock.size(); ++j) b->state[i * d + static_cast<size_t>(s.clock[j])] = s.clock_values[config_.start_round * s.clock.size() + j];
    if (with_history) {
      for (size_t j = 0; j < columns.size(); ++j) columns[j] = static_cast<float>(f[d + j]);
      b->history[i] = sim_history_from_columns(L, columns.data(), config_.start_round);
    }
  }
  return b;
}

void SimEnvironment::observe(const EnvBlock& block, uint32_t, float* states) const {
  const Block& b = static_cast<const Block&>(block);
  std::copy(b.state.begin(), b.state.end(), states);
}

double SimEnvironment::max_cost(const EnvBlock&, size_t, const int32_t* action) const {
  return spec().max_cost[static_cast<size_t>(spec().layout.joint(action))];
}

void SimEnvironment::outcome_parts(const Block& b, uint32_t t, const int32_t* actions) const {
  const SimLayout& L = spec().layout;
  const size_t n = b.size(), A = L.action_sizes.size(), d = static_cast<size_t>(L.state_dim), p = static_cast<size_t>(L.cols);
  const uint32_t round = config_.start_round + t;
  if (b.parts_round != t) {
    b.parts_round = t;
    b.parts_joint.assign(n, -1);
    b.p_reward.resize(n), b.e_reward.resize(n), b.p_cost.resize(n), b.e_cost.resize(n), b.u.resize(n);
  }
  // users whose parts are not yet known for their action this round
  std::vector<size_t> todo;
  for (size_t i = 0; i < n; ++i) {
    if (b.parts_joint[i] != L.joint(actions + i * A)) todo.push_back(i);
  }
  if (todo.empty()) return;
  // per outcome model, the rows whose action it answers: both hurdles' probabilities, then
  // each amount only where its hurdle is passed (the hurdle's uniform is drawn here already)
  std::vector<size_t> group, passed;
  for (size_t model = 0; model < sim_->model_count(); ++model) {
    group.clear();
    for (size_t i : todo) {
      if (sim_->model_of(L.joint(actions + i * A)) == model) group.push_back(i);
    }
    if (group.empty()) continue;
    const size_t m = group.size();
    b.rows.resize(m * p);
    b.scratch.resize(3 * m);
    b.subset.resize(m * p);
    for (size_t r = 0; r < m; ++r) {
      const size_t i = group[r];
      sim_design_row(L, b.state.data() + i * d, actions + i * A, round, b.history[i], b.rows.data() + r * p);
    }
    float* pr = b.scratch.data();
    float* pc = pr + m;
    float* amount = pc + m;
    sim_->predict(model, b.rows.data(), m, pr, nullptr, pc, nullptr);
    for (size_t r = 0; r < m; ++r) {
      const size_t i = group[r];
      b.u[i] = CounterStream(config_.seed, b.ids[i], round, kStreamSimOutcome).uniform();
      b.p_reward[i] = pr[r], b.p_cost[i] = pc[r], b.e_reward[i] = 0, b.e_cost[i] = 0;
      b.parts_joint[i] = L.joint(actions + i * A);
    }
    for (int which = 0; which < 2; ++which) {
      passed.clear();
      for (size_t r = 0; r < m; ++r) {
        if (b.u[group[r]] < (which == 0 ? pr[r] : pc[r])) passed.push_back(r);
      }
      if (passed.empty()) continue;
      for (size_t q = 0; q < passed.size(); ++q) std::copy_n(b.rows.data() + passed[q] * p, p, b.subset.data() + q * p);
      if (which == 0) sim_->predict(model, b.subset.data(), passed.size(), nullptr, amount, nullptr, nullptr);
      else sim_->predict(model, b.subset.data(), passed.size(), nullptr, nullptr, nullptr, amount);
      for (size_t q = 0; q < passed.size(); ++q) (which == 0 ? b.e_reward : b.e_cost)[group[passed[q]]] = amount[q];
    }
  }
}

// Reward and cost are rounded to float32: they are what a log would hold, and the history
// sums then equal src/sim/features.ts's sums over a Float32Array of the same outcomes.
void SimEnvironment::draw(const Block& b, uint32_t t, const int32_t* actions, double* reward, double* cost) const {
  const SimSpec& s = spec();
  const size_t A = s.layout.action_sizes.size();
  outcome_parts(b, t, actions);
  const uint32_t round = config_.start_round + t;
  for (size_t i = 0; i < b.size(); ++i) {
    CounterStream stream(config_.seed, b.ids[i], round, kStreamSimOutcome);
    const double u = stream.uniform(), u_reward = stream.uniform(), u_cost = stream.uniform();  // u == b.u[i]
    const double r = u < b.p_reward[i] ? b.e_reward[i] * noise(s.reward_noise, u_reward) : 0.0;
    const double cap = s.max_cost[static_cast<size_t>(s.layout.joint(actions + i * A))];
    const double c = u < b.p_cost[i] ? std::min(std::max(b.e_cost[i] * noise(s.cost_noise, u_cost), 0.0), cap) : 0.0;
    reward[i] = static_cast<float>(r);
    cost[i] = std::min(static_cast<double>(static_cast<float>(c)), cap);
  }
}

void SimEnvironment::respond(const EnvBlock& block, uint32_t t, const int32_t* actions, double* reward, double* cost) const {
  draw(static_cast<const Block&>(block), t, actions, reward, cost);
}

void SimEnvironment::step(EnvBlock& block, uint32_t t, const int32_t* actions, double* reward, double* cost) const {
  Block& b = static_cast<Block&>(block);
  const SimSpec& s = spec();
  const SimLayout& L = s.layout;
  const size_t n = b.size(), A = L.action_sizes.size(), d = static_cast<size_t>(L.state_dim), p = static_cast<size_t>(L.cols);
  const uint32_t round = config_.start_round + t;
  draw(b, t, actions, reward, cost);
  if (round + 1 < L.rounds) {
    const size_t k = s.dynamic.size();
    if (k > 0) {
      std::vector<size_t> group;
      std::vector<float> r, c, next;
      for (size_t model = 0; model < sim_->model_count(); ++model) {
        group.clear();
        for (size_t i = 0; i < n; ++i) {
          if (sim_->model_of(L.joint(actions + i * A)) == model) group.push_back(i);
        }
        if (group.empty()) continue;
        const size_t m = group.size();
        b.rows.resize(m * p);
        r.resize(m), c.resize(m), next.resize(m * k);
        for (size_t g = 0; g < m; ++g) {
          const size_t i = group[g];
          sim_design_row(L, b.state.data() + i * d, actions + i * A, round, b.history[i], b.rows.data() + g * p);
          r[g] = static_cast<float>(reward[i]);
          c[g] = static_cast<float>(cost[i]);
        }
        const OutcomeModel& om = sim_->model(model);
        b.subset.resize(m * (p + 2));
        for (size_t g = 0; g < m; ++g) {
          std::copy_n(b.rows.data() + g * p, p, b.subset.data() + g * (p + 2));
          b.subset[g * (p + 2) + p] = r[g];
          b.subset[g * (p + 2) + p + 1] = c[g];
        }
        sim_->predict_delta(model, b.subset.data(), m, next.data());
        for (size_t g = 0; g < m; ++g) {
          for (size_t j = 0; j < k; ++j) next[g * k + j] += b.state[group[g] * d + static_cast<size_t>(s.dynamic[j])];
        }
        for (size_t g = 0; g < m; ++g) {
          const size_t i = group[g];
          CounterStream stream(config_.seed, b.ids[i], round, kStreamSimState);
          for (size_t j = 0; j < k; ++j) {
            const double sd = om.heads()[OutcomeModel::kFirstNext + j].residual_sd;
            const double v = next[g * k + j] + (sd > 0 ? sd * stream.normal() : 0.0);
            b.state[i * d + static_cast<size_t>(s.dynamic[j])] = static_cast<float>(std::min<double>(std::max<double>(v, s.dynamic_min[j]), s.dynamic_max[j]));
          }
        }
      }
    }
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < s.clock.size(); ++j) b.state[i * d + static_cast<size_t>(s.clock[j])] = s.clock_values[(round + 1) * s.clock.size() + j];
    }
  }
  for (size_t i = 0; i < n; ++i) sim_history_advance(L, b.history[i], round, actions + i * A, reward[i], cost[i]);
  b.parts_round = kNoRound;
  b.all_round = kNoRound;
}

void SimEnvironment::design_rows(const EnvBlock& block, uint32_t t, const int32_t* actions, float* rows) const {
  const Block& b = static_cast<const Block&>(block);
  const SimLayout& L = spec().layout;
  const size_t A = L.action_sizes.size(), d = static_cast<size_t>(L.state_dim), p = static_cast<size_t>(L.cols);
  for (size_t i = 0; i < b.size(); ++i) sim_design_row(L, b.state.data() + i * d, actions + i * A, config_.start_round + t, b.history[i], rows + i * p);
}

bool SimEnvironment::expected(const EnvBlock& block, size_t i, uint32_t t, const int32_t* action, double& reward, double& cost) const {
  const Block& b = static_cast<const Block&>(block);
  const SimLayout& L = spec().layout;
  const size_t d = static_cast<size_t>(L.state_dim);
  if (config_.expected_from_sy) {
    const SyConfig& c = *config_.expected_from_sy;
    const float* s = b.state.data() + i * d;
    std::vector<double> x(s, s + c.features);
    const SyUser u = sy_user_constants(sy_weights_, x.data(), c.features, c.alpha_shift, c.basket_scale, c.basket_spread);
    const double value = sy_coupon_value(c, action, u.basket);
    const double prob = sy_purchase_probability(c, u, s[c.features], s[c.features + 1], value);
    reward = prob * u.basket;
    cost = prob * value;
    return true;
  }
  const size_t K = L.joint_count(), A = L.action_sizes.size(), n = b.size(), p = static_cast<size_t>(L.cols);
  if (b.all_round != t) {
    // every joint action of every user of the block: one prediction per action and head
    const uint32_t round = config_.start_round + t;
    std::vector<int32_t> joint(A);
    std::vector<float> pr(n), er(n), pc(n), ec(n);
    b.rows.resize(n * p);
    b.all_reward.resize(n * K);
    b.all_cost.resize(n * K);
    for (size_t k = 0; k < K; ++k) {
      joint_decode(L.action_sizes, k, joint.data());
      for (size_t u = 0; u < n; ++u) sim_design_row(L, b.state.data() + u * d, joint.data(), round, b.history[u], b.rows.data() + u * p);
      sim_->predict(sim_->model_of(static_cast<int32_t>(k)), b.rows.data(), n, pr.data(), er.data(), pc.data(), ec.data());
      for (size_t u = 0; u < n; ++u) {
        b.all_reward[u * K + k] = pr[u] * er[u];
        b.all_cost[u * K + k] = pc[u] * ec[u];
      }
    }
    b.all_round = t;
  }
  const size_t k = static_cast<size_t>(L.joint(action));
  reward = b.all_reward[i * K + k];
  cost = b.all_cost[i * K + k];
  return true;
}

SimTrace sim_trace(const SimEnvironment& env, const RolloutUsers& users, uint32_t rounds) {
  env.validate_users(users);
  require(rounds >= 1 && rounds <= env.rounds(), "rounds must be in [1, " + std::to_string(env.rounds()) + "]");
  const size_t n = users.ids.size(), d = static_cast<size_t>(env.state_dim());
  const std::vector<int> sizes = env.action_sizes();
  const size_t A = sizes.size();
  const size_t p = static_cast<size_t>(env.layout().cols);
  SimTrace out;
  out.states.resize(n * rounds * d);
  out.rows.resize(n * rounds * p);
  out.actions.resize(n * rounds * A);
  out.rewards.resize(n * rounds);
  out.costs.resize(n * rounds);
  auto block = env.reset(users, 0, n);
  std::vector<float> states(n * d), rows(n * p);
  std::vector<int32_t> actions(n * A);
  std::vector<double> reward(n), cost(n);
  for (uint32_t t = 0; t < rounds; ++t) {
    env.observe(*block, t, states.data());
    for (size_t i = 0; i < n; ++i) {
      CounterStream logger(env.seed(), users.ids[i], t, kStreamLogger);
      for (size_t j = 0; j < A; ++j) {
        const size_t K = static_cast<size_t>(sizes[j]);
        actions[i * A + j] = static_cast<int32_t>(std::min(static_cast<size_t>(std::floor(logger.uniform() * static_cast<double>(K))), K - 1));
      }
    }
    env.design_rows(*block, t, actions.data(), rows.data());
    env.step(*block, t, actions.data(), reward.data(), cost.data());
    for (size_t i = 0; i < n; ++i) {
      const size_t c = i * rounds + t;
      std::copy_n(states.data() + i * d, d, out.states.data() + c * d);
      std::copy_n(rows.data() + i * p, p, out.rows.data() + c * p);
      std::copy_n(actions.data() + i * A, A, out.actions.data() + c * A);
      out.rewards[c] = static_cast<float>(reward[i]);
      out.costs[c] = static_cast<float>(cost[i]);
    }
  }
  return out;
}

}  // namespace saco
