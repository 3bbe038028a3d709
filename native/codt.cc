#include "codt.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace saco {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMatrix>;
using Map = Eigen::Map<RowMatrix>;

constexpr float kLnEps = 1e-5f;
constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}

// The embedding of one token kind for `rows` inputs: Linear(x) (no time/λ yet). out[rows, D].
void embed_kind(const CodtModel& m, TokenKind kind, const float* values, int rows, float* out, Floats& scratch) {
  const CodtConfig& c = m.config;
  const int D = c.d_model;
  switch (kind) {
    case TokenKind::kRtg:
    case TokenKind::kCtg: {
      const bool rtg = kind == TokenKind::kRtg;
      const float scale = rtg ? m.norm.rtg_scale : m.norm.ctg_scale;
      const float* w = rtg ? m.w.rtg_w : m.w.ctg_w;
      const float* b = rtg ? m.w.rtg_b : m.w.ctg_b;
      for (int r = 0; r < rows; ++r) {
        const float x = values[r] / scale;
        for (int j = 0; j < D; ++j) out[r * D + j] = x * w[j] + b[j];
      }
      break;
    }
    case TokenKind::kState: {
      const int d = c.state_dim;
      scratch.resize(static_cast<size_t>(rows) * d);
      for (int r = 0; r < rows; ++r) {
        for (int j = 0; j < d; ++j) scratch[r * d + j] = (values[r * d + j] - m.norm.state_mean[j]) / m.norm.state_std[j];
      }
      matmul_forward(out, scratch.data(), m.w.state_w, m.w.state_b, rows, d, D);
      break;
    }
    case TokenKind::kAction:
      matmul_forward(out, values, m.w.action_w, m.w.action_b, rows, c.action_width(), D);
      break;
  }
}

// out[D] += time[t] + Linear_λ(λ / λmax)
void add_time_and_lambda(const CodtModel& m, int t, float lambda, float* out) {
  const int D = m.config.d_model;
  const float* time = m.w.time + static_cast<size_t>(t) * D;
  for (int j = 0; j < D; ++j) out[j] += time[j];
  if (m.config.uses_lambda) {
    const float x = lambda / m.norm.lambda_max;
    const float* w = m.w.lambda_w;
    const float* b = m.w.lambda_b;
    for (int j = 0; j < D; ++j) out[j] += x * w[j] + b[j];
  }
}

std::string block(int l, const char* name) { return "blocks." + std::to_string(l) + "." + name; }

// One causal attention read: q[D] against keys/values [len, D] (rows d apart); out[D].
// Heads split D. Scores and the weighted sum are matrix-vector products per head.
void attend(const float* q, const float* keys, const float* values, int len, int heads, int d, float* scores, float* out) {
  using Rows = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;
  const int hd = d / heads;
  const float inv = 1.0f / std::sqrt(static_cast<float>(hd));
  Eigen::Map<Eigen::VectorXf> p(scores, len);
  for (int h = 0; h < heads; ++h) {
    Rows k(keys + h * hd, len, hd, Eigen::OuterStride<>(d));
    Rows v(values + h * hd, len, hd, Eigen::OuterStride<>(d));
    p.noalias() = k * Eigen::Map<const Eigen::VectorXf>(q + h * hd, hd);
    p *= inv;
    p = (p.array() - p.maxCoeff()).exp();
    p /= p.sum();
    Eigen::Map<Eigen::RowVectorXf>(out + h * hd, hd).noalias() = p.transpose() * v;
  }
}

// h[rows, D] += MLP(LN2(h)) with the scratch buffers given.
void mlp_residual(const CodtModel& m, int l, float* h, int rows, Floats& a, Floats& hidden, Floats& proj) {
  const int D = m.config.d_model;
  const LayerWeights& L = m.w.layers[l];
  a.resize(static_cast<size_t>(rows) * D);
  hidden.resize(static_cast<size_t>(rows) * 4 * D);
  proj.resize(static_cast<size_t>(rows) * D);
  layernorm_forward(a.data(), h, L.ln2_g, L.ln2_b, rows, D);
  matmul_forward(hidden.data(), a.data(), L.w1, L.b1, rows, D, 4 * D);
  gelu_forward(hidden.data(), static_cast<size_t>(rows) * 4 * D);
  matmul_forward(proj.data(), hidden.data(), L.w2, L.b2, rows, 4 * D, D);
  for (size_t i = 0; i < proj.size(); ++i) h[i] += proj[i];
}

}  // namespace

int CodtConfig::action_width() const {
  int k = 0;
  for (int s : action_sizes) k += s;
  return k;
}

std::vector<TokenKind> CodtConfig::token_kinds() const {
  std::vector<TokenKind> kinds;
  if (uses_rtg) kinds.push_back(TokenKind::kRtg);
  if (uses_ctg) kinds.push_back(TokenKind::kCtg);
  kinds.push_back(TokenKind::kState);
  kinds.push_back(TokenKind::kAction);
  return kinds;
}

void TargetTable::at(double lambda, double& rtg_out, double& ctg_out) const {
  const size_t n = lambdas.size();
  if (lambda <= lambdas[0]) {
    rtg_out = rtg[0];
    ctg_out = ctg[0];
    return;
  }
  if (lambda >= lambdas[n - 1]) {
    rtg_out = rtg[n - 1];
    ctg_out = ctg[n - 1];
    return;
  }
  size_t g = 1;
  while (lambdas[g] < lambda) ++g;
  const double f = (lambda - lambdas[g - 1]) / (lambdas[g] - lambdas[g - 1]);
  rtg_out = rtg[g - 1] + f * (rtg[g] - rtg[g - 1]);
  ctg_out = ctg[g - 1] + f * (ctg[g] - ctg[g - 1]);
}

const float* CodtModel::p(const std::string& name) const {
  auto it = params.find(name);
  if (it == params.end()) throw std::invalid_argument("model parameter " + name + " is missing");
  return it->second.data();
}

void validate_model(CodtModel& m) {
  const CodtConfig& c = m.config;
  require(c.state_dim >= 1 && c.state_dim <= 100000, "model.stateDim out of range");
  require(c.context >= 1 && c.context <= 4096, "model.context out of range");
  require(c.d_model >= 1 && c.d_model <= 8192, "model.dModel out of range");
  require(c.layers >= 1 && c.layers <= 64, "model.layers out of range");
  require(c.heads >= 1 && c.d_model % c.heads == 0, "model.heads must divide dModel");
  require(!c.action_sizes.empty() && c.action_sizes.size() <= 16, "model.actionSizes must have 1 to 16 entries");
  for (int k : c.action_sizes) require(k >= 1 && k <= 4096, "model.actionSizes entries out of range");
  require(static_cast<int>(m.norm.state_mean.size()) == c.state_dim && static_cast<int>(m.norm.state_std.size()) == c.state_dim,
          "normalization.stateMean/stateStd must have stateDim entries");
  for (float s : m.norm.state_std) require(std::isfinite(s) && s > 0, "normalization.stateStd must be > 0");
  for (float s : m.norm.state_mean) require(std::isfinite(s), "normalization.stateMean must be finite");
  require(std::isfinite(m.norm.rtg_scale) && m.norm.rtg_scale > 0, "normalization.rtgScale must be > 0");
  require(std::isfinite(m.norm.ctg_scale) && m.norm.ctg_scale > 0, "normalization.ctgScale must be > 0");
  require(std::isfinite(m.norm.lambda_max) && m.norm.lambda_max > 0, "normalization.lambdaMax must be > 0");
  require(m.targets.lambdas.size() >= 1 && m.targets.rtg.size() == m.targets.lambdas.size() && m.targets.ctg.size() == m.targets.lambdas.size(),
          "targets must have matching lambdas/rtg/ctg");
  const int D = c.d_model;
  const int K = c.action_width();
  std::vector<std::pair<std::string, size_t>> expected;
  auto add = [&](const std::string& name, size_t n) { expected.emplace_back(name, n); };
  if (c.uses_rtg) add("embed.rtg.w", D), add("embed.rtg.b", D);
  if (c.uses_ctg) add("embed.ctg.w", D), add("embed.ctg.b", D);
  add("embed.state.w", static_cast<size_t>(c.state_dim) * D), add("embed.state.b", D);
  add("embed.action.w", static_cast<size_t>(K) * D), add("embed.action.b", D);
  add("embed.time", static_cast<size_t>(c.context) * D);
  if (c.uses_lambda) add("embed.lambda.w", D), add("embed.lambda.b", D);
  add("embed.ln.g", D), add("embed.ln.b", D);
  for (int l = 0; l < c.layers; ++l) {
    for (const char* n : {"ln1.g", "ln1.b", "attn.bq", "attn.bk", "attn.bv", "attn.bo", "ln2.g", "ln2.b", "mlp.b2"}) add(block(l, n), D);
    for (const char* n : {"attn.wq", "attn.wk", "attn.wv", "attn.wo"}) add(block(l, n), static_cast<size_t>(D) * D);
    add(block(l, "mlp.w1"), static_cast<size_t>(D) * 4 * D), add(block(l, "mlp.b1"), 4 * D);
    add(block(l, "mlp.w2"), static_cast<size_t>(4) * D * D);
  }
  add("ln_f.g", D), add("ln_f.b", D), add("head.w", static_cast<size_t>(D) * K), add("head.b", K);
  for (const auto& [name, n] : expected) {
    auto it = m.params.find(name);
    require(it != m.params.end(), "model parameter " + name + " is missing");
    require(it->second.size() == n, "model parameter " + name + " has " + std::to_string(it->second.size()) + " values, expected " + std::to_string(n));
    for (float v : it->second) require(std::isfinite(v), "model parameter " + name + " holds a non-finite value");
  }
  require(m.params.size() == expected.size(), "model has unexpected extra parameters");
  ResolvedWeights& w = m.w;
  if (c.uses_rtg) w.rtg_w = m.p("embed.rtg.w"), w.rtg_b = m.p("embed.rtg.b");
  if (c.uses_ctg) w.ctg_w = m.p("embed.ctg.w"), w.ctg_b = m.p("embed.ctg.b");
  if (c.uses_lambda) w.lambda_w = m.p("embed.lambda.w"), w.lambda_b = m.p("embed.lambda.b");
  w.state_w = m.p("embed.state.w"), w.state_b = m.p("embed.state.b");
  w.action_w = m.p("embed.action.w"), w.action_b = m.p("embed.action.b");
  w.time = m.p("embed.time");
  w.embed_ln_g = m.p("embed.ln.g"), w.embed_ln_b = m.p("embed.ln.b");
  w.lnf_g = m.p("ln_f.g"), w.lnf_b = m.p("ln_f.b");
  w.head_w = m.p("head.w"), w.head_b = m.p("head.b");
  w.layers.clear();
  for (int l = 0; l < c.layers; ++l) {
    LayerWeights L;
    L.ln1_g = m.p(block(l, "ln1.g")), L.ln1_b = m.p(block(l, "ln1.b"));
    L.wq = m.p(block(l, "attn.wq")), L.bq = m.p(block(l, "attn.bq"));
    L.wk = m.p(block(l, "attn.wk")), L.bk = m.p(block(l, "attn.bk"));
    L.wv = m.p(block(l, "attn.wv")), L.bv = m.p(block(l, "attn.bv"));
    L.wo = m.p(block(l, "attn.wo")), L.bo = m.p(block(l, "attn.bo"));
    L.ln2_g = m.p(block(l, "ln2.g")), L.ln2_b = m.p(block(l, "ln2.b"));
    L.w1 = m.p(block(l, "mlp.w1")), L.b1 = m.p(block(l, "mlp.b1"));
    L.w2 = m.p(block(l, "mlp.w2")), L.b2 = m.p(block(l, "mlp.b2"));
    w.layers.push_back(L);
  }
}

void matmul_forward(float* out, const float* inp, const float* w, const float* b, int rows, int k, int n) {
  Map o(out, rows, n);
  o.noalias() = ConstMap(inp, rows, k) * ConstMap(w, k, n);
  if (b) o.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(b, n);
}

void layernorm_forward(float* out, const float* inp, const float* g, const float* b, int rows, int d) {
  for (int r = 0; r < rows; ++r) {
    const float* x = inp + static_cast<size_t>(r) * d;
    float* y = out + static_cast<size_t>(r) * d;
    float mean = 0;
    for (int i = 0; i < d; ++i) mean += x[i];
    mean /= static_cast<float>(d);
    float var = 0;
    for (int i = 0; i < d; ++i) var += (x[i] - mean) * (x[i] - mean);
    var /= static_cast<float>(d);
    const float rstd = 1.0f / std::sqrt(var + kLnEps);
    for (int i = 0; i < d; ++i) y[i] = (x[i] - mean) * rstd * g[i] + b[i];
  }
}

void gelu_forward(float* x, size_t n) {
  // Eigen's vectorised tanh: std::tanh per element was most of a rollout's time.
  Eigen::Map<Eigen::ArrayXf> v(x, static_cast<Eigen::Index>(n));
  v = 0.5f * v * (1.0f + (kGeluC * (v + 0.044715f * v.cube())).tanh());
}

void codt_forward_full(const CodtModel& m, const SequenceBatch& in, float* logits) {
  const CodtConfig& c = m.config;
  require(in.batch >= 1, "batch must be >= 1");
  require(in.rounds >= 1 && in.rounds <= c.context, "rounds must be in [1, context]");
  const int B = in.batch, T = in.rounds, D = c.d_model, K = c.action_width();
  const std::vector<TokenKind> kinds = c.token_kinds();
  const int n_tok = static_cast<int>(kinds.size());
  const int S = T * n_tok;
  const size_t rows = static_cast<size_t>(B) * S;
  Floats x(rows * D), tmp(static_cast<size_t>(B) * T * D), scratch;
  // embeddings, interleaved per round: x[b, t * n_tok + k, :]
  for (int k = 0; k < n_tok; ++k) {
    const float* values = nullptr;
    switch (kinds[k]) {
      case TokenKind::kRtg: values = in.rtg; break;
      case TokenKind::kCtg: values = in.ctg; break;
      case TokenKind::kState: values = in.states; break;
      case TokenKind::kAction: values = in.actions_onehot; break;
    }
    embed_kind(m, kinds[k], values, B * T, tmp.data(), scratch);
    for (int b = 0; b < B; ++b) {
      for (int t = 0; t < T; ++t) {
        float* dst = x.data() + (static_cast<size_t>(b) * S + t * n_tok + k) * D;
        std::copy_n(tmp.data() + (static_cast<size_t>(b) * T + t) * D, D, dst);
        add_time_and_lambda(m, t, in.lambda ? in.lambda[b] : 0.0f, dst);
      }
    }
  }
  Floats h(rows * D), a(rows * D), q(rows * D), kk(rows * D), v(rows * D), o(rows * D), proj(rows * D), hidden, scores(S);
  layernorm_forward(h.data(), x.data(), m.w.embed_ln_g, m.w.embed_ln_b, static_cast<int>(rows), D);
  for (int l = 0; l < c.layers; ++l) {
    const LayerWeights& L = m.w.layers[l];
    layernorm_forward(a.data(), h.data(), L.ln1_g, L.ln1_b, static_cast<int>(rows), D);
    matmul_forward(q.data(), a.data(), L.wq, L.bq, static_cast<int>(rows), D, D);
    matmul_forward(kk.data(), a.data(), L.wk, L.bk, static_cast<int>(rows), D, D);
    matmul_forward(v.data(), a.data(), L.wv, L.bv, static_cast<int>(rows), D, D);
    for (int b = 0; b < B; ++b) {
      const size_t base = static_cast<size_t>(b) * S * D;
      for (int s = 0; s < S; ++s) attend(q.data() + base + static_cast<size_t>(s) * D, kk.data() + base, v.data() + base, s + 1, c.heads, D, scores.data(), o.data() + base + static_cast<size_t>(s) * D);
    }
    matmul_forward(proj.data(), o.data(), L.wo, L.bo, static_cast<int>(rows), D, D);
    for (size_t i = 0; i < rows * D; ++i) h[i] += proj[i];
    mlp_residual(m, l, h.data(), static_cast<int>(rows), a, hidden, proj);
  }
  // final LayerNorm and head at the state tokens only
  const int state_k = static_cast<int>(std::find(kinds.begin(), kinds.end(), TokenKind::kState) - kinds.begin());
  Floats hs(static_cast<size_t>(B) * T * D), ln(static_cast<size_t>(B) * T * D);
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) std::copy_n(h.data() + (static_cast<size_t>(b) * S + t * n_tok + state_k) * D, D, hs.data() + (static_cast<size_t>(b) * T + t) * D);
  }
  layernorm_forward(ln.data(), hs.data(), m.w.lnf_g, m.w.lnf_b, B * T, D);
  matmul_forward(logits, ln.data(), m.w.head_w, m.w.head_b, B * T, D, K);
}

CodtDecoder::CodtDecoder(const CodtModel& model, int capacity, int max_rounds)
    : model_(model), capacity_(capacity), batch_(capacity),
      max_pos_((max_rounds > 0 ? std::min(max_rounds, model.config.context) : model.config.context) * model.config.tokens_per_round()) {
  require(capacity >= 1, "decoder batch must be >= 1");
  const size_t per_layer = static_cast<size_t>(capacity) * max_pos_ * model.config.d_model;
  k_cache_.resize(per_layer * model.config.layers);
  v_cache_.resize(per_layer * model.config.layers);
}

void CodtDecoder::reset(int batch) {
  require(batch >= 1 && batch <= capacity_, "decoder batch must be in [1, capacity]");
  batch_ = batch;
  pos_ = 0;
}

void CodtDecoder::append(TokenKind kind, int round, const float* values, const float* lambda, float* logits) {
  const CodtConfig& c = model_.config;
  require(pos_ < max_pos_, "decoder context is full (rounds beyond the model's context)");
  require(round >= 0 && round < c.context, "round beyond the model's context");
  const int B = batch_, D = c.d_model;
  x_.resize(static_cast<size_t>(B) * D);
  h_.resize(x_.size());
  a_.resize(x_.size());
  q_.resize(x_.size());
  k_.resize(x_.size());
  v_.resize(x_.size());
  o_.resize(x_.size());
  att_.resize(static_cast<size_t>(max_pos_));
  embed_kind(model_, kind, values, B, x_.data(), in_);
  for (int b = 0; b < B; ++b) add_time_and_lambda(model_, round, lambda ? lambda[b] : 0.0f, x_.data() + static_cast<size_t>(b) * D);
  layernorm_forward(h_.data(), x_.data(), model_.w.embed_ln_g, model_.w.embed_ln_b, B, D);
  const size_t per_layer = static_cast<size_t>(capacity_) * max_pos_ * D;
  for (int l = 0; l < c.layers; ++l) {
    const LayerWeights& L = model_.w.layers[l];
    layernorm_forward(a_.data(), h_.data(), L.ln1_g, L.ln1_b, B, D);
    matmul_forward(k_.data(), a_.data(), L.wk, L.bk, B, D, D);
    matmul_forward(v_.data(), a_.data(), L.wv, L.bv, B, D, D);
    float* kc = k_cache_.data() + per_layer * l;
    float* vc = v_cache_.data() + per_layer * l;
    for (int b = 0; b < B; ++b) {
      const size_t user = static_cast<size_t>(b) * max_pos_ * D;
      std::copy_n(k_.data() + static_cast<size_t>(b) * D, D, kc + user + static_cast<size_t>(pos_) * D);
      std::copy_n(v_.data() + static_cast<size_t>(b) * D, D, vc + user + static_cast<size_t>(pos_) * D);
    }
    // Only the state token's last-layer output is ever read (by the head); other tokens
    // matter to later tokens through their keys and values alone.
    if (l == c.layers - 1 && kind != TokenKind::kState) break;
    matmul_forward(q_.data(), a_.data(), L.wq, L.bq, B, D, D);
    for (int b = 0; b < B; ++b) {
      const size_t user = static_cast<size_t>(b) * max_pos_ * D;
      attend(q_.data() + static_cast<size_t>(b) * D, kc + user, vc + user, pos_ + 1, c.heads, D, att_.data(), o_.data() + static_cast<size_t>(b) * D);
    }
    proj_.resize(x_.size());
    matmul_forward(proj_.data(), o_.data(), L.wo, L.bo, B, D, D);
    for (size_t i = 0; i < h_.size(); ++i) h_[i] += proj_[i];
    mlp_residual(model_, l, h_.data(), B, a_, m_, proj_);
  }
  ++pos_;
  if (kind == TokenKind::kState && logits) {  // h_ went through every layer for this token
    layernorm_forward(a_.data(), h_.data(), model_.w.lnf_g, model_.w.lnf_b, B, D);
    matmul_forward(logits, a_.data(), model_.w.head_w, model_.w.head_b, B, D, c.action_width());
  }
}

}  // namespace saco
