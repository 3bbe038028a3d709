// Bandit: Thompson sampling over arms (Chapelle & Li 2011), non-contextual as in the paper's
// baseline, on the Lagrangian reward z = r − λ·c. An arm is an action combination.
//
// Model: z of arm k ~ Normal(μ_k, σ_k²) with σ_k² known, taken from the training log
// (var r + λ² var c − 2λ cov(r, c) of the arm's logged rows). Prior μ_k ~ Normal(m_k, σ_k² / w_k):
// m_k the log's mean of z for the arm, w_k = min(prior weight, the arm's logged count)
// pseudo-observations (an arm the log never tried: the mean over the logged arms, the largest
// σ, one pseudo-observation). The log says where to start, the campaign's own outcomes soon
// outweigh it; a weight of Infinity trusts the log fully.
//
// Batched: every user of round t draws from the same posterior, one sample per arm from the
// stream keyed by (prior seed, user, t), and takes the arm with the largest sample. After the
// round, the outcomes of ALL users (the issued arms: a coupon the budget withheld counts as
// the control) update the posterior in block order (end_round), so results do not depend on
// the thread count. The probability of an issued arm (the chance it wins the draw) has no
// closed form: Policy::probability keeps its default, NaN.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy_registry.h"
#include "rng.h"

namespace saco {
namespace {

constexpr uint32_t kStreamBandit = 0x42414E00u;

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

class BanditPolicy final : public Policy {
 public:
  explicit BanditPolicy(std::shared_ptr<const BanditPrior> prior) : prior_(std::move(prior)) {
    require(prior_ != nullptr, "the bandit policy needs a prior fitted on a training log (spec.bandit: fitBanditPrior)");
    require(!prior_->arms.empty(), "the bandit prior has no arms");
    bool any = false;
    for (const BanditArm& a : prior_->arms) any = any || a.count > 0;
    require(any, "the bandit prior has no logged rows");
    require(prior_->weight > 0, "the bandit prior weight must be > 0");
  }

  void validate(const Environment& env, uint32_t, double) const override {
    size_t combos = 1;
    for (int k : env.action_sizes()) combos *= static_cast<size_t>(k);
    require(combos == prior_->arms.size(), "the bandit prior has " + std::to_string(prior_->arms.size()) + " arms, the environment's actions make " + std::to_string(combos));
  }

  bool learns_across_users() const override { return true; }

  std::unique_ptr<PolicyState> start(const Environment& env, const EnvBlock& block, uint32_t, double lambda) const override {
    auto s = std::make_unique<State>();
    s->lambda = lambda;
    s->users = block.size();
    s->sizes = env.action_sizes();
    const size_t K = prior_->arms.size();
    s->mean.resize(K), s->sd.resize(K), s->weight.resize(K);
    double logged_mean = 0, logged = 0, largest_sd = 0;
    for (size_t k = 0; k < K; ++k) {
      const BanditArm& a = prior_->arms[k];
      const double var = a.var_reward + lambda * lambda * a.var_cost - 2 * lambda * a.cov;
      s->sd[k] = std::sqrt(std::max(var, 0.0));
      s->mean[k] = a.mean_reward - lambda * a.mean_cost;
      s->weight[k] = std::min(prior_->weight, a.count);
      if (a.count > 0) {
        logged_mean += s->mean[k];
        logged += 1;
        largest_sd = std::max(largest_sd, s->sd[k]);
      }
    }
    for (size_t k = 0; k < K; ++k) {
      if (prior_->arms[k].count > 0) continue;
      s->mean[k] = logged_mean / logged;
      s->sd[k] = largest_sd;
      s->weight[k] = 1;
    }
    s->sum.assign(K, 0.0);
    s->count.assign(K, 0.0);
    return s;
  }

  void act(PolicyState& state, const Environment&, const EnvBlock& block, uint32_t t, const float*, int32_t* actions) const override {
    const State& s = static_cast<const State&>(state);
    const size_t K = s.mean.size();
    const size_t A = s.sizes.size();
    for (size_t i = 0; i < block.size(); ++i) {
      CounterStream rng(prior_->seed, block.ids[i], t, kStreamBandit);
      double best = -std::numeric_limits<double>::infinity();
      size_t arm = 0;
      for (size_t k = 0; k < K; ++k) {
        const double draw = s.mean[k] + s.sd[k] / std::sqrt(s.weight[k]) * rng.normal();
        if (draw > best) {
          best = draw;
          arm = k;
        }
      }
      // the arm's combination, the first dimension slowest
      for (size_t j = A; j-- > 0;) {
        actions[i * A + j] = static_cast<int32_t>(arm % static_cast<size_t>(s.sizes[j]));
        arm /= static_cast<size_t>(s.sizes[j]);
      }
    }
  }

  void feedback(PolicyState& state, uint32_t, const int32_t* issued, const double* reward, const double* cost) const override {
    State& s = static_cast<State&>(state);
    const size_t A = s.sizes.size();
    for (size_t i = 0; i < s.users; ++i) {
      size_t arm = 0;
      for (size_t j = 0; j < A; ++j) arm = arm * static_cast<size_t>(s.sizes[j]) + static_cast<size_t>(issued[i * A + j]);
      s.sum[arm] += reward[i] - s.lambda * cost[i];
      s.count[arm] += 1;
    }
  }

  void end_round(uint32_t, const std::vector<PolicyState*>& blocks) const override {
    if (blocks.empty() || blocks.front() == nullptr) return;
    const size_t K = prior_->arms.size();
    std::vector<double> sum(K, 0.0), count(K, 0.0);
    for (PolicyState* p : blocks) {
      State& s = static_cast<State&>(*p);
      for (size_t k = 0; k < K; ++k) sum[k] += s.sum[k], count[k] += s.count[k];
    }
    const State& first = static_cast<const State&>(*blocks.front());
    std::vector<double> mean = first.mean, weight = first.weight;
    for (size_t k = 0; k < K; ++k) {
      if (count[k] == 0) continue;
      mean[k] = (weight[k] * mean[k] + sum[k]) / (weight[k] + count[k]);
      weight[k] += count[k];
    }
    for (PolicyState* p : blocks) {
      State& s = static_cast<State&>(*p);
      s.mean = mean;
      s.weight = weight;
      std::fill(s.sum.begin(), s.sum.end(), 0.0);
      std::fill(s.count.begin(), s.count.end(), 0.0);
    }
  }

 private:
  struct State final : PolicyState {
    double lambda = 0;
    std::vector<int> sizes;
    std::vector<double> mean, sd, weight;  // posterior per arm (σ fixed)
    std::vector<double> sum, count;        // this block's outcomes of the current round
    size_t users = 0;                      // in this block
  };
  std::shared_ptr<const BanditPrior> prior_;
};

const PolicyRegistrar kRegistered("bandit", false, [](const PolicyArgs& args) -> std::shared_ptr<const Policy> {
  return std::make_shared<BanditPolicy>(args.bandit);
});

}  // namespace
}  // namespace saco
