// The learned outcome model (native/outcome.h): outcomeFit, outcomePredict, outcomeInfo,
// outcomeSave, outcomeLoad, outcomeDispose, outcomeCount.
#pragma once
#include <napi.h>

#include <memory>

#include "outcome.h"

namespace saco::napi {

void init_outcome(Napi::Env env, Napi::Object exports);
// The model behind a JS id, for batons that use it (the simulator); a NATIVE_STATE error
// when it was disposed or never existed.
std::shared_ptr<const OutcomeModel> outcome_from(const Napi::Value& id);

}  // namespace saco::napi
