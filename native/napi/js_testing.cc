// The test-only addon (build/Release/saco_test.node, not loaded by the library): known-answer
// and cross-language hooks — Philox, our exp/log — the finite-difference gradient checks,
// the bf16 product against its reference, and the bench's GEMM yardstick.
#include <napi.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "args.h"
#include "bf16.h"
#include "floats.h"
#include "gradcheck.h"
#include "layers.h"
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

// bf16Matmul(inp [rows*k], w [k*n], b [n] | null, rows, k, n) -> { kernel, reference }:
// the engine's bf16 product (AMX where this process has it) and the plain-loop reference.
Napi::Value JS_bf16Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 6) throw error(env, "bf16Matmul(inp, w, b, rows, k, n) expects six arguments");
  const int rows = info[3].As<Napi::Number>().Int32Value(), k = info[4].As<Napi::Number>().Int32Value(), n = info[5].As<Napi::Number>().Int32Value();
  if (rows < 1 || k < 1 || n < 1 || rows > 65536 || k > 65536 || n > 65536) throw error(env, "bf16Matmul: sizes in [1, 65536]");
  const std::vector<float> inp = copy_typed<float, napi_float32_array>(info[0], "inp"), w = copy_typed<float, napi_float32_array>(info[1], "w");
  const bool has_bias = !info[2].IsNull() && !info[2].IsUndefined();
  const std::vector<float> b = has_bias ? copy_typed<float, napi_float32_array>(info[2], "b") : std::vector<float>{};
  if (inp.size() != static_cast<size_t>(rows) * k || w.size() != static_cast<size_t>(k) * n || (has_bias && b.size() != static_cast<size_t>(n))) {
    throw error(env, "bf16Matmul: inp must hold rows*k, w k*n and b n values");
  }
  const Bf16Weight packed = pack_bf16(w.data(), k, n);
  Napi::Float32Array kernel = Napi::Float32Array::New(env, static_cast<size_t>(rows) * n), reference = Napi::Float32Array::New(env, static_cast<size_t>(rows) * n);
  matmul_forward_bf16(kernel.Data(), inp.data(), packed, has_bias ? b.data() : nullptr, rows);
  matmul_forward_bf16_ref(reference.Data(), inp.data(), packed, has_bias ? b.data() : nullptr, rows);
  Napi::Object out = Napi::Object::New(env);
  out.Set("kernel", kernel);
  out.Set("reference", reference);
  return out;
}

// gemmBench(rows, k, n, seconds) -> { ours, eigen, bf16, maxAbsDiff }: GFLOP/s of one thread for
// out[rows, n] = inp[rows, k] @ w[k, n] + b with the engine's row kernel, with Eigen's GEMM
// (the same compiler flags) and with the engine's bf16 product, best of five timed batches
// each, alternating.
Napi::Value JS_gemmBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4) throw error(env, "gemmBench(rows, k, n, seconds) expects four numbers");
  const int rows = info[0].As<Napi::Number>().Int32Value(), k = info[1].As<Napi::Number>().Int32Value(), n = info[2].As<Napi::Number>().Int32Value();
  const double seconds = info[3].As<Napi::Number>().DoubleValue();
  if (rows < 1 || k < 1 || n < 1 || rows > 65536 || k > 65536 || n > 65536 || !(seconds > 0)) throw error(env, "gemmBench: sizes in [1, 65536], seconds > 0");
  Floats a(static_cast<size_t>(rows) * k), w(static_cast<size_t>(k) * n), b(static_cast<size_t>(n)), o1(static_cast<size_t>(rows) * n), o2(o1.size()), o3(o1.size());
  CounterStream rng(1, 0, 0, 61);
  for (float& v : a) v = static_cast<float>(rng.uniform() - 0.5);
  for (float& v : w) v = static_cast<float>(rng.uniform() - 0.5);
  for (float& v : b) v = static_cast<float>(rng.uniform() - 0.5);
  const double flop = 2.0 * rows * k * n;
  const auto per_batch = static_cast<int>(std::max(1.0, seconds / 10 * 1e9 / std::max(flop, 1.0) * 20));  // ~seconds/10 at 20 GFLOP/s
  const Bf16Weight packed = pack_bf16(w.data(), k, n);
  double best_ours = 0, best_eigen = 0, best_bf16 = 0;
  for (int rep = 0; rep < 5; ++rep) {
    for (int which = 0; which < 3; ++which) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < per_batch; ++i) {
        if (which == 0) matmul_forward(o1.data(), a.data(), w.data(), b.data(), rows, k, n);
        else if (which == 1) matmul_forward_eigen(o2.data(), a.data(), w.data(), b.data(), rows, k, n);
        else matmul_forward_bf16(o3.data(), a.data(), packed, b.data(), rows);
      }
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      double& best = which == 0 ? best_ours : which == 1 ? best_eigen : best_bf16;
      best = std::max(best, flop * per_batch / dt / 1e9);
    }
  }
  float diff = 0;
  for (size_t i = 0; i < o1.size(); ++i) diff = std::max(diff, std::abs(o1[i] - o2[i]));
  Napi::Object out = Napi::Object::New(env);
  out.Set("ours", best_ours);
  out.Set("eigen", best_eigen);
  out.Set("bf16", best_bf16);
  out.Set("maxAbsDiff", diff);
  return out;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("philox4x32", Napi::Function::New(env, JS_philox4x32));
  exports.Set("pmath", Napi::Function::New(env, JS_pmath));
  exports.Set("gradCheck", Napi::Function::New(env, JS_gradCheck));
  exports.Set("gemmBench", Napi::Function::New(env, JS_gemmBench));
  exports.Set("bf16Matmul", Napi::Function::New(env, JS_bf16Matmul));
  Napi::Array names = Napi::Array::New(env);
  for (const std::string& name : grad_check_names()) names.Set(names.Length(), name);
  exports.Set("gradCheckNames", names);
  return exports;
}

}  // namespace saco::napi

// The module macro needs an unqualified function at global scope.
static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return saco::napi::Init(env, exports); }
NODE_API_MODULE(saco_test, InitModule)
