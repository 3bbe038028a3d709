#include "js_trainer.h"

#include <cmath>
#include <optional>
#include <string>

#include "args.h"
#include "js_model.h"
#include "trainer.h"

namespace saco::napi {
namespace {

std::shared_ptr<CodtTrainer> trainer_from(const Napi::Value& v) {
  const int64_t id = read_id(v, "trainer id");
  auto t = trainer_get(id);
  if (!t) throw error(v.Env(), "trainer " + std::to_string(id) + " does not exist (disposed or never created)", kStateCode);
  return t;
}

// A CodtBatch (src/model/types.ts) copied into C++ memory, sizes and values checked.
TrainBatch read_train_batch(const CodtModel& m, const Napi::Value& v) {
  Napi::Env env = v.Env();
  Napi::Object o = read_object(v, "batch");
  TrainBatch b;
  b.batch = static_cast<int>(read_count(o, "size", 0, 1 << 24, "batch"));
  b.rounds = static_cast<int>(read_count(o, "rounds", 0, 4096, "batch"));
  if (b.batch < 1) throw error(env, "batch.size must be >= 1");
  if (b.rounds < 1 || b.rounds > m.config.context) throw error(env, "batch.rounds must be in [1, " + std::to_string(m.config.context) + "] (the model's context)");
  const size_t bt = static_cast<size_t>(b.batch) * b.rounds;
  struct Field {
    const char* name;
    std::vector<float>* out;
    size_t size;
  };
  const Field fields[] = {{"states", &b.states, bt * m.config.state_dim}, {"rtg", &b.rtg, bt}, {"ctg", &b.ctg, bt},
                          {"actionsOneHot", &b.actions_onehot, bt * m.config.action_width()}, {"lambda", &b.lambda, static_cast<size_t>(b.batch)},
                          {"mask", &b.mask, bt}, {"weights", &b.weights, bt}};
  for (const Field& f : fields) {
    const std::string name = std::string("batch.") + f.name;
    *f.out = copy_typed<float, napi_float32_array>(o.Get(f.name), name);
    if (f.out->size() != f.size) throw error(env, name + ": expected length " + std::to_string(f.size) + ", got " + std::to_string(f.out->size()));
    for (size_t i = 0; i < f.out->size(); ++i) {
      if (!std::isfinite((*f.out)[i])) throw error(env, name + "[" + std::to_string(i) + "] is not finite");
    }
  }
  for (size_t i = 0; i < bt; ++i) {
    if (b.weights[i] < 0) throw error(env, "batch.weights[" + std::to_string(i) + "] is negative");
  }
  return b;
}

struct TrainerBaton {
  std::shared_ptr<CodtTrainer> trainer;
  // Claimed on the main thread when the call is made and released with the baton, so a
  // second call while one is pending is refused whichever libuv thread would run it.
  std::optional<CodtTrainer::Use> use;
  TrainBatch batch;
  float lr = 0;
  int step = 0;
  uint64_t seed = 0;
  bool training = false;
  StepResult stepped;
  EvalResult evaluated;
  double loss = 0;
  std::vector<float> grads;
};

// Marks `t` busy in `use` until `use` is reset; a trainer already busy is a JS error with the state code.
void claim(Napi::Env env, CodtTrainer& t, std::optional<CodtTrainer::Use>& use) {
  try {
    use.emplace(t);
  } catch (const std::runtime_error& e) {
    throw error(env, e.what(), kStateCode);
  }
}

std::unique_ptr<TrainerBaton> baton_for(const Napi::CallbackInfo& info) {
  auto b = std::make_unique<TrainerBaton>();
  b->trainer = trainer_from(info[0]);
  claim(info.Env(), *b->trainer, b->use);
  b->batch = read_train_batch(b->trainer->model(), info[1]);
  return b;
}

// trainerCreate(meta: { config, normalization }, params, options) -> id
Napi::Value JS_trainerCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3) throw error(env, "trainerCreate(meta, params, options) expects three objects");
  auto model = read_model(env, info[0], info[1], false);
  Napi::Object o = read_object(info[2], "options");
  TrainerOptions opt;
  opt.adam.beta1 = static_cast<float>(read_number(o, "beta1", opt.adam.beta1, "options"));
  opt.adam.beta2 = static_cast<float>(read_number(o, "beta2", opt.adam.beta2, "options"));
  opt.adam.eps = static_cast<float>(read_number(o, "eps", opt.adam.eps, "options"));
  opt.adam.weight_decay = static_cast<float>(read_number(o, "weightDecay", opt.adam.weight_decay, "options"));
  opt.adam.grad_clip = static_cast<float>(read_number(o, "gradClip", opt.adam.grad_clip, "options"));
  opt.dropout = static_cast<float>(read_number(o, "dropout", 0, "options"));
  opt.threads = static_cast<unsigned>(read_count(o, "threads", 0, 1024, "options"));
  try {
    return Napi::Number::New(env, static_cast<double>(trainer_create(std::move(model), opt)));
  } catch (const std::exception& e) {
    throw error_from(env, e);
  }
}

// trainerStep(id, batch, lr, step, dropoutSeed) -> Promise<{ loss, gradNorm }>
Napi::Value JS_trainerStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5 || !info[2].IsNumber()) throw error(env, "trainerStep(id, batch, lr, step, dropoutSeed) expects five arguments");
  auto b = baton_for(info);
  const double lr = info[2].As<Napi::Number>().DoubleValue();
  if (!(lr >= 0 && lr <= 1)) throw error(env, "lr must be in [0, 1]");
  b->lr = static_cast<float>(lr);
  const uint64_t step = read_seed(info[3], "step");
  if (step < 1 || step > 2147483647) throw error(env, "step must be in [1, 2^31)");
  b->step = static_cast<int>(step);
  b->seed = read_seed(info[4], "dropoutSeed");
  return Task<TrainerBaton>::Queue(
      env, std::move(b),
      [](TrainerBaton& t) {
        t.stepped = t.trainer->step(t.batch, t.lr, t.step, t.seed);
      },
      [](Napi::Env e, TrainerBaton& t) -> Napi::Value {
        Napi::Object out = Napi::Object::New(e);
        out.Set("loss", t.stepped.loss);
        out.Set("gradNorm", t.stepped.grad_norm);
        return out;
      });
}

// trainerEvaluate(id, batch) -> Promise<{ lossSum, weightSum }>
Napi::Value JS_trainerEvaluate(const Napi::CallbackInfo& info) {
  if (info.Length() != 2) throw error(info.Env(), "trainerEvaluate(id, batch) expects two arguments");
  return Task<TrainerBaton>::Queue(
      info.Env(), baton_for(info),
      [](TrainerBaton& t) {
        t.evaluated = t.trainer->evaluate(t.batch);
      },
      [](Napi::Env e, TrainerBaton& t) -> Napi::Value {
        Napi::Object out = Napi::Object::New(e);
        out.Set("lossSum", t.evaluated.loss_sum);
        out.Set("weightSum", t.evaluated.weight_sum);
        return out;
      });
}

// { [name]: Float32Array } of a flat buffer in the trainer's parameter layout (null: the weights).
Napi::Object slots_to_js(Napi::Env env, const CodtTrainer& t, const float* flat) {
  Napi::Object out = Napi::Object::New(env);
  for (const auto& slot : t.slots()) {
    const float* src = flat ? flat + slot.offset : slot.value;
    out.Set(slot.shape.name, to_float32(env, std::vector<float>(src, src + slot.shape.size)));
  }
  return out;
}

// trainerGradients(id, batch, training, dropoutSeed) -> Promise<{ loss, grads: { [name]: Float32Array } }>
Napi::Value JS_trainerGradients(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4 || !info[2].IsBoolean()) throw error(env, "trainerGradients(id, batch, training, dropoutSeed) expects four arguments");
  auto b = baton_for(info);
  b->training = info[2].As<Napi::Boolean>().Value();
  b->seed = read_seed(info[3], "dropoutSeed");
  return Task<TrainerBaton>::Queue(
      env, std::move(b),
      [](TrainerBaton& t) {
        t.loss = t.trainer->compute_gradients(t.batch, t.seed, t.training);
        t.grads.assign(t.trainer->gradient().begin(), t.trainer->gradient().end());
      },
      [](Napi::Env e, TrainerBaton& t) -> Napi::Value {
        Napi::Object out = Napi::Object::New(e);
        out.Set("loss", t.loss);
        out.Set("grads", slots_to_js(e, *t.trainer, t.grads.data()));
        return out;
      });
}

const float* trainer_buffer(CodtTrainer& t, const std::string& what, Napi::Env env) {
  if (what == "params") return nullptr;
  if (what == "m") return t.moment1().data();
  if (what == "v") return t.moment2().data();
  throw error(env, "what must be 'params', 'm' or 'v'");
}

// trainerRead(id, 'params' | 'm' | 'v') -> { [name]: Float32Array }
Napi::Value JS_trainerRead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[1].IsString()) throw error(env, "trainerRead(id, what) expects an id and 'params', 'm' or 'v'");
  auto trainer = trainer_from(info[0]);
  const std::string what = info[1].As<Napi::String>().Utf8Value();
  std::optional<CodtTrainer::Use> use;
  claim(env, *trainer, use);
  return slots_to_js(env, *trainer, trainer_buffer(*trainer, what, env));
}

// trainerWrite(id, 'params' | 'm' | 'v', { [name]: Float32Array }): every parameter, sizes checked
Napi::Value JS_trainerWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[1].IsString()) throw error(env, "trainerWrite(id, what, values) expects an id, 'params', 'm' or 'v', and an object");
  auto trainer = trainer_from(info[0]);
  const std::string what = info[1].As<Napi::String>().Utf8Value();
  Napi::Object values = read_object(info[2], "values");
  const float* flat = trainer_buffer(*trainer, what, env);
  std::vector<std::pair<float*, std::vector<float>>> copies;
  for (const auto& slot : trainer->slots()) {
    const std::string name = what + "." + slot.shape.name;
    Napi::Value v = values.Get(slot.shape.name);
    if (v.IsUndefined()) throw error(env, name + " is missing");
    std::vector<float> data = copy_typed<float, napi_float32_array>(v, name);
    if (data.size() != slot.shape.size) throw error(env, name + ": expected length " + std::to_string(slot.shape.size) + ", got " + std::to_string(data.size()));
    for (size_t i = 0; i < data.size(); ++i) {
      if (!std::isfinite(data[i])) throw error(env, name + "[" + std::to_string(i) + "] is not finite");
    }
    copies.emplace_back(flat ? const_cast<float*>(flat) + slot.offset : slot.value, std::move(data));
  }
  std::optional<CodtTrainer::Use> use;
  claim(env, *trainer, use);
  for (auto& [dst, src] : copies) std::copy(src.begin(), src.end(), dst);
  return env.Undefined();
}

Napi::Value JS_trainerDispose(const Napi::CallbackInfo& info) {
  if (info.Length() != 1) throw error(info.Env(), "trainerDispose(id) expects a number");
  return Napi::Boolean::New(info.Env(), trainer_dispose(read_id(info[0], "trainer id")));
}

}  // namespace

void init_trainer(Napi::Env env, Napi::Object exports) {
  exports.Set("trainerCreate", Napi::Function::New(env, JS_trainerCreate));
  exports.Set("trainerStep", Napi::Function::New(env, JS_trainerStep));
  exports.Set("trainerEvaluate", Napi::Function::New(env, JS_trainerEvaluate));
  exports.Set("trainerGradients", Napi::Function::New(env, JS_trainerGradients));
  exports.Set("trainerRead", Napi::Function::New(env, JS_trainerRead));
  exports.Set("trainerWrite", Napi::Function::New(env, JS_trainerWrite));
  exports.Set("trainerDispose", Napi::Function::New(env, JS_trainerDispose));
}

}  // namespace saco::napi
