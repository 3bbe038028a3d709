// What the scored policies (policy_scored.cc) are built from: an XGBoost outcome model
// (outcome.h) over the design row of src/sim/features.ts, the layout of that row (the mirror in
// env_sim.h), and how the model's action indices map to the environment's.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "env_sim.h"
#include "outcome.h"

namespace saco {

struct ScoredSpec {
  std::shared_ptr<const OutcomeModel> outcome;
  SimLayout layout;  // finished (offsets computed)
  // env_action[j][k]: the environment's index of the model's value k of action dimension j;
  // empty: the same indices.
  std::vector<std::vector<int32_t>> env_action;
};

// The thinned fixed arm (policy_fixed_arm.cc): `arm` (environment indices) kept with
// probability `keep` by a coin keyed by (seed, user, round, kThinningStream).
struct FixedArmSpec {
  std::vector<int32_t> arm;
  double keep = 1;
  uint64_t seed = 0;
};

// The stream of the thinning coins (src/eval/fixed-arm.ts THINNING_STREAM).
constexpr uint32_t kThinningStream = 0x7468;

}  // namespace saco
