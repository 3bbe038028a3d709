// CODT over whole sequences: the forward that keeps every activation, its backward, and the
// inference forward built on it. Training and the reference forward run the same code; the
// KV-cached decoder (codt.h) shares the layer functions.
//
// A "chunk" is B sequences of T rounds, S = T * tokens-per-round tokens each, R = B * S rows.
#pragma once
#include <cstdint>
#include <vector>

#include "codt.h"
#include "floats.h"

namespace saco {

// Sequences of the training batch, with the loss inputs.
struct SequenceTargets {
  const float* mask = nullptr;     // [B, T] 1 for real rounds
  const float* weights = nullptr;  // [B, T] per-sample loss weights
  double weight_total = 1;         // sum of weights * mask over the WHOLE batch (the loss divisor)
};

// Dropout for one forward pass; p = 0 (or inference) means none.
struct DropoutSpec {
  float p = 0;
  uint64_t seed = 0;
  uint32_t first_sequence = 0;  // the chunk's first sequence index in the batch (keys the masks)
};

// Everything a chunk's forward keeps for the backward. Buffers are reused between chunks.
struct SequenceActivations {
  struct Layer {
    Floats ln1, ln1_mean, ln1_rstd;  // [R, D], [R], [R]
    Floats q, k, v;                  // [R, D]
    Floats probs, probs_keep;        // [B, H, S, S] softmax, its dropout multipliers
    Floats att;                      // [R, D] attention output before the projection
    Floats att_keep;                 // [R, D] dropout of the projected attention
    Floats h_mid;                    // [R, D] residual stream after attention
    Floats ln2, ln2_mean, ln2_rstd;  // [R, D], [R], [R]
    Floats fc, fc_gelu;              // [R, 4D] before and after GELU
    Floats mlp_keep;                 // [R, D] dropout of the MLP output
    Floats h_out;                    // [R, D] residual stream after the block
  };
  int B = 0, T = 0, S = 0;
  bool dropout = false;
  std::vector<Floats> embed_in;  // per token kind: the Linear's input [B * T, width]
  Floats x;                      // [R, D] token embeddings (before the embed LayerNorm)
  Floats h0, ln0_mean, ln0_rstd, h0_keep;  // [R, D] embed LayerNorm (after dropout), stats, dropout
  std::vector<Layer> layers;
  Floats hs;                          // [B * T, D] state-token rows of the last residual stream
  Floats lnf, lnf_mean, lnf_rstd;     // [B * T, D], [B * T], [B * T]
  Floats logits;                      // [B * T, K]
};

// Scratch of the backward, reused between chunks.
struct SequenceGradScratch {
  Floats dh, dln, dq, dk, dv, datt, dfc, dfc_gelu, dtmp, dhs, dlnf, dlogits, dx, dembed, attn;
};

// Forward of one chunk (in.batch sequences); keeps the activations in `act`.
void sequence_forward(const CodtModel& m, const SequenceBatch& in, const DropoutSpec& drop, SequenceActivations& act);
// Loss of the chunk, sum over its rounds of weights * mask * CE / weight_total; when grads is
// non-null, ACCUMULATES the gradient of that loss into every parameter of `grads`.
double sequence_loss_backward(const CodtModel& m, const SequenceBatch& in, const SequenceTargets& targets, SequenceActivations& act, SequenceGradScratch& scratch,
                              const Gradients* grads);

// logits [B, T, K] at the state tokens for any batch size: chunks over threads (the result
// does not depend on the thread count).
void codt_forward_full(const CodtModel& model, const SequenceBatch& in, float* logits, unsigned threads = 0);

// Sequences per chunk: the unit of work of a thread, and of the summation order of gradients.
constexpr int kSequenceChunk = 8;

// The chunk [first, first + count) of a batch.
SequenceBatch chunk_of(const CodtModel& m, const SequenceBatch& in, int first, int count);

}  // namespace saco
