// The test-only addon (build/Release/saco_test.node, not loaded by the library): known-answer
// and cross-language hooks — Philox, our exp/log — and the finite-difference gradient checks.
#include <napi.h>

#include <string>

#include "args.h"
#include "gradcheck.h"
#include "pmath.h"
#include "rng.h"

namespace saco::napi {
namespace {

// philox4x32(counter: Uint32Array(4), key: Uint32Array(2)) -> Uint32Array(4)
Napi::Value JS_philox4x32(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) throw error(env, "philox4x32(counter, key) expects two Uint32Arrays");
  const auto c = copy_typed<uint32_t, napi_uint32_array>(info[0], "counter");
  const auto k = copy_typed<uint32_t, napi_uint32_array>(info[1], "key");
  if (c.size() != 4 || k.size() != 2) throw error(env, "counter needs 4 words and key 2");
  const Philox4x32 r = philox4x32_10(c[0], c[1], c[2], c[3], k[0], k[1]);
  Napi::Uint32Array out = Napi::Uint32Array::New(env, 4);
  for (size_t i = 0; i < 4; ++i) out[i] = r.v[i];
  return out;
}

// pmath(name: 'exp' | 'log', x: Float64Array) -> Float64Array
Napi::Value JS_pmath(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsString()) throw error(env, "pmath(name, values) expects a name and a Float64Array");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name != "exp" && name != "log") throw error(env, "pmath name must be 'exp' or 'log'");
  std::vector<double> x = copy_typed<double, napi_float64_array>(info[1], "values");
  for (double& v : x) v = name == "exp" ? pmath::exp(v) : pmath::log(v);
  return to_float64(env, std::move(x));
}

// gradCheck(what, seed) -> [{ tensor, maxAbsError, maxAbsGrad, checked }]
Napi::Value JS_gradCheck(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsString()) throw error(env, "gradCheck(what, seed) expects a name and a seed");
  std::vector<GradCheckResult> results;
  try {
    results = grad_check(info[0].As<Napi::String>().Utf8Value(), read_seed(info[1], "seed"));
  } catch (const std::exception& e) {
    throw error_from(env, e);
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

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("philox4x32", Napi::Function::New(env, JS_philox4x32));
  exports.Set("pmath", Napi::Function::New(env, JS_pmath));
  exports.Set("gradCheck", Napi::Function::New(env, JS_gradCheck));
  Napi::Array names = Napi::Array::New(env);
  for (const std::string& name : grad_check_names()) names.Set(names.Length(), name);
  exports.Set("gradCheckNames", names);
  return exports;
}

}  // namespace saco::napi

// The module macro needs an unqualified function at global scope.
static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return saco::napi::Init(env, exports); }
NODE_API_MODULE(saco_test, InitModule)
