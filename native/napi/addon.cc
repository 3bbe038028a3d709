// The addon's entry: one Init per JS surface (native/napi/js_*.cc), plus what the build can do.
#include <napi.h>

#include "args.h"
#include "cuda_device.h"
#include "js_forest.h"
#include "js_model.h"
#include "js_outcome.h"
#include "js_rollout.h"
#include "js_sim.h"
#include "js_synth.h"
#include "js_trainer.h"

namespace saco::napi {
namespace {

Napi::Value JS_cudaDeviceCount(const Napi::CallbackInfo& info) {
#ifdef SACO_HAVE_CUDA
  return Napi::Number::New(info.Env(), cuda_device_count());
#else
  return Napi::Number::New(info.Env(), 0);
#endif
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  init_addon_data(env);
  init_synth(env, exports);
  init_model(env, exports);
  init_outcome(env, exports);
  init_rollout(env, exports);
  init_trainer(env, exports);
  init_forest(env, exports);
  init_sim(env, exports);
#ifdef SACO_HAVE_CUDA
  exports.Set("cudaBuilt", Napi::Boolean::New(env, true));
#else
  exports.Set("cudaBuilt", Napi::Boolean::New(env, false));
#endif
  exports.Set("cudaDeviceCount", Napi::Function::New(env, JS_cudaDeviceCount));
  return exports;
}

}  // namespace saco::napi

// The module macro needs an unqualified function at global scope.
static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return saco::napi::Init(env, exports); }
NODE_API_MODULE(saco, InitModule)
