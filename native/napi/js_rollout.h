// Rollouts and the λ search: rollout, searchLambda, policyNames.
#pragma once
#include <napi.h>

namespace saco::napi {

void init_rollout(Napi::Env env, Napi::Object exports);

}  // namespace saco::napi
