#include "js_model.h"

#include <cmath>
#include <string>

#include "args.h"
#include "codt_cuda.h"
#include "codt_sequence.h"
#include "model_pool.h"

namespace saco::napi {

std::unique_ptr<CodtModel> read_model(Napi::Env env, const Napi::Value& meta_value, const Napi::Value& params_value, bool need_targets) {
  Napi::Object meta = read_object(meta_value, "meta");
  Napi::Object c = read_object(meta.Get("config"), "meta.config");
  Napi::Object n = read_object(meta.Get("normalization"), "meta.normalization");
  Napi::Value tv = meta.Get("targets");
  if (need_targets && !tv.IsObject()) throw error(env, "meta.targets must be an object");
  auto model = std::make_unique<CodtModel>();
  CodtConfig& cfg = model->config;
  cfg.state_dim = static_cast<int>(read_count(c, "stateDim", 0, 100000, "config"));
  cfg.context = static_cast<int>(read_count(c, "context", 0, 4096, "config"));
  cfg.d_model = static_cast<int>(read_count(c, "dModel", 0, 8192, "config"));
  cfg.layers = static_cast<int>(read_count(c, "layers", 0, 64, "config"));
  cfg.heads = static_cast<int>(read_count(c, "heads", 0, 256, "config"));
  for (double k : read_number_array(c.Get("actionSizes"), "config.actionSizes")) cfg.action_sizes.push_back(static_cast<int>(k));
  const std::string variant = read_string(c, "variant", "", "config");
  if (variant == "no-constraint") {
    cfg.uses_ctg = false;
    cfg.uses_lambda = false;
  } else if (variant == "no-rtg") {
    cfg.uses_rtg = false;
  } else if (variant != "expected" && variant != "weighted" && variant != "literal") {
    throw error(env, "config.variant must be expected, weighted, literal, no-constraint or no-rtg");
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
  const std::string precision = read_string(meta, "precision", "fp32", "meta");
  if (precision != "fp32" && precision != "bf16") throw error(env, "meta.precision must be fp32 or bf16, got " + precision);
  model->precision = precision == "bf16" ? Precision::kBf16 : Precision::kFp32;
  Napi::Object params = read_object(params_value, "params");
  Napi::Array names = params.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    const std::string name = names.Get(i).As<Napi::String>().Utf8Value();
    model->params[name] = copy_typed<float, napi_float32_array>(params.Get(name), "params." + name);
  }
  return model;
}

std::shared_ptr<const CodtModel> model_from(const Napi::Value& v) {
  const int64_t id = read_id(v, "model id");
  auto model = pool_get(id);
  if (!model) throw error(v.Env(), "model " + std::to_string(id) + " is not loaded (unloaded or never loaded)", kStateCode);
  return model;
}

namespace {

// loadModel(meta: { config, normalization, targets, precision? }, params: { [name]: Float32Array }) -> id
Napi::Value JS_loadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) throw error(env, "loadModel(meta, params) expects two objects");
  auto model = read_model(env, info[0], info[1], true);
  try {
    return Napi::Number::New(env, static_cast<double>(pool_load(std::move(model))));
  } catch (const std::exception& e) {
    throw error_from(env, e);
  }
}

// bf16Hardware() -> whether precision bf16 runs on AMX's tiles in this process
Napi::Value JS_bf16Hardware(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), amx_available()); }

Napi::Value JS_unloadModel(const Napi::CallbackInfo& info) {
  if (info.Length() != 1) throw error(info.Env(), "unloadModel(id) expects a number");
  return Napi::Boolean::New(info.Env(), pool_unload(read_id(info[0], "model id")));
}

Napi::Value JS_modelCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(pool_size())); }

enum class ForwardMode { kFull, kIncremental, kCuda };

struct ForwardBaton {
  std::shared_ptr<const CodtModel> model;
  ForwardMode mode = ForwardMode::kIncremental;
  int batch = 0, rounds = 0;
  std::vector<float> states, rtg, ctg, actions, lambda;
  std::vector<float> logits;
  std::string device = "cpu";
};

// A float32 input of `size` finite values, read in place (the caller copies it, or reads it
// before returning to JavaScript).
const float* float_input(Napi::Env env, const Napi::Value& v, const char* name, size_t size) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) throw error(env, std::string(name) + " has the wrong typed-array type");
  Napi::Float32Array arr = v.As<Napi::Float32Array>();
  if (arr.ElementLength() != size) throw error(env, std::string(name) + ": expected length " + std::to_string(size) + ", got " + std::to_string(arr.ElementLength()));
  const float* data = arr.Data();
  for (size_t i = 0; i < size; ++i) {
    if (!std::isfinite(data[i])) throw error(env, std::string(name) + "[" + std::to_string(i) + "] is non-finite (NaN or Inf)");
  }
  return data;
}

void check_rounds(Napi::Env env, const CodtConfig& c, double rounds) {
  if (!(rounds >= 1 && rounds <= c.context) || std::floor(rounds) != rounds) throw error(env, "inputs.rounds must be in [1, " + std::to_string(c.context) + "] (the model's context)");
}

// A forward call's arrays (states, rtg, ctg, actionsOneHot, lambda), checked and read in
// place for `batch` users over `rounds` (check_rounds first): a SequenceBatch over the
// JavaScript memory, valid until the call returns to JavaScript or allocates JS values
// (allocate first, then read).
SequenceBatch read_arrays(Napi::Env env, const CodtConfig& c, int batch, int rounds, const Napi::Value (&arrays)[5]) {
  if (batch < 1) throw error(env, "inputs.batch must be >= 1");
  SequenceBatch in;
  in.batch = batch;
  in.rounds = rounds;
  const size_t bt = static_cast<size_t>(batch) * rounds;
  in.states = float_input(env, arrays[0], "inputs.states", bt * c.state_dim);
  in.rtg = float_input(env, arrays[1], "inputs.rtg", bt);
  in.ctg = float_input(env, arrays[2], "inputs.ctg", bt);
  in.actions_onehot = float_input(env, arrays[3], "inputs.actionsOneHot", bt * c.action_width());
  in.lambda = float_input(env, arrays[4], "inputs.lambda", static_cast<size_t>(batch));
  return in;
}

// The inputs object of a forward call, its arrays read in place (read_arrays).
SequenceBatch read_inputs(Napi::Env env, const CodtModel& model, const Napi::Value& inputs) {
  Napi::Object o = read_object(inputs, "inputs");
  const int batch = static_cast<int>(read_count(o, "batch", 0, 1e7, "inputs"));
  const int rounds = static_cast<int>(read_count(o, "rounds", 0, 4096, "inputs"));
  check_rounds(env, model.config, rounds);
  // every property read (a getter may run JavaScript) before any array is read in place
  const Napi::Value arrays[5] = {o.Get("states"), o.Get("rtg"), o.Get("ctg"), o.Get("actionsOneHot"), o.Get("lambda")};
  return read_arrays(env, model.config, batch, rounds, arrays);
}

// args: (id, inputs, mode): the inputs copied for the worker thread.
std::unique_ptr<ForwardBaton> read_forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[2].IsString()) throw error(env, "codtForward(id, inputs, mode) expects a model id, an object and 'full', 'incremental' or 'cuda'");
  auto b = std::make_unique<ForwardBaton>();
  b->model = model_from(info[0]);
  const CodtConfig& c = b->model->config;
  const std::string mode = info[2].As<Napi::String>().Utf8Value();
  if (mode == "full") b->mode = ForwardMode::kFull;
  else if (mode == "incremental") b->mode = ForwardMode::kIncremental;
  else if (mode == "cuda") b->mode = ForwardMode::kCuda;
  else throw error(env, "mode must be 'full', 'incremental' or 'cuda'");
  const SequenceBatch in = read_inputs(env, *b->model, info[1]);
  b->batch = in.batch;
  b->rounds = in.rounds;
  const size_t bt = static_cast<size_t>(in.batch) * in.rounds;
  b->states.assign(in.states, in.states + bt * c.state_dim);
  b->rtg.assign(in.rtg, in.rtg + bt);
  b->ctg.assign(in.ctg, in.ctg + bt);
  b->actions.assign(in.actions_onehot, in.actions_onehot + bt * c.action_width());
  b->lambda.assign(in.lambda, in.lambda + in.batch);
  b->logits.resize(bt * c.action_width());
  return b;
}

void run_forward(ForwardBaton& b) {
  const SequenceBatch in{b.batch, b.rounds, b.states.data(), b.rtg.data(), b.ctg.data(), b.actions.data(), b.lambda.data()};
  if (b.mode == ForwardMode::kIncremental) {
    codt_forward_incremental(*b.model, in, b.logits.data(), 0, true, true);
    return;
  }
#ifdef SACO_HAVE_CUDA
  std::string why;  // no device (or a device error): the CPU computes it, and says so
  if (b.mode == ForwardMode::kCuda && codt_forward_full_cuda(*b.model, in, b.logits.data(), why)) {
    b.device = "cuda";
    return;
  }
#endif
  codt_forward_full(*b.model, in, b.logits.data());
}

Napi::Value forward_result(Napi::Env env, ForwardBaton& b) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("logits", to_float32(env, std::move(b.logits)));
  out.Set("device", b.device);
  return out;
}

// codtForward(id, inputs, mode) -> Promise<{ logits: Float32Array [B, T, K], device: 'cpu' | 'cuda' }>
Napi::Value JS_codtForward(const Napi::CallbackInfo& info) {
  return Task<ForwardBaton>::Queue(info.Env(), read_forward(info), run_forward, forward_result);
}

// codtForwardSync(id, rounds, states, rtg, ctg, actionsOneHot, lambda[, logits]) -> logits
// [1, T, K]: one user, on the calling thread (microseconds of work, less than a thread hop;
// decideSync() in TypeScript). The arrays are passed one by one (a property read by name
// costs a string lookup each) and read in place (an ArrayBuffer's memory never moves, and no
// JavaScript runs until this returns); the logits are written into `logits` when given (a
// caller's reused array: no new ArrayBuffer per call), else into a new array.
Napi::Value JS_codtForwardSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 7 && info.Length() != 8) throw error(env, "codtForwardSync(id, rounds, states, rtg, ctg, actionsOneHot, lambda[, logits]) expects 7 or 8 arguments");
  const std::shared_ptr<const CodtModel> model = model_from(info[0]);
  const CodtConfig& c = model->config;
  if (!info[1].IsNumber()) throw error(env, "rounds must be a number");
  const double r = info[1].As<Napi::Number>().DoubleValue();
  check_rounds(env, c, r);
  const int rounds = static_cast<int>(r);
  const size_t out_size = static_cast<size_t>(rounds) * c.action_width();
  // the result array first: allocating a JS value after reading the inputs in place is what read_arrays forbids
  Napi::Float32Array logits;
  if (info.Length() == 8 && !info[7].IsUndefined()) {
    if (!info[7].IsTypedArray() || info[7].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) throw error(env, "logits must be a Float32Array");
    logits = info[7].As<Napi::Float32Array>();
    if (logits.ElementLength() != out_size) throw error(env, "logits: expected length " + std::to_string(out_size) + ", got " + std::to_string(logits.ElementLength()));
  } else {
    logits = Napi::Float32Array::New(env, out_size);
  }
  const Napi::Value arrays[5] = {info[2], info[3], info[4], info[5], info[6]};
  const SequenceBatch in = read_arrays(env, c, 1, rounds, arrays);
  try {
    codt_forward_incremental(*model, in, logits.Data(), 1, true, true);
  } catch (const std::exception& e) {
    throw error_from(env, e);
  }
  return logits;
}

// decisionCache(id[, capacityBytes]) -> { capacity, bytes, entries, hits, misses }: the model's
// decision cache (codt.h keep_decisions), its capacity first set when given (0: off).
Napi::Value JS_decisionCache(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || info.Length() > 2) throw error(env, "decisionCache(id[, capacityBytes]) expects a model id and an optional byte count");
  const std::shared_ptr<const CodtModel> model = model_from(info[0]);
  if (info.Length() == 2) {
    if (!info[1].IsNumber()) throw error(env, "capacityBytes must be a number");
    const double bytes = info[1].As<Napi::Number>().DoubleValue();
    if (!(bytes >= 0 && bytes <= 9.0e15) || std::floor(bytes) != bytes) throw error(env, "capacityBytes must be an integer >= 0");
    model->decisions.set_capacity(static_cast<size_t>(bytes));
  }
  const DecisionCache::Stats st = model->decisions.stats();
  Napi::Object out = Napi::Object::New(env);
  out.Set("capacity", static_cast<double>(st.capacity));
  out.Set("bytes", static_cast<double>(st.bytes));
  out.Set("entries", static_cast<double>(st.entries));
  out.Set("hits", static_cast<double>(st.hits));
  out.Set("misses", static_cast<double>(st.misses));
  return out;
}

}  // namespace

void init_model(Napi::Env env, Napi::Object exports) {
  exports.Set("loadModel", Napi::Function::New(env, JS_loadModel));
  exports.Set("unloadModel", Napi::Function::New(env, JS_unloadModel));
  exports.Set("bf16Hardware", Napi::Function::New(env, JS_bf16Hardware));
  exports.Set("modelCount", Napi::Function::New(env, JS_modelCount));
  exports.Set("codtForward", Napi::Function::New(env, JS_codtForward));
  exports.Set("codtForwardSync", Napi::Function::New(env, JS_codtForwardSync));
  exports.Set("decisionCache", Napi::Function::New(env, JS_decisionCache));
}

}  // namespace saco::napi
