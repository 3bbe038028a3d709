// The model pool and forward passes: loadModel, unloadModel, modelCount, codtForward.
#pragma once
#include <napi.h>

#include <memory>

#include "codt.h"

namespace saco::napi {

void init_model(Napi::Env env, Napi::Object exports);
// A CodtModel copied from (meta: { config, normalization, targets? }, params), not yet
// validated. Without targets (a trainer's model) the table is a single zero entry.
std::unique_ptr<CodtModel> read_model(Napi::Env env, const Napi::Value& meta, const Napi::Value& params, bool need_targets);
// The loaded model of an id, or a NATIVE_STATE error.
std::shared_ptr<const CodtModel> model_from(const Napi::Value& id);

}  // namespace saco::napi
