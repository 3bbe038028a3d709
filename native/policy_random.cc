// Random: the uniform logging policy of SY, drawn from the same stream as the log, so on SY
// it replays the logged actions exactly.
#include <algorithm>
#include <cmath>

#include "policy_registry.h"
#include "rng.h"

namespace saco {
namespace {

class RandomPolicy final : public Policy {
 public:
  void validate(const Environment&, uint32_t, double) const override {}
  std::unique_ptr<PolicyState> start(const Environment&, const EnvBlock&, uint32_t, double) const override {
    return std::make_unique<PolicyState>();
  }
  void act(PolicyState&, const Environment& env, const EnvBlock& block, uint32_t t, const float*, int32_t* actions) const override {
    const std::vector<int> sizes = env.action_sizes();
    const size_t A = sizes.size();
    for (size_t i = 0; i < block.size(); ++i) {
      CounterStream logger(env.seed(), block.ids[i], t, kStreamLogger);
      for (size_t j = 0; j < A; ++j) {
        const size_t K = static_cast<size_t>(sizes[j]);
        const size_t k = static_cast<size_t>(std::floor(logger.uniform() * static_cast<double>(K)));
        actions[i * A + j] = static_cast<int32_t>(std::min(k, K - 1));
      }
    }
  }
  // Uniform over every action combination: the product over dimensions of 1/size, whatever
  // was issued (the control included), computed as 1 / (product of the sizes).
  void probability(const PolicyState&, const Environment& env, const EnvBlock& block, uint32_t, const int32_t*, const int32_t*, double* p) const override {
    double combos = 1;
    for (int K : env.action_sizes()) combos *= K;
    std::fill_n(p, block.size(), 1.0 / combos);
  }
};

const PolicyRegistrar kRegistered("random", false, [](const PolicyArgs&) -> std::shared_ptr<const Policy> {
  return std::make_shared<RandomPolicy>();
});

}  // namespace
}  // namespace saco
