#include "js_sim.h"

#include <cmath>
#include <string>
#include <vector>

#include "args.h"
#include "js_outcome.h"
#include "js_synth.h"

namespace saco::napi {
namespace {

std::vector<int32_t> read_ints(const Napi::Value& v, const std::string& name) {
  std::vector<int32_t> out;
  for (double x : read_number_array(v, name)) {
    if (std::floor(x) != x || std::fabs(x) > 2147483647.0) throw error(v.Env(), name + " must hold integers");
    out.push_back(static_cast<int32_t>(x));
  }
  return out;
}

std::vector<float> read_float_list(const Napi::Value& v, const std::string& name) {
  if (v.IsTypedArray()) return copy_typed<float, napi_float32_array>(v, name);
  std::vector<float> out;
  for (double x : read_number_array(v, name)) out.push_back(static_cast<float>(x));
  return out;
}

// layout: { stateDim, actionSizes, control, rounds } (src/sim/features.ts FeatureLayout)
SimLayout read_layout(const Napi::Value& v) {
  Napi::Object o = read_object(v, "layout");
  SimLayout L;
  L.state_dim = static_cast<int>(read_count(o, "stateDim", 0, 65536, "layout"));
  for (int32_t k : read_ints(o.Get("actionSizes"), "layout.actionSizes")) L.action_sizes.push_back(k);
  L.control = read_ints(o.Get("control"), "layout.control");
  L.rounds = static_cast<uint32_t>(read_count(o, "rounds", 0, 100000, "layout"));
  try {
    L.finish();
  } catch (const std::exception& e) {
    throw error_from(v.Env(), e);
  }
  return L;
}

// simCreate({ outcomes: id[], armModel, layout, dynamic, dynamicMin, dynamicMax, clock, clockValues, rewardNoise, costNoise, maxCost,
//   sameHurdle?: number[] (1: P(c≠0) is P(r≠0) for that model), checkRows?: Float32Array [m, cols] design rows
//   on which the compiled trees must equal XGBoost }) -> id
Napi::Value JS_simCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) throw error(env, "simCreate(spec) expects an object");
  Napi::Object o = read_object(info[0], "spec");
  Napi::Value ids = o.Get("outcomes");
  if (!ids.IsArray() || ids.As<Napi::Array>().Length() == 0) throw error(env, "spec.outcomes must be a non-empty array of outcome model ids");
  std::vector<std::shared_ptr<const OutcomeModel>> models;
  for (uint32_t m = 0; m < ids.As<Napi::Array>().Length(); ++m) models.push_back(outcome_from(ids.As<Napi::Array>().Get(m)));
  SimSpec s;
  s.arm_model = read_ints(o.Get("armModel"), "spec.armModel");
  s.layout = read_layout(o.Get("layout"));
  s.dynamic = read_ints(o.Get("dynamic"), "spec.dynamic");
  s.dynamic_min = read_float_list(o.Get("dynamicMin"), "spec.dynamicMin");
  s.dynamic_max = read_float_list(o.Get("dynamicMax"), "spec.dynamicMax");
  s.clock = read_ints(o.Get("clock"), "spec.clock");
  s.clock_values = read_float_list(o.Get("clockValues"), "spec.clockValues");
  s.reward_noise = read_number_array(o.Get("rewardNoise"), "spec.rewardNoise");
  s.cost_noise = read_number_array(o.Get("costNoise"), "spec.costNoise");
  s.max_cost = read_number_array(o.Get("maxCost"), "spec.maxCost");
  if (!o.Get("sameHurdle").IsUndefined()) {
    for (int32_t v : read_ints(o.Get("sameHurdle"), "spec.sameHurdle")) s.same_hurdle.push_back(v != 0 ? 1 : 0);
  }
  std::vector<float> check;
  if (!o.Get("checkRows").IsUndefined()) check = copy_typed<float, napi_float32_array>(o.Get("checkRows"), "spec.checkRows");
  try {
    return Napi::Number::New(env, static_cast<double>(sim_add(std::make_shared<const SimModel>(std::move(models), std::move(s), check))));
  } catch (const std::exception& e) {
    throw error_from(env, e);
  }
}

Napi::Value JS_simDispose(const Napi::CallbackInfo& info) {
  if (info.Length() != 1) throw error(info.Env(), "simDispose(id) expects an id");
  return Napi::Boolean::New(info.Env(), sim_remove(read_id(info[0], "simulator id")));
}

Napi::Value JS_simCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(sim_count())); }

struct DesignBaton {
  SimLayout layout;
  uint64_t users = 0;
  uint32_t rounds = 0;
  std::vector<float> states, rewards, costs;
  std::vector<int32_t> actions;
  std::vector<uint8_t> mask;
  std::vector<float> x;
};

// simDesign({ layout, users, rounds, states, actions, rewards, costs, mask }) -> Promise<Float32Array [real cells, cols]>
Napi::Value JS_simDesign(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) throw error(env, "simDesign(spec) expects an object");
  Napi::Object o = read_object(info[0], "spec");
  auto b = std::make_unique<DesignBaton>();
  b->layout = read_layout(o.Get("layout"));
  b->users = read_count(o, "users", 0, 1e8, "spec");
  b->rounds = static_cast<uint32_t>(read_count(o, "rounds", 0, 100000, "spec"));
  const uint64_t cells = b->users * b->rounds;
  const size_t d = static_cast<size_t>(b->layout.state_dim), A = b->layout.action_sizes.size();
  b->states = copy_typed<float, napi_float32_array>(o.Get("states"), "spec.states");
  b->actions = copy_typed<int32_t, napi_int32_array>(o.Get("actions"), "spec.actions");
  b->rewards = copy_typed<float, napi_float32_array>(o.Get("rewards"), "spec.rewards");
  b->costs = copy_typed<float, napi_float32_array>(o.Get("costs"), "spec.costs");
  b->mask = copy_typed<uint8_t, napi_uint8_array>(o.Get("mask"), "spec.mask");
  if (b->states.size() != cells * d || b->actions.size() != cells * A || b->rewards.size() != cells || b->costs.size() != cells || b->mask.size() != cells) {
    throw error(env, "spec: states [users, rounds, stateDim], actions [users, rounds, A], rewards, costs and mask [users, rounds] must match users and rounds");
  }
  for (uint64_t c = 0; c < cells; ++c) {
    for (size_t j = 0; j < A; ++j) {
      const int32_t k = b->actions[c * A + j];
      if (b->mask[c] != 0 && (k < 0 || k >= b->layout.action_sizes[j])) throw error(env, "spec.actions: cell " + std::to_string(c) + " holds an index outside its dimension");
    }
  }
  return Task<DesignBaton>::Queue(
      env, std::move(b),
      [](DesignBaton& db) {
        db.x = sim_design_matrix(db.layout, db.users, db.rounds, db.states.data(), db.actions.data(), db.rewards.data(), db.costs.data(), db.mask.data());
      },
      [](Napi::Env e, DesignBaton& db) -> Napi::Value { return to_float32(e, std::move(db.x)); });
}

struct TraceBaton {
  std::shared_ptr<const SimEnvironment> env;
  RolloutUsers users;
  uint32_t rounds = 0;
  SimTrace trace;
};

// simTrace(env: { kind: 'sim', simulator, seed?, startRound? }, userIds, features, rounds) -> Promise<{ states, rows, actions, rewards, costs }>
Napi::Value JS_simTrace(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4) throw error(env, "simTrace(env, userIds, features, rounds) expects four arguments");
  auto b = std::make_unique<TraceBaton>();
  b->env = sim_environment_from(read_object(info[0], "env"));
  b->users.ids = copy_typed<uint32_t, napi_uint32_array>(info[1], "userIds");
  b->users.features = copy_typed<double, napi_float64_array>(info[2], "features");
  if (!info[3].IsNumber()) throw error(env, "rounds must be a number");
  const double rounds = info[3].As<Napi::Number>().DoubleValue();
  if (!(rounds >= 1 && rounds <= b->env->rounds()) || std::floor(rounds) != rounds) throw error(env, "rounds must be an integer in [1, " + std::to_string(b->env->rounds()) + "]");
  b->rounds = static_cast<uint32_t>(rounds);
  try {
    b->env->validate_users(b->users);
  } catch (const std::exception& e) {
    throw error_from(env, e);
  }
  return Task<TraceBaton>::Queue(
      env, std::move(b), [](TraceBaton& tb) { tb.trace = sim_trace(*tb.env, tb.users, tb.rounds); },
      [](Napi::Env e, TraceBaton& tb) -> Napi::Value {
        Napi::Object out = Napi::Object::New(e);
        out.Set("states", to_float32(e, std::move(tb.trace.states)));
        out.Set("rows", to_float32(e, std::move(tb.trace.rows)));
        out.Set("actions", to_int32(e, std::move(tb.trace.actions)));
        out.Set("rewards", to_float32(e, std::move(tb.trace.rewards)));
        out.Set("costs", to_float32(e, std::move(tb.trace.costs)));
        return out;
      });
}

}  // namespace

std::shared_ptr<const SimEnvironment> sim_environment_from(const Napi::Object& o) {
  Napi::Env env = o.Env();
  const int64_t id = read_id(o.Get("simulator"), "spec.env.simulator");
  std::shared_ptr<const SimModel> sim = sim_get(id);
  if (!sim) throw error(env, "simulator " + std::to_string(id) + " does not exist (disposed or never created)", kStateCode);
  SimEnvConfig config;
  Napi::Value seed = o.Get("seed");
  if (!seed.IsUndefined()) config.seed = read_seed(seed, "spec.env.seed");
  config.start_round = static_cast<uint32_t>(read_count(o, "startRound", 0, 100000, "spec.env"));
  Napi::Value from = o.Get("expectedFrom");
  try {
    if (!from.IsUndefined()) config.expected_from_sy = std::make_shared<const SyConfig>(read_sy_config(read_object(from, "spec.env.expectedFrom")));
    return std::make_shared<const SimEnvironment>(std::move(sim), std::move(config));
  } catch (const std::invalid_argument& e) {
    throw error(env, e.what());
  }
}

void init_sim(Napi::Env env, Napi::Object exports) {
  exports.Set("simCreate", Napi::Function::New(env, JS_simCreate));
  exports.Set("simDispose", Napi::Function::New(env, JS_simDispose));
  exports.Set("simCount", Napi::Function::New(env, JS_simCount));
  exports.Set("simDesign", Napi::Function::New(env, JS_simDesign));
  exports.Set("simTrace", Napi::Function::New(env, JS_simTrace));
}

}  // namespace saco::napi
