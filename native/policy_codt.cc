// CODT: the trained decision transformer, decoded incrementally with a KV cache per user.
// Each round appends (RTG, CTG, s) tokens, reads the greedy action at the state token and,
// after the environment answers, appends the issued action (but not the last round's: no
// later token reads it); the decision-time targets start at the model's table value for λ
// and are decremented by realised reward and cost. Round 0's target tokens are the same for
// every user of a block (one λ, one table value): computed once, with `shared_prefix`.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "codt.h"
#include "policy_registry.h"

namespace saco {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

class CodtPolicy final : public Policy {
 public:
  CodtPolicy(std::shared_ptr<const CodtModel> model, bool shared_prefix) : model_(std::move(model)), shared_prefix_(shared_prefix) {
    require(model_ != nullptr, "the codt policy needs a loaded model");
  }

  void validate(const Environment& env, uint32_t rounds, double lambda) const override {
    const CodtConfig& c = model_->config;
    require(static_cast<int>(rounds) <= c.context, "rounds beyond the model's context (" + std::to_string(c.context) + ")");
    require(c.state_dim == env.state_dim(), "model state width " + std::to_string(c.state_dim) + " does not match the environment's " + std::to_string(env.state_dim()));
    const std::vector<int> sizes = env.action_sizes();
    require(c.action_sizes.size() == sizes.size(), "model and environment have different numbers of action dimensions");
    for (size_t j = 0; j < sizes.size(); ++j) {
      require(c.action_sizes[j] == sizes[j], "model and environment disagree on the size of action dimension " + std::to_string(j));
    }
    require(lambda <= model_->norm.lambda_max * (1 + 1e-6), "lambda beyond the model's range [0, lambdaMax]");
  }

  double lambda_max(double) const override { return model_->norm.lambda_max; }

  std::unique_ptr<PolicyState> start(const Environment&, const EnvBlock& block, uint32_t rounds, double lambda) const override {
    const CodtConfig& c = model_->config;
    const size_t n = block.size();
    auto s = std::make_unique<State>(*model_, static_cast<int>(n), static_cast<int>(rounds));
    s->rounds = rounds;
    s->lambda.assign(n, static_cast<float>(lambda));
    double rtg = 0, ctg = 0;
    model_->targets.at(lambda, rtg, ctg);
    s->rtg_left.assign(n, rtg);
    s->ctg_left.assign(n, ctg);
    s->inputs.resize(n * static_cast<size_t>(std::max(c.state_dim, c.action_width())));
    s->logits.resize(n * static_cast<size_t>(c.action_width()));
    return s;
  }

  size_t state_bytes(size_t users, uint32_t rounds) const override {
    const CodtConfig& c = model_->config;
    const size_t D = static_cast<size_t>(c.d_model), K = static_cast<size_t>(c.action_width());
    const size_t tokens = static_cast<size_t>(rounds) * static_cast<size_t>(c.tokens_per_round());
    const size_t cache = static_cast<size_t>(c.layers) * (tokens + (tokens + 15) / 16 * 16) * D;  // values, keys (padded)
    const size_t scratch = 11 * D + std::max<size_t>(c.state_dim, K) + K;  // the decoder's rows, inputs, logits
    return users * (4 * (cache + scratch + 1) + 2 * sizeof(double));
  }

  void act(PolicyState& state, const Environment&, const EnvBlock& block, uint32_t t, const float* states, int32_t* actions) const override {
    State& s = static_cast<State&>(state);
    const CodtConfig& c = model_->config;
    const size_t n = block.size();
    // Round 0: every user of the block has the same targets (the table at λ, or 0 for the
    // relabelled recipes) and λ, so their tokens' keys and values are the same: from the
    // model's prefix cache, or computed once.
    const bool prefix = t == 0 && shared_prefix_;
    if (prefix) {
      std::vector<float> targets;
      if (c.uses_rtg) targets.push_back(static_cast<float>(s.rtg_left[0]));
      if (c.uses_ctg) targets.push_back(static_cast<float>(s.ctg_left[0]));
      s.decoder.append_prefix(targets.data(), s.lambda[0]);
    }
    for (TokenKind kind : c.token_kinds()) {
      if (kind == TokenKind::kAction) break;
      const float* values = states;
      if (kind != TokenKind::kState) {
        if (prefix) continue;
        const std::vector<double>& left = kind == TokenKind::kRtg ? s.rtg_left : s.ctg_left;
        for (size_t i = 0; i < n; ++i) s.inputs[i] = static_cast<float>(left[i]);
        values = s.inputs.data();
      }
      s.decoder.append(kind, static_cast<int>(t), values, s.lambda.data(), kind == TokenKind::kState ? s.logits.data() : nullptr);
    }
    for (size_t i = 0; i < n; ++i) {
      for (int k = 0; k < c.action_width(); ++k) {
        if (!std::isfinite(s.logits[i * c.action_width() + k])) {
          throw std::runtime_error("the model's scores for user " + std::to_string(block.ids[i]) + " at round " + std::to_string(t) +
                                   " are not finite: its state or targets lie far outside the training data");
        }
      }
    }
    greedy_actions(c, s.logits.data(), static_cast<int>(n), actions);
  }

  // The softmax of the model's scores at this round's state token, per action dimension,
  // evaluated at the issued index (the control where the budget withheld the greedy coupon),
  // multiplied over dimensions: the distribution whose per-dimension mode act() issues.
  // Computed in double from the float scores act() read.
  void probability(const PolicyState& state, const Environment&, const EnvBlock& block, uint32_t, const int32_t*, const int32_t* issued,
                   double* p) const override {
    const State& s = static_cast<const State&>(state);
    const CodtConfig& c = model_->config;
    const size_t K = static_cast<size_t>(c.action_width()), A = c.action_sizes.size();
    for (size_t i = 0; i < block.size(); ++i) {
      const float* row = s.logits.data() + i * K;
      double prob = 1;
      for (size_t j = 0; j < A; ++j) {
        const int size = c.action_sizes[j];
        const double top = *std::max_element(row, row + size);
        double z = 0;
        for (int k = 0; k < size; ++k) z += std::exp(static_cast<double>(row[k]) - top);
        prob *= std::exp(static_cast<double>(row[issued[i * A + j]]) - top) / z;
        row += size;
      }
      p[i] = prob;
    }
  }

  void feedback(PolicyState& state, uint32_t t, const int32_t* issued, const double* reward, const double* cost) const override {
    State& s = static_cast<State&>(state);
    const CodtConfig& c = model_->config;
    const size_t n = s.lambda.size();
    const int K = c.action_width();
    const size_t A = c.action_sizes.size();
    std::fill(s.inputs.begin(), s.inputs.begin() + static_cast<std::ptrdiff_t>(n * K), 0.0f);
    for (size_t i = 0; i < n; ++i) {
      int offset = 0;
      for (size_t j = 0; j < A; ++j) {
        s.inputs[i * K + offset + issued[i * A + j]] = 1.0f;
        offset += c.action_sizes[j];
      }
      s.rtg_left[i] -= reward[i];
      s.ctg_left[i] -= cost[i];
    }
    if (t + 1 == s.rounds) return;  // the last round's action token is read by nothing
    s.decoder.append(TokenKind::kAction, static_cast<int>(t), s.inputs.data(), s.lambda.data(), nullptr);
  }

 private:
  struct State final : PolicyState {
    State(const CodtModel& m, int users, int rounds) : decoder(m, users, rounds) {}
    CodtDecoder decoder;
    std::vector<float> lambda, inputs, logits;
    std::vector<double> rtg_left, ctg_left;
    uint32_t rounds = 0;
  };
  std::shared_ptr<const CodtModel> model_;
  bool shared_prefix_;
};

const PolicyRegistrar kRegistered("codt", true, [](const PolicyArgs& args) -> std::shared_ptr<const Policy> {
  return std::make_shared<CodtPolicy>(args.model, args.shared_prefix);
});

}  // namespace
}  // namespace saco
