// bf16 products for the decoder (decisions, rollouts, solves) of a model loaded with
// precision bf16: weights and the product's inputs rounded to bfloat16 (8 bits of mantissa),
// products accumulated in fp32. On a CPU with AMX (Intel Sapphire Rapids and later) the
// tile unit computes them at ~2 TFLOP/s per core, against ~100-150 GFLOP/s for the fp32
// AVX-512 kernel; elsewhere the same rounded operands go through matmul_forward, so a bf16
// model gives the same values (to fp32 summation order) on every CPU. fp32 stays the default:
// bf16 changes results in the third significant digit.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "floats.h"

namespace saco {

// Round to nearest even (what AMX's conversions do); NaN stays NaN.
inline uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float from_bf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline float round_bf16(float f) { return from_bf16(to_bf16(f)); }

// A weight matrix w[k, n] rounded to bf16, in two layouts: AMX's tiles (16 pairs of k-rows x
// 16 columns, a pair's two values adjacent; k padded to 32 and n to 16 with zeros), and the
// rounded values back in float [k, n] (what the reference and CPUs without AMX multiply).
struct Bf16Weight {
  int k = 0, n = 0;
  std::vector<uint16_t, AlignedUninitAllocator<uint16_t>> tiles;
  Floats rounded;
};
Bf16Weight pack_bf16(const float* w, int k, int n);

// True when this process can use AMX's bf16 tiles (the CPU has them, the addon was built with
// them, the kernel granted the tile state, and SACO_AMX is not "0"). Decided once per process.
bool amx_available();

// out[rows, n] = bf16(inp)[rows, k] @ w + b (b may be null), accumulated in fp32. Each output
// row is a function of its own input row alone (each element is one fixed sequence of pair
// products and fp32 additions over k, whatever the tile's row count),
// so a user's result does not depend on who else is in the batch.
void matmul_forward_bf16(float* out, const float* inp, const Bf16Weight& w, const float* b, int rows);
// The reference: plain loops over the rounded operands (matmul_forward_ref).
void matmul_forward_bf16_ref(float* out, const float* inp, const Bf16Weight& w, const float* b, int rows);

}  // namespace saco
