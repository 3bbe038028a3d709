#include "gradcheck.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <stdexcept>

#include "codt.h"
#include "layers.h"
#include "rng.h"
#include "trainer.h"

namespace saco {
namespace {

constexpr uint32_t kStreamGradCheck = 60;

std::vector<float> normals(size_t n, uint64_t seed, uint32_t tensor, float scale, float shift = 0) {
  CounterStream s(seed, tensor, 0, kStreamGradCheck);
  std::vector<float> v(n);
  for (float& x : v) x = shift + scale * static_cast<float>(s.normal());
  return v;
}

double dot(const std::vector<float>& r, const float* out) {
  double l = 0;
  for (size_t i = 0; i < r.size(); ++i) l += static_cast<double>(r[i]) * out[i];
  return l;
}

// Compares analytic[i] with the central difference of loss() in x[i], for every i.
GradCheckResult check(const std::string& name, float* x, size_t n, const std::vector<float>& analytic, const std::function<double()>& loss, float eps) {
  GradCheckResult r{name, 0, 0, n};
  for (size_t i = 0; i < n; ++i) {
    const float saved = x[i];
    const float up = saved + eps, down = saved - eps;
    x[i] = up;
    const double lp = loss();
    x[i] = down;
    const double lm = loss();
    x[i] = saved;
    const double fd = (lp - lm) / (static_cast<double>(up) - static_cast<double>(down));
    r.max_abs_error = std::max(r.max_abs_error, std::abs(fd - analytic[i]));
    r.max_abs_grad = std::max(r.max_abs_grad, std::abs(fd));
  }
  return r;
}

std::vector<GradCheckResult> check_matmul(uint64_t seed) {
  const int rows = 5, k = 7, n = 3;
  auto inp = normals(rows * k, seed, 0, 1), w = normals(k * n, seed, 1, 0.5f), b = normals(n, seed, 2, 0.5f), r = normals(rows * n, seed, 3, 1);
  std::vector<float> out(rows * n);
  auto loss = [&] {
    matmul_forward(out.data(), inp.data(), w.data(), b.data(), rows, k, n);
    return dot(r, out.data());
  };
  std::vector<float> dinp(inp.size()), dw(w.size()), db(b.size());
  matmul_backward(dinp.data(), dw.data(), db.data(), r.data(), inp.data(), w.data(), rows, k, n);
  return {check("inp", inp.data(), inp.size(), dinp, loss, 1e-2f), check("w", w.data(), w.size(), dw, loss, 1e-2f), check("b", b.data(), b.size(), db, loss, 1e-2f)};
}

std::vector<GradCheckResult> check_layernorm(uint64_t seed) {
  const int rows = 4, d = 8;
  auto inp = normals(rows * d, seed, 0, 2, 0.5f), g = normals(d, seed, 1, 0.3f, 1), b = normals(d, seed, 2, 0.3f), r = normals(rows * d, seed, 3, 1);
  std::vector<float> out(rows * d), mean(rows), rstd(rows);
  auto loss = [&] {
    layernorm_forward(out.data(), mean.data(), rstd.data(), inp.data(), g.data(), b.data(), rows, d);
    return dot(r, out.data());
  };
  loss();
  std::vector<float> dinp(inp.size()), dg(d), db(d);
  layernorm_backward(dinp.data(), dg.data(), db.data(), r.data(), inp.data(), g.data(), mean.data(), rstd.data(), rows, d);
  return {check("inp", inp.data(), inp.size(), dinp, loss, 1e-2f), check("g", g.data(), g.size(), dg, loss, 1e-2f), check("b", b.data(), b.size(), db, loss, 1e-2f)};
}

std::vector<GradCheckResult> check_gelu(uint64_t seed) {
  const size_t n = 64;
  auto inp = normals(n, seed, 0, 2), r = normals(n, seed, 1, 1);
  Floats out(n), x(n);
  auto loss = [&] {
    std::copy(inp.begin(), inp.end(), x.begin());  // aligned, like every engine buffer
    gelu_forward(out.data(), x.data(), n);
    return dot(r, out.data());
  };
  std::vector<float> dinp(n);
  std::copy(inp.begin(), inp.end(), x.begin());
  gelu_backward(dinp.data(), x.data(), r.data(), n);
  return {check("inp", inp.data(), n, dinp, loss, 1e-2f)};
}

std::vector<GradCheckResult> check_attention(uint64_t seed, bool dropout) {
  const int B = 2, S = 5, D = 8, H = 2;
  const size_t n = static_cast<size_t>(B) * S * D;
  auto q = normals(n, seed, 0, 1), k = normals(n, seed, 1, 1), v = normals(n, seed, 2, 1), r = normals(n, seed, 3, 1);
  Floats keep(static_cast<size_t>(B) * H * S * S);
  for (int b = 0; b < B; ++b) dropout_mask(keep.data() + static_cast<size_t>(b) * H * S * S, static_cast<size_t>(H) * S * S, 0.3f, seed, b, 1);
  const float* kp = dropout ? keep.data() : nullptr;
  Floats out(n), probs(keep.size());
  auto loss = [&] {
    attention_forward(out.data(), probs.data(), q.data(), k.data(), v.data(), kp, B, S, D, H);
    return dot(r, out.data());
  };
  loss();
  std::vector<float> dq(n), dk(n), dv(n);
  Floats scratch(static_cast<size_t>(2) * S * S);
  attention_backward(dq.data(), dk.data(), dv.data(), scratch.data(), r.data(), q.data(), k.data(), v.data(), probs.data(), kp, B, S, D, H);
  return {check("q", q.data(), n, dq, loss, 1e-2f), check("k", k.data(), n, dk, loss, 1e-2f), check("v", v.data(), n, dv, loss, 1e-2f)};
}

std::vector<GradCheckResult> check_softmax_xent(uint64_t seed) {
  const std::vector<int> sizes{3, 2};
  const int N = 6, K = 5;
  auto logits = normals(N * K, seed, 0, 2), weight = normals(N, seed, 1, 0.3f, 1);
  std::vector<float> onehot(N * K, 0.0f);
  CounterStream s(seed, 2, 0, kStreamGradCheck);
  for (int i = 0; i < N; ++i) {
    onehot[i * K + static_cast<int>(s.uniform() * 3)] = 1;
    onehot[i * K + 3 + static_cast<int>(s.uniform() * 2)] = 1;
  }
  auto loss = [&] { return softmax_xent(nullptr, logits.data(), onehot.data(), weight.data(), sizes, N); };
  std::vector<float> dlogits(logits.size());
  softmax_xent(dlogits.data(), logits.data(), onehot.data(), weight.data(), sizes, N);
  return {check("logits", logits.data(), logits.size(), dlogits, loss, 1e-2f)};
}

// A tiny CODT with random weights and a batch of 10 sequences (two chunks, some rounds
// masked), so every parameter and the chunk reduction are exercised.
std::vector<GradCheckResult> check_model(uint64_t seed, const std::string& variant, float dropout) {
  auto model = std::make_unique<CodtModel>();
  CodtConfig& c = model->config;
  c.state_dim = 3, c.action_sizes = {3, 2}, c.context = 3, c.d_model = 8, c.layers = 2, c.heads = 2;
  if (variant == "no-rtg") c.uses_rtg = false;
  if (variant == "no-constraint") c.uses_ctg = false, c.uses_lambda = false;
  model->norm.state_mean = {0.0f, 0.1f, 0.2f};
  model->norm.state_std = {1.0f, 1.5f, 2.0f};
  model->norm.rtg_scale = 40, model->norm.ctg_scale = 7, model->norm.lambda_max = 3;
  model->targets.lambdas = {0, 3}, model->targets.rtg = {10, 8}, model->targets.ctg = {2, 1};
  uint32_t index = 0;
  for (const ParamShape& p : param_shapes(c)) {
    const bool gain = p.name.find(".g") == p.name.size() - 2;
    model->params[p.name] = normals(p.size, seed, 100 + index++, 0.3f, gain ? 1.0f : 0.0f);
  }
  TrainerOptions options;
  options.dropout = dropout;
  options.threads = 2;
  CodtTrainer trainer(std::move(model), options);

  TrainBatch batch;
  batch.batch = 10, batch.rounds = 3;
  const size_t BT = 30;
  batch.states = normals(BT * 3, seed, 1, 2);
  CounterStream s(seed, 2, 0, kStreamGradCheck);
  for (size_t i = 0; i < BT; ++i) {
    batch.rtg.push_back(static_cast<float>(50 * s.uniform()));
    batch.ctg.push_back(static_cast<float>(5 * s.uniform()));
    batch.mask.push_back(i % 7 == 6 ? 0.0f : 1.0f);
    batch.weights.push_back(static_cast<float>(0.2 + 1.8 * s.uniform()));
    const int a0 = static_cast<int>(s.uniform() * 3), a1 = static_cast<int>(s.uniform() * 2);
    for (int j = 0; j < 5; ++j) batch.actions_onehot.push_back(j == a0 || j == 3 + a1 ? 1.0f : 0.0f);
  }
  for (int b = 0; b < 10; ++b) batch.lambda.push_back(static_cast<float>(3 * s.uniform()));

  const bool training = dropout > 0;
  trainer.compute_gradients(batch, seed, training);
  // a copy: every loss() below rewrites gradient()
  const std::vector<float> analytic(trainer.gradient().begin(), trainer.gradient().end());
  auto loss = [&] { return trainer.compute_gradients(batch, seed, training); };
  std::vector<GradCheckResult> out;
  for (const CodtTrainer::Slot& slot : trainer.slots()) {
    std::vector<float> a(analytic.begin() + static_cast<long>(slot.offset), analytic.begin() + static_cast<long>(slot.offset + slot.shape.size));
    out.push_back(check(slot.shape.name, slot.value, slot.shape.size, a, loss, 3e-3f));
  }
  return out;
}

}  // namespace

std::vector<std::string> grad_check_names() {
  return {"matmul", "layernorm", "gelu", "attention", "attention-dropout", "softmax-xent", "model-weighted", "model-dropout", "model-no-rtg", "model-no-constraint"};
}

std::vector<GradCheckResult> grad_check(const std::string& what, uint64_t seed) {
  if (what == "matmul") return check_matmul(seed);
  if (what == "layernorm") return check_layernorm(seed);
  if (what == "gelu") return check_gelu(seed);
  if (what == "attention") return check_attention(seed, false);
  if (what == "attention-dropout") return check_attention(seed, true);
  if (what == "softmax-xent") return check_softmax_xent(seed);
  if (what == "model-weighted") return check_model(seed, "weighted", 0);
  if (what == "model-dropout") return check_model(seed, "weighted", 0.2f);
  if (what == "model-no-rtg") return check_model(seed, "no-rtg", 0);
  if (what == "model-no-constraint") return check_model(seed, "no-constraint", 0);
  throw std::invalid_argument("unknown gradient check '" + what + "'");
}

}  // namespace saco
