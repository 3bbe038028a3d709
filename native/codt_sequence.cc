#include "codt_sequence.h"

#include <algorithm>
#include <stdexcept>

#include "pool.h"

namespace saco {
namespace {

// Dropout sites: each gets its own masks (the embed LayerNorm, then three per block).
constexpr uint32_t kSiteEmbed = 0;
uint32_t site_attn_probs(int l) { return 1 + 3 * static_cast<uint32_t>(l); }
uint32_t site_attn_out(int l) { return 2 + 3 * static_cast<uint32_t>(l); }
uint32_t site_mlp_out(int l) { return 3 + 3 * static_cast<uint32_t>(l); }

const float* kind_values(const SequenceBatch& in, TokenKind kind) {
  switch (kind) {
    case TokenKind::kRtg: return in.rtg;
    case TokenKind::kCtg: return in.ctg;
    case TokenKind::kState: return in.states;
    case TokenKind::kAction: return in.actions_onehot;
  }
  return nullptr;
}

// Dropout multipliers for `per_sequence` values of each of B sequences at one site.
void masks(Floats& keep, const DropoutSpec& drop, int B, size_t per_sequence, uint32_t site) {
  keep.resize(static_cast<size_t>(B) * per_sequence);
  for (int b = 0; b < B; ++b) dropout_mask(keep.data() + b * per_sequence, per_sequence, drop.p, drop.seed, drop.first_sequence + static_cast<uint32_t>(b), site);
}

void zero(Floats& f, size_t n) {
  f.resize(n);
  std::fill(f.begin(), f.end(), 0.0f);
}

// The gradient past a dropout: a * keep into `out` when dropout ran, else `a` itself.
const float* through_dropout(Floats& out, const Floats& a, const Floats& keep, bool dropout) {
  if (!dropout) return a.data();
  out.resize(a.size());
  for (size_t i = 0; i < a.size(); ++i) out[i] = a[i] * keep[i];
  return out.data();
}

}  // namespace

SequenceBatch chunk_of(const CodtModel& m, const SequenceBatch& in, int first, int count) {
  const size_t f = static_cast<size_t>(first), T = static_cast<size_t>(in.rounds);
  SequenceBatch c = in;
  c.batch = count;
  c.states = in.states + f * T * m.config.state_dim;
  c.rtg = in.rtg + f * T;
  c.ctg = in.ctg + f * T;
  c.actions_onehot = in.actions_onehot + f * T * m.config.action_width();
  c.lambda = in.lambda ? in.lambda + f : nullptr;
  return c;
}

void sequence_forward(const CodtModel& m, const SequenceBatch& in, const DropoutSpec& drop, SequenceActivations& act) {
  const CodtConfig& c = m.config;
  if (in.batch < 1) throw std::invalid_argument("batch must be >= 1");
  if (in.rounds < 1 || in.rounds > c.context) throw std::invalid_argument("rounds must be in [1, context]");
  const std::vector<TokenKind> kinds = c.token_kinds();
  const int B = in.batch, T = in.rounds, D = c.d_model, H = c.heads, K = c.action_width();
  const int n_tok = static_cast<int>(kinds.size()), S = T * n_tok;
  const size_t R = static_cast<size_t>(B) * S, BT = static_cast<size_t>(B) * T, RD = R * D;
  act.B = B, act.T = T, act.S = S;
  act.dropout = drop.p > 0;

  // Token embeddings, interleaved per round: x[b, t * n_tok + k, :]
  act.embed_in.resize(kinds.size());
  act.x.resize(RD);
  act.hs.resize(BT * D);  // scratch for one kind's Linear output here
  for (int k = 0; k < n_tok; ++k) {
    embed_kind(m, kinds[k], kind_values(in, kinds[k]), static_cast<int>(BT), act.hs.data(), act.embed_in[k]);
    for (int b = 0; b < B; ++b) {
      for (int t = 0; t < T; ++t) {
        float* dst = act.x.data() + (static_cast<size_t>(b) * S + t * n_tok + k) * D;
        std::copy_n(act.hs.data() + (static_cast<size_t>(b) * T + t) * D, D, dst);
        add_time_and_lambda(m, t, in.lambda ? in.lambda[b] : 0.0f, dst);
      }
    }
  }
  act.h0.resize(RD), act.ln0_mean.resize(R), act.ln0_rstd.resize(R);
  layernorm_forward(act.h0.data(), act.ln0_mean.data(), act.ln0_rstd.data(), act.x.data(), m.w.embed_ln_g, m.w.embed_ln_b, static_cast<int>(R), D);
  if (act.dropout) {
    masks(act.h0_keep, drop, B, static_cast<size_t>(S) * D, kSiteEmbed);
    apply_mask(act.h0.data(), act.h0_keep.data(), RD);
  }

  act.layers.resize(c.layers);
  const float* h = act.h0.data();
  for (int l = 0; l < c.layers; ++l) {
    const LayerWeights& W = m.w.layers[l];
    SequenceActivations::Layer& A = act.layers[l];
    A.ln1.resize(RD), A.ln1_mean.resize(R), A.ln1_rstd.resize(R);
    A.q.resize(RD), A.k.resize(RD), A.v.resize(RD), A.att.resize(RD), A.h_mid.resize(RD);
    A.probs.resize(static_cast<size_t>(B) * H * S * S);
    A.ln2.resize(RD), A.ln2_mean.resize(R), A.ln2_rstd.resize(R);
    A.fc.resize(RD * 4), A.fc_gelu.resize(RD * 4), A.h_out.resize(RD);

    layernorm_forward(A.ln1.data(), A.ln1_mean.data(), A.ln1_rstd.data(), h, W.ln1_g, W.ln1_b, static_cast<int>(R), D);
    matmul_forward(A.q.data(), A.ln1.data(), W.wq, W.bq, static_cast<int>(R), D, D);
    matmul_forward(A.k.data(), A.ln1.data(), W.wk, W.bk, static_cast<int>(R), D, D);
    matmul_forward(A.v.data(), A.ln1.data(), W.wv, W.bv, static_cast<int>(R), D, D);
    if (act.dropout) masks(A.probs_keep, drop, B, static_cast<size_t>(H) * S * S, site_attn_probs(l));
    attention_forward(A.att.data(), A.probs.data(), A.q.data(), A.k.data(), A.v.data(), act.dropout ? A.probs_keep.data() : nullptr, B, S, D, H);
    matmul_forward(A.h_mid.data(), A.att.data(), W.wo, W.bo, static_cast<int>(R), D, D);
    if (act.dropout) {
      masks(A.att_keep, drop, B, static_cast<size_t>(S) * D, site_attn_out(l));
      apply_mask(A.h_mid.data(), A.att_keep.data(), RD);
    }
    for (size_t i = 0; i < RD; ++i) A.h_mid[i] += h[i];

    layernorm_forward(A.ln2.data(), A.ln2_mean.data(), A.ln2_rstd.data(), A.h_mid.data(), W.ln2_g, W.ln2_b, static_cast<int>(R), D);
    matmul_forward(A.fc.data(), A.ln2.data(), W.w1, W.b1, static_cast<int>(R), D, 4 * D);
    gelu_forward(A.fc_gelu.data(), A.fc.data(), RD * 4);
    matmul_forward(A.h_out.data(), A.fc_gelu.data(), W.w2, W.b2, static_cast<int>(R), 4 * D, D);
    if (act.dropout) {
      masks(A.mlp_keep, drop, B, static_cast<size_t>(S) * D, site_mlp_out(l));
      apply_mask(A.h_out.data(), A.mlp_keep.data(), RD);
    }
    for (size_t i = 0; i < RD; ++i) A.h_out[i] += A.h_mid[i];
    h = A.h_out.data();
  }

  // Final LayerNorm and head at the state tokens only.
  const int state_k = static_cast<int>(std::find(kinds.begin(), kinds.end(), TokenKind::kState) - kinds.begin());
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) std::copy_n(h + (static_cast<size_t>(b) * S + t * n_tok + state_k) * D, D, act.hs.data() + (static_cast<size_t>(b) * T + t) * D);
  }
  act.lnf.resize(BT * D), act.lnf_mean.resize(BT), act.lnf_rstd.resize(BT), act.logits.resize(BT * K);
  layernorm_forward(act.lnf.data(), act.lnf_mean.data(), act.lnf_rstd.data(), act.hs.data(), m.w.lnf_g, m.w.lnf_b, static_cast<int>(BT), D);
  matmul_forward(act.logits.data(), act.lnf.data(), m.w.head_w, m.w.head_b, static_cast<int>(BT), D, K);
}

double sequence_loss_backward(const CodtModel& m, const SequenceBatch& in, const SequenceTargets& targets, SequenceActivations& act, SequenceGradScratch& g,
                              const Gradients* grads) {
  const CodtConfig& c = m.config;
  const std::vector<TokenKind> kinds = c.token_kinds();
  const int B = act.B, T = act.T, S = act.S, D = c.d_model, H = c.heads, K = c.action_width();
  const int n_tok = static_cast<int>(kinds.size());
  const size_t R = static_cast<size_t>(B) * S, BT = static_cast<size_t>(B) * T, RD = R * D;

  std::vector<float> share(BT);  // each round's share of the batch loss
  const double total = std::max(targets.weight_total, 1e-12);
  for (size_t i = 0; i < BT; ++i) share[i] = static_cast<float>(static_cast<double>(targets.weights[i]) * targets.mask[i] / total);
  g.dlogits.resize(BT * K);
  const double loss = softmax_xent(grads ? g.dlogits.data() : nullptr, act.logits.data(), in.actions_onehot, share.data(), c.action_sizes, static_cast<int>(BT));
  if (!grads) return loss;
  const Gradients& G = *grads;

  // head and final LayerNorm, then back into the state-token rows of the residual stream
  zero(g.dlnf, BT * D);
  matmul_backward(g.dlnf.data(), G.head_w, G.head_b, g.dlogits.data(), act.lnf.data(), m.w.head_w, static_cast<int>(BT), D, K);
  zero(g.dhs, BT * D);
  layernorm_backward(g.dhs.data(), G.lnf_g, G.lnf_b, g.dlnf.data(), act.hs.data(), m.w.lnf_g, act.lnf_mean.data(), act.lnf_rstd.data(), static_cast<int>(BT), D);
  zero(g.dh, RD);
  const int state_k = static_cast<int>(std::find(kinds.begin(), kinds.end(), TokenKind::kState) - kinds.begin());
  for (int b = 0; b < B; ++b) {
    for (int t = 0; t < T; ++t) std::copy_n(g.dhs.data() + (static_cast<size_t>(b) * T + t) * D, D, g.dh.data() + (static_cast<size_t>(b) * S + t * n_tok + state_k) * D);
  }

  g.attn.resize(static_cast<size_t>(2) * S * S);
  for (int l = c.layers - 1; l >= 0; --l) {
    const LayerWeights& W = m.w.layers[l];
    const LayerParams<float>& GL = G.layers[l];
    const SequenceActivations::Layer& A = act.layers[l];
    const float* h_in = l == 0 ? act.h0.data() : act.layers[l - 1].h_out.data();
    // MLP branch: h_out = h_mid + keep * (gelu(ln2 W1 + b1) W2 + b2); g.dh holds d h_out
    const float* dmlp = through_dropout(g.dtmp, g.dh, A.mlp_keep, act.dropout);
    zero(g.dfc_gelu, RD * 4);
    matmul_backward(g.dfc_gelu.data(), GL.w2, GL.b2, dmlp, A.fc_gelu.data(), W.w2, static_cast<int>(R), 4 * D, D);
    zero(g.dfc, RD * 4);
    gelu_backward(g.dfc.data(), A.fc.data(), g.dfc_gelu.data(), RD * 4);
    zero(g.dln, RD);
    matmul_backward(g.dln.data(), GL.w1, GL.b1, g.dfc.data(), A.ln2.data(), W.w1, static_cast<int>(R), D, 4 * D);
    layernorm_backward(g.dh.data(), GL.ln2_g, GL.ln2_b, g.dln.data(), A.h_mid.data(), W.ln2_g, A.ln2_mean.data(), A.ln2_rstd.data(), static_cast<int>(R), D);
    // attention branch: h_mid = h_in + keep * (attention(ln1) Wo + bo); g.dh holds d h_mid
    const float* dproj = through_dropout(g.dtmp, g.dh, A.att_keep, act.dropout);
    zero(g.datt, RD);
    matmul_backward(g.datt.data(), GL.wo, GL.bo, dproj, A.att.data(), W.wo, static_cast<int>(R), D, D);
    zero(g.dq, RD), zero(g.dk, RD), zero(g.dv, RD);
    attention_backward(g.dq.data(), g.dk.data(), g.dv.data(), g.attn.data(), g.datt.data(), A.q.data(), A.k.data(), A.v.data(), A.probs.data(),
                       act.dropout ? A.probs_keep.data() : nullptr, B, S, D, H);
    zero(g.dln, RD);
    matmul_backward(g.dln.data(), GL.wq, GL.bq, g.dq.data(), A.ln1.data(), W.wq, static_cast<int>(R), D, D);
    matmul_backward(g.dln.data(), GL.wk, GL.bk, g.dk.data(), A.ln1.data(), W.wk, static_cast<int>(R), D, D);
    matmul_backward(g.dln.data(), GL.wv, GL.bv, g.dv.data(), A.ln1.data(), W.wv, static_cast<int>(R), D, D);
    layernorm_backward(g.dh.data(), GL.ln1_g, GL.ln1_b, g.dln.data(), h_in, W.ln1_g, A.ln1_mean.data(), A.ln1_rstd.data(), static_cast<int>(R), D);
  }

  // embed LayerNorm (and its dropout), then each token kind's Linear, the time table and λ
  const float* dln0 = through_dropout(g.dtmp, g.dh, act.h0_keep, act.dropout);
  zero(g.dx, RD);
  layernorm_backward(g.dx.data(), G.embed_ln_g, G.embed_ln_b, dln0, act.x.data(), m.w.embed_ln_g, act.ln0_mean.data(), act.ln0_rstd.data(), static_cast<int>(R), D);
  g.dembed.resize(BT * D);
  for (int k = 0; k < n_tok; ++k) {
    for (int b = 0; b < B; ++b) {
      for (int t = 0; t < T; ++t) std::copy_n(g.dx.data() + (static_cast<size_t>(b) * S + t * n_tok + k) * D, D, g.dembed.data() + (static_cast<size_t>(b) * T + t) * D);
    }
    const float* inp = kinds[k] == TokenKind::kAction ? in.actions_onehot : act.embed_in[k].data();
    matmul_backward(nullptr, kind_weight(G, kinds[k]), kind_bias(G, kinds[k]), g.dembed.data(), inp, kind_weight(m.w, kinds[k]), static_cast<int>(BT), embed_input_width(c, kinds[k]), D);
  }
  for (int b = 0; b < B; ++b) {
    const float x = c.uses_lambda && in.lambda ? in.lambda[b] / m.norm.lambda_max : 0.0f;
    for (int s = 0; s < S; ++s) {
      const float* dx = g.dx.data() + (static_cast<size_t>(b) * S + s) * D;
      float* dtime = G.time + static_cast<size_t>(s / n_tok) * D;
      for (int j = 0; j < D; ++j) dtime[j] += dx[j];
      if (c.uses_lambda) {
        for (int j = 0; j < D; ++j) G.lambda_w[j] += x * dx[j];
        for (int j = 0; j < D; ++j) G.lambda_b[j] += dx[j];
      }
    }
  }
  return loss;
}

void codt_forward_full(const CodtModel& m, const SequenceBatch& in, float* logits, unsigned threads) {
  if (in.batch < 1) throw std::invalid_argument("batch must be >= 1");
  if (in.rounds < 1 || in.rounds > m.config.context) throw std::invalid_argument("rounds must be in [1, context]");
  const int chunks = (in.batch + kSequenceChunk - 1) / kSequenceChunk;
  const size_t per_sequence = static_cast<size_t>(in.rounds) * m.config.action_width();
  parallel_for(static_cast<size_t>(chunks), resolve_threads(threads), [&](size_t first, size_t last) {
    SequenceActivations act;
    for (size_t ch = first; ch < last; ++ch) {
      const int s0 = static_cast<int>(ch) * kSequenceChunk;
      const int count = std::min(kSequenceChunk, in.batch - s0);
      sequence_forward(m, chunk_of(m, in, s0, count), DropoutSpec{}, act);
      std::copy(act.logits.begin(), act.logits.end(), logits + static_cast<size_t>(s0) * per_sequence);
    }
  });
}

}  // namespace saco
