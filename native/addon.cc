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
#include "codt_cuda.h"
#include "cuda_device.h"
#include "dual.h"
#include "env.h"
#include "model_pool.h"
#include "pool.h"
#include "rollout.h"
#include "pmath.h"
#include "rng.h"
#include "tensor.h"

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

// loadModel(meta: { config, normalization, targets }, params: { [name]: Float32Array }) -> id
Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsObject() || !info[1].IsObject()) throw Napi::TypeError::New(env, "loadModel(meta, params) expects two objects");
  Napi::Object meta = info[0].As<Napi::Object>();
  Napi::Value cv = meta.Get("config");
  Napi::Value nv = meta.Get("normalization");
  Napi::Value tv = meta.Get("targets");
  if (!cv.IsObject() || !nv.IsObject() || !tv.IsObject()) throw Napi::TypeError::New(env, "meta needs config, normalization and targets objects");
  Napi::Object c = cv.As<Napi::Object>();
  Napi::Object n = nv.As<Napi::Object>();
  Napi::Object t = tv.As<Napi::Object>();
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
  model->targets.lambdas = read_number_array(t.Get("lambdas"), "targets.lambdas");
  model->targets.rtg = read_number_array(t.Get("rtg"), "targets.rtg");
  model->targets.ctg = read_number_array(t.Get("ctg"), "targets.ctg");
  Napi::Object params = info[1].As<Napi::Object>();
  Napi::Array names = params.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    const std::string name = names.Get(i).As<Napi::String>().Utf8Value();
    Span<float> data = read_typed<float, napi_float32_array>(params.Get(name), "params." + name);
    model->params[name] = std::vector<float>(data.data(), data.data() + data.size());
  }
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
