// The synthetic environment SY: synthSY, syWeights, and the SyConfig reader rollouts share.
#pragma once
#include <napi.h>

#include "env_sy.h"

namespace saco::napi {

void init_synth(Napi::Env env, Napi::Object exports);
// Copies and validates an SyConfig object (src/data/synth.ts `SyConfig`).
SyConfig read_sy_config(const Napi::Object& o);

}  // namespace saco::napi
