// Shared by the binding files (the only files of native/ that include napi.h): argument
// readers that copy JavaScript values into plain C++ values, typed native errors, and the
// AsyncWorker every asynchronous call uses.
#pragma once
#include <napi.h>

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace saco::napi {

// Error codes the TypeScript side turns into SacoErrors (src/native/index.ts).
constexpr const char* kArgumentCode = "NATIVE_ARGUMENT";  // bad input from the caller
constexpr const char* kStateCode = "NATIVE_STATE";        // unknown id, busy trainer
constexpr const char* kFailureCode = "NATIVE_FAILURE";    // the work itself failed

// A JS Error with `code` set, to throw (C++ exceptions are on).
Napi::Error error(Napi::Env env, const std::string& message, const char* code = kArgumentCode);
// Maps a std::exception from the core: invalid_argument / out_of_range → argument errors,
// anything else → failure.
Napi::Error error_from(Napi::Env env, const std::exception& e);

double read_number(const Napi::Object& obj, const char* key, double fallback, const std::string& where);
uint64_t read_count(const Napi::Object& obj, const char* key, double fallback, double max, const std::string& where);
bool read_bool(const Napi::Object& obj, const char* key, bool fallback, const std::string& where);
std::string read_string(const Napi::Object& obj, const char* key, const std::string& fallback, const std::string& where);
Napi::Object read_object(const Napi::Value& v, const std::string& name);
uint64_t read_seed(const Napi::Value& v, const std::string& name);
std::vector<double> read_number_array(const Napi::Value& v, const std::string& name);
int64_t read_id(const Napi::Value& v, const std::string& name);

// A copy of a typed array's elements (the worker thread never reads JS memory).
template <typename T, napi_typedarray_type kType>
std::vector<T> copy_typed(const Napi::Value& v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kType) {
    throw error(v.Env(), name + " has the wrong typed-array type");
  }
  auto arr = v.As<Napi::TypedArray>();
  const auto* data = reinterpret_cast<const T*>(static_cast<const uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset());
  return std::vector<T>(data, data + arr.ElementLength());
}

// A JS typed array that owns `values` (moved, not copied).
Napi::Float64Array to_float64(Napi::Env env, std::vector<double>&& values);
Napi::Float32Array to_float32(Napi::Env env, std::vector<float>&& values);
Napi::Int32Array to_int32(Napi::Env env, std::vector<int32_t>&& values);

// Per-environment state: whether the environment (the main thread or a worker_thread) is
// still alive. A cleanup hook clears it, and completions of work queued from a dying
// environment then do nothing instead of building JS values.
struct AddonData {
  std::shared_ptr<std::atomic<bool>> alive = std::make_shared<std::atomic<bool>>(true);
};
void init_addon_data(Napi::Env env);
std::shared_ptr<std::atomic<bool>> env_alive(Napi::Env env);

// An asynchronous call: `Baton` holds the copied request and the result; Execute runs
// `work(baton)` on the thread pool and touches nothing else; `done(env, baton)` builds the
// result on the JS thread. Exceptions become rejections with a code.
template <typename Baton>
class Task final : public Napi::AsyncWorker {
 public:
  using Work = void (*)(Baton&);
  using Done = Napi::Value (*)(Napi::Env, Baton&);

  static Napi::Promise Queue(Napi::Env env, std::unique_ptr<Baton> baton, Work work, Done done) {
    // owned here until queued (a failed Queue() frees it, and its baton's claims), then by libuv
    std::unique_ptr<Task> task(new Task(env, std::move(baton), work, done));
    Napi::Promise promise = task->deferred_.Promise();
    task->Napi::AsyncWorker::Queue();
    task.release();
    return promise;
  }

  void Execute() override {
    try {
      work_(*baton_);
    } catch (const std::invalid_argument& e) {
      code_ = kArgumentCode;
      SetError(e.what());
    } catch (const std::out_of_range& e) {
      code_ = kArgumentCode;
      SetError(e.what());
    } catch (const std::exception& e) {
      code_ = kFailureCode;
      SetError(e.what());
    }
  }

  void OnOK() override {
    if (!alive_->load()) return;
    try {
      deferred_.Resolve(done_(Env(), *baton_));
    } catch (const Napi::Error& e) {
      RejectQuietly(e.Value());
    } catch (const std::exception& e) {
      RejectQuietly(error(Env(), e.what(), kFailureCode).Value());
    }
  }

  void OnError(const Napi::Error& e) override {
    if (!alive_->load()) return;
    try {
      Napi::Error coded = error(Env(), e.Message(), code_);
      deferred_.Reject(coded.Value());
    } catch (...) {
      // the environment is going away: nobody is left to tell
    }
  }

 private:
  Task(Napi::Env env, std::unique_ptr<Baton> baton, Work work, Done done)
      : Napi::AsyncWorker(env), baton_(std::move(baton)), work_(work), done_(done),
        deferred_(Napi::Promise::Deferred::New(env)), alive_(env_alive(env)) {}

  void RejectQuietly(const Napi::Value& v) {
    try {
      deferred_.Reject(v);
    } catch (...) {
    }
  }

  std::unique_ptr<Baton> baton_;
  Work work_;
  Done done_;
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<std::atomic<bool>> alive_;
  const char* code_ = kFailureCode;
};

}  // namespace saco::napi
