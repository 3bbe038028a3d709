// The only file that knows V8 exists: argument checks, conversions and AsyncWorkers.
// Everything else in native/ works on plain structs and spans.
#include <napi.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "cuda_device.h"
#include "env.h"
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

// ---- synthSY: async generation into caller-owned typed arrays --------------------------

class SynthWorker : public Napi::AsyncWorker {
 public:
  SynthWorker(Napi::Env env, saco::SyConfig config, saco::SyLogView view, Napi::Object keep_alive)
      : Napi::AsyncWorker(env), config_(std::move(config)), view_(view),
        deferred_(Napi::Promise::Deferred::New(env)) {
    keep_alive_ = Napi::Persistent(keep_alive);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      saco::generate_sy(config_, view_);
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  saco::SyConfig config_;
  saco::SyLogView view_;
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference keep_alive_;
};

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
  auto* worker = new SynthWorker(env, std::move(config), view, out);  // owned by libuv: deleted after OnOK/OnError
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
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

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("synthSY", Napi::Function::New(env, SynthSY));
  exports.Set("syWeights", Napi::Function::New(env, SyWeights));
  exports.Set("philox4x32", Napi::Function::New(env, Philox));
  exports.Set("pmath", Napi::Function::New(env, PMath));
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
