// The learned simulator (native/env_sim.h): simCreate, simDispose, simCount, simDesign,
// simTrace, and the reader of a rollout spec's `env: { kind: 'sim', … }`.
#pragma once
#include <napi.h>

#include <memory>

#include "env_sim.h"

namespace saco::napi {

void init_sim(Napi::Env env, Napi::Object exports);
// spec.env of kind 'sim': { simulator: id, seed?, startRound?, expectedFrom?: SyConfig }.
// A NATIVE_STATE error when the simulator was disposed; NATIVE_ARGUMENT for bad fields.
std::shared_ptr<const SimEnvironment> sim_environment_from(const Napi::Object& env_spec);

}  // namespace saco::napi
