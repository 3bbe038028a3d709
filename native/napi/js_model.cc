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

// loadModel(meta: { config, normalization, targets }, params: { [name]: Float32Array }) -> id
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

// args: (id, inputs, mode); the synchronous entry passes its own.
std::unique_ptr<ForwardBaton> read_forward(const Napi::CallbackInfo& info, const Napi::Value* given = nullptr) {
  Napi::Env env = info.Env();
  if (given == nullptr && (info.Length() != 3 || !info[2].IsString())) throw error(env, "codtForward(id, inputs, mode) expects a model id, an object and 'full', 'incremental' or 'cuda'");
  const Napi::Value id = given ? given[0] : info[0], inputs = given ? given[1] : info[1], mode_value = given ? given[2] : info[2];
  auto b = std::make_unique<ForwardBaton>();
  b->model = model_from(id);
  const CodtConfig& c = b->model->config;
  const std::string mode = mode_value.As<Napi::String>().Utf8Value();
  if (mode == "full") b->mode = ForwardMode::kFull;
  else if (mode == "incremental") b->mode = ForwardMode::kIncremental;
  else if (mode == "cuda") b->mode = ForwardMode::kCuda;
  else throw error(env, "mode must be 'full', 'incremental' or 'cuda'");
  Napi::Object o = read_object(inputs, "inputs");
  b->batch = static_cast<int>(read_count(o, "batch", 0, 1e7, "inputs"));
  b->rounds = static_cast<int>(read_count(o, "rounds", 0, 4096, "inputs"));
  if (b->batch < 1) throw error(env, "inputs.batch must be >= 1");
  if (b->rounds < 1 || b->rounds > c.context) throw error(env, "inputs.rounds must be in [1, " + std::to_string(c.context) + "] (the model's context)");
  const size_t bt = static_cast<size_t>(b->batch) * b->rounds;
  struct Field {
    const char* name;
    std::vector<float>* out;
    size_t size;
  };
  const Field fields[] = {{"states", &b->states, bt * c.state_dim}, {"rtg", &b->rtg, bt}, {"ctg", &b->ctg, bt},
                          {"actionsOneHot", &b->actions, bt * c.action_width()}, {"lambda", &b->lambda, static_cast<size_t>(b->batch)}};
  for (const Field& f : fields) {
    const std::string name = std::string("inputs.") + f.name;
    *f.out = copy_typed<float, napi_float32_array>(o.Get(f.name), name);
    if (f.out->size() != f.size) throw error(env, name + ": expected length " + std::to_string(f.size) + ", got " + std::to_string(f.out->size()));
    for (size_t i = 0; i < f.out->size(); ++i) {
      if (!std::isfinite((*f.out)[i])) throw error(env, name + "[" + std::to_string(i) + "] is non-finite (NaN or Inf)");
    }
  }
  b->logits.resize(bt * c.action_width());
  return b;
}

void run_forward(ForwardBaton& b) {
  const SequenceBatch in{b.batch, b.rounds, b.states.data(), b.rtg.data(), b.ctg.data(), b.actions.data(), b.lambda.data()};
  if (b.mode == ForwardMode::kIncremental) {
    codt_forward_incremental(*b.model, in, b.logits.data(), 0);
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

// codtForwardSync(id, inputs) -> Float32Array [1, T, K]: one user, on the calling thread
// (microseconds of work, less than a thread hop; decideSync() in TypeScript).
Napi::Value JS_codtForwardSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) throw error(env, "codtForwardSync(id, inputs) expects a model id and an object");
  const Napi::Value args[] = {info[0], info[1], Napi::String::New(env, "incremental")};
  std::unique_ptr<ForwardBaton> b = read_forward(info, args);
  if (b->batch != 1) throw error(env, "codtForwardSync computes one user (inputs.batch 1); use codtForward for more");
  try {
    run_forward(*b);
  } catch (const std::exception& e) {
    throw error_from(env, e);
  }
  return to_float32(env, std::move(b->logits));
}

}  // namespace

void init_model(Napi::Env env, Napi::Object exports) {
  exports.Set("loadModel", Napi::Function::New(env, JS_loadModel));
  exports.Set("unloadModel", Napi::Function::New(env, JS_unloadModel));
  exports.Set("modelCount", Napi::Function::New(env, JS_modelCount));
  exports.Set("codtForward", Napi::Function::New(env, JS_codtForward));
  exports.Set("codtForwardSync", Napi::Function::New(env, JS_codtForwardSync));
}

}  // namespace saco::napi
