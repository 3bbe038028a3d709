// The only file that knows V8 exists: argument checks, conversions and AsyncWorkers.
// Everything else in native/ works on plain structs and spans.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "codt.h"
#include "codt_sequence.h"
#include "codt_cuda.h"
#include "cuda_device.h"
#include "dual.h"
#include "env.h"
#include "gradcheck.h"
#include "model_pool.h"
#include "pool.h"
#include "rollout.h"
#include "pmath.h"
#include "rng.h"
#include "tensor.h"
#include "trainer.h"

namespace {

using saco::Span;

// ---- argument readers: each throws a JS exception naming the argument -------------------

double read_number(const Napi::Object& obj, const char* key, double fallback, const std::string& where) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw Napi::TypeError::New(obj.Env(), where + "." + key + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw Napi::RangeError::New(obj.Env(), where + "." + key + " must be finite");
  return d;
}

uint64_t read_count(const Napi::Object& obj, const char* key, double fallback, double max, const std::string& where) {
  const double d = read_number(obj, key, fallback, where);
  if (d < 0 || d > max || std::floor(d) != d) {
    throw Napi::RangeError::New(obj.Env(), where + "." + key + " must be an integer in [0, " +
                                               std::to_string(static_cast<uint64_t>(max)) + "]");
  }
  return static_cast<uint64_t>(d);
}

template <typename T, napi_typedarray_type kType>
Span<T> read_typed(const Napi::Value& v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kType) {
    throw Napi::TypeError::New(v.Env(), name + " has the wrong typed-array type");
  }
  auto arr = v.As<Napi::TypedArray>();
  auto buffer = arr.ArrayBuffer();
  T* data = reinterpret_cast<T*>(static_cast<uint8_t*>(buffer.Data()) + arr.ByteOffset());
  return Span<T>(data, arr.ElementLength());
}

saco::SyConfig read_sy_config(const Napi::Object& o) {
  const std::string where = "SyConfig";
  saco::SyConfig c;
  c.users = static_cast<uint32_t>(read_count(o, "users", c.users, 1e8, where));
  c.rounds = static_cast<uint32_t>(read_count(o, "rounds", c.rounds, 1e5, where));
  c.features = static_cast<uint32_t>(read_count(o, "features", c.features, 1024, where));
  c.seed = read_count(o, "seed", 1, 9007199254740991.0, where);
  c.threads = static_cast<uint32_t>(read_count(o, "threads", 0, 1024, where));
  Napi::Value seq = o.Get("sequential");
  if (!seq.IsUndefined()) {
    if (!seq.IsBoolean()) throw Napi::TypeError::New(o.Env(), "SyConfig.sequential must be a boolean");
    c.sequential = seq.As<Napi::Boolean>().Value();
  }
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
    if (!logging.IsObject()) throw Napi::TypeError::New(o.Env(), "SyConfig.logging must be an object");
    Napi::Object lo = logging.As<Napi::Object>();
    const std::string kind = lo.Get("kind").IsString() ? lo.Get("kind").As<Napi::String>().Utf8Value() : "";
    if (kind == "uniform") {
      c.logger = saco::LoggerKind::kUniform;
    } else if (kind == "biased") {
      c.logger = saco::LoggerKind::kBiased;
      c.logger_strength = read_number(lo, "strength", 1.0, where + ".logging");
    } else {
      throw Napi::TypeError::New(o.Env(), "SyConfig.logging.kind must be 'uniform' or 'biased'");
    }
  }

  Napi::Value dims = o.Get("actionDims");
  if (!dims.IsArray()) throw Napi::TypeError::New(o.Env(), "SyConfig.actionDims must be an array");
  Napi::Array arr = dims.As<Napi::Array>();
  if (arr.Length() == 0 || arr.Length() > 16) {
    throw Napi::RangeError::New(o.Env(), "SyConfig.actionDims must have 1 to 16 dimensions");
  }
  for (uint32_t j = 0; j < arr.Length(); ++j) {
    const std::string dim_where = where + ".actionDims[" + std::to_string(j) + "]";
    Napi::Value dv = arr.Get(j);
    if (!dv.IsObject()) throw Napi::TypeError::New(o.Env(), dim_where + " must be an object");
    Napi::Object d = dv.As<Napi::Object>();
    saco::ActionDim dim;
    const std::string kind = d.Get("kind").IsString() ? d.Get("kind").As<Napi::String>().Utf8Value() : "";
    if (kind == "cash") {
      dim.kind = saco::ActionKind::kCash;
    } else if (kind == "discount") {
      dim.kind = saco::ActionKind::kDiscount;
    } else {
      throw Napi::TypeError::New(o.Env(), dim_where + ".kind must be 'cash' or 'discount'");
    }
    Napi::Value values = d.Get("values");
    if (!values.IsArray()) throw Napi::TypeError::New(o.Env(), dim_where + ".values must be an array");
    Napi::Array va = values.As<Napi::Array>();
    if (va.Length() == 0 || va.Length() > 256) {
      throw Napi::RangeError::New(o.Env(), dim_where + ".values must have 1 to 256 entries");
    }
    for (uint32_t k = 0; k < va.Length(); ++k) {
      Napi::Value x = va.Get(k);
      if (!x.IsNumber()) throw Napi::TypeError::New(o.Env(), dim_where + ".values must hold numbers");
      dim.values.push_back(x.As<Napi::Number>().DoubleValue());
    }
    c.action_dims.push_back(std::move(dim));
  }
  try {
    saco::validate_sy_config(c);
  } catch (const std::exception& e) {
    throw Napi::RangeError::New(o.Env(), e.what());
  }
  return c;
}

// ---- async work -------------------------------------------------------------------------

// A generic AsyncWorker: runs `work` off the main thread, then `done` builds the JS result.
class TaskWorker : public Napi::AsyncWorker {
 public:
  TaskWorker(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done, Napi::Object keep_alive)
      : Napi::AsyncWorker(env), work_(std::move(work)), done_(std::move(done)), deferred_(Napi::Promise::Deferred::New(env)) {
    keep_alive_ = Napi::Persistent(keep_alive);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      work_();
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(done_(Env())); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> done_;
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_alive_;
};

Napi::Promise queue(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done, Napi::Object keep_alive) {
  auto* worker = new TaskWorker(env, std::move(work), std::move(done), keep_alive);  // owned by libuv after Queue()
  Napi::Promise p = worker->Promise();
  worker->Queue();
  return p;
}

// ---- synthSY: generation into caller-owned typed arrays ----------------------------------

// synthSY(config, out: { states, actions, cost, reward, purchaseProb }) -> Promise<void>
Napi::Value SynthSY(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsObject() || !info[1].IsObject()) {
    throw Napi::TypeError::New(env, "synthSY(config, out) expects two objects");
  }
  saco::SyConfig config = read_sy_config(info[0].As<Napi::Object>());
  Napi::Object out = info[1].As<Napi::Object>();
  saco::SyLogView view{
      read_typed<double, napi_float64_array>(out.Get("states"), "out.states"),
      read_typed<int32_t, napi_int32_array>(out.Get("actions"), "out.actions"),
      read_typed<double, napi_float64_array>(out.Get("cost"), "out.cost"),
      read_typed<double, napi_float64_array>(out.Get("reward"), "out.reward"),
      read_typed<double, napi_float64_array>(out.Get("purchaseProb"), "out.purchaseProb"),
  };
  const size_t rows = static_cast<size_t>(config.users) * config.rounds;
  try {
    saco::require_size(view.states, rows * (config.features + 3), "out.states");
    saco::require_size(view.actions, rows * config.action_dims.size(), "out.actions");
    saco::require_size(view.cost, rows, "out.cost");
    saco::require_size(view.reward, rows, "out.reward");
    saco::require_size(view.purchase_prob, rows, "out.purchaseProb");
  } catch (const std::exception& e) {
    throw Napi::RangeError::New(env, e.what());
  }
  return queue(env, [config, view]() { saco::generate_sy(config, view); }, [](Napi::Env e) { return e.Undefined(); }, out);
}

// syWeights(config) -> { wAlpha, wBeta, wM } (Float64Array each)
Napi::Value SyWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "syWeights(config) expects an object");
  const saco::SyConfig config = read_sy_config(info[0].As<Napi::Object>());
  const saco::SyWeights w = saco::draw_sy_weights(config);
  auto to_array = [&](const std::vector<double>& v) {
    Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
    for (size_t i = 0; i < v.size(); ++i) a[i] = v[i];
    return a;
  };
  Napi::Object out = Napi::Object::New(env);
  out.Set("wAlpha", to_array(w.w_alpha));
  out.Set("wBeta", to_array(w.w_beta));
  out.Set("wM", to_array(w.w_m));
  return out;
}

// philox4x32(counter: Uint32Array(4), key: Uint32Array(2)) -> Uint32Array(4)
Napi::Value Philox(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) throw Napi::TypeError::New(env, "philox4x32(counter, key) expects two Uint32Arrays");
  Span<uint32_t> c = read_typed<uint32_t, napi_uint32_array>(info[0], "counter");
  Span<uint32_t> k = read_typed<uint32_t, napi_uint32_array>(info[1], "key");
  if (c.size() != 4 || k.size() != 2) throw Napi::RangeError::New(env, "counter needs 4 words and key 2");
  const saco::Philox4x32 r = saco::philox4x32_10(c[0], c[1], c[2], c[3], k[0], k[1]);
  Napi::Uint32Array out = Napi::Uint32Array::New(env, 4);
  for (size_t i = 0; i < 4; ++i) out[i] = r.v[i];
  return out;
}

// pmath(name: 'exp' | 'log', x: Float64Array) -> Float64Array
Napi::Value PMath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsString()) throw Napi::TypeError::New(env, "pmath(name, values) expects a name and a Float64Array");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  Span<double> x = read_typed<double, napi_float64_array>(info[1], "values");
  Napi::Float64Array out = Napi::Float64Array::New(env, x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if (name == "exp") out[i] = saco::pmath::exp(x[i]);
    else if (name == "log") out[i] = saco::pmath::log(x[i]);
    else throw Napi::RangeError::New(env, "pmath name must be 'exp' or 'log'");
  }
  return out;
}

// ---- model pool ------------------------------------------------------------------------

std::vector<double> read_number_array(const Napi::Value& v, const std::string& name) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), name + " must be an array of numbers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<double> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) throw Napi::TypeError::New(v.Env(), name + " must hold numbers");
    out[i] = x.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(out[i])) throw Napi::RangeError::New(v.Env(), name + " must hold finite numbers");
  }
  return out;
}

// A CodtModel from (meta: { config, normalization, targets? }, params: { [name]: Float32Array }),
// not yet validated. Without targets (a trainer's model) the table is a single zero entry.
std::unique_ptr<saco::CodtModel> read_model(Napi::Env env, const Napi::Value& meta_value, const Napi::Value& params_value, bool need_targets) {
  if (!meta_value.IsObject() || !params_value.IsObject()) throw Napi::TypeError::New(env, "meta and params must be objects");
  Napi::Object meta = meta_value.As<Napi::Object>();
  Napi::Value cv = meta.Get("config");
  Napi::Value nv = meta.Get("normalization");
  Napi::Value tv = meta.Get("targets");
  if (!cv.IsObject() || !nv.IsObject() || (need_targets && !tv.IsObject())) throw Napi::TypeError::New(env, need_targets ? "meta needs config, normalization and targets objects" : "meta needs config and normalization objects");
  Napi::Object c = cv.As<Napi::Object>();
  Napi::Object n = nv.As<Napi::Object>();
  auto model = std::make_unique<saco::CodtModel>();
  saco::CodtConfig& cfg = model->config;
  cfg.state_dim = static_cast<int>(read_count(c, "stateDim", 0, 100000, "config"));
  cfg.context = static_cast<int>(read_count(c, "context", 0, 4096, "config"));
  cfg.d_model = static_cast<int>(read_count(c, "dModel", 0, 8192, "config"));
  cfg.layers = static_cast<int>(read_count(c, "layers", 0, 64, "config"));
  cfg.heads = static_cast<int>(read_count(c, "heads", 0, 256, "config"));
  for (double k : read_number_array(c.Get("actionSizes"), "config.actionSizes")) cfg.action_sizes.push_back(static_cast<int>(k));
  const std::string variant = c.Get("variant").IsString() ? c.Get("variant").As<Napi::String>().Utf8Value() : "";
  if (variant == "weighted" || variant == "literal") {
  } else if (variant == "no-constraint") {
    cfg.uses_ctg = false;
    cfg.uses_lambda = false;
  } else if (variant == "no-rtg") {
    cfg.uses_rtg = false;
  } else {
    throw Napi::TypeError::New(env, "config.variant must be weighted, literal, no-constraint or no-rtg");
  }
  for (double v : read_number_array(n.Get("stateMean"), "normalization.stateMean")) model->norm.state_mean.push_back(static_cast<float>(v));
  for (double v : read_number_array(n.Get("stateStd"), "normalization.stateStd")) model->norm.state_std.push_back(static_cast<float>(v));
  model->norm.rtg_scale = static_cast<float>(read_number(n, "rtgScale", 0, "normalization"));
  model->norm.ctg_scale = static_cast<float>(read_number(n, "ctgScale", 0, "normalization"));
  model->norm.lambda_max = static_cast<float>(read_number(n, "lambdaMax", 0, "normalization"));
  if (tv.IsObject()) {
    Napi::Object t = tv.As<Napi::Object>();
    model->targets.lambdas = read_number_array(t.Get("lambdas"), "targets.lambdas");
    model->targets.rtg = read_number_array(t.Get("rtg"), "targets.rtg");
    model->targets.ctg = read_number_array(t.Get("ctg"), "targets.ctg");
  } else {
    model->targets.lambdas = {0}, model->targets.rtg = {0}, model->targets.ctg = {0};
  }
  Napi::Object params = params_value.As<Napi::Object>();
  Napi::Array names = params.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    const std::string name = names.Get(i).As<Napi::String>().Utf8Value();
    Span<float> data = read_typed<float, napi_float32_array>(params.Get(name), "params." + name);
    model->params[name] = std::vector<float>(data.data(), data.data() + data.size());
  }
  return model;
}

// loadModel(meta: { config, normalization, targets }, params: { [name]: Float32Array }) -> id
Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsObject() || !info[1].IsObject()) throw Napi::TypeError::New(env, "loadModel(meta, params) expects two objects");
  auto model = read_model(env, info[0], info[1], true);
  try {
    return Napi::Number::New(env, static_cast<double>(saco::pool_load(std::move(model))));
  } catch (const std::exception& e) {
    throw Napi::RangeError::New(env, e.what());
  }
}

std::shared_ptr<const saco::CodtModel> model_from(const Napi::Value& v) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), "model id must be a number");
  const double id = v.As<Napi::Number>().DoubleValue();
  auto model = saco::pool_get(static_cast<int64_t>(id));
  if (!model || std::floor(id) != id) throw Napi::Error::New(v.Env(), "model " + std::to_string(static_cast<int64_t>(id)) + " is not loaded (unloaded or never loaded)");
  return model;
}

Napi::Value UnloadModel(const Napi::CallbackInfo& info) {
  if (info.Length() != 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "unloadModel(id) expects a number");
  return Napi::Boolean::New(info.Env(), saco::pool_unload(static_cast<int64_t>(info[0].As<Napi::Number>().DoubleValue())));
}

Napi::Value ModelCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(saco::pool_size())); }

// ---- forward passes (tests, ORT parity) ------------------------------------------------------

struct ForwardInputs {
  int batch = 0, rounds = 0;
  Span<float> states, rtg, ctg, actions, lambda;
};

ForwardInputs read_forward_inputs(const saco::CodtModel& m, const Napi::Object& o) {
  ForwardInputs in;
  in.batch = static_cast<int>(read_count(o, "batch", 0, 1e7, "inputs"));
  in.rounds = static_cast<int>(read_count(o, "rounds", 0, 4096, "inputs"));
  if (in.batch < 1) throw Napi::RangeError::New(o.Env(), "inputs.batch must be >= 1");
  if (in.rounds < 1 || in.rounds > m.config.context) throw Napi::RangeError::New(o.Env(), "inputs.rounds must be in [1, " + std::to_string(m.config.context) + "] (the model's context)");
  in.states = read_typed<float, napi_float32_array>(o.Get("states"), "inputs.states");
  in.rtg = read_typed<float, napi_float32_array>(o.Get("rtg"), "inputs.rtg");
  in.ctg = read_typed<float, napi_float32_array>(o.Get("ctg"), "inputs.ctg");
  in.actions = read_typed<float, napi_float32_array>(o.Get("actionsOneHot"), "inputs.actionsOneHot");
  in.lambda = read_typed<float, napi_float32_array>(o.Get("lambda"), "inputs.lambda");
  const size_t bt = static_cast<size_t>(in.batch) * in.rounds;
  try {
    saco::require_size(in.states, bt * m.config.state_dim, "inputs.states");
    saco::require_size(in.rtg, bt, "inputs.rtg");
    saco::require_size(in.ctg, bt, "inputs.ctg");
    saco::require_size(in.actions, bt * m.config.action_width(), "inputs.actionsOneHot");
    saco::require_size(in.lambda, static_cast<size_t>(in.batch), "inputs.lambda");
  } catch (const std::exception& e) {
    throw Napi::RangeError::New(o.Env(), e.what());
  }
  for (const Span<float>* s : {&in.states, &in.rtg, &in.ctg, &in.actions, &in.lambda}) {
    for (size_t i = 0; i < s->size(); ++i) {
      if (!std::isfinite(s->data()[i])) throw Napi::RangeError::New(o.Env(), "inputs hold a non-finite number (NaN or Inf)");
    }
  }
  return in;
}

// codtForward(id, inputs, mode: 'full' | 'incremental') -> Promise<Float32Array logits [B, T, K]>
Napi::Value CodtForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[1].IsObject() || !info[2].IsString()) throw Napi::TypeError::New(env, "codtForward(id, inputs, mode) expects a model id, an object and 'full' or 'incremental'");
  auto model = model_from(info[0]);
  Napi::Object o = info[1].As<Napi::Object>();
  const ForwardInputs in = read_forward_inputs(*model, o);
  const std::string mode = info[2].As<Napi::String>().Utf8Value();
  if (mode != "full" && mode != "incremental" && mode != "cuda") throw Napi::TypeError::New(env, "mode must be 'full', 'incremental' or 'cuda'");
  const int K = model->config.action_width();
  auto out = std::make_shared<std::vector<float>>(static_cast<size_t>(in.batch) * in.rounds * K);
  auto work = [model, in, mode, out, K]() {
    if (mode == "full" || mode == "cuda") {
      saco::SequenceBatch b{in.batch, in.rounds, in.states.data(), in.rtg.data(), in.ctg.data(), in.actions.data(), in.lambda.data()};
#ifdef SACO_HAVE_CUDA
      std::string why;  // no device (or a device error): the CPU gives the same numbers
      if (mode == "cuda" && saco::codt_forward_full_cuda(*model, b, out->data(), why)) return;
#endif
      saco::codt_forward_full(*model, b, out->data());
      return;
    }
    // users in fixed blocks of 64 over the threads: results do not depend on the thread count
    const saco::CodtConfig& c = model->config;
    const int T = in.rounds, d = c.state_dim;
    constexpr int kBlock = 64;
    const int blocks = (in.batch + kBlock - 1) / kBlock;
    saco::parallel_for(static_cast<size_t>(blocks), saco::resolve_threads(0), [&](size_t first, size_t last) {
      for (size_t blk = first; blk < last; ++blk) {
        const int u0 = static_cast<int>(blk) * kBlock;
        const int B = std::min(kBlock, in.batch - u0);
        saco::CodtDecoder dec(*model, B, T);
        std::vector<float> values(static_cast<size_t>(B) * std::max(d, K)), logits(static_cast<size_t>(B) * K);
        for (int t = 0; t < T; ++t) {
          for (saco::TokenKind kind : c.token_kinds()) {
            for (int b = 0; b < B; ++b) {
              const size_t bt = static_cast<size_t>(u0 + b) * T + t;
              switch (kind) {
                case saco::TokenKind::kRtg: values[b] = in.rtg.data()[bt]; break;
                case saco::TokenKind::kCtg: values[b] = in.ctg.data()[bt]; break;
                case saco::TokenKind::kState: std::copy_n(in.states.data() + bt * d, d, values.data() + static_cast<size_t>(b) * d); break;
                case saco::TokenKind::kAction: std::copy_n(in.actions.data() + bt * K, K, values.data() + static_cast<size_t>(b) * K); break;
              }
            }
            dec.append(kind, t, values.data(), in.lambda.data() + u0, kind == saco::TokenKind::kState ? logits.data() : nullptr);
            if (kind == saco::TokenKind::kState) {
              for (int b = 0; b < B; ++b) std::copy_n(logits.data() + static_cast<size_t>(b) * K, K, out->data() + (static_cast<size_t>(u0 + b) * T + t) * K);
            }
          }
        }
      }
    });
  };
  auto done = [out](Napi::Env e) {
    Napi::Float32Array a = Napi::Float32Array::New(e, out->size());
    std::copy(out->begin(), out->end(), a.Data());
    return a;
  };
  // A single user's few rounds take microseconds: a thread hop would cost more than the
  // work, so such calls run here and return their result (the Promise wrapper is in TS).
  const bool tiny = in.batch == 1 && mode == "incremental" && in.rounds <= 16;
  if (tiny) {
    try {
      work();
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
    return done(env);
  }
  return queue(env, work, done, o);
}

// ---- rollouts and the λ search -------------------------------------------------------------

saco::RolloutSpec read_rollout_spec(const Napi::Object& o, saco::RolloutUsers& users) {
  Napi::Env env = o.Env();
  saco::RolloutSpec spec;
  Napi::Value ev = o.Get("env");
  if (!ev.IsObject()) throw Napi::TypeError::New(env, "spec.env must be an SY config object");
  spec.env = read_sy_config(ev.As<Napi::Object>());
  spec.rounds = static_cast<uint32_t>(read_count(o, "rounds", spec.env.rounds, 1e5, "spec"));
  Napi::Value bv = o.Get("budget");
  if (!bv.IsUndefined()) {
    if (!bv.IsNumber()) throw Napi::TypeError::New(env, "spec.budget must be a number");
    spec.budget = bv.As<Napi::Number>().DoubleValue();
    if (std::isnan(spec.budget) || spec.budget <= 0) throw Napi::RangeError::New(env, "spec.budget must be > 0 (Infinity: no budget)");
  }
  spec.lambda = read_number(o, "lambda", 0, "spec");
  spec.threads = static_cast<uint32_t>(read_count(o, "threads", 0, 1024, "spec"));
  const std::string policy = o.Get("policy").IsString() ? o.Get("policy").As<Napi::String>().Utf8Value() : "";
  if (policy == "codt") {
    spec.policy = saco::PolicyKind::kCodt;
    spec.model = model_from(o.Get("model"));
  } else if (policy == "random") {
    spec.policy = saco::PolicyKind::kRandom;
  } else if (policy == "oracle") {
    spec.policy = saco::PolicyKind::kOracle;
  } else {
    throw Napi::TypeError::New(env, "spec.policy must be 'codt', 'random' or 'oracle'");
  }
  Napi::Value rp = o.Get("recordPlan");
  spec.record_plan = rp.IsBoolean() && rp.As<Napi::Boolean>().Value();
  Span<uint32_t> ids = read_typed<uint32_t, napi_uint32_array>(o.Get("userIds"), "spec.userIds");
  users.ids.assign(ids.data(), ids.data() + ids.size());
  Napi::Value fv = o.Get("features");
  if (!fv.IsUndefined() && !fv.IsNull()) {
    Span<double> f = read_typed<double, napi_float64_array>(fv, "spec.features");
    users.features.assign(f.data(), f.data() + f.size());
  }
  try {
    saco::validate_rollout(spec, users);
  } catch (const std::exception& e) {
    throw Napi::RangeError::New(env, e.what());
  }
  return spec;
}

Napi::Object rollout_to_js(Napi::Env env, const saco::RolloutResult& r) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("revenue", r.revenue);
  out.Set("cost", r.cost);
  out.Set("coupons", static_cast<double>(r.coupons));
  out.Set("blocked", static_cast<double>(r.blocked));
  Napi::Float64Array rr = Napi::Float64Array::New(env, r.revenue_by_round.size());
  Napi::Float64Array cr = Napi::Float64Array::New(env, r.cost_by_round.size());
  std::copy(r.revenue_by_round.begin(), r.revenue_by_round.end(), rr.Data());
  std::copy(r.cost_by_round.begin(), r.cost_by_round.end(), cr.Data());
  out.Set("revenueByRound", rr);
  out.Set("costByRound", cr);
  if (!r.plan.empty()) {
    Napi::Int32Array plan = Napi::Int32Array::New(env, r.plan.size());
    std::copy(r.plan.begin(), r.plan.end(), plan.Data());
    out.Set("plan", plan);
  }
  return out;
}

// rollout(spec) -> Promise<{ revenue, cost, coupons, blocked, revenueByRound, costByRound, plan? }>
Napi::Value Rollout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "rollout(spec) expects an object");
  auto users = std::make_shared<saco::RolloutUsers>();
  auto spec = std::make_shared<saco::RolloutSpec>(read_rollout_spec(info[0].As<Napi::Object>(), *users));
  auto result = std::make_shared<saco::RolloutResult>();
  return queue(env, [spec, users, result]() { *result = saco::rollout(*spec, *users); }, [result](Napi::Env e) { return rollout_to_js(e, *result); }, info[0].As<Napi::Object>());
}

// searchLambda(spec, search) -> Promise<{ lambda, plan, rollouts, trace, feasible, ... }>
Napi::Value SearchLambda(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsObject() || !info[1].IsObject()) throw Napi::TypeError::New(env, "searchLambda(spec, search) expects two objects");
  auto users = std::make_shared<saco::RolloutUsers>();
  auto spec = std::make_shared<saco::RolloutSpec>(read_rollout_spec(info[0].As<Napi::Object>(), *users));
  Napi::Object so = info[1].As<Napi::Object>();
  saco::SearchSpec search;
  const std::string method = so.Get("method").IsString() ? so.Get("method").As<Napi::String>().Utf8Value() : "bisection";
  if (method == "bisection") search.method = saco::SearchMethod::kBisection;
  else if (method == "slsqp") search.method = saco::SearchMethod::kSlsqp;
  else throw Napi::TypeError::New(env, "search.method must be 'bisection' or 'slsqp'");
  search.budget = read_number(so, "budget", 0, "search");
  search.epsilon = read_number(so, "epsilon", 0.02 * search.budget, "search");
  search.lambda_max = read_number(so, "lambdaMax", spec->model ? spec->model->norm.lambda_max : 1.0, "search");
  search.max_rollouts = static_cast<int>(read_count(so, "maxRollouts", 40, 10000, "search"));
  search.max_iterations = static_cast<int>(read_count(so, "maxIterations", 8, 1000, "search"));
  search.noise = read_number(so, "noise", 0.05, "search");
  search.lr = read_number(so, "lr", 0, "search");
  search.seed = read_count(so, "seed", 1, 9007199254740991.0, "search");
  try {
    saco::validate_search(search);
  } catch (const std::exception& e) {
    throw Napi::RangeError::New(env, e.what());
  }
  auto result = std::make_shared<saco::SearchResult>();
  auto done = [result](Napi::Env e) {
    Napi::Object out = Napi::Object::New(e);
    out.Set("lambda", result->lambda);
    out.Set("plan", rollout_to_js(e, result->plan));
    out.Set("rollouts", result->rollouts);
    out.Set("feasible", result->feasible);
    out.Set("budgetNotBinding", result->budget_not_binding);
    out.Set("needsMoreThanLambdaMax", result->needs_more_than_lambda_max);
    Napi::Array trace = Napi::Array::New(e, result->trace.size());
    for (size_t i = 0; i < result->trace.size(); ++i) {
      Napi::Object p = Napi::Object::New(e);
      p.Set("lambda", result->trace[i].lambda);
      p.Set("revenue", result->trace[i].revenue);
      p.Set("cost", result->trace[i].cost);
      trace.Set(static_cast<uint32_t>(i), p);
    }
    out.Set("trace", trace);
    return out;
  };
  return queue(env, [spec, users, search, result]() { *result = saco::search_lambda(*spec, *users, search); }, done, info[0].As<Napi::Object>());
}

// ---- the native trainer ---------------------------------------------------------------------

std::shared_ptr<saco::CodtTrainer> trainer_from(const Napi::Value& v) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), "trainer id must be a number");
  const double id = v.As<Napi::Number>().DoubleValue();
  auto t = std::floor(id) == id ? saco::trainer_get(static_cast<int64_t>(id)) : nullptr;
  if (!t) throw Napi::Error::New(v.Env(), "trainer " + std::to_string(static_cast<int64_t>(id)) + " does not exist (disposed or never created)");
  return t;
}

// A CodtBatch (src/model/codt-tfjs.ts) copied into C++ memory, sizes and values checked.
std::shared_ptr<saco::TrainBatch> read_train_batch(const saco::CodtModel& m, const Napi::Value& v) {
  Napi::Env env = v.Env();
  if (!v.IsObject()) throw Napi::TypeError::New(env, "batch must be an object");
  Napi::Object o = v.As<Napi::Object>();
  auto b = std::make_shared<saco::TrainBatch>();
  b->batch = static_cast<int>(read_count(o, "size", 0, 1 << 24, "batch"));
  b->rounds = static_cast<int>(read_count(o, "rounds", 0, 4096, "batch"));
  if (b->batch < 1) throw Napi::RangeError::New(env, "batch.size must be >= 1");
  if (b->rounds < 1 || b->rounds > m.config.context) throw Napi::RangeError::New(env, "batch.rounds must be in [1, " + std::to_string(m.config.context) + "] (the model's context)");
  const size_t bt = static_cast<size_t>(b->batch) * b->rounds;
  struct Field {
    const char* name;
    std::vector<float>* out;
    size_t size;
  };
  const Field fields[] = {{"states", &b->states, bt * m.config.state_dim}, {"rtg", &b->rtg, bt}, {"ctg", &b->ctg, bt},
                          {"actionsOneHot", &b->actions_onehot, bt * m.config.action_width()}, {"lambda", &b->lambda, static_cast<size_t>(b->batch)},
                          {"mask", &b->mask, bt}, {"weights", &b->weights, bt}};
  for (const Field& f : fields) {
    const std::string name = std::string("batch.") + f.name;
    Span<float> data = read_typed<float, napi_float32_array>(o.Get(f.name), name);
    if (data.size() != f.size) throw Napi::RangeError::New(env, name + ": expected length " + std::to_string(f.size) + ", got " + std::to_string(data.size()));
    for (size_t i = 0; i < data.size(); ++i) {
      if (!std::isfinite(data.data()[i])) throw Napi::RangeError::New(env, name + "[" + std::to_string(i) + "] is not finite");
    }
    f.out->assign(data.data(), data.data() + data.size());
  }
  for (size_t i = 0; i < bt; ++i) {
    if (b->weights[i] < 0) throw Napi::RangeError::New(env, "batch.weights[" + std::to_string(i) + "] is negative");
  }
  return b;
}

// trainerCreate(meta: { config, normalization }, params, options) -> id
Napi::Value TrainerCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[2].IsObject()) throw Napi::TypeError::New(env, "trainerCreate(meta, params, options) expects three objects");
  auto model = read_model(env, info[0], info[1], false);
  Napi::Object o = info[2].As<Napi::Object>();
  saco::TrainerOptions opt;
  opt.adam.beta1 = static_cast<float>(read_number(o, "beta1", opt.adam.beta1, "options"));
  opt.adam.beta2 = static_cast<float>(read_number(o, "beta2", opt.adam.beta2, "options"));
  opt.adam.eps = static_cast<float>(read_number(o, "eps", opt.adam.eps, "options"));
  opt.adam.weight_decay = static_cast<float>(read_number(o, "weightDecay", opt.adam.weight_decay, "options"));
  opt.adam.grad_clip = static_cast<float>(read_number(o, "gradClip", opt.adam.grad_clip, "options"));
  opt.dropout = static_cast<float>(read_number(o, "dropout", 0, "options"));
  opt.threads = static_cast<unsigned>(read_count(o, "threads", 0, 1024, "options"));
  try {
    return Napi::Number::New(env, static_cast<double>(saco::trainer_create(std::move(model), opt)));
  } catch (const std::exception& e) {
    throw Napi::RangeError::New(env, e.what());
  }
}

uint64_t read_seed(const Napi::Value& v, const char* name) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(name) + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0) || std::floor(d) != d) throw Napi::RangeError::New(v.Env(), std::string(name) + " must be a non-negative integer");
  return static_cast<uint64_t>(d);
}

// trainerStep(id, batch, lr, step, dropoutSeed) -> Promise<{ loss, gradNorm }>
Napi::Value TrainerStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5 || !info[2].IsNumber()) throw Napi::TypeError::New(env, "trainerStep(id, batch, lr, step, dropoutSeed) expects five arguments");
  auto trainer = trainer_from(info[0]);
  auto batch = read_train_batch(trainer->model(), info[1]);
  const double lr = info[2].As<Napi::Number>().DoubleValue();
  if (!(lr >= 0 && lr <= 1)) throw Napi::RangeError::New(env, "lr must be in [0, 1]");
  const uint64_t step = read_seed(info[3], "step");
  if (step < 1 || step > 2147483647) throw Napi::RangeError::New(env, "step must be in [1, 2^31)");
  const uint64_t seed = read_seed(info[4], "dropoutSeed");
  auto result = std::make_shared<saco::StepResult>();
  return queue(
      env,
      [trainer, batch, lr, step, seed, result]() {
        saco::CodtTrainer::Use use(*trainer);
        *result = trainer->step(*batch, static_cast<float>(lr), static_cast<int>(step), seed);
      },
      [result](Napi::Env e) {
        Napi::Object out = Napi::Object::New(e);
        out.Set("loss", result->loss);
        out.Set("gradNorm", result->grad_norm);
        return out;
      },
      info[1].As<Napi::Object>());
}

// trainerEvaluate(id, batch) -> Promise<{ lossSum, weightSum }>
Napi::Value TrainerEvaluate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) throw Napi::TypeError::New(env, "trainerEvaluate(id, batch) expects two arguments");
  auto trainer = trainer_from(info[0]);
  auto batch = read_train_batch(trainer->model(), info[1]);
  auto result = std::make_shared<saco::EvalResult>();
  return queue(
      env,
      [trainer, batch, result]() {
        saco::CodtTrainer::Use use(*trainer);
        *result = trainer->evaluate(*batch);
      },
      [result](Napi::Env e) {
        Napi::Object out = Napi::Object::New(e);
        out.Set("lossSum", result->loss_sum);
        out.Set("weightSum", result->weight_sum);
        return out;
      },
      info[1].As<Napi::Object>());
}

Napi::Object slots_to_js(Napi::Env env, const saco::CodtTrainer& t, const float* flat) {
  Napi::Object out = Napi::Object::New(env);
  for (const auto& slot : t.slots()) {
    Napi::Float32Array a = Napi::Float32Array::New(env, slot.shape.size);
    std::copy_n(flat ? flat + slot.offset : slot.value, slot.shape.size, a.Data());
    out.Set(slot.shape.name, a);
  }
  return out;
}

// trainerGradients(id, batch, training, dropoutSeed) -> Promise<{ loss, grads: { [name]: Float32Array } }>
Napi::Value TrainerGradients(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4 || !info[2].IsBoolean()) throw Napi::TypeError::New(env, "trainerGradients(id, batch, training, dropoutSeed) expects four arguments");
  auto trainer = trainer_from(info[0]);
  auto batch = read_train_batch(trainer->model(), info[1]);
  const bool training = info[2].As<Napi::Boolean>().Value();
  const uint64_t seed = read_seed(info[3], "dropoutSeed");
  auto loss = std::make_shared<double>(0);
  auto grads = std::make_shared<std::vector<float>>();
  return queue(
      env,
      [trainer, batch, training, seed, loss, grads]() {
        saco::CodtTrainer::Use use(*trainer);
        *loss = trainer->compute_gradients(*batch, seed, training);
        grads->assign(trainer->gradient().begin(), trainer->gradient().end());
      },
      [trainer, loss, grads](Napi::Env e) {
        Napi::Object out = Napi::Object::New(e);
        out.Set("loss", *loss);
        out.Set("grads", slots_to_js(e, *trainer, grads->data()));
        return out;
      },
      info[1].As<Napi::Object>());
}

const float* trainer_buffer(saco::CodtTrainer& t, const std::string& what, Napi::Env env) {
  if (what == "params") return nullptr;
  if (what == "m") return t.moment1().data();
  if (what == "v") return t.moment2().data();
  throw Napi::TypeError::New(env, "what must be 'params', 'm' or 'v'");
}

// trainerRead(id, 'params' | 'm' | 'v') -> { [name]: Float32Array }
Napi::Value TrainerRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[1].IsString()) throw Napi::TypeError::New(env, "trainerRead(id, what) expects an id and 'params', 'm' or 'v'");
  auto trainer = trainer_from(info[0]);
  const std::string what = info[1].As<Napi::String>().Utf8Value();
  try {
    saco::CodtTrainer::Use use(*trainer);
    return slots_to_js(env, *trainer, trainer_buffer(*trainer, what, env));
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(env, e.what());
  }
}

// trainerWrite(id, 'params' | 'm' | 'v', { [name]: Float32Array }): every parameter, sizes checked
Napi::Value TrainerWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[1].IsString() || !info[2].IsObject()) throw Napi::TypeError::New(env, "trainerWrite(id, what, values) expects an id, 'params', 'm' or 'v', and an object");
  auto trainer = trainer_from(info[0]);
  const std::string what = info[1].As<Napi::String>().Utf8Value();
  Napi::Object values = info[2].As<Napi::Object>();
  const float* flat = trainer_buffer(*trainer, what, env);
  std::vector<std::pair<float*, Span<float>>> copies;
  for (const auto& slot : trainer->slots()) {
    const std::string name = what + "." + slot.shape.name;
    Napi::Value v = values.Get(slot.shape.name);
    if (v.IsUndefined()) throw Napi::TypeError::New(env, name + " is missing");
    Span<float> data = read_typed<float, napi_float32_array>(v, name);
    if (data.size() != slot.shape.size) throw Napi::RangeError::New(env, name + ": expected length " + std::to_string(slot.shape.size) + ", got " + std::to_string(data.size()));
    for (size_t i = 0; i < data.size(); ++i) {
      if (!std::isfinite(data.data()[i])) throw Napi::RangeError::New(env, name + "[" + std::to_string(i) + "] is not finite");
    }
    copies.emplace_back(flat ? const_cast<float*>(flat) + slot.offset : slot.value, data);
  }
  try {
    saco::CodtTrainer::Use use(*trainer);
    for (auto& [dst, src] : copies) std::copy_n(src.data(), src.size(), dst);
  } catch (const std::runtime_error& e) {
    throw Napi::Error::New(env, e.what());
  }
  return env.Undefined();
}

Napi::Value TrainerDispose(const Napi::CallbackInfo& info) {
  if (info.Length() != 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "trainerDispose(id) expects a number");
  return Napi::Boolean::New(info.Env(), saco::trainer_dispose(static_cast<int64_t>(info[0].As<Napi::Number>().DoubleValue())));
}

// gradCheck(what, seed) -> [{ tensor, maxAbsError, maxAbsGrad, checked }]  (tests)
Napi::Value GradCheck(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsString()) throw Napi::TypeError::New(env, "gradCheck(what, seed) expects a name and a seed");
  const std::string what = info[0].As<Napi::String>().Utf8Value();
  const uint64_t seed = read_seed(info[1], "seed");
  std::vector<saco::GradCheckResult> results;
  try {
    results = saco::grad_check(what, seed);
  } catch (const std::exception& e) {
    throw Napi::RangeError::New(env, e.what());
  }
  Napi::Array out = Napi::Array::New(env, results.size());
  for (size_t i = 0; i < results.size(); ++i) {
    Napi::Object r = Napi::Object::New(env);
    r.Set("tensor", results[i].tensor);
    r.Set("maxAbsError", results[i].max_abs_error);
    r.Set("maxAbsGrad", results[i].max_abs_grad);
    r.Set("checked", static_cast<double>(results[i].checked));
    out.Set(static_cast<uint32_t>(i), r);
  }
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("synthSY", Napi::Function::New(env, SynthSY));
  exports.Set("syWeights", Napi::Function::New(env, SyWeights));
  exports.Set("philox4x32", Napi::Function::New(env, Philox));
  exports.Set("pmath", Napi::Function::New(env, PMath));
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
  exports.Set("unloadModel", Napi::Function::New(env, UnloadModel));
  exports.Set("modelCount", Napi::Function::New(env, ModelCount));
  exports.Set("codtForward", Napi::Function::New(env, CodtForward));
  exports.Set("rollout", Napi::Function::New(env, Rollout));
  exports.Set("searchLambda", Napi::Function::New(env, SearchLambda));
  exports.Set("trainerCreate", Napi::Function::New(env, TrainerCreate));
  exports.Set("trainerStep", Napi::Function::New(env, TrainerStep));
  exports.Set("trainerEvaluate", Napi::Function::New(env, TrainerEvaluate));
  exports.Set("trainerGradients", Napi::Function::New(env, TrainerGradients));
  exports.Set("trainerRead", Napi::Function::New(env, TrainerRead));
  exports.Set("trainerWrite", Napi::Function::New(env, TrainerWrite));
  exports.Set("trainerDispose", Napi::Function::New(env, TrainerDispose));
  exports.Set("gradCheck", Napi::Function::New(env, GradCheck));
  Napi::Array checks = Napi::Array::New(env);
  for (const std::string& name : saco::grad_check_names()) checks.Set(checks.Length(), name);
  exports.Set("gradCheckNames", checks);
#ifdef SACO_HAVE_CUDA
  exports.Set("cudaBuilt", Napi::Boolean::New(env, true));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    return Napi::Number::New(i.Env(), saco::cuda_device_count());
  }));
#else
  exports.Set("cudaBuilt", Napi::Boolean::New(env, false));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, [](const Napi::CallbackInfo& i) {
    return Napi::Number::New(i.Env(), 0);
  }));
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(saco, Init)
