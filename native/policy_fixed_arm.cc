// Fixed arm: the same action for every user and round, each coupon kept with probability
// `keep` by a coin keyed by (seed, user id, round, kThinningStream), else the control action:
// Best single arm thinned at random to the budget, and No coupon (the control arm, or keep 0).
// The coins are those of src/eval/fixed-arm.ts (its TypeScript reference, tested equal), so a
// larger keep keeps a superset of the coupons. Not searched: the caller chooses keep.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "policy_registry.h"
#include "policy_scored.h"
#include "rng.h"

namespace saco {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

class FixedArmPolicy final : public Policy {
 public:
  explicit FixedArmPolicy(std::shared_ptr<const FixedArmSpec> spec) : spec_(std::move(spec)) {
    require(spec_ != nullptr, "the fixed-arm policy needs spec.fixedArm: { arm, keep, seed }");
    require(spec_->keep >= 0 && spec_->keep <= 1, "spec.fixedArm.keep must be in [0, 1]");
  }

  void validate(const Environment& env, uint32_t, double) const override {
    const std::vector<int> sizes = env.action_sizes();
    require(spec_->arm.size() == sizes.size(), "spec.fixedArm.arm must hold one index per action dimension (" + std::to_string(sizes.size()) + ")");
    for (size_t j = 0; j < sizes.size(); ++j) require(spec_->arm[j] >= 0 && spec_->arm[j] < sizes[j], "spec.fixedArm.arm[" + std::to_string(j) + "] is outside its dimension");
  }

  std::unique_ptr<PolicyState> start(const Environment&, const EnvBlock&, uint32_t, double) const override { return std::make_unique<PolicyState>(); }

  void act(PolicyState&, const Environment& env, const EnvBlock& block, uint32_t t, const float*, int32_t* actions) const override {
    const std::vector<int32_t> control = env.control_action();
    const size_t A = control.size();
    for (size_t i = 0; i < block.size(); ++i) {
      const bool kept = kept_at(block.ids[i], t);
      for (size_t j = 0; j < A; ++j) actions[i * A + j] = kept ? spec_->arm[j] : control[j];
    }
  }

  // keep for the arm, 1 − keep for the control (the arm being a coupon), 0 for anything else;
  // 1 for the control when the arm is the control itself.
  void probability(const PolicyState&, const Environment& env, const EnvBlock& block, uint32_t, const int32_t*, const int32_t* issued, double* p) const override {
    const std::vector<int32_t> control = env.control_action();
    const size_t A = control.size();
    const bool arm_is_control = std::equal(control.begin(), control.end(), spec_->arm.begin());
    for (size_t i = 0; i < block.size(); ++i) {
      const int32_t* a = issued + i * A;
      if (arm_is_control) p[i] = std::equal(control.begin(), control.end(), a) ? 1.0 : 0.0;
      else if (std::equal(spec_->arm.begin(), spec_->arm.end(), a)) p[i] = spec_->keep;
      else p[i] = std::equal(control.begin(), control.end(), a) ? 1.0 - spec_->keep : 0.0;
    }
  }

 private:
  bool kept_at(uint32_t user, uint32_t t) const {
    if (spec_->keep >= 1) return true;
    if (spec_->keep <= 0) return false;
    return CounterStream(spec_->seed, user, t, kThinningStream).uniform() < spec_->keep;
  }
  std::shared_ptr<const FixedArmSpec> spec_;
};

const PolicyRegistrar kRegistered("fixed-arm", false, [](const PolicyArgs& args) -> std::shared_ptr<const Policy> {
  return std::make_shared<FixedArmPolicy>(args.fixed_arm);
});

}  // namespace
}  // namespace saco
