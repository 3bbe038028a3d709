// The CODT layers as plain functions over row-major float buffers, forward and backward
// (llm.c style). Backward functions ACCUMULATE (+=) into every gradient they are given, so
// a tensor read by several consumers (the residual stream, LayerNorm outputs feeding Q, K
// and V) collects all of them; a null gradient pointer means "not needed".
//
// "rows" is sequences x tokens. Inference (the KV-cached decoder, the full-sequence
// forward) and training call the same forward functions.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace saco {

constexpr float kLayerNormEps = 1e-5f;

// out[rows, n] = inp[rows, k] @ w[k, n] + b[n]   (b may be null)
// Where the CPU has AVX-512 (the addon is built for the machine it runs on): a register-tiled
// kernel for the engine's shapes (users x 64-wide layers) whose every output row is computed
// by the same instruction sequence whatever the number of rows, so a user's result does not
// depend on who else is in the batch. Elsewhere: Eigen.
void matmul_forward(float* out, const float* inp, const float* w, const float* b, int rows, int k, int n);
// The same product with Eigen's GEMM (the fallback, and the bench's yardstick) and as plain
// loops (the reference: no vectors, no fused multiply-add).
void matmul_forward_eigen(float* out, const float* inp, const float* w, const float* b, int rows, int k, int n);
void matmul_forward_ref(float* out, const float* inp, const float* w, const float* b, int rows, int k, int n);
// True when matmul_forward computes each row independently of the others (the AVX-512 kernel).
bool matmul_rows_independent();
// dinp[rows, k] += dout @ w^T; dw[k, n] += inp^T @ dout; db[n] += column sums of dout
void matmul_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w, int rows, int k, int n);

// out[rows, d] = (inp - mean) * rstd * g + b per row; mean/rstd[rows] kept when non-null
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* g, const float* b, int rows, int d);
inline void layernorm_forward(float* out, const float* inp, const float* g, const float* b, int rows, int d) {
  layernorm_forward(out, nullptr, nullptr, inp, g, b, rows, d);
}
// dinp[rows, d] += ..., dg[d] += ..., db[d] += ... given the forward's mean and rstd
void layernorm_backward(float* dinp, float* dg, float* db, const float* dout, const float* inp, const float* g, const float* mean, const float* rstd, int rows, int d);

// x[n] = gelu_tanh(x[n]) in place (ONNX Gelu approximate="tanh")
void gelu_forward(float* x, size_t n);
// out[n] = gelu_tanh(inp[n])
void gelu_forward(float* out, const float* inp, size_t n);
// dinp[n] += gelu'(inp) * dout
void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n);

// Queries of the KV-cached decoder against one user's cached tokens, n of them at once (1 to
// 4): query t, q[t] [D] (heads split D into H parts of D / H), reads its first len[t] tokens,
// keys stored transposed keys_t [D, stride] (feature i of token j at i * stride + j, stride >=
// every len), values [len, D]; out[t] [D] = softmax(q k^T / sqrt(D / H)) v per head. `scores`
// holds n * H * (the longest len rounded up to 16) floats. Lane-wise (AVX-512 where the CPU has
// it) and the same operations for a query whatever the others, so a result is a function of its
// query and the cache alone; together, the cache is loaded once for all of them.
void attend_cached(const float* const* q, float* const* out, const int* len, int n, const float* keys_t, const float* values, int stride, int D, int H, float* scores);

// The keys of n tokens at consecutive positions, rows keys[rows[t] * D, +D), into positions
// [0, n) of a transposed cache keys_t [D, stride]: 16 positions of a feature per store (a
// gather), then 4 (a register transpose), the rest a float at a time (a store per float left
// most of a row's 64 stores waiting for their cache lines).
void store_keys_transposed(float* keys_t, size_t stride, const float* keys, const int* rows, int n, int D);

// Causal self-attention over B sequences of S tokens; heads split D into H parts of D / H.
//   q, k, v [B, S, D]; probs [B, H, S, S] = softmax(q k^T / sqrt(D / H)) with the causal mask
//   (exact zeros above the diagonal); out [B, S, D] = (probs * keep) v where keep [B, H, S, S]
//   is the dropout multiplier (0 or 1 / (1 - p)) or null for none.
void attention_forward(float* out, float* probs, const float* q, const float* k, const float* v, const float* keep, int B, int S, int D, int H);
// dq, dk, dv [B, S, D] += ...; scratch needs 2 * S * S floats.
void attention_backward(float* dq, float* dk, float* dv, float* scratch, const float* dout, const float* q, const float* k, const float* v, const float* probs,
                        const float* keep, int B, int S, int D, int H);

// Dropout multipliers keep[n] (0 or 1 / (1 - p)), a pure function of (seed, sequence, site,
// index): the same mask whatever the chunking or thread count.
void dropout_mask(float* keep, size_t n, float p, uint64_t seed, uint32_t sequence, uint32_t site);
// x[n] *= keep[n]
void apply_mask(float* x, const float* keep, size_t n);

// Cross-entropy of one-hot targets under one softmax per action dimension:
//   logits, onehot [N, K] with K = sum of sizes; weight [N] (the sample's share of the loss).
// Returns sum_n weight[n] * sum_dims CE(n, dim) in double; when dlogits is non-null writes
// (not accumulates) dlogits[N, K] = weight[n] * (softmax - onehot).
double softmax_xent(float* dlogits, const float* logits, const float* onehot, const float* weight, const std::vector<int>& sizes, int N);

}  // namespace saco
