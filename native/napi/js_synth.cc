#include "js_synth.h"

#include <string>

#include "args.h"

namespace saco::napi {

SyConfig read_sy_config(const Napi::Object& o) {
  Napi::Env env = o.Env();
  const std::string where = "SyConfig";
  SyConfig c;
  c.users = static_cast<uint32_t>(read_count(o, "users", c.users, 1e8, where));
  c.rounds = static_cast<uint32_t>(read_count(o, "rounds", c.rounds, 1e5, where));
  c.features = static_cast<uint32_t>(read_count(o, "features", c.features, 1024, where));
  c.seed = read_count(o, "seed", 1, 9007199254740991.0, where);
  c.threads = static_cast<uint32_t>(read_count(o, "threads", 0, 1024, where));
  c.sequential = read_bool(o, "sequential", c.sequential, where);
  c.rho = read_number(o, "rho", c.rho, where);
  c.eta = read_number(o, "eta", c.eta, where);
  c.gamma_e = read_number(o, "gammaE", c.gamma_e, where);
  c.delta = read_number(o, "delta", c.delta, where);
  c.phi = read_number(o, "phi", c.phi, where);
  c.sigma = read_number(o, "sigma", c.sigma, where);
  c.sigma_obs = read_number(o, "sigmaObs", c.sigma_obs, where);
  c.alpha_shift = read_number(o, "alphaShift", c.alpha_shift, where);
  c.basket_scale = read_number(o, "basketScale", c.basket_scale, where);
  c.basket_spread = read_number(o, "basketSpread", c.basket_spread, where);

  Napi::Value logging = o.Get("logging");
  if (!logging.IsUndefined()) {
    Napi::Object lo = read_object(logging, "SyConfig.logging");
    const std::string kind = read_string(lo, "kind", "", where + ".logging");
    if (kind == "uniform") {
      c.logger = LoggerKind::kUniform;
    } else if (kind == "biased") {
      c.logger = LoggerKind::kBiased;
      c.logger_strength = read_number(lo, "strength", 1.0, where + ".logging");
    } else {
      throw error(env, "SyConfig.logging.kind must be 'uniform' or 'biased'");
    }
  }

  Napi::Value dims = o.Get("actionDims");
  if (!dims.IsArray()) throw error(env, "SyConfig.actionDims must be an array");
  Napi::Array arr = dims.As<Napi::Array>();
  if (arr.Length() == 0 || arr.Length() > 16) throw error(env, "SyConfig.actionDims must have 1 to 16 dimensions");
  for (uint32_t j = 0; j < arr.Length(); ++j) {
    const std::string dim_where = where + ".actionDims[" + std::to_string(j) + "]";
    Napi::Object d = read_object(arr.Get(j), dim_where);
    ActionDim dim;
    const std::string kind = read_string(d, "kind", "", dim_where);
    if (kind == "cash") dim.kind = ActionKind::kCash;
    else if (kind == "discount") dim.kind = ActionKind::kDiscount;
    else throw error(env, dim_where + ".kind must be 'cash' or 'discount'");
    Napi::Value values = d.Get("values");
    if (!values.IsArray() || values.As<Napi::Array>().Length() == 0 || values.As<Napi::Array>().Length() > 256) {
      throw error(env, dim_where + ".values must be an array of 1 to 256 numbers");
    }
    dim.values = read_number_array(values, dim_where + ".values");
    c.action_dims.push_back(std::move(dim));
  }
  try {
    validate_sy_config(c);
  } catch (const std::exception& e) {
    throw error_from(env, e);
  }
  return c;
}

namespace {

struct SynthBaton {
  SyConfig config;
  std::vector<double> states, cost, reward, purchase_prob;
  std::vector<int32_t> actions;
};

void run_synth(SynthBaton& b) {
  const size_t rows = static_cast<size_t>(b.config.users) * b.config.rounds;
  b.states.resize(rows * (b.config.features + 3));
  b.actions.resize(rows * b.config.action_dims.size());
  b.cost.resize(rows);
  b.reward.resize(rows);
  b.purchase_prob.resize(rows);
  const SyLogView view{Span<double>(b.states.data(), b.states.size()), Span<int32_t>(b.actions.data(), b.actions.size()),
                       Span<double>(b.cost.data(), b.cost.size()), Span<double>(b.reward.data(), b.reward.size()),
                       Span<double>(b.purchase_prob.data(), b.purchase_prob.size())};
  generate_sy(b.config, view);
}

Napi::Value synth_result(Napi::Env env, SynthBaton& b) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("states", to_float64(env, std::move(b.states)));
  out.Set("actions", to_int32(env, std::move(b.actions)));
  out.Set("cost", to_float64(env, std::move(b.cost)));
  out.Set("reward", to_float64(env, std::move(b.reward)));
  out.Set("purchaseProb", to_float64(env, std::move(b.purchase_prob)));
  return out;
}

// synthSY(config) -> Promise<{ states, actions, cost, reward, purchaseProb }> (arrays the
// native side allocated and hands over: nothing of the caller's is written from a thread)
Napi::Value JS_synthSY(const Napi::CallbackInfo& info) {
  if (info.Length() != 1) throw error(info.Env(), "synthSY(config) expects an object");
  auto b = std::make_unique<SynthBaton>();
  b->config = read_sy_config(read_object(info[0], "config"));
  return Task<SynthBaton>::Queue(info.Env(), std::move(b), run_synth, synth_result);
}

// syWeights(config) -> { wAlpha, wBeta, wM } (Float64Array each)
Napi::Value JS_syWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) throw error(env, "syWeights(config) expects an object");
  SyWeights w = draw_sy_weights(read_sy_config(read_object(info[0], "config")));
  Napi::Object out = Napi::Object::New(env);
  out.Set("wAlpha", to_float64(env, std::move(w.w_alpha)));
  out.Set("wBeta", to_float64(env, std::move(w.w_beta)));
  out.Set("wM", to_float64(env, std::move(w.w_m)));
  return out;
}

}  // namespace

void init_synth(Napi::Env env, Napi::Object exports) {
  exports.Set("synthSY", Napi::Function::New(env, JS_synthSY));
  exports.Set("syWeights", Napi::Function::New(env, JS_syWeights));
}

}  // namespace saco::napi
