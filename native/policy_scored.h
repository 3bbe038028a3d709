// What the scored policies (policy_scored.cc) are built from: XGBoost outcome models
// (outcome.h; one pooled, or one per joint action) over the design row of src/sim/features.ts, the layout of that row (the mirror in
// env_sim.h), and how the model's action indices map to the environment's.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "env_sim.h"
#include "outcome.h"

namespace saco {

// DFCL's decision-focused correction of the scores (src/policy/dfcl.ts DfclCorrection, fitted
// there): per user and joint action a, with φ_a = [1, (x_j − mean_j)/scale_j for j of columns,
// then with uplift: (r̂_a − r̂_control)/uplift_scale[0], (ĉ_a − ĉ_control)/uplift_scale[1]]
// (Q = 1 + columns + 2·uplift entries, x the design row, r̂ ĉ the uncorrected scores),
//   r̃_a = r̂_a + reward[a·Q…]·φ_a,   c̃_a = ĉ_a + cost[a·Q…]·φ_a.
struct ScoredCorrection {
  size_t K = 0;         // joint actions
  size_t control = 0;   // joint index of the control arm
  std::vector<int32_t> columns;  // design-row columns (none of the action one-hot)
  std::vector<double> mean, scale;  // [columns]
  bool uplift = false;
  double uplift_scale[2] = {1, 1};
  std::vector<double> reward, cost;  // [K, Q], arm-major
  size_t width() const { return 1 + columns.size() + (uplift ? 2 : 0); }
};

struct ScoredSpec {
  // One pooled model, or models by joint action: action k is scored by
  // outcomes[arm_model[k]] (src/sim/arm-outcomes.ts; empty arm_model: outcomes[0] for all).
  std::vector<std::shared_ptr<const OutcomeModel>> outcomes;
  std::vector<int32_t> arm_model;
  std::optional<ScoredCorrection> correction;  // absent: the model's scores as they are
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
