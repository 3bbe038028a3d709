// CODT on the CPU: weights, the layer functions, a full-sequence forward (the reference the
// tests hold against ONNX Runtime) and an incremental decoder with a KV cache per user
// (what rollouts and decisions use). Both call the same layer functions.
#pragma once
#include <cstdint>
#include <cstdlib>
#include <map>
#include <new>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor.h"

namespace saco {

enum class TokenKind { kRtg = 0, kCtg = 1, kState = 2, kAction = 3 };

struct CodtConfig {
  int state_dim = 0;
  std::vector<int> action_sizes;
  int context = 0;  // rounds
  int d_model = 0;
  int layers = 0;
  int heads = 0;
  bool uses_rtg = true;
  bool uses_ctg = true;
  bool uses_lambda = true;

  int action_width() const;
  std::vector<TokenKind> token_kinds() const;  // per round, in sequence order
  int tokens_per_round() const { return static_cast<int>(token_kinds().size()); }
};

struct Normalization {
  std::vector<float> state_mean, state_std;
  float rtg_scale = 1, ctg_scale = 1, lambda_max = 1;
};

// Decision-time targets RTG*_0(λ), CTG*_0(λ) on a λ grid.
struct TargetTable {
  std::vector<double> lambdas, rtg, ctg;
  void at(double lambda, double& rtg_out, double& ctg_out) const;
};

// Pointers into CodtModel::params, resolved once (no string lookups on the hot path).
struct LayerWeights {
  const float *ln1_g, *ln1_b, *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo, *ln2_g, *ln2_b, *w1, *b1, *w2, *b2;
};
struct ResolvedWeights {
  const float *rtg_w = nullptr, *rtg_b = nullptr, *ctg_w = nullptr, *ctg_b = nullptr;
  const float *state_w, *state_b, *action_w, *action_b, *time;
  const float *lambda_w = nullptr, *lambda_b = nullptr;
  const float *embed_ln_g, *embed_ln_b, *lnf_g, *lnf_b, *head_w, *head_b;
  std::vector<LayerWeights> layers;
};

// Read-only after validate_model: shared by every thread and worker_thread of the process.
struct CodtModel {
  CodtConfig config;
  Normalization norm;
  TargetTable targets;
  std::map<std::string, std::vector<float>> params;
  ResolvedWeights w;  // filled by validate_model
  const float* p(const std::string& name) const;
};

// Throws std::invalid_argument when sizes are impossible or a parameter is missing/mis-sized;
// then resolves the weight pointers.
void validate_model(CodtModel& model);

// ---- layer functions (row-major; "rows" is users x tokens) ------------------------------
// out[rows, n] = inp[rows, k] @ w[k, n] + b[n]
void matmul_forward(float* out, const float* inp, const float* w, const float* b, int rows, int k, int n);
// out[rows, d] = (inp - mean) / sqrt(var + eps) * g + b, per row
void layernorm_forward(float* out, const float* inp, const float* g, const float* b, int rows, int d);
// x[n] = gelu_tanh(x[n])
void gelu_forward(float* x, size_t n);

// ---- full-sequence forward (reference) ---------------------------------------------------
// Inputs of B users over T rounds (T <= context), raw as in the ONNX graph:
//   states [B, T, state_dim], rtg [B, T], ctg [B, T], actions_onehot [B, T, K], lambda [B]
// logits [B, T, K] at the state tokens.
struct SequenceBatch {
  int batch = 0, rounds = 0;
  const float* states = nullptr;
  const float* rtg = nullptr;
  const float* ctg = nullptr;
  const float* actions_onehot = nullptr;
  const float* lambda = nullptr;
};
void codt_forward_full(const CodtModel& model, const SequenceBatch& in, float* logits);

// Scratch memory for the engine: 64-byte aligned, and left uninitialised by resize (KV
// caches are written before read; zero-filling them was a quarter of a rollout's time).
// Alignment is not only speed: Eigen computes the unaligned head of a vectorised exp/tanh
// with scalar functions, so an unaligned buffer would change results from call to call.
template <typename T>
struct AlignedUninitAllocator {
  using value_type = T;
  AlignedUninitAllocator() = default;
  template <typename U>
  AlignedUninitAllocator(const AlignedUninitAllocator<U>&) noexcept {}
  T* allocate(size_t n) {
    const size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
    void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
    if (!p) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) noexcept { std::free(p); }
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const AlignedUninitAllocator<U>&) const noexcept { return true; }
  template <typename U>
  bool operator!=(const AlignedUninitAllocator<U>&) const noexcept { return false; }
};
using Floats = std::vector<float, AlignedUninitAllocator<float>>;

// ---- incremental decoder -------------------------------------------------------------------
// Keeps K and V of every past token of up to `capacity` users; each call appends one token per user.
class CodtDecoder {
 public:
  // max_rounds: how many rounds will be appended (<= context; 0: the whole context).
  CodtDecoder(const CodtModel& model, int capacity, int max_rounds = 0);
  // Forget every token; the next ones are for `batch` (<= capacity) users.
  void reset(int batch);
  void reset() { reset(batch_); }
  int batch() const { return batch_; }
  int position() const { return pos_; }
  // Appends one token of `kind` at round t for every user. `values` is, per user:
  // rtg/ctg: 1 raw value; state: state_dim raw values; action: K one-hot values.
  // lambda: per user raw λ. When kind is kState and logits != nullptr, writes [batch, K].
  void append(TokenKind kind, int round, const float* values, const float* lambda, float* logits);

 private:
  const CodtModel& model_;
  int capacity_;
  int batch_;
  int pos_ = 0;
  int max_pos_;
  Floats k_cache_, v_cache_;  // [layers, capacity, max_pos, d]
  Floats x_, h_, a_, q_, k_, v_, att_, o_, m_, proj_, in_;  // scratch
};

}  // namespace saco
