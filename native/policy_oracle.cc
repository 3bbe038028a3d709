// Oracle: knows the environment's expected reward and cost and takes, each round, the action
// that maximises E[r] − λ·E[c] (myopic). Only for environments that know their expectations.
#include <cmath>
#include <stdexcept>
#include <vector>

#include "policy_registry.h"

namespace saco {
namespace {

// Every action combination of the dimensions, index 0 first.
std::vector<std::vector<int32_t>> all_actions(const std::vector<int>& sizes) {
  std::vector<std::vector<int32_t>> out{{}};
  for (int K : sizes) {
    std::vector<std::vector<int32_t>> next;
    for (const auto& prefix : out) {
      for (int k = 0; k < K; ++k) {
        auto a = prefix;
        a.push_back(k);
        next.push_back(std::move(a));
      }
    }
    out = std::move(next);
  }
  return out;
}

class OraclePolicy final : public Policy {
 public:
  void validate(const Environment& env, uint32_t, double) const override {
    const RolloutUsers probe{{0}, {}};
    auto block = env.reset(probe, 0, 1);
    double r = 0, c = 0;
    const std::vector<int32_t> a = env.control_action();
    if (!env.expected(*block, 0, 0, a.data(), r, c)) {
      throw std::invalid_argument("the oracle policy needs an environment that knows its expected responses (SY)");
    }
  }
  std::unique_ptr<PolicyState> start(const Environment&, const EnvBlock&, uint32_t, double lambda) const override {
    auto s = std::make_unique<State>();
    s->lambda = lambda;
    return s;
  }
  void act(PolicyState& state, const Environment& env, const EnvBlock& block, uint32_t t, const float*, int32_t* actions) const override {
    const double lambda = static_cast<State&>(state).lambda;
    const auto combos = all_actions(env.action_sizes());
    const size_t A = combos.front().size();
    for (size_t i = 0; i < block.size(); ++i) {
      double best = -INFINITY;
      size_t best_c = 0;
      for (size_t c = 0; c < combos.size(); ++c) {
        double r = 0, cost = 0;
        env.expected(block, i, t, combos[c].data(), r, cost);
        const double score = r - lambda * cost;
        if (score > best) {
          best = score;
          best_c = c;
        }
      }
      std::copy(combos[best_c].begin(), combos[best_c].end(), actions + i * A);
    }
  }

  // Deterministic: its distribution is a point mass on the argmax (1 for the proposal, 0 for
  // the control the budget issued instead).
  void probability(const PolicyState&, const Environment& env, const EnvBlock& block, uint32_t, const int32_t* proposed, const int32_t* issued,
                   double* p) const override {
    point_mass_probability(block.size(), env.action_sizes().size(), proposed, issued, p);
  }

 private:
  struct State final : PolicyState {
    double lambda = 0;
  };
};

const PolicyRegistrar kRegistered("oracle", false, [](const PolicyArgs&) -> std::shared_ptr<const Policy> {
  return std::make_shared<OraclePolicy>();
});

}  // namespace
}  // namespace saco
