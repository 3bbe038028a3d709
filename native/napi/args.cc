#include "args.h"

#include <cmath>
#include <stdexcept>

namespace saco::napi {

Napi::Error error(Napi::Env env, const std::string& message, const char* code) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

Napi::Error error_from(Napi::Env env, const std::exception& e) {
  const bool argument = dynamic_cast<const std::invalid_argument*>(&e) != nullptr || dynamic_cast<const std::out_of_range*>(&e) != nullptr;
  return error(env, e.what(), argument ? kArgumentCode : kFailureCode);
}

double read_number(const Napi::Object& obj, const char* key, double fallback, const std::string& where) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw error(obj.Env(), where + "." + key + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw error(obj.Env(), where + "." + key + " must be finite");
  return d;
}

uint64_t read_count(const Napi::Object& obj, const char* key, double fallback, double max, const std::string& where) {
  const double d = read_number(obj, key, fallback, where);
  if (d < 0 || d > max || std::floor(d) != d) {
    throw error(obj.Env(), where + "." + key + " must be an integer in [0, " + std::to_string(static_cast<uint64_t>(max)) + "]");
  }
  return static_cast<uint64_t>(d);
}

bool read_bool(const Napi::Object& obj, const char* key, bool fallback, const std::string& where) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsBoolean()) throw error(obj.Env(), where + "." + key + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string read_string(const Napi::Object& obj, const char* key, const std::string& fallback, const std::string& where) {
  Napi::Value v = obj.Get(key);
  if (v.IsUndefined()) return fallback;
  if (!v.IsString()) throw error(obj.Env(), where + "." + key + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

Napi::Object read_object(const Napi::Value& v, const std::string& name) {
  if (!v.IsObject()) throw error(v.Env(), name + " must be an object");
  return v.As<Napi::Object>();
}

uint64_t read_seed(const Napi::Value& v, const std::string& name) {
  if (!v.IsNumber()) throw error(v.Env(), name + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0 && d <= 9007199254740991.0) || std::floor(d) != d) throw error(v.Env(), name + " must be a non-negative integer");
  return static_cast<uint64_t>(d);
}

std::vector<double> read_number_array(const Napi::Value& v, const std::string& name) {
  if (!v.IsArray()) throw error(v.Env(), name + " must be an array of numbers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<double> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value x = a.Get(i);
    if (!x.IsNumber()) throw error(v.Env(), name + " must hold numbers");
    out[i] = x.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(out[i])) throw error(v.Env(), name + " must hold finite numbers");
  }
  return out;
}

int64_t read_id(const Napi::Value& v, const std::string& name) {
  if (!v.IsNumber()) throw error(v.Env(), name + " must be a number");
  const double id = v.As<Napi::Number>().DoubleValue();
  if (!(id >= 1 && id <= 9007199254740991.0) || std::floor(id) != id) throw error(v.Env(), name + " must be a positive integer");
  return static_cast<int64_t>(id);
}

namespace {

template <typename Array, typename T>
Array owning_array(Napi::Env env, std::vector<T>&& values) {
  const size_t n = values.size();
  if (n == 0) return Array::New(env, 0);
  auto held = std::make_unique<std::vector<T>>(std::move(values));
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
      env, held->data(), n * sizeof(T), [](Napi::Env, void*, std::vector<T>* v) { std::unique_ptr<std::vector<T>> owned(v); }, held.get());
  held.release();  // the ArrayBuffer's finalizer owns it now
  return Array::New(env, n, buffer, 0);
}

}  // namespace

Napi::Float64Array to_float64(Napi::Env env, std::vector<double>&& values) { return owning_array<Napi::Float64Array>(env, std::move(values)); }
Napi::Float32Array to_float32(Napi::Env env, std::vector<float>&& values) { return owning_array<Napi::Float32Array>(env, std::move(values)); }
Napi::Int32Array to_int32(Napi::Env env, std::vector<int32_t>&& values) { return owning_array<Napi::Int32Array>(env, std::move(values)); }

void init_addon_data(Napi::Env env) {
  auto data = std::make_unique<AddonData>();
  std::shared_ptr<std::atomic<bool>> alive = data->alive;
  env.SetInstanceData<AddonData>(data.release());  // the environment deletes it
  env.AddCleanupHook([alive]() { alive->store(false); });
}

std::shared_ptr<std::atomic<bool>> env_alive(Napi::Env env) {
  AddonData* data = env.GetInstanceData<AddonData>();
  return data != nullptr ? data->alive : std::make_shared<std::atomic<bool>>(true);
}

}  // namespace saco::napi
