// The native CODT trainer: loss and gradients of a batch through codt_sequence (threads over
// fixed chunks of sequences, gradients summed in chunk order: the same numbers for any
// thread count), global-norm clipping and AdamW with decoupled weight decay, exactly the
// update of src/model/engine-tfjs.ts. The schedule, batching and validation stay in
// TypeScript (src/model/train.ts), so both trainers write the same artifact.
//
// A CUDA trainer would sit beside this one with the same interface (the layer functions of
// layers.h are the unit to port).
#pragma once
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "codt.h"
#include "codt_sequence.h"
#include "floats.h"

namespace saco {

struct AdamWOptions {
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 1e-4f, grad_clip = 1.0f;
};

struct TrainerOptions {
  AdamWOptions adam;
  float dropout = 0;
  unsigned threads = 0;  // 0: every core
};

// One batch, copied out of JavaScript so the work never reads V8 memory.
struct TrainBatch {
  int batch = 0, rounds = 0;
  std::vector<float> states, rtg, ctg, actions_onehot, lambda, mask, weights;
  SequenceBatch view() const;
};

struct StepResult {
  double loss = 0, grad_norm = 0;
};

struct EvalResult {
  double loss_sum = 0, weight_sum = 0;
};

class CodtTrainer {
 public:
  // One parameter: its shape, where its values live and its offset in the flat
  // gradient / moment buffers.
  struct Slot {
    ParamShape shape;
    float* value;
    size_t offset;
  };

  CodtTrainer(std::unique_ptr<CodtModel> model, const TrainerOptions& options);

  const CodtModel& model() const { return *model_; }
  const std::vector<Slot>& slots() const { return slots_; }
  const TrainerOptions& options() const { return options_; }
  size_t param_count() const { return grad_.size(); }
  // Flat [param_count] buffers in slot order.
  Floats& gradient() { return grad_; }
  Floats& moment1() { return m_; }
  Floats& moment2() { return v_; }

  // Loss of the batch (weights * mask * CE / their sum) and its gradient into gradient();
  // dropout runs when `training` (masks keyed by dropout_seed and each sequence's index).
  double compute_gradients(const TrainBatch& batch, uint64_t dropout_seed, bool training);
  // compute_gradients, clipping, then one AdamW update (step counts from 1). A non-finite
  // loss or gradient norm leaves the weights and moments untouched (the caller stops).
  StepResult step(const TrainBatch& batch, float lr, int step, uint64_t dropout_seed);
  // Forward only, no dropout: sum of weights * mask * CE, and of weights * mask.
  EvalResult evaluate(const TrainBatch& batch);

  // Marks the trainer busy for the guard's lifetime (an async call holds it from the call to its
  // settling); a second user gets an exception instead of racing the first.
  class Use {
   public:
    explicit Use(CodtTrainer& t);
    ~Use();
    Use(const Use&) = delete;
    Use& operator=(const Use&) = delete;

   private:
    CodtTrainer& t_;
  };

 private:
  struct Workspace {
    SequenceActivations act;
    SequenceGradScratch scratch;
  };
  Gradients gradients_into(float* base) const;
  // Forward (and with `gradients`, backward into gradient()) of every chunk; returns the sum of
  // the chunks' weights * mask * CE / weight_total.
  double run_chunks(const TrainBatch& batch, float dropout, uint64_t dropout_seed, double weight_total, bool gradients);

  std::unique_ptr<CodtModel> model_;
  TrainerOptions options_;
  std::vector<Slot> slots_;
  std::map<std::string, size_t> offsets_;  // parameter name -> offset in the flat buffers
  Floats grad_, m_, v_;
  std::vector<Floats> chunk_grads_;  // one per chunk of a wave
  std::vector<Workspace> workspaces_;  // one per thread
  std::atomic<bool> busy_{false};
};

// Trainers live in a registry keyed by id (> 0), like the model pool.
int64_t trainer_create(std::unique_ptr<CodtModel> model, const TrainerOptions& options);
std::shared_ptr<CodtTrainer> trainer_get(int64_t id);
bool trainer_dispose(int64_t id);

}  // namespace saco
