#include "codt.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "pool.h"

namespace saco {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw std::invalid_argument(message);
}
// A literal message builds no std::string unless it is thrown (the hot path checks on every call).
void require(bool ok, const char* message) {
  if (!ok) throw std::invalid_argument(message);
}

// out[rows, n] = inp[rows, k] @ W + b for one of layer l's matrices (named in both layouts), in
// the model's precision.
void layer_product(const CodtModel& m, int l, const float* const LayerWeights::*fp32, Bf16Weight Bf16Layer::*bf16, float* out, const float* inp, const float* b, int rows,
                   int k, int n) {
  if (m.precision == Precision::kBf16) return matmul_forward_bf16(out, inp, m.bf16[l].*bf16, b, rows);
  matmul_forward(out, inp, m.w.layers[l].*fp32, b, rows, k, n);
}

// h[rows, D] += MLP(LN2(h)) with the scratch buffers given.
void mlp_residual(const CodtModel& m, int l, float* h, int rows, Floats& a, Floats& hidden, Floats& proj) {
  const int D = m.config.d_model;
  const LayerWeights& L = m.w.layers[l];
  a.resize(static_cast<size_t>(rows) * D);
  hidden.resize(static_cast<size_t>(rows) * 4 * D);
  proj.resize(static_cast<size_t>(rows) * D);
  layernorm_forward(a.data(), h, L.ln2_g, L.ln2_b, rows, D);
  layer_product(m, l, &LayerWeights::w1, &Bf16Layer::w1, hidden.data(), a.data(), L.b1, rows, D, 4 * D);
  gelu_forward(hidden.data(), static_cast<size_t>(rows) * 4 * D);
  layer_product(m, l, &LayerWeights::w2, &Bf16Layer::w2, proj.data(), hidden.data(), L.b2, rows, 4 * D, D);
  for (size_t i = 0; i < proj.size(); ++i) h[i] += proj[i];
}

// The input one token kind feeds its Linear (see embed_kind): in `scratch`, or `values` for actions.
const float* embed_input(const CodtModel& m, TokenKind kind, const float* values, int rows, Floats& scratch) {
  const CodtConfig& c = m.config;
  switch (kind) {
    case TokenKind::kRtg:
    case TokenKind::kCtg: {
      const float scale = kind == TokenKind::kRtg ? m.norm.rtg_scale : m.norm.ctg_scale;
      scratch.resize(static_cast<size_t>(rows));
      for (int r = 0; r < rows; ++r) scratch[r] = values[r] / scale;
      return scratch.data();
    }
    case TokenKind::kState: {
      const int d = c.state_dim;
      scratch.resize(static_cast<size_t>(rows) * d);
      for (int r = 0; r < rows; ++r) {
        for (int j = 0; j < d; ++j) scratch[r * d + j] = (values[r * d + j] - m.norm.state_mean[j]) / m.norm.state_std[j];
      }
      return scratch.data();
    }
    case TokenKind::kAction:
      return values;
  }
  return values;
}

}  // namespace

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

int embed_input_width(const CodtConfig& c, TokenKind kind) {
  switch (kind) {
    case TokenKind::kState: return c.state_dim;
    case TokenKind::kAction: return c.action_width();
    default: return 1;
  }
}

void embed_kind(const CodtModel& m, TokenKind kind, const float* values, int rows, float* out, Floats& scratch) {
  const float* inp = embed_input(m, kind, values, rows, scratch);
  matmul_forward(out, inp, kind_weight(m.w, kind), kind_bias(m.w, kind), rows, embed_input_width(m.config, kind), m.config.d_model);
}

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
  const std::vector<ParamShape> expected = param_shapes(c);
  for (const ParamShape& e : expected) {
    auto it = m.params.find(e.name);
    require(it != m.params.end(), "model parameter " + e.name + " is missing");
    require(it->second.size() == e.size, "model parameter " + e.name + " has " + std::to_string(it->second.size()) + " values, expected " + std::to_string(e.size));
    for (float v : it->second) require(std::isfinite(v), "model parameter " + e.name + " holds a non-finite value");
  }
  require(m.params.size() == expected.size(), "model has unexpected extra parameters");
  m.w = resolve_params<const float>(c, [&](const std::string& name) { return m.p(name); });
  m.bf16.clear();
  if (m.precision != Precision::kBf16) return;
  const int D = c.d_model;
  for (const LayerWeights& L : m.w.layers) {
    m.bf16.push_back({pack_bf16(L.wq, D, D), pack_bf16(L.wk, D, D), pack_bf16(L.wv, D, D), pack_bf16(L.wo, D, D), pack_bf16(L.w1, D, 4 * D), pack_bf16(L.w2, 4 * D, D)});
  }
}

std::vector<ParamShape> param_shapes(const CodtConfig& c) {
  const size_t D = static_cast<size_t>(c.d_model), K = static_cast<size_t>(c.action_width());
  std::vector<ParamShape> out;
  auto matrix = [&](const std::string& name, size_t n) { out.push_back({name, n, true}); };
  auto vec = [&](const std::string& name, size_t n) { out.push_back({name, n, false}); };
  if (c.uses_rtg) matrix("embed.rtg.w", D), vec("embed.rtg.b", D);
  if (c.uses_ctg) matrix("embed.ctg.w", D), vec("embed.ctg.b", D);
  matrix("embed.state.w", static_cast<size_t>(c.state_dim) * D), vec("embed.state.b", D);
  matrix("embed.action.w", K * D), vec("embed.action.b", D);
  vec("embed.time", static_cast<size_t>(c.context) * D);
  if (c.uses_lambda) matrix("embed.lambda.w", D), vec("embed.lambda.b", D);
  vec("embed.ln.g", D), vec("embed.ln.b", D);
  for (int l = 0; l < c.layers; ++l) {
    const std::string p = "blocks." + std::to_string(l) + ".";
    vec(p + "ln1.g", D), vec(p + "ln1.b", D);
    for (const char* n : {"q", "k", "v", "o"}) matrix(p + "attn.w" + n, D * D), vec(p + "attn.b" + n, D);
    vec(p + "ln2.g", D), vec(p + "ln2.b", D);
    matrix(p + "mlp.w1", D * 4 * D), vec(p + "mlp.b1", 4 * D);
    matrix(p + "mlp.w2", 4 * D * D), vec(p + "mlp.b2", D);
  }
  vec("ln_f.g", D), vec("ln_f.b", D);
  matrix("head.w", D * K), vec("head.b", K);
  return out;
}

CodtDecoder::CodtDecoder(const CodtModel& model, int capacity, int max_rounds) : model_(&model) { bind(model, capacity, max_rounds); }

namespace {

// Tokens the decoder of (model, max_rounds) holds at most.
int decoder_positions(const CodtModel& model, int max_rounds) {
  const CodtConfig& c = model.config;
  return (max_rounds > 0 ? std::min(max_rounds, c.context) : c.context) * c.tokens_per_round();
}

}  // namespace

size_t CodtDecoder::cache_bytes(const CodtModel& model, int capacity, int max_rounds) {
  const size_t positions = static_cast<size_t>(decoder_positions(model, max_rounds));
  const size_t per_layer = static_cast<size_t>(model.config.d_model) * ((positions + 15) / 16 * 16 + positions);
  return sizeof(float) * per_layer * static_cast<size_t>(model.config.layers) * static_cast<size_t>(std::max(capacity, 0));
}

void CodtDecoder::bind(const CodtModel& model, int capacity, int max_rounds) {
  require(capacity >= 1, "decoder batch must be >= 1");
  model_ = &model;
  capacity_ = batch_ = capacity;
  pos_ = shared_ = 0;
  max_pos_ = decoder_positions(model, max_rounds);
  key_stride_ = (max_pos_ + 15) / 16 * 16;
  const size_t D = static_cast<size_t>(model.config.d_model);
  k_cache_.resize(static_cast<size_t>(capacity) * D * key_stride_ * model.config.layers);
  v_cache_.resize(static_cast<size_t>(capacity) * max_pos_ * D * model.config.layers);
  rows_.clear();
  groups_.clear();
  gathered_.clear();
  resumed_.assign(static_cast<size_t>(capacity), 0);
  own_slots();
  kinds_ = model.config.token_kinds();
  prefix_kinds_.assign(kinds_.begin(), std::find(kinds_.begin(), kinds_.end(), TokenKind::kState));
}

void CodtDecoder::reset(int batch) {
  require(batch >= 1 && batch <= capacity_, "decoder batch must be in [1, capacity]");
  batch_ = batch;
  pos_ = 0;
  shared_ = 0;
  rows_.clear();
  groups_.clear();
  gathered_.clear();
  std::fill(resumed_.begin(), resumed_.end(), 0);
  own_slots();
}

void CodtDecoder::own_slots() {
  const size_t D = static_cast<size_t>(model_->config.d_model), key_user = D * key_stride_, value_user = static_cast<size_t>(max_pos_) * D;
  slots_.resize(static_cast<size_t>(capacity_));
  for (int b = 0; b < capacity_; ++b) {
    slots_[b] = {k_cache_.data() + key_user * b, v_cache_.data() + value_user * b, key_user * capacity_, value_user * capacity_, key_stride_};
  }
}

void CodtDecoder::adopt_user(int user, float* k, float* v, int stride) {
  require(rows_.empty() && user >= 0 && user < batch_, "adopt_user: a user of the batch, before any token is queued");
  require(stride % 16 == 0 && stride >= max_pos_, "adopt_user: storage for every position of the decoder, a multiple of 16");
  const size_t D = static_cast<size_t>(model_->config.d_model), S = static_cast<size_t>(stride);
  slots_[user] = {k, v, D * S, S * D, stride};
}

std::shared_ptr<const PrefixCache::Entry> PrefixCache::find(const float* key, size_t n) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& e : entries_) {
    if (e->key.size() == n && std::equal(key, key + n, e->key.begin())) return e;
  }
  return nullptr;
}

void PrefixCache::put(std::shared_ptr<const Entry> entry) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& e : entries_) {
    if (e->key == entry->key) return;
  }
  if (entries_.size() == kEntries) entries_.pop_front();
  entries_.push_back(std::move(entry));
}

namespace {

// The raw input of one token of `in`: user-round cell `at` of its kind's array, `width` values.
const float* token_input(const SequenceBatch& in, TokenKind kind, size_t at, size_t width) {
  return kind == TokenKind::kRtg ? in.rtg + at : kind == TokenKind::kCtg ? in.ctg + at : kind == TokenKind::kState ? in.states + at * width : in.actions_onehot + at * width;
}

// A short run of floats (one key row: a few positions) by fixed-size moves: a memmove call
// per row was a tenth of a one-user decision.
inline void copy_run(float* dst, const float* src, size_t n) {
  size_t j = 0;
  for (; j + 8 <= n; j += 8) std::memcpy(dst + j, src + j, 8 * sizeof(float));
  if (j + 4 <= n) std::memcpy(dst + j, src + j, 4 * sizeof(float)), j += 4;
  if (j + 2 <= n) std::memcpy(dst + j, src + j, 2 * sizeof(float)), j += 2;
  if (j < n) dst[j] = src[j];
}

}  // namespace

void CodtDecoder::save_user(int user, int from, int to, float* k, float* v) const {
  require(user >= 0 && user < batch_ && from >= 0 && from <= to && to <= pos_, "save_user: beyond the decoded tokens");
  const size_t D = static_cast<size_t>(model_->config.d_model), P = static_cast<size_t>(to - from), at = static_cast<size_t>(from);
  const size_t stride = static_cast<size_t>(slots_[user].stride);
  for (int l = 0; l < model_->config.layers; ++l) {
    const float* kc = user_keys(l, user) + at;
    for (size_t i = 0; i < D; ++i) copy_run(k + (l * D + i) * P, kc + i * stride, P);
    std::copy_n(user_values(l, user) + at * D, P * D, v + l * P * D);
  }
}

void CodtDecoder::load_user(int user, int from, int to, const float* k, const float* v) {
  require(rows_.empty(), "load_user: not while tokens are queued");
  require(user >= 0 && user < batch_ && from >= 0 && from <= to && to <= max_pos_, "load_user: beyond the decoder's users or context");
  const size_t D = static_cast<size_t>(model_->config.d_model), P = static_cast<size_t>(to - from), at = static_cast<size_t>(from);
  const size_t stride = static_cast<size_t>(slots_[user].stride);
  for (int l = 0; l < model_->config.layers; ++l) {
    float* kc = user_keys(l, user) + at;
    for (size_t i = 0; i < D; ++i) copy_run(kc + i * stride, k + (l * D + i) * P, P);
    std::copy_n(v + l * P * D, P * D, user_values(l, user) + at * D);
  }
}

void CodtDecoder::resume_user(int user, int positions) {
  require(rows_.empty() && user >= 0 && user < batch_ && positions >= pos_ && positions <= max_pos_, "resume_user: a user of the batch, at or after position()");
  resumed_[user] = positions;
}

void CodtDecoder::append_prefix(const float* values, float lambda) {
  require(pos_ == 0, "the round-0 prefix comes first");
  const CodtConfig& c = model_->config;
  const size_t P = prefix_kinds_.size(), D = static_cast<size_t>(c.d_model), L = static_cast<size_t>(c.layers);
  require(static_cast<int>(P) <= max_pos_, "decoder context is full (rounds beyond the model's context)");
  float key[3] = {lambda};  // λ, then at most two targets
  std::copy_n(values, P, key + 1);
  if (std::shared_ptr<const PrefixCache::Entry> e = model_->prefix.find(key, P + 1)) {
    for (int b = 0; b < batch_; ++b) load_user(b, 0, static_cast<int>(P), e->k.data(), e->v.data());
    pos_ = shared_ = static_cast<int>(P);
    return;
  }
  for (size_t p = 0; p < P; ++p) append_shared(prefix_kinds_[p], 0, values + p, lambda);
  auto e = std::make_shared<PrefixCache::Entry>();
  e->key.assign(key, key + P + 1);
  e->k.resize(L * P * D);
  e->v.resize(L * P * D);
  save_user(0, 0, static_cast<int>(P), e->k.data(), e->v.data());  // user 0's, as every user's
  model_->prefix.put(std::move(e));
}

void CodtDecoder::append_shared(TokenKind kind, int round, const float* values, float lambda) {
  require(prefix_shared(), "a shared token must follow shared tokens only");
  require(kind != TokenKind::kState, "a state token is never shared (its output is read per user)");
  require(pos_ < max_pos_, "decoder context is full (rounds beyond the model's context)");
  require(round >= 0 && round < model_->config.context, "round beyond the model's context");
  const int B = batch_;
  batch_ = 1;  // user 0 computes it, reading its own (shared) prefix
  try {
    enqueue(kind, round, values, &lambda);
    flush();
  } catch (...) {
    batch_ = B;
    throw;
  }
  batch_ = B;
  const size_t D = static_cast<size_t>(model_->config.d_model), at = static_cast<size_t>(pos_ - 1);
  for (int l = 0; l < model_->config.layers; ++l) {
    const float* k0 = user_keys(l, 0) + at;
    const float* v0 = user_values(l, 0) + at * D;
    const size_t s0 = static_cast<size_t>(slots_[0].stride);
    for (int b = 1; b < B; ++b) {
      float* kb = user_keys(l, b) + at;
      const size_t sb = static_cast<size_t>(slots_[b].stride);
      for (size_t i = 0; i < D; ++i) kb[i * sb] = k0[i * s0];
      std::copy_n(v0, D, user_values(l, b) + at * D);
    }
  }
  ++shared_;
}

void CodtDecoder::append(TokenKind kind, int round, const float* values, const float* lambda, float* logits) {
  const CodtConfig& c = model_->config;
  require(pos_ < max_pos_, "decoder context is full (rounds beyond the model's context)");
  require(round >= 0 && round < c.context, "round beyond the model's context");
  enqueue(kind, round, values, lambda);
  flush();
  if (kind == TokenKind::kState && logits) std::copy_n(head_.data(), static_cast<size_t>(batch_) * c.action_width(), logits);
}

void CodtDecoder::enqueue(TokenKind kind, int round, const float* values, const float* lambda) {
  const size_t width = static_cast<size_t>(embed_input_width(model_->config, kind)), input = gathered_.size();
  const int begin = static_cast<int>(rows_.size());
  groups_.push_back({kind, begin, begin + batch_, input});
  gathered_.resize(input + width * batch_);
  std::copy_n(values, width * batch_, gathered_.data() + input);
  for (int b = 0; b < batch_; ++b) rows_.push_back({b, pos_, round, lambda ? lambda[b] : 0.0f});
  ++pos_;
}

void CodtDecoder::flush() {
  const CodtModel& m = *model_;
  const CodtConfig& c = m.config;
  const int R = static_cast<int>(rows_.size()), D = c.d_model, K = c.action_width();
  if (R == 0) return;
  const size_t RD = static_cast<size_t>(R) * D;
  x_.resize(RD), h_.resize(RD), a_.resize(RD), q_.resize(RD), k_.resize(RD), v_.resize(RD), o_.resize(RD), proj_.resize(RD);
  att_.resize(4 * static_cast<size_t>(c.heads) * key_stride_);  // four queries' scores (attend_cached)
  // x [R, D] = Linear_kind(token) + time + Linear_λ(λ), a group at a time; h = LN(x)
  int state_begin = 0, state_end = 0;  // the state rows
  for (const Group& g : groups_) {
    float* x = x_.data() + static_cast<size_t>(g.begin) * D;
    embed_kind(m, g.kind, gathered_.data() + g.input, g.end - g.begin, x, in_);
    for (int r = g.begin; r < g.end; ++r) add_time_and_lambda(m, rows_[r].round, rows_[r].lambda, x_.data() + static_cast<size_t>(r) * D);
    if (g.kind != TokenKind::kState) continue;
    require(state_begin == state_end, "one group of state tokens at a time");
    state_begin = g.begin, state_end = g.end;
  }
  layernorm_forward(h_.data(), x_.data(), m.w.embed_ln_g, m.w.embed_ln_b, R, D);
  // the rows user by user, in position order: a user's keys and values are stored, then read
  // by its rows' attention while they are in L1, and its consecutive positions stored at once
  by_user_.resize(static_cast<size_t>(R));
  for (int r = 0; r < R; ++r) by_user_[r] = r;
  std::sort(by_user_.begin(), by_user_.end(), [&](int a, int b) {
    return rows_[a].user != rows_[b].user ? rows_[a].user < rows_[b].user : rows_[a].position < rows_[b].position;
  });
  for (int l = 0; l < c.layers; ++l) {
    const LayerWeights& L = m.w.layers[l];
    layernorm_forward(a_.data(), h_.data(), L.ln1_g, L.ln1_b, R, D);
    layer_product(m, l, &LayerWeights::wk, &Bf16Layer::wk, k_.data(), a_.data(), L.bk, R, D, D);
    layer_product(m, l, &LayerWeights::wv, &Bf16Layer::wv, v_.data(), a_.data(), L.bv, R, D, D);
    // Only the state tokens' last-layer output is ever read (by the head); other tokens
    // matter to later tokens through their keys and values alone.
    const bool last = l == c.layers - 1;
    const int r0 = last ? state_begin : 0, r1 = last ? state_end : R, n = r1 - r0;
    const size_t off = static_cast<size_t>(r0) * D;
    if (n > 0) layer_product(m, l, &LayerWeights::wq, &Bf16Layer::wq, q_.data() + off, a_.data() + off, L.bq, n, D, D);
    // user by user: the keys (columns of the transposed cache) and values of a run of
    // consecutive positions, then the attention of those rows: causal, as each row reads its
    // user's cache up to its own position, and a user's rows come after all its keys
    for (int begin = 0; begin < R;) {
      const int user = rows_[by_user_[begin]].user;
      int end = begin + 1;
      while (end < R && rows_[by_user_[end]].user == user) ++end;
      const size_t stride = static_cast<size_t>(slots_[user].stride);
      for (int run = begin; run < end;) {
        const int p0 = rows_[by_user_[run]].position;
        int run_end = run + 1;
        while (run_end < end && rows_[by_user_[run_end]].position == p0 + (run_end - run)) ++run_end;
        store_keys_transposed(user_keys(l, user) + p0, stride, k_.data(), by_user_.data() + run, run_end - run, D);
        run = run_end;
      }
      for (int i = begin; i < end; ++i) {
        const int r = by_user_[i];
        std::copy_n(v_.data() + static_cast<size_t>(r) * D, D, user_values(l, user) + static_cast<size_t>(rows_[r].position) * D);
      }
      // its attending rows, up to four at a time: the cache's loads are shared
      const float* queries[4];
      float* outs[4];
      int lens[4], group = 0;
      auto attend = [&] {
        attend_cached(queries, outs, lens, group, user_keys(l, user), user_values(l, user), slots_[user].stride, D, c.heads, att_.data());
        group = 0;
      };
      for (int i = begin; i < end; ++i) {
        const int r = by_user_[i];
        if (r < r0 || r >= r1) continue;
        queries[group] = q_.data() + static_cast<size_t>(r) * D, outs[group] = o_.data() + static_cast<size_t>(r) * D, lens[group] = rows_[r].position + 1;
        if (++group == 4) attend();
      }
      if (group > 0) attend();
      begin = end;
    }
    if (n == 0) continue;
    layer_product(m, l, &LayerWeights::wo, &Bf16Layer::wo, proj_.data() + off, o_.data() + off, L.bo, n, D, D);
    for (size_t i = off; i < static_cast<size_t>(r1) * D; ++i) h_[i] += proj_[i];
    mlp_residual(m, l, h_.data() + off, n, a_, m_, proj_);
  }
  const int n = state_end - state_begin;
  if (n > 0) {  // h went through every layer for the state rows
    head_.resize(static_cast<size_t>(n) * K);
    layernorm_forward(a_.data(), h_.data() + static_cast<size_t>(state_begin) * D, m.w.lnf_g, m.w.lnf_b, n, D);
    matmul_forward(head_.data(), a_.data(), m.w.head_w, m.w.head_b, n, D, K);
  }
  rows_.clear();
  groups_.clear();
  gathered_.clear();
}

void CodtDecoder::append_rounds(const SequenceBatch& in, int first_user, float* logits) {
  flush();
  const CodtConfig& c = model_->config;
  const std::vector<TokenKind>& kinds = kinds_;
  const int T = in.rounds, B = batch_, K = c.action_width(), per_round = static_cast<int>(kinds.size());
  const int end = T * per_round - 1;  // the last action token is read by nothing
  require(end <= max_pos_, "decoder context is full (rounds beyond the model's context)");
  require(first_user >= 0 && first_user + B <= in.batch, "users beyond the batch");
  // one group per kind, users then rounds within it
  for (int k = 0; k < per_round; ++k) {
    const TokenKind kind = kinds[k];
    const size_t width = static_cast<size_t>(embed_input_width(c, kind));
    const int begin = static_cast<int>(rows_.size());
    const size_t input = gathered_.size();
    for (int b = 0; b < B; ++b) {
      const int u = first_user + b;
      for (int t = 0; t < T; ++t) {
        const int p = t * per_round + k;
        if (p < std::max(pos_, resumed_[b]) || p >= end) continue;
        const size_t at = static_cast<size_t>(u) * T + t;
        const float* src = token_input(in, kind, at, width);
        gathered_.insert(gathered_.end(), src, src + width);
        rows_.push_back({b, p, t, in.lambda[u]});
      }
    }
    if (static_cast<int>(rows_.size()) > begin) groups_.push_back({kind, begin, static_cast<int>(rows_.size()), input});
  }
  // the state rows (one group: users then rounds), whose logits flush() leaves in head_
  const auto state = std::find_if(groups_.begin(), groups_.end(), [](const Group& g) { return g.kind == TokenKind::kState; });
  state_rows_.assign(state == groups_.end() ? rows_.end() : rows_.begin() + state->begin, state == groups_.end() ? rows_.end() : rows_.begin() + state->end);
  pos_ = end;
  flush();
  for (size_t r = 0; r < state_rows_.size(); ++r) {
    std::copy_n(head_.data() + r * K, K, logits + (static_cast<size_t>(first_user + state_rows_[r].user) * T + state_rows_[r].round) * K);
  }
}

void greedy_actions(const CodtConfig& c, const float* logits, int batch, int32_t* actions) {
  const int K = c.action_width();
  const size_t A = c.action_sizes.size();
  for (int i = 0; i < batch; ++i) {
    int offset = 0;
    for (size_t j = 0; j < A; ++j) {
      const float* l = logits + static_cast<size_t>(i) * K + offset;
      actions[static_cast<size_t>(i) * A + j] = static_cast<int32_t>(std::max_element(l, l + c.action_sizes[j]) - l);
      offset += c.action_sizes[j];
    }
  }
}

bool rows_independent(const CodtConfig& c) { return matmul_rows_independent() && (4 * c.d_model) % 16 == 0; }

namespace {

// This thread's decoder, bound to (model, capacity, max_rounds): kept from call to call when
// its caches are small (a block of the default CODT over 10 rounds: ~1 MB), so a decision
// allocates no decoder caches or scratch (a user new to the decision cache gets an entry); a
// bigger one lives in `own` for this call only.
CodtDecoder& thread_decoder(const CodtModel& model, int capacity, int max_rounds, std::unique_ptr<CodtDecoder>& own) {
  constexpr size_t kKeepBytes = size_t{4} << 20;
  thread_local std::unique_ptr<CodtDecoder> kept;
  if (CodtDecoder::cache_bytes(model, capacity, max_rounds) > kKeepBytes) {
    own = std::make_unique<CodtDecoder>(model, capacity, max_rounds);
    return *own;
  }
  if (kept) kept->bind(model, capacity, max_rounds);
  else kept = std::make_unique<CodtDecoder>(model, capacity, max_rounds);
  return *kept;
}

}  // namespace

namespace {

// λ, then the raw inputs of user u's first `positions` tokens of `in` in sequence order: what
// the decision cache keys an entry by. Returns how many values the first `prefix` tokens take.
size_t sequence_tokens(const CodtConfig& c, const std::vector<TokenKind>& kinds, const SequenceBatch& in, int u, int positions, int prefix, std::vector<float>& out) {
  const int per_round = static_cast<int>(kinds.size()), T = in.rounds;
  size_t round_values = 0;
  for (TokenKind kind : kinds) round_values += static_cast<size_t>(embed_input_width(c, kind));
  out.reserve(1 + static_cast<size_t>(T) * round_values);  // one allocation, not one per doubling
  out.assign(1, in.lambda[u]);
  size_t at_prefix = prefix == 0 ? 1 : 0;
  for (int p = 0; p < positions; ++p) {
    const int t = p / per_round;
    const TokenKind kind = kinds[p % per_round];
    const size_t width = static_cast<size_t>(embed_input_width(c, kind)), at = static_cast<size_t>(u) * T + t;
    const float* src = token_input(in, kind, at, width);
    out.insert(out.end(), src, src + width);
    if (p + 1 == prefix) at_prefix = out.size();
  }
  return at_prefix;
}

}  // namespace

void codt_forward_incremental(const CodtModel& model, const SequenceBatch& in, float* logits, unsigned threads, bool shared_prefix, bool keep_decisions) {
  const CodtConfig& c = model.config;
  const int T = in.rounds;
  const std::vector<TokenKind> kinds = c.token_kinds();
  const int per_round = static_cast<int>(kinds.size());
  const int decided = T * per_round - 1;        // every token but the last action
  const int previous = (T - 1) * per_round - 1;  // through the previous round's state token
  // the cache is used only where a hit gives the same bits as computing; and not at round 0,
  // whose sequence is the prefix cache's targets and one state token: keeping it would spare
  // round 1 one token of five for a copy on every round-0 decision (+40% for 128 users)
  const bool keep = keep_decisions && T >= 2 && rows_independent(c) && model.decisions.capacity() > 0;
  const size_t K = static_cast<size_t>(c.action_width());
  // Fixed blocks (the rollouts' size: their KV caches stay in a core's L2 over the rounds),
  // claimed one at a time by the threads, so the result does not depend on the thread count
  // and a pool thread that wakes late still takes its share of a short call.
  constexpr int block = 16;
  const unsigned workers = resolve_threads(threads);
  const int blocks = (in.batch + block - 1) / block;
  for_blocks(static_cast<size_t>(blocks), workers, [&](size_t blk) {
    const int u0 = static_cast<int>(blk) * block;
    const int B = std::min(block, in.batch - u0);
    std::unique_ptr<CodtDecoder> own;
    CodtDecoder& dec = thread_decoder(model, B, T, own);
    // whatever happens, the decoder lets go of the cache entries it computes into, as the block
    // ends (it only drops its pointers: nothing reads them once the entries are back or freed)
    struct Release {
      CodtDecoder& dec;
      ~Release() { dec.reset(); }
    } release{dec};
    // Round 0's targets and λ, when every user of the block has the same.
    auto same_at_round0 = [&](const float* per_user, size_t stride) {
      for (int b = 1; b < B; ++b) {
        if (per_user[static_cast<size_t>(u0 + b) * stride] != per_user[static_cast<size_t>(u0) * stride]) return false;
      }
      return true;
    };
    // every user of the block starts at the same targets and λ: round 0's target tokens
    // come from the model's prefix cache (or are computed once)
    const bool share = shared_prefix && same_at_round0(in.lambda, 1) && (!c.uses_rtg || same_at_round0(in.rtg, static_cast<size_t>(T))) &&
                       (!c.uses_ctg || same_at_round0(in.ctg, static_cast<size_t>(T)));
    // each user's sequence as kept by their previous decision, taken out of the cache (that
    // user continues from it), or a new one; the decoder computes into them in place
    thread_local std::vector<std::vector<float>> tokens;  // their keys: buffers reused call to call
    std::array<std::unique_ptr<DecisionCache::Entry>, block> entries;  // a new one holds no positions
    size_t key_tokens = 0;  // the previous round's key: tokens[b][0, key_tokens)
    int hits = 0;
    if (keep) {
      if (tokens.size() < static_cast<size_t>(B)) tokens.resize(static_cast<size_t>(B));
      // room for this round and the next (within the context): an entry grows, by a copy, only past that
      const int stride = (decoder_positions(model, T + 1) + 15) / 16 * 16;
      for (int b = 0; b < B; ++b) {
        key_tokens = sequence_tokens(c, kinds, in, u0 + b, decided, previous, tokens[b]);
        entries[b] = model.decisions.take(tokens[b].data(), key_tokens);  // (keep: T >= 2, so previous > 0)
        if (entries[b]) ++hits;
        else entries[b] = std::make_unique<DecisionCache::Entry>();
        if (entries[b]->stride < decoder_positions(model, T)) entries[b]->reserve(stride, c.layers, c.d_model);
        dec.adopt_user(b, entries[b]->k.data(), entries[b]->v.data(), entries[b]->stride);
      }
    }
    // the users computed from the start begin with round 0's targets from the prefix cache
    if (hits < B && share) {
      float targets[2];
      int n = 0;
      if (c.uses_rtg) targets[n++] = in.rtg[static_cast<size_t>(u0) * T];
      if (c.uses_ctg) targets[n++] = in.ctg[static_cast<size_t>(u0) * T];
      dec.append_prefix(targets, in.lambda[u0]);  // (also over a continued user's first tokens: the same bits, as rows_independent)
    }
    for (int b = 0; b < B && hits > 0; ++b) {
      if (entries[b]->positions == 0) continue;  // computed from the start
      std::copy_n(entries[b]->logits.data(), (T - 1) * K, logits + static_cast<size_t>(u0 + b) * T * K);  // the earlier rounds'
      dec.resume_user(b, previous);
    }
    dec.append_rounds(in, u0, logits);
    for (int b = 0; b < B && keep; ++b) {
      DecisionCache::Entry& e = *entries[b];
      e.tokens.swap(tokens[b]);  // this call's key; the old buffer builds the next call's
      e.positions = decided;
      e.parent_tokens = key_tokens;
      const float* row = logits + static_cast<size_t>(u0 + b) * T * K;
      e.logits.assign(row, row + static_cast<size_t>(T) * K);
      model.decisions.put(std::move(entries[b]));
    }
  });
}

}  // namespace saco
