#include "trainer.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <stdexcept>
#include <string>

#include "pool.h"
#include "registry.h"

namespace saco {
SequenceBatch TrainBatch::view() const {
  return SequenceBatch{batch, rounds, states.data(), rtg.data(), ctg.data(), actions_onehot.data(), lambda.data()};
}

CodtTrainer::Use::Use(CodtTrainer& t) : t_(t) {
  if (t_.busy_.exchange(true)) throw std::runtime_error("trainer is busy: await the previous call before the next");
}
CodtTrainer::Use::~Use() { t_.busy_.store(false); }

CodtTrainer::CodtTrainer(std::unique_ptr<CodtModel> model, const TrainerOptions& options) : model_(std::move(model)), options_(options) {
  validate_model(*model_);
  const AdamWOptions& a = options_.adam;
  if (!(a.beta1 >= 0 && a.beta1 < 1) || !(a.beta2 >= 0 && a.beta2 < 1)) throw std::invalid_argument("adam betas must be in [0, 1)");
  if (!(a.eps > 0) || !(a.weight_decay >= 0) || !(a.grad_clip > 0)) throw std::invalid_argument("adam eps and gradClip must be > 0 and weightDecay >= 0");
  if (!(options_.dropout >= 0 && options_.dropout < 1)) throw std::invalid_argument("dropout must be in [0, 1)");
  size_t offset = 0;
  for (const ParamShape& s : param_shapes(model_->config)) {
    slots_.push_back(Slot{s, model_->params.at(s.name).data(), offset});
    offsets_[s.name] = offset;
    offset += s.size;
  }
  grad_.assign(offset, 0.0f);
  m_.assign(offset, 0.0f);
  v_.assign(offset, 0.0f);
  workspaces_.resize(resolve_threads(options_.threads));
}

Gradients CodtTrainer::gradients_into(float* base) const {
  return resolve_params<float>(model_->config, [&](const std::string& name) { return base + offsets_.at(name); });
}

namespace {

// Sum of weights * mask over the batch: the loss divisor of a step, the weight sum of an evaluation.
double weighted_rounds(const TrainBatch& batch) {
  double total = 0;
  for (size_t i = 0; i < batch.weights.size(); ++i) total += static_cast<double>(batch.weights[i]) * batch.mask[i];
  return total;
}

}  // namespace

double CodtTrainer::run_chunks(const TrainBatch& batch, float dropout, uint64_t dropout_seed, double weight_total, bool gradients) {
  const SequenceBatch all = batch.view();
  const int chunks = (batch.batch + kSequenceChunk - 1) / kSequenceChunk;
  const size_t P = grad_.size();
  // With gradients, chunks run in waves of two per thread; their gradients are added to the
  // total one chunk after another, ((0 + g0) + g1) + ..., so the wave size bounds memory (a
  // parameter-sized buffer per chunk of a wave) and never changes the numbers.
  const int per_wave = gradients ? static_cast<int>(2 * workspaces_.size()) : chunks;
  if (gradients) {
    chunk_grads_.resize(static_cast<size_t>(std::min(chunks, per_wave)));
    std::fill(grad_.begin(), grad_.end(), 0.0f);
  }
  std::vector<double> chunk_loss(static_cast<size_t>(chunks), 0.0);
  for (int wave = 0; wave < chunks; wave += per_wave) {
    const int in_wave = std::min(per_wave, chunks - wave);
    parallel_for_workers(static_cast<size_t>(in_wave), static_cast<unsigned>(workspaces_.size()), [&](size_t worker, size_t first, size_t last) {
      Workspace& ws = workspaces_[worker];
      for (size_t i = first; i < last; ++i) {
        const int ch = wave + static_cast<int>(i);
        const int s0 = ch * kSequenceChunk;
        Gradients view;
        if (gradients) {
          Floats& g = chunk_grads_[i];
          g.resize(P);
          std::fill(g.begin(), g.end(), 0.0f);
          view = gradients_into(g.data());
        }
        const SequenceBatch part = chunk_of(*model_, all, s0, std::min(kSequenceChunk, batch.batch - s0));
        sequence_forward(*model_, part, DropoutSpec{dropout, dropout_seed, static_cast<uint32_t>(s0)}, ws.act);
        const size_t rounds0 = static_cast<size_t>(s0) * batch.rounds;
        const SequenceTargets targets{batch.mask.data() + rounds0, batch.weights.data() + rounds0, weight_total};
        chunk_loss[static_cast<size_t>(ch)] = sequence_loss_backward(*model_, part, targets, ws.act, ws.scratch, gradients ? &view : nullptr);
      }
    });
    if (!gradients) continue;
    for (int i = 0; i < in_wave; ++i) {
      const float* g = chunk_grads_[static_cast<size_t>(i)].data();
      for (size_t j = 0; j < P; ++j) grad_[j] += g[j];
    }
  }
  double loss = 0;
  for (double l : chunk_loss) loss += l;
  return loss;
}

double CodtTrainer::compute_gradients(const TrainBatch& batch, uint64_t dropout_seed, bool training) {
  return run_chunks(batch, training ? options_.dropout : 0.0f, dropout_seed, weighted_rounds(batch), true);
}

StepResult CodtTrainer::step(const TrainBatch& batch, float lr, int step, uint64_t dropout_seed) {
  if (step < 1) throw std::invalid_argument("step counts from 1");
  if (!(lr >= 0) || !std::isfinite(lr)) throw std::invalid_argument("lr must be a finite number >= 0");
  StepResult r;
  r.loss = compute_gradients(batch, dropout_seed, true);
  if (!std::isfinite(r.loss)) return r;  // the caller stops; the weights stay as they were
  double norm2 = 0;
  for (float g : grad_) norm2 += static_cast<double>(g) * g;
  r.grad_norm = std::sqrt(norm2);
  if (!std::isfinite(r.grad_norm)) return r;  // likewise: no update from a non-finite gradient
  const AdamWOptions& a = options_.adam;
  const float scale = static_cast<float>(std::min(1.0, a.grad_clip / (r.grad_norm + 1e-12)));
  const float bc1 = static_cast<float>(1.0 - std::pow(static_cast<double>(a.beta1), step));
  const float bc2 = static_cast<float>(1.0 - std::pow(static_cast<double>(a.beta2), step));
  for (const Slot& s : slots_) {
    float* p = s.value;
    float* m = m_.data() + s.offset;
    float* v = v_.data() + s.offset;
    const float* gr = grad_.data() + s.offset;
    const float decay = s.shape.decay ? a.weight_decay : 0.0f;
    for (size_t i = 0; i < s.shape.size; ++i) {
      const float g = gr[i] * scale;
      m[i] = m[i] * a.beta1 + g * (1.0f - a.beta1);
      v[i] = v[i] * a.beta2 + g * g * (1.0f - a.beta2);
      const float update = (m[i] / bc1) / (std::sqrt(v[i] / bc2) + a.eps) + decay * p[i];
      p[i] -= update * lr;
    }
  }
  return r;
}

EvalResult CodtTrainer::evaluate(const TrainBatch& batch) {
  EvalResult r;
  r.weight_sum = weighted_rounds(batch);
  r.loss_sum = run_chunks(batch, 0.0f, 0, 1.0, false);  // divisor 1: the weighted sum itself
  return r;
}

namespace {

Registry<CodtTrainer>& trainers() {
  static Registry<CodtTrainer> r;
  return r;
}

}  // namespace

int64_t trainer_create(std::unique_ptr<CodtModel> model, const TrainerOptions& options) {
  return trainers().add(std::make_shared<CodtTrainer>(std::move(model), options));
}

std::shared_ptr<CodtTrainer> trainer_get(int64_t id) { return trainers().get(id); }

bool trainer_dispose(int64_t id) { return trainers().remove(id); }

}  // namespace saco
