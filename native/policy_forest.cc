// Forest: the uplift baseline. A multi-arm causal forest (forest.h) fitted on a training log
// predicts each arm's uplift over control in reward and in cost from the observed state; each
// round every user gets argmax_k uplift_r[k] − λ·uplift_c[k], or the control arm when no arm
// scores above 0. Myopic: it knows nothing of later rounds. With several action dimensions an
// arm is a joint action, its index the dimensions' indices with the last one fastest.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "forest.h"
#include "joint_action.h"
#include "policy_registry.h"

namespace saco {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

class ForestPolicy final : public Policy {
 public:
  explicit ForestPolicy(std::shared_ptr<const CausalForest> forest) : forest_(std::move(forest)) {
    require(forest_ != nullptr, "the forest policy needs a fitted forest (spec.forest: the id of fitForest / loadForest)");
  }

  void validate(const Environment& env, uint32_t, double) const override {
    const std::vector<int> sizes = env.action_sizes();
    const size_t joint = joint_count(sizes);
    require(joint == forest_->arms,
            "the forest has " + std::to_string(forest_->arms) + " arms, the environment has " + std::to_string(joint) + " joint actions");
    require(static_cast<uint32_t>(env.state_dim()) == forest_->features,
            "the forest reads " + std::to_string(forest_->features) + " state features, the environment observes " + std::to_string(env.state_dim()));
    require(static_cast<uint32_t>(joint_index(sizes, env.control_action().data())) == forest_->control, "the forest's control arm is not the environment's no-coupon action");
  }

  std::unique_ptr<PolicyState> start(const Environment& env, const EnvBlock& block, uint32_t, double lambda) const override {
    auto s = std::make_unique<State>();
    s->lambda = lambda;
    s->dims = env.action_sizes().size();
    s->arms = joint_table(env.action_sizes());
    s->reward.resize(block.size() * forest_->arms);
    s->cost.resize(block.size() * forest_->arms);
    return s;
  }

  void act(PolicyState& state, const Environment&, const EnvBlock& block, uint32_t, const float* states, int32_t* actions) const override {
    State& s = static_cast<State&>(state);
    const size_t A = s.dims;
    const size_t n = block.size();
    const uint32_t K = forest_->arms;
    forest_->predict(states, n, s.reward.data(), s.cost.data());
    for (size_t i = 0; i < n; ++i) {
      double best = 0;
      uint32_t choice = forest_->control;
      for (uint32_t k = 0; k < K; ++k) {
        const double score = s.reward[i * K + k] - s.lambda * s.cost[i * K + k];
        if (k != forest_->control && score > best) {
          best = score;
          choice = k;
        }
      }
      std::copy_n(s.arms.data() + static_cast<size_t>(choice) * A, A, actions + i * A);
    }
  }

  // Deterministic: its distribution is a point mass on the best arm (1 for the proposal, 0 for
  // the control the budget issued instead).
  void probability(const PolicyState&, const Environment& env, const EnvBlock& block, uint32_t, const int32_t* proposed, const int32_t* issued,
                   double* p) const override {
    point_mass_probability(block.size(), env.action_sizes().size(), proposed, issued, p);
  }

 private:
  struct State final : PolicyState {
    double lambda = 0;
    size_t dims = 0;
    std::vector<int32_t> arms;         // [arms, dims] each arm's action
    std::vector<double> reward, cost;  // [users, arms] uplift of the current round
  };
  std::shared_ptr<const CausalForest> forest_;
};

const PolicyRegistrar kRegistered("forest", false, [](const PolicyArgs& args) -> std::shared_ptr<const Policy> {
  return std::make_shared<ForestPolicy>(args.forest);
});

}  // namespace
}  // namespace saco
