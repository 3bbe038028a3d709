#include "js_forest.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "args.h"

namespace saco::napi {
namespace {

template <typename Array, typename T>
Array copied_array(Napi::Env env, const std::vector<T>& values) {
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(buffer.Data(), values.data(), values.size() * sizeof(T));
  return Array::New(env, values.size(), buffer, 0);
}

struct FitBaton {
  ForestData data;
  ForestOptions options;
  std::shared_ptr<const CausalForest> forest;
};

struct BytesBaton {
  std::shared_ptr<const CausalForest> forest;
  std::vector<uint8_t> bytes;
};

struct PredictBaton {
  std::shared_ptr<const CausalForest> forest;
  std::vector<float> x;
  std::vector<double> reward, cost;
};

ForestOptions read_forest_options(const Napi::Value& v) {
  ForestOptions o;
  if (v.IsUndefined()) return o;
  Napi::Object so = read_object(v, "options");
  o.trees = static_cast<uint32_t>(read_count(so, "trees", o.trees, 100000, "options"));
  o.sample_fraction = read_number(so, "sampleFraction", o.sample_fraction, "options");
  o.honesty_fraction = read_number(so, "honestyFraction", o.honesty_fraction, "options");
  o.mtry = static_cast<uint32_t>(read_count(so, "mtry", o.mtry, 100000, "options"));
  o.min_node_size = static_cast<uint32_t>(read_count(so, "minNodeSize", o.min_node_size, 1e9, "options"));
  o.alpha = read_number(so, "alpha", o.alpha, "options");
  o.max_depth = static_cast<uint32_t>(read_count(so, "maxDepth", o.max_depth, 1000, "options"));
  o.bins = static_cast<uint32_t>(read_count(so, "bins", o.bins, 255, "options"));
  Napi::Value seed = so.Get("seed");
  if (!seed.IsUndefined()) o.seed = read_seed(seed, "options.seed");
  o.threads = static_cast<uint32_t>(read_count(so, "threads", 0, 1024, "options"));
  return o;
}

// forestFit(data: { x, features, arm, arms, control, reward, cost }, options?) -> Promise<id>
Napi::Value JS_forestFit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || info.Length() > 2) throw error(env, "forestFit(data, options?) expects one or two objects");
  Napi::Object o = read_object(info[0], "data");
  auto b = std::make_unique<FitBaton>();
  ForestData& d = b->data;
  d.features = static_cast<uint32_t>(read_count(o, "features", 0, 100000, "data"));
  d.arms = static_cast<uint32_t>(read_count(o, "arms", 0, 256, "data"));
  d.control = static_cast<uint32_t>(read_count(o, "control", 0, 255, "data"));
  d.x = copy_typed<float, napi_float32_array>(o.Get("x"), "data.x");
  d.arm = copy_typed<int32_t, napi_int32_array>(o.Get("arm"), "data.arm");
  d.reward = copy_typed<double, napi_float64_array>(o.Get("reward"), "data.reward");
  d.cost = copy_typed<double, napi_float64_array>(o.Get("cost"), "data.cost");
  if (d.arm.size() > 0xFFFFFFFFu) throw error(env, "data holds too many rows");
  d.rows = static_cast<uint32_t>(d.arm.size());
  b->options = read_forest_options(info.Length() == 2 ? info[1] : env.Undefined());
  try {
    validate_forest_input(d, b->options);
  } catch (const std::exception& e) {
    throw error_from(env, e);
  }
  return Task<FitBaton>::Queue(
      env, std::move(b), [](FitBaton& fb) { fb.forest = fit_forest(fb.data, fb.options); },
      [](Napi::Env e, FitBaton& fb) -> Napi::Value { return Napi::Number::New(e, static_cast<double>(forest_add(fb.forest))); });
}

// forestLoad(bytes: Uint8Array) -> Promise<id>
Napi::Value JS_forestLoad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) throw error(env, "forestLoad(bytes) expects a Uint8Array");
  auto b = std::make_unique<BytesBaton>();
  b->bytes = copy_typed<uint8_t, napi_uint8_array>(info[0], "bytes");
  return Task<BytesBaton>::Queue(
      env, std::move(b), [](BytesBaton& bb) { bb.forest = load_forest(bb.bytes.data(), bb.bytes.size()); },
      [](Napi::Env e, BytesBaton& bb) -> Napi::Value { return Napi::Number::New(e, static_cast<double>(forest_add(bb.forest))); });
}

// forestSave(id) -> Promise<Uint8Array>
Napi::Value JS_forestSave(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) throw error(env, "forestSave(id) expects a forest id");
  auto b = std::make_unique<BytesBaton>();
  b->forest = forest_from(info[0]);
  return Task<BytesBaton>::Queue(
      env, std::move(b), [](BytesBaton& bb) { bb.bytes = save_forest(*bb.forest); },
      [](Napi::Env e, BytesBaton& bb) -> Napi::Value { return copied_array<Napi::Uint8Array>(e, bb.bytes); });
}

// forestPredict(id, x: Float32Array [n, features]) -> Promise<{ reward, cost }> ([n, arms] uplifts)
Napi::Value JS_forestPredict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2) throw error(env, "forestPredict(id, x) expects a forest id and a Float32Array");
  auto b = std::make_unique<PredictBaton>();
  b->forest = forest_from(info[0]);
  b->x = copy_typed<float, napi_float32_array>(info[1], "x");
  if (b->x.size() % b->forest->features != 0) throw error(env, "x must hold rows x " + std::to_string(b->forest->features) + " values");
  for (float v : b->x) {
    if (!std::isfinite(v)) throw error(env, "x must hold finite values");
  }
  return Task<PredictBaton>::Queue(
      env, std::move(b),
      [](PredictBaton& pb) {
        const size_t n = pb.x.size() / pb.forest->features;
        pb.reward.resize(n * pb.forest->arms);
        pb.cost.resize(n * pb.forest->arms);
        pb.forest->predict(pb.x.data(), n, pb.reward.data(), pb.cost.data());
      },
      [](Napi::Env e, PredictBaton& pb) -> Napi::Value {
        Napi::Object out = Napi::Object::New(e);
        out.Set("reward", to_float64(e, std::move(pb.reward)));
        out.Set("cost", to_float64(e, std::move(pb.cost)));
        return out;
      });
}

// forestInfo(id) -> { features, arms, control, rows, trees, nodes, leaves, options }
Napi::Value JS_forestInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) throw error(env, "forestInfo(id) expects a forest id");
  auto f = forest_from(info[0]);
  double nodes = 0, leaves = 0;
  for (const ForestTree& t : f->trees) {
    nodes += static_cast<double>(t.feature.size());
    leaves += static_cast<double>(t.leaf.size() / (static_cast<size_t>(f->arms) * 3));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("features", f->features);
  out.Set("arms", f->arms);
  out.Set("control", f->control);
  out.Set("rows", f->rows);
  out.Set("trees", static_cast<double>(f->trees.size()));
  out.Set("nodes", nodes);
  out.Set("leaves", leaves);
  const ForestOptions& o = f->options;
  Napi::Object so = Napi::Object::New(env);
  so.Set("trees", o.trees);
  so.Set("sampleFraction", o.sample_fraction);
  so.Set("honestyFraction", o.honesty_fraction);
  so.Set("mtry", o.mtry);
  so.Set("minNodeSize", o.min_node_size);
  so.Set("alpha", o.alpha);
  so.Set("maxDepth", o.max_depth);
  so.Set("bins", o.bins);
  so.Set("seed", static_cast<double>(o.seed));
  out.Set("options", so);
  return out;
}

// forestTree(id, b) -> { feature, threshold, left, right, leaf, split, estimate }: tree b's
// nodes, leaf statistics [leaves, arms, 3] and the rows of its two halves (redrawn: O(rows)).
Napi::Value JS_forestTree(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[1].IsNumber()) throw error(env, "forestTree(id, tree) expects a forest id and a tree index");
  auto f = forest_from(info[0]);
  const double bd = info[1].As<Napi::Number>().DoubleValue();
  if (!(bd >= 0 && bd < static_cast<double>(f->trees.size())) || std::floor(bd) != bd) {
    throw error(env, "tree must be an index in [0, " + std::to_string(f->trees.size()) + ")");
  }
  const auto b = static_cast<uint32_t>(bd);
  const ForestTree& t = f->trees[b];
  std::vector<uint32_t> split, estimate;
  try {
    f->halves(b, split, estimate);
  } catch (const std::exception& e) {
    throw error_from(env, e);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("feature", copied_array<Napi::Int32Array>(env, t.feature));
  out.Set("threshold", copied_array<Napi::Float32Array>(env, t.threshold));
  out.Set("left", copied_array<Napi::Int32Array>(env, t.left));
  out.Set("right", copied_array<Napi::Int32Array>(env, t.right));
  out.Set("leaf", copied_array<Napi::Float64Array>(env, t.leaf));
  out.Set("split", copied_array<Napi::Uint32Array>(env, split));
  out.Set("estimate", copied_array<Napi::Uint32Array>(env, estimate));
  return out;
}

Napi::Value JS_forestUnload(const Napi::CallbackInfo& info) {
  if (info.Length() != 1) throw error(info.Env(), "forestUnload(id) expects a forest id");
  return Napi::Boolean::New(info.Env(), forest_remove(read_id(info[0], "forest id")));
}

Napi::Value JS_forestCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(forest_count()));
}

}  // namespace

std::shared_ptr<const CausalForest> forest_from(const Napi::Value& v) {
  const int64_t id = read_id(v, "forest id");
  auto forest = forest_get(id);
  if (!forest) throw error(v.Env(), "forest " + std::to_string(id) + " is not loaded (unloaded or never fitted)", kStateCode);
  return forest;
}

void init_forest(Napi::Env env, Napi::Object exports) {
  exports.Set("forestFit", Napi::Function::New(env, JS_forestFit));
  exports.Set("forestLoad", Napi::Function::New(env, JS_forestLoad));
  exports.Set("forestSave", Napi::Function::New(env, JS_forestSave));
  exports.Set("forestPredict", Napi::Function::New(env, JS_forestPredict));
  exports.Set("forestInfo", Napi::Function::New(env, JS_forestInfo));
  exports.Set("forestTree", Napi::Function::New(env, JS_forestTree));
  exports.Set("forestUnload", Napi::Function::New(env, JS_forestUnload));
  exports.Set("forestCount", Napi::Function::New(env, JS_forestCount));
}

}  // namespace saco::napi
