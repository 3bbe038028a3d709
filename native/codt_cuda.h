// The CODT full-sequence forward on a CUDA device: the same layers as codt_forward_full,
// one straightforward kernel each. Built only where nvcc exists; used only when a device
// is visible (the caller falls back to the CPU otherwise).
#pragma once
#include <string>

#include "codt.h"

namespace saco {

// Returns false (with the reason) when no device can run it; logits [B, T, K] on success.
bool codt_forward_full_cuda(const CodtModel& model, const SequenceBatch& in, float* logits, std::string& error);

}  // namespace saco
