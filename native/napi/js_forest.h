// Causal forests (native/forest.h) for JavaScript: forestFit, forestLoad, forestSave,
// forestPredict, forestInfo, forestTree, forestUnload, forestCount. A forest lives in the
// process-wide forest registry by id, shared read-only by rollouts on every thread.
#pragma once
#include <napi.h>

#include <memory>

#include "forest.h"

namespace saco::napi {

void init_forest(Napi::Env env, Napi::Object exports);
// The fitted or loaded forest of an id, or a NATIVE_STATE error.
std::shared_ptr<const CausalForest> forest_from(const Napi::Value& id);

}  // namespace saco::napi
