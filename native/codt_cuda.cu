#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "codt_cuda.h"
#include "cuda_device.h"

namespace saco {
namespace {

constexpr int kThreads = 256;
constexpr int kMaxHeadDim = 256;
constexpr float kLnEps = 1e-5f;

// A device allocation freed on scope exit.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t floats) : size_(floats) {
    if (cudaMalloc(reinterpret_cast<void**>(&ptr_), floats * sizeof(float) + 1) != cudaSuccess) ptr_ = nullptr;
  }
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* get() const { return ptr_; }
  bool ok() const { return ptr_ != nullptr; }
  bool upload(const float* host, size_t floats) { return cudaMemcpy(ptr_, host, floats * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess; }

 private:
  float* ptr_ = nullptr;
  size_t size_;
};

int blocks_for(size_t n) { return static_cast<int>((n + kThreads - 1) / kThreads); }

// out[r, n] = inp[r, :] . w[:, n] + b[n]
__global__ void matmul_kernel(float* out, const float* inp, const float* w, const float* b, int rows, int k, int n) {
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(rows) * n) return;
  const int r = static_cast<int>(idx / n), c = static_cast<int>(idx % n);
  float s = b ? b[c] : 0.0f;
  for (int i = 0; i < k; ++i) s += inp[static_cast<size_t>(r) * k + i] * w[static_cast<size_t>(i) * n + c];
  out[idx] = s;
}

__global__ void layernorm_kernel(float* out, const float* inp, const float* g, const float* b, int rows, int d) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const float* x = inp + static_cast<size_t>(r) * d;
  float mean = 0;
  for (int i = 0; i < d; ++i) mean += x[i];
  mean /= d;
  float var = 0;
  for (int i = 0; i < d; ++i) var += (x[i] - mean) * (x[i] - mean);
  var /= d;
  const float rstd = rsqrtf(var + kLnEps);
  for (int i = 0; i < d; ++i) out[static_cast<size_t>(r) * d + i] = (x[i] - mean) * rstd * g[i] + b[i];
}

__global__ void gelu_kernel(float* x, size_t n) {
  const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float v = x[i];
  x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}

__global__ void add_kernel(float* h, const float* x, size_t n) {
  const size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) h[i] += x[i];
}

// Causal attention with a streaming softmax: one thread per (user, head, query position).
__global__ void attention_kernel(float* out, const float* q, const float* k, const float* v, int batch, int seq, int heads, int d) {
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= batch * heads * seq) return;
  const int s = idx % seq, h = (idx / seq) % heads, b = idx / (seq * heads);
  const int hd = d / heads;
  const float inv = rsqrtf(static_cast<float>(hd));
  const float* qv = q + (static_cast<size_t>(b) * seq + s) * d + h * hd;
  float acc[kMaxHeadDim];
  for (int i = 0; i < hd; ++i) acc[i] = 0;
  float m = -INFINITY, l = 0;
  for (int j = 0; j <= s; ++j) {
    const float* kv = k + (static_cast<size_t>(b) * seq + j) * d + h * hd;
    float score = 0;
    for (int i = 0; i < hd; ++i) score += qv[i] * kv[i];
    score *= inv;
    const float m_new = fmaxf(m, score);
    const float scale = expf(m - m_new), p = expf(score - m_new);
    const float* vv = v + (static_cast<size_t>(b) * seq + j) * d + h * hd;
    for (int i = 0; i < hd; ++i) acc[i] = acc[i] * scale + p * vv[i];
    l = l * scale + p;
    m = m_new;
  }
  float* o = out + (static_cast<size_t>(b) * seq + s) * d + h * hd;
  for (int i = 0; i < hd; ++i) o[i] = acc[i] / l;
}

// Token embeddings, interleaved per round, with time and λ: x[b, t * n_tok + k, :].
struct EmbedArgs {
  const float *states, *rtg, *ctg, *actions, *lambda;
  const float *rtg_w, *rtg_b, *ctg_w, *ctg_b, *state_w, *state_b, *action_w, *action_b, *time, *lambda_w, *lambda_b, *mean, *std;
  int kinds[4];
  int n_tok, batch, rounds, d, state_dim, action_width;
  float rtg_scale, ctg_scale, lambda_max;
};

__global__ void embed_kernel(float* x, EmbedArgs a) {
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const size_t total = static_cast<size_t>(a.batch) * a.rounds * a.n_tok * a.d;
  if (idx >= total) return;
  const int j = static_cast<int>(idx % a.d);
  const int k = static_cast<int>((idx / a.d) % a.n_tok);
  const int t = static_cast<int>((idx / (static_cast<size_t>(a.d) * a.n_tok)) % a.rounds);
  const int b = static_cast<int>(idx / (static_cast<size_t>(a.d) * a.n_tok * a.rounds));
  const size_t bt = static_cast<size_t>(b) * a.rounds + t;
  float e = 0;
  switch (a.kinds[k]) {
    case 0: e = a.rtg[bt] / a.rtg_scale * a.rtg_w[j] + a.rtg_b[j]; break;
    case 1: e = a.ctg[bt] / a.ctg_scale * a.ctg_w[j] + a.ctg_b[j]; break;
    case 2: {
      e = a.state_b[j];
      for (int i = 0; i < a.state_dim; ++i) e += (a.states[bt * a.state_dim + i] - a.mean[i]) / a.std[i] * a.state_w[static_cast<size_t>(i) * a.d + j];
      break;
    }
    default: {
      e = a.action_b[j];
      for (int i = 0; i < a.action_width; ++i) e += a.actions[bt * a.action_width + i] * a.action_w[static_cast<size_t>(i) * a.d + j];
    }
  }
  e += a.time[static_cast<size_t>(t) * a.d + j];
  if (a.lambda_w) e += a.lambda[b] / a.lambda_max * a.lambda_w[j] + a.lambda_b[j];
  x[idx] = e;
}

__global__ void gather_state_kernel(float* out, const float* h, int rows_out, int n_tok, int state_k, int d) {
  const size_t idx = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<size_t>(rows_out) * d) return;
  const size_t r = idx / d, j = idx % d;
  out[idx] = h[(r * n_tok + state_k) * d + j];
}

}  // namespace

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

bool codt_forward_full_cuda(const CodtModel& m, const SequenceBatch& in, float* logits, std::string& error) {
  if (cuda_device_count() == 0) {
    error = "no CUDA device visible";
    return false;
  }
  const CodtConfig& c = m.config;
  const int B = in.batch, T = in.rounds, D = c.d_model, K = c.action_width(), H = c.heads;
  if (D / H > kMaxHeadDim) {
    error = "head size above " + std::to_string(kMaxHeadDim);
    return false;
  }
  const std::vector<TokenKind> kinds = c.token_kinds();
  const int n_tok = static_cast<int>(kinds.size()), S = T * n_tok;
  const size_t rows = static_cast<size_t>(B) * S;
  // weights (uploaded per call: simple and correct; a device-side model pool would keep them)
  std::vector<std::unique_ptr<DeviceBuffer>> keep;
  auto upload = [&](const float* host, size_t n) -> const float* {
    if (!host) return nullptr;
    keep.push_back(std::make_unique<DeviceBuffer>(n));
    return keep.back()->ok() && keep.back()->upload(host, n) ? keep.back()->get() : nullptr;
  };
  const size_t bt = static_cast<size_t>(B) * T;
  EmbedArgs a{};
  a.states = upload(in.states, bt * c.state_dim);
  a.rtg = upload(in.rtg, bt);
  a.ctg = upload(in.ctg, bt);
  a.actions = upload(in.actions_onehot, bt * K);
  a.lambda = upload(in.lambda, B);
  a.rtg_w = upload(m.w.rtg_w, D), a.rtg_b = upload(m.w.rtg_b, D);
  a.ctg_w = upload(m.w.ctg_w, D), a.ctg_b = upload(m.w.ctg_b, D);
  a.state_w = upload(m.w.state_w, static_cast<size_t>(c.state_dim) * D), a.state_b = upload(m.w.state_b, D);
  a.action_w = upload(m.w.action_w, static_cast<size_t>(K) * D), a.action_b = upload(m.w.action_b, D);
  a.time = upload(m.w.time, static_cast<size_t>(c.context) * D);
  a.lambda_w = upload(m.w.lambda_w, D), a.lambda_b = upload(m.w.lambda_b, D);
  a.mean = upload(m.norm.state_mean.data(), c.state_dim), a.std = upload(m.norm.state_std.data(), c.state_dim);
  for (int k = 0; k < n_tok; ++k) a.kinds[k] = static_cast<int>(kinds[k]);
  a.n_tok = n_tok, a.batch = B, a.rounds = T, a.d = D, a.state_dim = c.state_dim, a.action_width = K;
  a.rtg_scale = m.norm.rtg_scale, a.ctg_scale = m.norm.ctg_scale, a.lambda_max = m.norm.lambda_max;
  for (const auto& buf : keep) {
    if (!buf->ok()) {
      error = "device allocation failed";
      return false;
    }
  }
  DeviceBuffer x(rows * D), h(rows * D), t1(rows * D), q(rows * D), k(rows * D), v(rows * D), o(rows * D), hidden(rows * 4 * D);
  DeviceBuffer hs(bt * D), ln(bt * D), out(bt * K);
  for (const DeviceBuffer* buf : {&x, &h, &t1, &q, &k, &v, &o, &hidden, &hs, &ln, &out}) {
    if (!buf->ok()) {
      error = "device allocation failed";
      return false;
    }
  }
  const int R = static_cast<int>(rows);
  embed_kernel<<<blocks_for(rows * D), kThreads>>>(x.get(), a);
  layernorm_kernel<<<blocks_for(rows), kThreads>>>(h.get(), x.get(), upload(m.w.embed_ln_g, D), upload(m.w.embed_ln_b, D), R, D);
  for (int l = 0; l < c.layers; ++l) {
    const LayerWeights& L = m.w.layers[l];
    const size_t DD = static_cast<size_t>(D) * D;
    layernorm_kernel<<<blocks_for(rows), kThreads>>>(t1.get(), h.get(), upload(L.ln1_g, D), upload(L.ln1_b, D), R, D);
    matmul_kernel<<<blocks_for(rows * D), kThreads>>>(q.get(), t1.get(), upload(L.wq, DD), upload(L.bq, D), R, D, D);
    matmul_kernel<<<blocks_for(rows * D), kThreads>>>(k.get(), t1.get(), upload(L.wk, DD), upload(L.bk, D), R, D, D);
    matmul_kernel<<<blocks_for(rows * D), kThreads>>>(v.get(), t1.get(), upload(L.wv, DD), upload(L.bv, D), R, D, D);
    attention_kernel<<<blocks_for(static_cast<size_t>(B) * H * S), kThreads>>>(o.get(), q.get(), k.get(), v.get(), B, S, H, D);
    matmul_kernel<<<blocks_for(rows * D), kThreads>>>(t1.get(), o.get(), upload(L.wo, DD), upload(L.bo, D), R, D, D);
    add_kernel<<<blocks_for(rows * D), kThreads>>>(h.get(), t1.get(), rows * D);
    layernorm_kernel<<<blocks_for(rows), kThreads>>>(t1.get(), h.get(), upload(L.ln2_g, D), upload(L.ln2_b, D), R, D);
    matmul_kernel<<<blocks_for(rows * 4 * D), kThreads>>>(hidden.get(), t1.get(), upload(L.w1, 4 * DD), upload(L.b1, 4 * D), R, D, 4 * D);
    gelu_kernel<<<blocks_for(rows * 4 * D), kThreads>>>(hidden.get(), rows * 4 * D);
    matmul_kernel<<<blocks_for(rows * D), kThreads>>>(t1.get(), hidden.get(), upload(L.w2, 4 * DD), upload(L.b2, D), R, 4 * D, D);
    add_kernel<<<blocks_for(rows * D), kThreads>>>(h.get(), t1.get(), rows * D);
  }
  int state_k = 0;
  while (kinds[state_k] != TokenKind::kState) ++state_k;
  gather_state_kernel<<<blocks_for(bt * D), kThreads>>>(hs.get(), h.get(), static_cast<int>(bt), n_tok, state_k, D);
  layernorm_kernel<<<blocks_for(bt), kThreads>>>(ln.get(), hs.get(), upload(m.w.lnf_g, D), upload(m.w.lnf_b, D), static_cast<int>(bt), D);
  matmul_kernel<<<blocks_for(bt * K), kThreads>>>(out.get(), ln.get(), upload(m.w.head_w, static_cast<size_t>(D) * K), upload(m.w.head_b, K), static_cast<int>(bt), D, K);
  const cudaError_t status = cudaDeviceSynchronize();
  if (status != cudaSuccess || cudaMemcpy(logits, out.get(), bt * K * sizeof(float), cudaMemcpyDeviceToHost) != cudaSuccess) {
    error = std::string("CUDA error: ") + cudaGetErrorString(status != cudaSuccess ? status : cudaGetLastError());
    return false;
  }
  return true;
}

}  // namespace saco
