// The native trainer: trainerCreate, trainerStep, trainerEvaluate, trainerGradients,
// trainerRead, trainerWrite, trainerDispose.
#pragma once
#include <napi.h>

namespace saco::napi {

void init_trainer(Napi::Env env, Napi::Object exports);

}  // namespace saco::napi
