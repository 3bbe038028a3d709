#include "js_rollout.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>

#include "args.h"
#include "dual.h"
#include "env_sy.h"
#include "js_forest.h"
#include "js_model.h"
#include "js_outcome.h"
#include "js_sim.h"
#include "policy_registry.h"
#include "policy_scored.h"
#include "rollout.h"
#include "js_synth.h"

namespace saco::napi {
namespace {

struct RolloutBaton {
  RolloutSpec spec;
  RolloutUsers users;
  SearchSpec search;
  RolloutResult result;
  SearchResult searched;
  std::optional<Napi::ThreadSafeFunction> progress;
  std::string out_of_memory;  // set instead of a result: rejected with kOutOfMemoryCode
};

// A rollout or search that does not fit in memory: its own code, and the message says how
// many users fit (rollout.h OutOfMemory).
constexpr const char* kOutOfMemoryCode = "NATIVE_OUT_OF_MEMORY";

void refuse_if_out_of_memory(Napi::Env env, const RolloutBaton& b) {
  if (!b.out_of_memory.empty()) throw error(env, b.out_of_memory, kOutOfMemoryCode);
}

// spec.bandit: { arms: [{ count, meanReward, meanCost, varReward, varCost, cov }], weight?, seed? }
std::shared_ptr<const BanditPrior> read_bandit_prior(const Napi::Value& value) {
  Napi::Object o = read_object(value, "spec.bandit");
  auto prior = std::make_shared<BanditPrior>();
  Napi::Value arms = o.Get("arms");
  if (!arms.IsArray()) throw error(value.Env(), "spec.bandit.arms must be an array");
  Napi::Array a = arms.As<Napi::Array>();
  for (uint32_t k = 0; k < a.Length(); ++k) {
    const std::string where = "spec.bandit.arms[" + std::to_string(k) + "]";
    Napi::Object arm = read_object(a.Get(k), where);
    BanditArm b{read_number(arm, "count", 0, where), read_number(arm, "meanReward", 0, where), read_number(arm, "meanCost", 0, where),
                read_number(arm, "varReward", 0, where), read_number(arm, "varCost", 0, where), read_number(arm, "cov", 0, where)};
    if (!(b.count >= 0) || !(b.var_reward >= 0) || !(b.var_cost >= 0)) throw error(value.Env(), where + ": count and variances must be >= 0");
    prior->arms.push_back(b);
  }
  Napi::Value weight = o.Get("weight");
  if (!weight.IsUndefined()) {
    if (!weight.IsNumber()) throw error(value.Env(), "spec.bandit.weight must be a number");
    prior->weight = weight.As<Napi::Number>().DoubleValue();
  }
  if (!(prior->weight > 0)) throw error(value.Env(), "spec.bandit.weight must be > 0 (Infinity: trust the log fully)");
  Napi::Value seed = o.Get("seed");
  if (!seed.IsUndefined()) prior->seed = read_seed(seed, "spec.bandit.seed");
  return prior;
}

// A list of integer indices in [0, 2^31).
std::vector<int32_t> read_indices(const Napi::Value& v, const std::string& name) {
  std::vector<int32_t> out;
  for (double x : read_number_array(v, name)) {
    if (!(x >= 0 && x < 2147483648.0) || std::floor(x) != x) throw error(v.Env(), name + " must hold integers >= 0");
    out.push_back(static_cast<int32_t>(x));
  }
  return out;
}

// spec.scored.correction: { K, control, columns, mean, scale, upliftScale?: [number, number], reward, cost } (src/policy/dfcl.ts
// DfclCorrection); its sizes are checked here, its fit to the model's layout by the policy.
ScoredCorrection read_correction(const Napi::Value& value) {
  const std::string where = "spec.scored.correction";
  Napi::Object o = read_object(value, where);
  Napi::Env env = value.Env();
  ScoredCorrection c;
  c.K = static_cast<size_t>(read_count(o, "K", 0, 65536, where));
  c.control = static_cast<size_t>(read_count(o, "control", 0, 65535, where));
  if (c.K < 1 || c.control >= c.K) throw error(env, where + ": K must be >= 1 and control in [0, K)");
  c.columns = read_indices(o.Get("columns"), where + ".columns");
  c.mean = read_number_array(o.Get("mean"), where + ".mean");
  c.scale = read_number_array(o.Get("scale"), where + ".scale");
  if (c.mean.size() != c.columns.size()) throw error(env, where + ".mean must hold one number per column");
  if (c.scale.size() != c.columns.size()) throw error(env, where + ".scale must hold one number per column");
  for (double x : c.scale) {
    if (x == 0) throw error(env, where + ".scale must hold non-zero numbers");
  }
  Napi::Value us = o.Get("upliftScale");
  if (!us.IsUndefined()) {
    const std::vector<double> u = read_number_array(us, where + ".upliftScale");
    if (u.size() != 2 || u[0] == 0 || u[1] == 0) throw error(env, where + ".upliftScale must hold two non-zero numbers (reward, cost)");
    c.uplift = true;
    c.uplift_scale[0] = u[0];
    c.uplift_scale[1] = u[1];
  }
  const size_t n = c.K * c.width();
  c.reward = read_number_array(o.Get("reward"), where + ".reward");
  c.cost = read_number_array(o.Get("cost"), where + ".cost");
  if (c.reward.size() != n) throw error(env, where + ".reward must hold K * Q = " + std::to_string(n) + " numbers (Q = 1 + columns + 2 with upliftScale)");
  if (c.cost.size() != n) throw error(env, where + ".cost must hold K * Q = " + std::to_string(n) + " numbers (Q = 1 + columns + 2 with upliftScale)");
  return c;
}

// spec.scored: { outcome: id | id[], armModel?: number[] (with ids: one model index per joint action), layout: { stateDim, actionSizes, control, rounds }, envAction?: number[][], correction?: see read_correction }
std::shared_ptr<const ScoredSpec> read_scored(const Napi::Value& value) {
  Napi::Object o = read_object(value, "spec.scored");
  auto s = std::make_shared<ScoredSpec>();
  Napi::Value ids = o.Get("outcome");
  if (ids.IsArray()) {
    Napi::Array a = ids.As<Napi::Array>();
    if (a.Length() == 0) throw error(value.Env(), "spec.scored.outcome must be an outcome model id or a non-empty array of them");
    for (uint32_t m = 0; m < a.Length(); ++m) s->outcomes.push_back(outcome_from(a.Get(m)));
    if (o.Get("armModel").IsUndefined()) throw error(value.Env(), "spec.scored.armModel must give the model of each joint action when spec.scored.outcome is an array");
    s->arm_model = read_indices(o.Get("armModel"), "spec.scored.armModel");
  } else {
    s->outcomes.push_back(outcome_from(ids));
    if (!o.Get("armModel").IsUndefined()) throw error(value.Env(), "spec.scored.armModel goes with an array of outcome model ids");
  }
  Napi::Object lo = read_object(o.Get("layout"), "spec.scored.layout");
  SimLayout& L = s->layout;
  L.state_dim = static_cast<int>(read_count(lo, "stateDim", 0, 65536, "spec.scored.layout"));
  for (int32_t k : read_indices(lo.Get("actionSizes"), "spec.scored.layout.actionSizes")) L.action_sizes.push_back(k);
  L.control = read_indices(lo.Get("control"), "spec.scored.layout.control");
  L.rounds = static_cast<uint32_t>(read_count(lo, "rounds", 0, 100000, "spec.scored.layout"));
  L.finish();
  Napi::Value ea = o.Get("envAction");
  if (!ea.IsUndefined()) {
    if (!ea.IsArray() || ea.As<Napi::Array>().Length() != L.action_sizes.size()) throw error(value.Env(), "spec.scored.envAction must hold one list per action dimension");
    Napi::Array a = ea.As<Napi::Array>();
    for (uint32_t j = 0; j < a.Length(); ++j) {
      s->env_action.push_back(read_indices(a.Get(j), "spec.scored.envAction[" + std::to_string(j) + "]"));
      if (s->env_action.back().size() != static_cast<size_t>(L.action_sizes[j])) throw error(value.Env(), "spec.scored.envAction[" + std::to_string(j) + "] must hold one index per value");
    }
  }
  Napi::Value cv = o.Get("correction");
  if (!cv.IsUndefined() && !cv.IsNull()) s->correction = read_correction(cv);
  return s;
}

// spec.fixedArm: { arm: number[], keep, seed? }
std::shared_ptr<const FixedArmSpec> read_fixed_arm(const Napi::Value& value) {
  Napi::Object o = read_object(value, "spec.fixedArm");
  auto f = std::make_shared<FixedArmSpec>();
  f->arm = read_indices(o.Get("arm"), "spec.fixedArm.arm");
  f->keep = read_number(o, "keep", 1, "spec.fixedArm");
  if (!(f->keep >= 0 && f->keep <= 1)) throw error(value.Env(), "spec.fixedArm.keep must be in [0, 1]");
  Napi::Value seed = o.Get("seed");
  if (!seed.IsUndefined()) f->seed = read_seed(seed, "spec.fixedArm.seed");
  return f;
}

// spec: { env: SyConfig | { kind: 'sim', simulator, seed?, startRound?, expectedFrom? }, rounds, budget, policy, lambda, model?, forest?, bandit?, scored?, fixedArm?, userIds, features?, recordPlan?, recordDetails?, threads?,
//         sharedPrefix?, waveUsers?, memoryLimit?, optimistic? }
std::unique_ptr<RolloutBaton> read_rollout(const Napi::Value& value) {
  Napi::Env env = value.Env();
  Napi::Object o = read_object(value, "spec");
  auto b = std::make_unique<RolloutBaton>();
  RolloutSpec& spec = b->spec;
  try {
    // spec.env: an SyConfig (kind 'sy' or absent), or the learned simulator (kind 'sim', js_sim.cc)
    Napi::Object eo = read_object(o.Get("env"), "spec.env");
    const std::string kind = read_string(eo, "kind", "sy", "spec.env");
    if (kind == "sim") spec.env = sim_environment_from(eo);
    else if (kind == "sy") spec.env = std::make_shared<SyEnvironment>(read_sy_config(eo));
    else throw error(env, "spec.env.kind must be 'sy' or 'sim'");
  } catch (const std::invalid_argument& e) {
    throw error(env, e.what());
  }
  spec.rounds = static_cast<uint32_t>(read_count(o, "rounds", spec.env->rounds(), 1e5, "spec"));
  Napi::Value bv = o.Get("budget");
  if (!bv.IsUndefined()) {
    if (!bv.IsNumber()) throw error(env, "spec.budget must be a number");
    spec.budget = bv.As<Napi::Number>().DoubleValue();
    if (std::isnan(spec.budget) || spec.budget <= 0) throw error(env, "spec.budget must be > 0 (Infinity: no budget)");
  }
  spec.lambda = read_number(o, "lambda", 0, "spec");
  spec.threads = static_cast<uint32_t>(read_count(o, "threads", 0, 1024, "spec"));
  spec.record_plan = read_bool(o, "recordPlan", false, "spec");
  spec.record_details = read_bool(o, "recordDetails", false, "spec");
  spec.wave_users = static_cast<uint32_t>(read_count(o, "waveUsers", kDefaultWaveUsers, 4294967295.0, "spec"));
  spec.memory_limit = read_count(o, "memoryLimit", 0, 9007199254740991.0, "spec");
  spec.optimistic = read_bool(o, "optimistic", true, "spec");
  PolicyArgs args;
  args.shared_prefix = read_bool(o, "sharedPrefix", true, "spec");
  try {
    const PolicyEntry entry = find_policy(read_string(o, "policy", "", "spec"));
    if (entry.needs_model) args.model = model_from(o.Get("model"));
    if (!o.Get("forest").IsUndefined()) args.forest = forest_from(o.Get("forest"));
    if (!o.Get("bandit").IsUndefined()) args.bandit = read_bandit_prior(o.Get("bandit"));
    if (!o.Get("scored").IsUndefined()) args.scored = read_scored(o.Get("scored"));
    if (!o.Get("fixedArm").IsUndefined()) args.fixed_arm = read_fixed_arm(o.Get("fixedArm"));
    spec.policy = entry.make(args);
  } catch (const std::invalid_argument& e) {
    throw error(env, std::string("spec.policy: ") + e.what());
  }
  b->users.ids = copy_typed<uint32_t, napi_uint32_array>(o.Get("userIds"), "spec.userIds");
  Napi::Value fv = o.Get("features");
  if (!fv.IsUndefined() && !fv.IsNull()) b->users.features = copy_typed<double, napi_float64_array>(fv, "spec.features");
  try {
    validate_rollout(spec, b->users);
  } catch (const std::exception& e) {
    throw error_from(env, e);
  }
  return b;
}

Napi::Uint8Array to_uint8(Napi::Env env, const std::vector<uint8_t>& values) {
  Napi::Uint8Array out = Napi::Uint8Array::New(env, values.size());
  std::copy(values.begin(), values.end(), out.Data());
  return out;
}

Napi::Object rollout_to_js(Napi::Env env, RolloutResult& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("revenue", r.revenue);
  out.Set("cost", r.cost);
  out.Set("coupons", static_cast<double>(r.coupons));
  out.Set("blocked", static_cast<double>(r.blocked));
  out.Set("revenueByRound", to_float64(env, std::move(r.revenue_by_round)));
  out.Set("costByRound", to_float64(env, std::move(r.cost_by_round)));
  if (!r.plan.empty()) out.Set("plan", to_int32(env, std::move(r.plan)));
  PlanDetails& d = r.details;
  if (!d.withheld.empty()) {
    Napi::Object details = Napi::Object::New(env);
    details.Set("probability", to_float64(env, std::move(d.probability)));
    details.Set("expectedRevenue", to_float64(env, std::move(d.expected_reward)));
    details.Set("expectedCost", to_float64(env, std::move(d.expected_cost)));
    details.Set("withheld", to_uint8(env, d.withheld));
    out.Set("details", details);
  }
  return out;
}

// rollout(spec) -> Promise<{ revenue, cost, coupons, blocked, revenueByRound, costByRound, plan?, details? }>
Napi::Value JS_rollout(const Napi::CallbackInfo& info) {
  if (info.Length() != 1) throw error(info.Env(), "rollout(spec) expects an object");
  return Task<RolloutBaton>::Queue(
      info.Env(), read_rollout(info[0]),
      [](RolloutBaton& b) {
        try {
          b.result = rollout(b.spec, b.users);
        } catch (const OutOfMemory& e) {
          b.out_of_memory = e.what();
        }
      },
      [](Napi::Env env, RolloutBaton& b) -> Napi::Value {
        refuse_if_out_of_memory(env, b);
        return rollout_to_js(env, b.result);
      });
}

void run_search(RolloutBaton& b) {
  if (b.progress) {
    Napi::ThreadSafeFunction& tsfn = *b.progress;
    b.search.on_probe = [&tsfn](const Probe& p, int rollouts) {
      tsfn.NonBlockingCall([p, rollouts](Napi::Env env, Napi::Function fn) {
        if (static_cast<napi_env>(env) == nullptr) return;  // the environment is gone
        try {
          Napi::Object o = Napi::Object::New(env);
          o.Set("lambda", p.lambda);
          o.Set("revenue", p.revenue);
          o.Set("cost", p.cost);
          o.Set("rollouts", rollouts);
          fn.Call({o});
        } catch (...) {
          // a throwing progress callback must not stop the search
        }
      });
    };
  }
  try {
    b.searched = search_lambda(b.spec, b.users, b.search);
  } catch (const OutOfMemory& e) {
    b.out_of_memory = e.what();
  } catch (...) {
    if (b.progress) b.progress->Release();
    throw;
  }
  if (b.progress) b.progress->Release();
}

Napi::Value search_to_js(Napi::Env env, RolloutBaton& b) {
  refuse_if_out_of_memory(env, b);
  SearchResult& r = b.searched;
  Napi::Object out = Napi::Object::New(env);
  out.Set("lambda", r.lambda);
  out.Set("plan", rollout_to_js(env, r.plan));
  out.Set("rollouts", r.rollouts);
  out.Set("sampleRollouts", r.sample_rollouts);
  out.Set("sampleUsers", static_cast<double>(r.sample_users));
  out.Set("feasible", r.feasible);
  out.Set("budgetNotBinding", r.budget_not_binding);
  out.Set("needsMoreThanLambdaMax", r.needs_more_than_lambda_max);
  Napi::Array trace = Napi::Array::New(env, r.trace.size());
  for (size_t i = 0; i < r.trace.size(); ++i) {
    Napi::Object p = Napi::Object::New(env);
    p.Set("lambda", r.trace[i].lambda);
    p.Set("revenue", r.trace[i].revenue);
    p.Set("cost", r.trace[i].cost);
    p.Set("users", static_cast<double>(r.trace[i].users));
    if (r.trace[i].se > 0) p.Set("se", r.trace[i].se);
    trace.Set(static_cast<uint32_t>(i), p);
  }
  out.Set("trace", trace);
  return out;
}

// searchLambda(spec, search, onProbe?) -> Promise<{ lambda, plan, rollouts, trace, feasible, ... }>
Napi::Value JS_searchLambda(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || info.Length() > 3) throw error(env, "searchLambda(spec, search, onProbe?) expects two objects and an optional function");
  std::unique_ptr<RolloutBaton> b = read_rollout(info[0]);
  Napi::Object so = read_object(info[1], "search");
  SearchSpec& search = b->search;
  const std::string method = read_string(so, "method", "bisection", "search");
  if (method == "bisection") search.method = SearchMethod::kBisection;
  else if (method == "slsqp") search.method = SearchMethod::kSlsqp;
  else throw error(env, "search.method must be 'bisection' or 'slsqp'");
  search.budget = read_number(so, "budget", 0, "search");
  search.epsilon = read_number(so, "epsilon", 0.02 * search.budget, "search");
  search.lambda_max = read_number(so, "lambdaMax", b->spec.policy->lambda_max(1.0), "search");
  search.max_rollouts = static_cast<int>(read_count(so, "maxRollouts", 40, 10000, "search"));
  search.max_iterations = static_cast<int>(read_count(so, "maxIterations", 8, 1000, "search"));
  search.noise = read_number(so, "noise", 0.05, "search");
  search.lr = read_number(so, "lr", 0, "search");
  search.seed = read_count(so, "seed", 1, 9007199254740991.0, "search");
  search.subsample = read_bool(so, "subsample", true, "search");
  try {
    validate_search(search);
  } catch (const std::exception& e) {
    throw error_from(env, e);
  }
  if (info.Length() == 3 && !info[2].IsUndefined()) {
    if (!info[2].IsFunction()) throw error(env, "onProbe must be a function");
    b->progress = Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "saco.searchLambda.progress", 0, 1);
  }
  return Task<RolloutBaton>::Queue(env, std::move(b), run_search, search_to_js);
}

// policyNames() -> [{ name, needsModel }] in registry order
Napi::Value JS_policyNames(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  for (const PolicyEntry& e : policy_registry()) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", e.name);
    o.Set("needsModel", e.needs_model);
    out.Set(out.Length(), o);
  }
  return out;
}

}  // namespace

void init_rollout(Napi::Env env, Napi::Object exports) {
  exports.Set("rollout", Napi::Function::New(env, JS_rollout));
  exports.Set("searchLambda", Napi::Function::New(env, JS_searchLambda));
  exports.Set("policyNames", Napi::Function::New(env, JS_policyNames));
}

}  // namespace saco::napi
