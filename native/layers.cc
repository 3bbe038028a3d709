#include "layers.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <stdexcept>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

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

// Keys of rows[t] for t in [t0, t1) into positions [t0, t1) of keys_t [D, stride], one float
// at a time (store_keys_transposed's remainder, and all of it without AVX-512).
void store_keys_scalar(float* keys_t, size_t stride, const float* keys, const int* rows, int t0, int t1, int D) {
  for (int t = t0; t < t1; ++t) {
    const float* key = keys + static_cast<size_t>(rows[t]) * D;
    for (int i = 0; i < D; ++i) keys_t[static_cast<size_t>(i) * stride + t] = key[i];
  }
}

}  // namespace

void matmul_forward_eigen(float* out, const float* inp, const float* w, const float* b, int rows, int k, int n) {
  Map o(out, rows, n);
  o.noalias() = ConstMap(inp, rows, k) * ConstMap(w, k, n);
  if (b) o.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(b, n);
}

void matmul_forward_ref(float* out, const float* inp, const float* w, const float* b, int rows, int k, int n) {
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < n; ++c) {
      float acc = 0;
      for (int i = 0; i < k; ++i) acc += inp[static_cast<size_t>(r) * k + i] * w[static_cast<size_t>(i) * n + c];
      out[static_cast<size_t>(r) * n + c] = b ? acc + b[c] : acc;
    }
  }
}

#if defined(__AVX512F__)
namespace {

// The register tile of the row GEMM: MR rows x NV vectors of 16 columns, accumulated in
// registers over the whole of k (out = sum_i inp[r, i] * w[i, c], i = 0, 1, ..., k - 1, one
// fused multiply-add per i), then the bias added. Every output element is computed by the
// same instruction sequence whatever tile, row group or batch it falls in, so a row's
// result does not depend on how many rows are computed with it (one user alone, a block of
// 128, a shared prefix computed once) - only on its own input. The last vector of a
// column tile may be partial (`tail` masks its columns).
template <int MR, int NV>
inline void row_tile(float* out, const float* inp, const float* w, const float* b, int k, int n, int r0, int c0, __mmask16 tail) {
  __m512 acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[r][j] = _mm512_setzero_ps();
  }
  const float* a = inp + static_cast<size_t>(r0) * k;
  for (int i = 0; i < k; ++i) {
    const float* wi = w + static_cast<size_t>(i) * n + c0;
    __m512 wv[NV];
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) wv[j] = j == NV - 1 ? _mm512_maskz_loadu_ps(tail, wi + 16 * j) : _mm512_loadu_ps(wi + 16 * j);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512 x = _mm512_set1_ps(a[static_cast<size_t>(r) * k + i]);
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) acc[r][j] = _mm512_fmadd_ps(x, wv[j], acc[r][j]);
    }
  }
#pragma GCC unroll 4
  for (int j = 0; j < NV; ++j) {
    const __mmask16 m = j == NV - 1 ? tail : static_cast<__mmask16>(0xFFFF);
    const __m512 bias = b ? _mm512_maskz_loadu_ps(m, b + c0 + 16 * j) : _mm512_setzero_ps();
    for (int r = 0; r < MR; ++r) {
      float* o = out + static_cast<size_t>(r0 + r) * n + c0 + 16 * j;
      _mm512_mask_storeu_ps(o, m, b ? _mm512_add_ps(acc[r][j], bias) : acc[r][j]);
    }
  }
}

// Rows [r0, rows) of one column tile: groups of MR rows, then the remainder one tile shape
// smaller at a time.
template <int MR, int NV>
inline void row_tiles(float* out, const float* inp, const float* w, const float* b, int rows, int k, int n, int r0, int c0, __mmask16 tail) {
  for (; r0 + MR <= rows; r0 += MR) row_tile<MR, NV>(out, inp, w, b, k, n, r0, c0, tail);
  if constexpr (MR > 1) {
    if (r0 < rows) row_tiles<MR - 1, NV>(out, inp, w, b, rows, k, n, r0, c0, tail);
  }
}

}  // namespace

void matmul_forward(float* out, const float* inp, const float* w, const float* b, int rows, int k, int n) {
  // Column tiles of 64 (4 vectors): 6 rows x 4 vectors = 24 of the 32 vector registers
  // accumulate, 4 hold the weights' row, 1 the broadcast input. The weights' tile (k x 64)
  // stays in L1/L2 while every row group streams over it.
  for (int c0 = 0; c0 < n; c0 += 64) {
    const int width = std::min(64, n - c0);
    const int vectors = (width + 15) / 16;
    const int last = width - 16 * (vectors - 1);
    const auto tail = static_cast<__mmask16>(last == 16 ? 0xFFFF : (1u << last) - 1);
    switch (vectors) {
      case 4: row_tiles<6, 4>(out, inp, w, b, rows, k, n, 0, c0, tail); break;
      case 3: row_tiles<8, 3>(out, inp, w, b, rows, k, n, 0, c0, tail); break;
      case 2: row_tiles<12, 2>(out, inp, w, b, rows, k, n, 0, c0, tail); break;
      default: row_tiles<12, 1>(out, inp, w, b, rows, k, n, 0, c0, tail); break;
    }
  }
}

bool matmul_rows_independent() { return true; }

namespace {

// step(r, i) for i in [begin, end), r = (i − begin) mod 4: four independent partial sums, so
// the fused multiply-adds overlap. Inlined, every r is a constant (an index into registers).
template <typename Step>
__attribute__((always_inline)) inline void by_fours(int begin, int end, Step&& step) {
  int i = begin;
  for (; i + 4 <= end; i += 4) step(0, i), step(1, i + 1), step(2, i + 2), step(3, i + 3);
  if (i < end) step(0, i);
  if (i + 1 < end) step(1, i + 1);
  if (i + 2 < end) step(2, i + 2);
}

// (a[0] + a[1]) + (a[2] + a[3]): the partial sums of by_fours, in one fixed order.
inline __m512 sum_of_fours(const __m512 (&a)[4]) { return _mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3])); }

// attend_cached for N queries of one user (N <= 4). Each query's lanes get exactly the
// operations a query alone gets (the same partial sums in the same order), so a query's
// result does not depend on the queries beside it; the keys and values are loaded once for all N.
template <int N>
void attend_group(const float* const* q, float* const* out, const int* len, const float* keys_t, const float* values, int stride, int D, int H, float* all_scores) {
  using Eigen::internal::pexp;
  using Eigen::internal::Packet16f;
  const int hd = D / H;
  const __m512 inv = _mm512_set1_ps(1.0f / std::sqrt(static_cast<float>(hd)));
  auto lanes = [](int n) { return static_cast<__mmask16>(n % 16 == 0 ? 0xFFFF : (1u << (n % 16)) - 1); };
  int longest = len[0];
  for (int t = 1; t < N; ++t) longest = std::max(longest, len[t]);
  const int chunks = (longest + 15) / 16;
  const size_t S = 16 * static_cast<size_t>(chunks);  // one head's scores of one query
  auto scores_of = [&](int t, int h) { return all_scores + (static_cast<size_t>(t) * H + h) * S; };
  for (int h = 0; h < H; ++h) {
    // scores[j] = sum_i q[i] k[j, i] over the head's features i, positions j in lanes; four
    // partial sums (features i = 4m + r into sum r, by_fours). Lanes past the longest query
    // load as zeros: the cache there holds whatever the memory held, often denormals (old
    // pointers), and a multiply-add of one costs a microcode assist; lanes past a shorter
    // query's length hold keys and are never read by its softmax
    for (int c = 0; c < chunks; ++c) {
      const __mmask16 m = c == chunks - 1 ? lanes(longest) : 0xFFFF;
      // every index into acc is a constant, so the sums stay in registers
      __m512 acc[N][4];
      for (auto& a : acc) a[0] = a[1] = a[2] = a[3] = _mm512_setzero_ps();
      auto feature = [&](int r, int i) {
        const __m512 row = _mm512_maskz_loadu_ps(m, keys_t + static_cast<size_t>(i) * stride + 16 * c);
        for (int t = 0; t < N; ++t) acc[t][r] = _mm512_fmadd_ps(_mm512_set1_ps(q[t][i]), row, acc[t][r]);
      };
      by_fours(h * hd, (h + 1) * hd, feature);
      for (int t = 0; t < N; ++t) _mm512_store_ps(scores_of(t, h) + 16 * c, _mm512_mul_ps(sum_of_fours(acc[t]), inv));
    }
  }
  // each query's softmax over its own len scores (lanes past it are ignored, then zero); the
  // heads phase by phase, so the out-of-order core overlaps their dependency chains
  for (int t = 0; t < N; ++t) {
    const int own = (len[t] + 15) / 16;
    const __mmask16 last = lanes(len[t]);
    for (int h = 0; h < H; ++h) {
      float* scores = scores_of(t, h);
      __m512 mx = _mm512_set1_ps(-INFINITY);
      for (int c = 0; c < own; ++c) mx = _mm512_mask_max_ps(mx, c == own - 1 ? last : 0xFFFF, mx, _mm512_load_ps(scores + 16 * c));
      const __m512 top = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
      __m512 total = _mm512_setzero_ps();
      for (int c = 0; c < own; ++c) {
        const __mmask16 m = c == own - 1 ? last : 0xFFFF;
        const __m512 e = _mm512_maskz_mov_ps(m, pexp<Packet16f>(_mm512_sub_ps(_mm512_load_ps(scores + 16 * c), top)));
        _mm512_store_ps(scores + 16 * c, e);
        total = _mm512_add_ps(total, e);
      }
      const __m512 sum = _mm512_set1_ps(_mm512_reduce_add_ps(total));
      for (int c = 0; c < own; ++c) _mm512_store_ps(scores + 16 * c, _mm512_div_ps(_mm512_load_ps(scores + 16 * c), sum));
    }
  }
  for (int h = 0; h < H; ++h) {
    // out = sum_j p[j] v[j] over the head's features, a vector of 16 at a time (the last one
    // masked); four partial sums over the positions (j = 4m + r into sum r), each query's up
    // to its own length
    for (int f0 = h * hd; f0 < (h + 1) * hd; f0 += 16) {
      const __mmask16 m = lanes(std::min(16, (h + 1) * hd - f0));
      __m512 acc[N][4];
      for (auto& a : acc) a[0] = a[1] = a[2] = a[3] = _mm512_setzero_ps();
      auto position = [&](int r, int j) {
        const __m512 row = _mm512_maskz_loadu_ps(m, values + static_cast<size_t>(j) * D + f0);
        for (int t = 0; t < N; ++t) {
          if (j < len[t]) acc[t][r] = _mm512_fmadd_ps(_mm512_set1_ps(scores_of(t, h)[j]), row, acc[t][r]);
        }
      };
      by_fours(0, longest, position);
      for (int t = 0; t < N; ++t) _mm512_mask_storeu_ps(out[t] + f0, m, sum_of_fours(acc[t]));
    }
  }
}

}  // namespace

void attend_cached(const float* const* q, float* const* out, const int* len, int n, const float* keys_t, const float* values, int stride, int D, int H, float* scores) {
  switch (n) {
    case 1: return attend_group<1>(q, out, len, keys_t, values, stride, D, H, scores);
    case 2: return attend_group<2>(q, out, len, keys_t, values, stride, D, H, scores);
    case 3: return attend_group<3>(q, out, len, keys_t, values, stride, D, H, scores);
    case 4: return attend_group<4>(q, out, len, keys_t, values, stride, D, H, scores);
    default: throw std::invalid_argument("attend_cached: 1 to 4 queries at a time");
  }
}

namespace {

// Four rows' keys into positions [t0, t0 + 4): 16 features of the four rows transposed in
// registers, then one 4-float store per feature (a served round's four new tokens).
void store_keys_quad(float* keys_t, size_t stride, const float* keys, const int* rows, int t0, int D) {
  const float* a = keys + static_cast<size_t>(rows[t0]) * D;
  const float* b = keys + static_cast<size_t>(rows[t0 + 1]) * D;
  const float* c = keys + static_cast<size_t>(rows[t0 + 2]) * D;
  const float* d = keys + static_cast<size_t>(rows[t0 + 3]) * D;
  int f = 0;
  for (; f + 16 <= D; f += 16) {
    const __m512 ab_lo = _mm512_unpacklo_ps(_mm512_loadu_ps(a + f), _mm512_loadu_ps(b + f));  // per 128-bit lane: a0 b0 a1 b1
    const __m512 ab_hi = _mm512_unpackhi_ps(_mm512_loadu_ps(a + f), _mm512_loadu_ps(b + f));  // a2 b2 a3 b3
    const __m512 cd_lo = _mm512_unpacklo_ps(_mm512_loadu_ps(c + f), _mm512_loadu_ps(d + f));
    const __m512 cd_hi = _mm512_unpackhi_ps(_mm512_loadu_ps(c + f), _mm512_loadu_ps(d + f));
    auto pairs = [](__m512 x, __m512 y, bool high) {
      const __m512d u = _mm512_castps_pd(x), v = _mm512_castps_pd(y);
      return _mm512_castpd_ps(high ? _mm512_unpackhi_pd(u, v) : _mm512_unpacklo_pd(u, v));
    };
    // q[j], 128-bit lane L: the four rows' feature f + 4L + j
    const __m512 q[4] = {pairs(ab_lo, cd_lo, false), pairs(ab_lo, cd_lo, true), pairs(ab_hi, cd_hi, false), pairs(ab_hi, cd_hi, true)};
    float* out = keys_t + static_cast<size_t>(f) * stride + t0;
    for (int j = 0; j < 4; ++j) {
      _mm_storeu_ps(out + static_cast<size_t>(j) * stride, _mm512_castps512_ps128(q[j]));
      _mm_storeu_ps(out + static_cast<size_t>(4 + j) * stride, _mm512_extractf32x4_ps(q[j], 1));
      _mm_storeu_ps(out + static_cast<size_t>(8 + j) * stride, _mm512_extractf32x4_ps(q[j], 2));
      _mm_storeu_ps(out + static_cast<size_t>(12 + j) * stride, _mm512_extractf32x4_ps(q[j], 3));
    }
  }
  for (; f < D; ++f) {
    float* out = keys_t + static_cast<size_t>(f) * stride + t0;
    out[0] = a[f], out[1] = b[f], out[2] = c[f], out[3] = d[f];
  }
}

}  // namespace

void store_keys_transposed(float* keys_t, size_t stride, const float* keys, const int* rows, int n, int D) {
  int t0 = 0;
  for (; t0 + 16 <= n; t0 += 16) {  // 16 positions of a feature per gather
    const __m512i at = _mm512_mullo_epi32(_mm512_loadu_si512(rows + t0), _mm512_set1_epi32(D));
    for (int i = 0; i < D; ++i) _mm512_storeu_ps(keys_t + static_cast<size_t>(i) * stride + t0, _mm512_i32gather_ps(at, keys + i, 4));
  }
  for (; t0 + 4 <= n; t0 += 4) store_keys_quad(keys_t, stride, keys, rows, t0, D);
  store_keys_scalar(keys_t, stride, keys, rows, t0, n, D);
}
#else
void matmul_forward(float* out, const float* inp, const float* w, const float* b, int rows, int k, int n) {
  matmul_forward_eigen(out, inp, w, b, rows, k, n);
}

bool matmul_rows_independent() { return false; }

void attend_cached(const float* const* queries, float* const* outs, const int* lens, int n, const float* keys_t, const float* values, int stride, int D, int H, float* scores) {
  const int hd = D / H;
  const float inv = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int t = 0; t < n; ++t) {
    const float* q = queries[t];
    float* out = outs[t];
    const int len = lens[t];
    for (int h = 0; h < H; ++h) {
      float top = -INFINITY;
      for (int j = 0; j < len; ++j) {
        float acc = 0;
        for (int i = h * hd; i < (h + 1) * hd; ++i) acc += q[i] * keys_t[static_cast<size_t>(i) * stride + j];
        scores[j] = acc * inv;
        top = std::max(top, scores[j]);
      }
      float sum = 0;
      for (int j = 0; j < len; ++j) sum += scores[j] = std::exp(scores[j] - top);
      for (int j = 0; j < len; ++j) scores[j] /= sum;
      for (int i = h * hd; i < (h + 1) * hd; ++i) {
        float acc = 0;
        for (int j = 0; j < len; ++j) acc += scores[j] * values[static_cast<size_t>(j) * D + i];
        out[i] = acc;
      }
    }
  }
}

void store_keys_transposed(float* keys_t, size_t stride, const float* keys, const int* rows, int n, int D) { store_keys_scalar(keys_t, stride, keys, rows, 0, n, D); }
#endif

void matmul_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w, int rows, int k, int n) {
  ConstMap d(dout, rows, n);
  if (dinp) Map(dinp, rows, k).noalias() += d * ConstMap(w, k, n).transpose();
  if (dw) Map(dw, k, n).noalias() += ConstMap(inp, rows, k).transpose() * d;
  if (db) Eigen::Map<Eigen::RowVectorXf>(db, n) += d.colwise().sum();
}

void layernorm_forward(float* out, float* mean_out, float* rstd_out, const float* inp, const float* g, const float* b, int rows, int d) {
#if defined(__AVX512F__)
  // Sums in 16 lanes, then across them: the same per row whatever the rows around it.
  const int chunks = (d + 15) / 16;
  const auto last = static_cast<__mmask16>(d % 16 == 0 ? 0xFFFF : (1u << (d % 16)) - 1);
  const __m512 inv_d = _mm512_set1_ps(1.0f / static_cast<float>(d));
  for (int r = 0; r < rows; ++r) {
    const float* x = inp + static_cast<size_t>(r) * d;
    float* y = out + static_cast<size_t>(r) * d;
    __m512 sum = _mm512_setzero_ps();
    for (int c = 0; c < chunks; ++c) sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(c == chunks - 1 ? last : 0xFFFF, x + 16 * c));
    const float mean = _mm512_reduce_add_ps(_mm512_mul_ps(sum, inv_d));
    const __m512 mu = _mm512_set1_ps(mean);
    __m512 sq = _mm512_setzero_ps();
    for (int c = 0; c < chunks; ++c) {
      const __m512 dx = _mm512_maskz_sub_ps(c == chunks - 1 ? last : 0xFFFF, _mm512_maskz_loadu_ps(c == chunks - 1 ? last : 0xFFFF, x + 16 * c), mu);
      sq = _mm512_fmadd_ps(dx, dx, sq);
    }
    const float var = _mm512_reduce_add_ps(_mm512_mul_ps(sq, inv_d));
    const float rstd = 1.0f / std::sqrt(var + kLayerNormEps);
    const __m512 rs = _mm512_set1_ps(rstd);
    for (int c = 0; c < chunks; ++c) {
      const __mmask16 m = c == chunks - 1 ? last : 0xFFFF;
      const __m512 norm = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + 16 * c), mu), rs);
      _mm512_mask_storeu_ps(y + 16 * c, m, _mm512_add_ps(_mm512_mul_ps(norm, _mm512_maskz_loadu_ps(m, g + 16 * c)), _mm512_maskz_loadu_ps(m, b + 16 * c)));
    }
    if (mean_out) mean_out[r] = mean;
    if (rstd_out) rstd_out[r] = rstd;
  }
  return;
#endif
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
