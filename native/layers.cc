#include "layers.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>

#include "floats.h"
#include "rng.h"

namespace saco {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMatrix>;
using Map = Eigen::Map<RowMatrix>;
// One head's [S, D / H] slice of a [S, D] tensor: rows D apart.
using ConstHead = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;
using Head = Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>>;

constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2 / pi)
constexpr float kGeluA = 0.044715f;
constexpr uint32_t kStreamDropout = 48;

}  // namespace

void matmul_forward(float* out, const float* inp, const float* w, const float* b, int rows, int k, int n) {
  Map o(out, rows, n);
  o.noalias() = ConstMap(inp, rows, k) * ConstMap(w, k, n);
  if (b) o.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(b, n);
}

void matmul_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w, int rows, int k, int n) {
  ConstMap d(dout, rows, n);
  if (dinp) Map(dinp, rows, k).noalias() += d * ConstMap(w, k, n).transpose();
  if (dw) Map(dw, k, n).noalias() += ConstMap(inp, rows, k).transpose() * d;
  if (db) Eigen::Map<Eigen::RowVectorXf>(db, n) += d.colwise().sum();
}

void layernorm_forward(float* out, float* mean_out, float* rstd_out, const float* inp, const float* g, const float* b, int rows, int d) {
  for (int r = 0; r < rows; ++r) {
    const float* x = inp + static_cast<size_t>(r) * d;
    float* y = out + static_cast<size_t>(r) * d;
    float mean = 0;
    for (int i = 0; i < d; ++i) mean += x[i];
    mean /= static_cast<float>(d);
    float var = 0;
    for (int i = 0; i < d; ++i) var += (x[i] - mean) * (x[i] - mean);
    var /= static_cast<float>(d);
    const float rstd = 1.0f / std::sqrt(var + kLayerNormEps);
    for (int i = 0; i < d; ++i) y[i] = (x[i] - mean) * rstd * g[i] + b[i];
    if (mean_out) mean_out[r] = mean;
    if (rstd_out) rstd_out[r] = rstd;
  }
}

void layernorm_backward(float* dinp, float* dg, float* db, const float* dout, const float* inp, const float* g, const float* mean, const float* rstd, int rows, int d) {
  for (int r = 0; r < rows; ++r) {
    const float* x = inp + static_cast<size_t>(r) * d;
    const float* dy = dout + static_cast<size_t>(r) * d;
    float* dx = dinp ? dinp + static_cast<size_t>(r) * d : nullptr;
    const float mu = mean[r], rs = rstd[r];
    // dx = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), dnorm = dy * g
    float dnorm_mean = 0, dnorm_norm_mean = 0;
    for (int i = 0; i < d; ++i) {
      const float norm = (x[i] - mu) * rs;
      const float dnorm = dy[i] * g[i];
      dnorm_mean += dnorm;
      dnorm_norm_mean += dnorm * norm;
    }
    dnorm_mean /= static_cast<float>(d);
    dnorm_norm_mean /= static_cast<float>(d);
    for (int i = 0; i < d; ++i) {
      const float norm = (x[i] - mu) * rs;
      if (dg) dg[i] += dy[i] * norm;
      if (db) db[i] += dy[i];
      if (dx) dx[i] += (dy[i] * g[i] - dnorm_mean - norm * dnorm_norm_mean) * rs;
    }
  }
}

void gelu_forward(float* x, size_t n) {
  // Eigen's vectorised tanh: std::tanh per element was most of a rollout's time.
  Eigen::Map<Eigen::ArrayXf> v(x, static_cast<Eigen::Index>(n));
  v = 0.5f * v * (1.0f + (kGeluC * (v + kGeluA * v.cube())).tanh());
}

void gelu_forward(float* out, const float* inp, size_t n) {
  Eigen::Map<const Eigen::ArrayXf> v(inp, static_cast<Eigen::Index>(n));
  Eigen::Map<Eigen::ArrayXf>(out, static_cast<Eigen::Index>(n)) = 0.5f * v * (1.0f + (kGeluC * (v + kGeluA * v.cube())).tanh());
}

void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n) {
  // d/dx 0.5 x (1 + tanh u), u = c (x + a x^3): 0.5 (1 + t) + 0.5 x (1 - t^2) c (1 + 3 a x^2)
  constexpr size_t kStep = 4096;  // bounded temporaries
  for (size_t start = 0; start < n; start += kStep) {
    const auto len = static_cast<Eigen::Index>(std::min(kStep, n - start));
    Eigen::Map<const Eigen::ArrayXf> x(inp + start, len);
    Eigen::Map<const Eigen::ArrayXf> dy(dout + start, len);
    const Eigen::ArrayXf t = (kGeluC * (x + kGeluA * x.cube())).tanh();
    Eigen::Map<Eigen::ArrayXf>(dinp + start, len) += dy * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t.square()) * kGeluC * (1.0f + 3.0f * kGeluA * x.square()));
  }
}

void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v, const float* keep, int B, int S, int D, int H) {
  const int hd = D / H;
  const float inv = 1.0f / std::sqrt(static_cast<float>(hd));
  Floats dropped(keep ? static_cast<size_t>(S) * S : 0);
  for (int b = 0; b < B; ++b) {
    const size_t seq = static_cast<size_t>(b) * S * D;
    for (int h = 0; h < H; ++h) {
      ConstHead Q(q + seq + h * hd, S, hd, Eigen::OuterStride<>(D));
      ConstHead K(k + seq + h * hd, S, hd, Eigen::OuterStride<>(D));
      ConstHead V(v + seq + h * hd, S, hd, Eigen::OuterStride<>(D));
      const size_t ph = (static_cast<size_t>(b) * H + h) * S * S;
      Map P(probs + ph, S, S);
      P.noalias() = Q * K.transpose();
      for (int i = 0; i < S; ++i) {
        Eigen::Map<Eigen::ArrayXf> row(probs + ph + static_cast<size_t>(i) * S, i + 1);
        row *= inv;
        row = (row - row.maxCoeff()).exp();
        row /= row.sum();
        std::fill(probs + ph + static_cast<size_t>(i) * S + i + 1, probs + ph + static_cast<size_t>(i + 1) * S, 0.0f);
      }
      Head O(out + seq + h * hd, S, hd, Eigen::OuterStride<>(D));
      if (keep) {
        Map Pd(dropped.data(), S, S);
        Pd = P.array() * ConstMap(keep + ph, S, S).array();
        O.noalias() = Pd * V;
      } else {
        O.noalias() = P * V;
      }
    }
  }
}

void attention_backward(float* dq, float* dk, float* dv, float* scratch, const float* dout, const float* q, const float* k, const float* v, const float* probs,
                        const float* keep, int B, int S, int D, int H) {
  const int hd = D / H;
  const float inv = 1.0f / std::sqrt(static_cast<float>(hd));
  Map Pd(scratch, S, S);                            // probabilities after dropout
  Map dP(scratch + static_cast<size_t>(S) * S, S, S);  // their gradient, then the scores'
  for (int b = 0; b < B; ++b) {
    const size_t seq = static_cast<size_t>(b) * S * D;
    for (int h = 0; h < H; ++h) {
      const size_t ph = (static_cast<size_t>(b) * H + h) * S * S;
      ConstMap P(probs + ph, S, S);
      ConstHead Q(q + seq + h * hd, S, hd, Eigen::OuterStride<>(D));
      ConstHead K(k + seq + h * hd, S, hd, Eigen::OuterStride<>(D));
      ConstHead V(v + seq + h * hd, S, hd, Eigen::OuterStride<>(D));
      ConstHead dO(dout + seq + h * hd, S, hd, Eigen::OuterStride<>(D));
      if (keep) Pd = P.array() * ConstMap(keep + ph, S, S).array();
      else Pd = P;
      Head(dv + seq + h * hd, S, hd, Eigen::OuterStride<>(D)).noalias() += Pd.transpose() * dO;
      dP.noalias() = dO * V.transpose();
      if (keep) dP.array() *= ConstMap(keep + ph, S, S).array();
      // softmax backward per row: ds = P (dP - sum(P dP)); then the 1/sqrt(hd) scale
      for (int i = 0; i < S; ++i) {
        float dot = 0;
        for (int j = 0; j <= i; ++j) dot += P(i, j) * dP(i, j);
        for (int j = 0; j <= i; ++j) dP(i, j) = P(i, j) * (dP(i, j) - dot) * inv;
        for (int j = i + 1; j < S; ++j) dP(i, j) = 0;
      }
      Head(dq + seq + h * hd, S, hd, Eigen::OuterStride<>(D)).noalias() += dP * K;
      Head(dk + seq + h * hd, S, hd, Eigen::OuterStride<>(D)).noalias() += dP.transpose() * Q;
    }
  }
}

void dropout_mask(float* keep, size_t n, float p, uint64_t seed, uint32_t sequence, uint32_t site) {
  // One Philox block keys a SplitMix64 stream per (sequence, site): a full Philox per four
  // values was a tenth of a training step.
  const Philox4x32 key = philox4x32_10(sequence, site, kStreamDropout, 0, static_cast<uint32_t>(seed & 0xFFFFFFFFu), static_cast<uint32_t>(seed >> 32));
  uint64_t state = (static_cast<uint64_t>(key.v[0]) << 32) | key.v[1];
  const float scale = 1.0f / (1.0f - p);
  const auto threshold = static_cast<uint64_t>(static_cast<double>(p) * 4294967296.0);  // drop when word < p * 2^32
  for (size_t i = 0; i < n; i += 2) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    keep[i] = (z & 0xFFFFFFFFu) < threshold ? 0.0f : scale;
    if (i + 1 < n) keep[i + 1] = (z >> 32) < threshold ? 0.0f : scale;
  }
}

void apply_mask(float* x, const float* keep, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] *= keep[i];
}

double softmax_xent(float* dlogits, const float* logits, const float* onehot, const float* weight, const std::vector<int>& sizes, int N) {
  int K = 0;
  for (int s : sizes) K += s;
  double total = 0;
  for (int n = 0; n < N; ++n) {
    const float* z = logits + static_cast<size_t>(n) * K;
    const float* y = onehot + static_cast<size_t>(n) * K;
    float* dz = dlogits ? dlogits + static_cast<size_t>(n) * K : nullptr;
    double ce = 0;
    int off = 0;
    for (int s : sizes) {
      float mx = z[off];
      for (int j = 1; j < s; ++j) mx = std::max(mx, z[off + j]);
      float sum = 0;
      for (int j = 0; j < s; ++j) sum += std::exp(z[off + j] - mx);
      const float log_sum = std::log(sum);
      for (int j = 0; j < s; ++j) {
        const float logp = z[off + j] - mx - log_sum;
        ce -= static_cast<double>(y[off + j]) * logp;
        if (dz) dz[off + j] = weight[n] * (std::exp(logp) - y[off + j]);
      }
      off += s;
    }
    total += static_cast<double>(weight[n]) * ce;
  }
  return total;
}

}  // namespace saco
