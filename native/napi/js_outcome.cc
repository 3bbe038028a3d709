#include "js_outcome.h"

#include <cmath>
#include <cstring>
#include <string>

#include "args.h"

namespace saco::napi {

std::shared_ptr<const OutcomeModel> outcome_from(const Napi::Value& v) {
  const int64_t id = read_id(v, "outcome model id");
  auto model = outcome_get(id);
  if (!model) throw error(v.Env(), "outcome model " + std::to_string(id) + " does not exist (disposed or never created)", kStateCode);
  return model;
}

namespace {

Napi::Uint8Array to_uint8(Napi::Env env, const std::vector<uint8_t>& bytes) {
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, bytes.size());
  if (!bytes.empty()) std::memcpy(buffer.Data(), bytes.data(), bytes.size());
  return Napi::Uint8Array::New(env, bytes.size(), buffer, 0);
}

std::vector<float> read_floats(const Napi::Object& o, const char* key, size_t size, const std::string& where) {
  const std::string name = where + "." + key;
  std::vector<float> v = copy_typed<float, napi_float32_array>(o.Get(key), name);
  if (v.size() != size) throw error(o.Env(), name + ": expected length " + std::to_string(size) + ", got " + std::to_string(v.size()));
  return v;
}

OutcomeParams read_params(const Napi::Value& v) {
  OutcomeParams p;
  if (v.IsUndefined()) return p;
  Napi::Object o = read_object(v, "spec.params");
  const std::string where = "spec.params";
  p.rounds = static_cast<int>(read_count(o, "rounds", p.rounds, 100000, where));
  p.depth = static_cast<int>(read_count(o, "depth", p.depth, 20, where));
  p.eta = read_number(o, "eta", p.eta, where);
  p.subsample = read_number(o, "subsample", p.subsample, where);
  p.min_child_weight = read_number(o, "minChildWeight", p.min_child_weight, where);
  p.lambda = read_number(o, "lambda", p.lambda, where);
  p.max_bin = static_cast<int>(read_count(o, "maxBin", p.max_bin, 65536, where));
  p.early_stopping = static_cast<int>(read_count(o, "earlyStopping", p.early_stopping, 100000, where));
  p.tolerance = read_number(o, "tolerance", p.tolerance, where);
  p.seed = read_count(o, "seed", 0, 9007199254740991.0, where);
  p.threads = static_cast<unsigned>(read_count(o, "threads", 0, 1024, where));
  return p;
}

struct FitBaton {
  OutcomeSpec spec;
  int64_t id = 0;
};

// outcomeFit(spec) -> Promise<id>. spec: { rows, cols, features: Float32Array [rows*cols],
// reward, cost: Float32Array [rows], weights?: Float32Array, validation?: Uint8Array,
// heads?: { reward?, cost? }, nextFrom?: number[], next?: Float32Array [rows*k],
// zeroCostColumns?: number[], names?: string[], meta?: string, params?: { rounds, depth, eta,
// subsample, minChildWeight, lambda, maxBin, earlyStopping, tolerance, seed, threads } }
Napi::Value JS_outcomeFit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) throw error(env, "outcomeFit(spec) expects an object");
  Napi::Object o = read_object(info[0], "spec");
  auto b = std::make_unique<FitBaton>();
  OutcomeSpec& s = b->spec;
  s.rows = read_count(o, "rows", 0, 2147483647.0, "spec");
  s.cols = read_count(o, "cols", 0, 1 << 20, "spec");
  if (s.rows < 1 || s.cols < 1) throw error(env, "spec.rows and spec.cols must be >= 1");
  s.features = read_floats(o, "features", s.rows * s.cols, "spec");
  s.reward = read_floats(o, "reward", s.rows, "spec");
  s.cost = read_floats(o, "cost", s.rows, "spec");
  if (!o.Get("weights").IsUndefined()) s.weights = read_floats(o, "weights", s.rows, "spec");
  if (!o.Get("validation").IsUndefined()) {
    s.validation = copy_typed<uint8_t, napi_uint8_array>(o.Get("validation"), "spec.validation");
    if (s.validation.size() != s.rows) throw error(env, "spec.validation: expected length " + std::to_string(s.rows));
  }
  Napi::Value heads = o.Get("heads");
  if (!heads.IsUndefined()) {
    Napi::Object h = read_object(heads, "spec.heads");
    s.fit_reward = read_bool(h, "reward", true, "spec.heads");
    s.fit_cost = read_bool(h, "cost", true, "spec.heads");
  }
  if (!o.Get("nextFrom").IsUndefined()) {
    for (double j : read_number_array(o.Get("nextFrom"), "spec.nextFrom")) {
      if (j < 0 || j >= static_cast<double>(s.cols) || std::floor(j) != j) throw error(env, "spec.nextFrom holds a column outside [0, cols)");
      s.next_from.push_back(static_cast<int32_t>(j));
    }
    s.next = read_floats(o, "next", s.rows * s.next_from.size(), "spec");
  }
  if (!o.Get("zeroCostColumns").IsUndefined()) {
    for (double j : read_number_array(o.Get("zeroCostColumns"), "spec.zeroCostColumns")) {
      if (j < 0 || j >= static_cast<double>(s.cols) || std::floor(j) != j) throw error(env, "spec.zeroCostColumns holds a column outside [0, cols)");
      s.zero_cost_columns.push_back(static_cast<int32_t>(j));
    }
  }
  Napi::Value names = o.Get("names");
  if (!names.IsUndefined()) {
    if (!names.IsArray()) throw error(env, "spec.names must be an array of strings");
    Napi::Array a = names.As<Napi::Array>();
    for (uint32_t j = 0; j < a.Length(); ++j) {
      if (!a.Get(j).IsString()) throw error(env, "spec.names must hold strings");
      s.names.push_back(a.Get(j).As<Napi::String>().Utf8Value());
    }
  }
  s.meta = read_string(o, "meta", "", "spec");
  s.params = read_params(o.Get("params"));
  return Task<FitBaton>::Queue(
      env, std::move(b), [](FitBaton& fb) { fb.id = outcome_add(OutcomeModel::fit(fb.spec)); },
      [](Napi::Env e, FitBaton& fb) -> Napi::Value { return Napi::Number::New(e, static_cast<double>(fb.id)); });
}

struct PredictBaton {
  std::shared_ptr<const OutcomeModel> model;
  uint64_t rows = 0;
  unsigned threads = 0;
  std::vector<float> features, reward, cost;
  std::vector<float> p_reward, e_reward, p_cost, e_cost, next;
};

void run_predict(PredictBaton& b) {
  const OutcomeModel& m = *b.model;
  if (m.has_reward()) b.p_reward.resize(b.rows), b.e_reward.resize(b.rows);
  if (m.has_cost()) b.p_cost.resize(b.rows), b.e_cost.resize(b.rows);
  auto ptr = [](std::vector<float>& v) { return v.empty() ? nullptr : v.data(); };
  if (m.has_reward() || m.has_cost()) {
    m.predict(b.features.data(), b.rows, ptr(b.p_reward), ptr(b.e_reward), ptr(b.p_cost), ptr(b.e_cost), b.threads);
  }
  if (!b.reward.empty()) {
    b.next.resize(b.rows * m.next_count());
    m.predict_next(b.features.data(), b.reward.data(), b.cost.data(), b.rows, b.next.data(), b.threads);
  }
}

Napi::Value predict_result(Napi::Env env, PredictBaton& b) {
  Napi::Object out = Napi::Object::New(env);
  if (b.model->has_reward()) {
    out.Set("pReward", to_float32(env, std::move(b.p_reward)));
    out.Set("eReward", to_float32(env, std::move(b.e_reward)));
  }
  if (b.model->has_cost()) {
    out.Set("pCost", to_float32(env, std::move(b.p_cost)));
    out.Set("eCost", to_float32(env, std::move(b.e_cost)));
  }
  if (!b.reward.empty()) out.Set("next", to_float32(env, std::move(b.next)));
  return out;
}

// outcomePredict(id, features: Float32Array [n*p], options?: { reward?, cost?: Float32Array [n]
// (the realised outcome: adds `next` [n*k]), threads? }) -> Promise<{ pReward, eReward, pCost,
// eCost, next? }> (the heads the model has)
Napi::Value JS_outcomePredict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || info.Length() > 3) throw error(env, "outcomePredict(id, features, options?) expects an id and a Float32Array");
  auto b = std::make_unique<PredictBaton>();
  b->model = outcome_from(info[0]);
  const uint64_t p = b->model->cols();
  b->features = copy_typed<float, napi_float32_array>(info[1], "features");
  if (b->features.size() % p != 0) throw error(env, "features: length " + std::to_string(b->features.size()) + " is not a multiple of the model's " + std::to_string(p) + " columns");
  b->rows = b->features.size() / p;
  for (size_t i = 0; i < b->features.size(); ++i) {
    if (!std::isfinite(b->features[i])) throw error(env, "features[" + std::to_string(i) + "] is not finite");
  }
  if (info.Length() == 3 && !info[2].IsUndefined()) {
    Napi::Object o = read_object(info[2], "options");
    b->threads = static_cast<unsigned>(read_count(o, "threads", 0, 1024, "options"));
    const bool has_r = !o.Get("reward").IsUndefined(), has_c = !o.Get("cost").IsUndefined();
    if (has_r != has_c) throw error(env, "options.reward and options.cost go together (the realised outcome of each row)");
    if (has_r) {
      if (b->model->next_count() == 0) throw error(env, "options.reward: the model has no transition heads to predict the next state with");
      b->reward = read_floats(o, "reward", b->rows, "options");
      b->cost = read_floats(o, "cost", b->rows, "options");
      for (uint64_t i = 0; i < b->rows; ++i) {
        if (!std::isfinite(b->reward[i]) || !std::isfinite(b->cost[i])) throw error(env, "options.reward and options.cost must be finite");
      }
    }
  }
  return Task<PredictBaton>::Queue(env, std::move(b), run_predict, predict_result);
}

// outcomeInfo(id) -> { cols, nextFrom, zeroCostColumns, names, meta, heads: [{ name, present, constant, value,
// residualSd, rounds, roundsRun, validMetric, metric, trainRows, validRows, cpuSeconds, group,
// importance }] }
Napi::Value JS_outcomeInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) throw error(env, "outcomeInfo(id) expects an id");
  auto model = outcome_from(info[0]);
  Napi::Object out = Napi::Object::New(env);
  out.Set("cols", Napi::Number::New(env, static_cast<double>(model->cols())));
  Napi::Array next_from = Napi::Array::New(env, model->next_count());
  for (size_t j = 0; j < model->next_count(); ++j) next_from.Set(static_cast<uint32_t>(j), Napi::Number::New(env, model->next_from()[j]));
  out.Set("nextFrom", next_from);
  Napi::Array zero_cost = Napi::Array::New(env, model->zero_cost_columns().size());
  for (size_t j = 0; j < model->zero_cost_columns().size(); ++j) zero_cost.Set(static_cast<uint32_t>(j), Napi::Number::New(env, model->zero_cost_columns()[j]));
  out.Set("zeroCostColumns", zero_cost);
  Napi::Array names = Napi::Array::New(env, model->names().size());
  for (size_t j = 0; j < model->names().size(); ++j) names.Set(static_cast<uint32_t>(j), Napi::String::New(env, model->names()[j]));
  out.Set("names", names);
  out.Set("meta", Napi::String::New(env, model->meta()));
  std::vector<std::vector<double>> importance;
  try {
    importance = model->importance();
  } catch (const std::exception& e) {
    throw error_from(env, e);
  }
  Napi::Array heads = Napi::Array::New(env, model->heads().size());
  for (size_t h = 0; h < model->heads().size(); ++h) {
    const OutcomeHead& head = model->heads()[h];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", Napi::String::New(env, head.name));
    o.Set("present", Napi::Boolean::New(env, head.present));
    o.Set("constant", Napi::Boolean::New(env, head.constant));
    o.Set("value", Napi::Number::New(env, head.value));
    o.Set("residualSd", Napi::Number::New(env, head.residual_sd));
    o.Set("rounds", Napi::Number::New(env, head.rounds));
    o.Set("roundsRun", Napi::Number::New(env, head.rounds_run));
    o.Set("validMetric", Napi::Number::New(env, head.valid_metric));
    o.Set("metric", Napi::String::New(env, head.metric));
    o.Set("trainRows", Napi::Number::New(env, static_cast<double>(head.train_rows)));
    o.Set("validRows", Napi::Number::New(env, static_cast<double>(head.valid_rows)));
    o.Set("cpuSeconds", Napi::Number::New(env, head.cpu_seconds));
    o.Set("group", Napi::Number::New(env, head.group));
    o.Set("importance", to_float64(env, std::move(importance[h])));
    heads.Set(static_cast<uint32_t>(h), o);
  }
  out.Set("heads", heads);
  out.Set("xgboost", Napi::String::New(env, xgb::version()));
  return out;
}

// outcomeSave(id, format?: 'ubj' | 'json') -> Uint8Array
Napi::Value JS_outcomeSave(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || info.Length() > 2) throw error(env, "outcomeSave(id, format?) expects an id");
  auto model = outcome_from(info[0]);
  xgb::Format format = xgb::Format::kUbjson;
  if (info.Length() == 2 && !info[1].IsUndefined()) {
    const std::string f = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    if (f == "json") format = xgb::Format::kJson;
    else if (f != "ubj") throw error(env, "format must be 'ubj' or 'json'");
  }
  try {
    return to_uint8(env, model->save(format));
  } catch (const std::exception& e) {
    throw error_from(env, e);
  }
}

// outcomeLoad(bytes: Uint8Array) -> id
Napi::Value JS_outcomeLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) throw error(env, "outcomeLoad(bytes) expects a Uint8Array");
  std::vector<uint8_t> bytes = copy_typed<uint8_t, napi_uint8_array>(info[0], "bytes");
  try {
    return Napi::Number::New(env, static_cast<double>(outcome_add(OutcomeModel::load(bytes.data(), bytes.size()))));
  } catch (const std::exception& e) {
    throw error_from(env, e);
  }
}

Napi::Value JS_outcomeDispose(const Napi::CallbackInfo& info) {
  if (info.Length() != 1) throw error(info.Env(), "outcomeDispose(id) expects an id");
  return Napi::Boolean::New(info.Env(), outcome_remove(read_id(info[0], "outcome model id")));
}

Napi::Value JS_outcomeCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(outcome_count())); }

}  // namespace

void init_outcome(Napi::Env env, Napi::Object exports) {
  exports.Set("outcomeFit", Napi::Function::New(env, JS_outcomeFit));
  exports.Set("outcomePredict", Napi::Function::New(env, JS_outcomePredict));
  exports.Set("outcomeInfo", Napi::Function::New(env, JS_outcomeInfo));
  exports.Set("outcomeSave", Napi::Function::New(env, JS_outcomeSave));
  exports.Set("outcomeLoad", Napi::Function::New(env, JS_outcomeLoad));
  exports.Set("outcomeDispose", Napi::Function::New(env, JS_outcomeDispose));
  exports.Set("outcomeCount", Napi::Function::New(env, JS_outcomeCount));
}

}  // namespace saco::napi
