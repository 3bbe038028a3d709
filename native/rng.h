// Counter-based randomness shared bit-for-bit with src/data/rng.ts.
//
// Every draw is a pure function of (seed, user, round, stream, index): Philox4x32-10
// (Salmon et al., SC'11) with counter = (user, round, stream, index) and key = seed.
// No generator state crosses users, so results never depend on thread count or call order.
#pragma once
#include <cstdint>
#include <cmath>

#include "pmath.h"

namespace saco {

struct Philox4x32 {
  uint32_t v[4];
};

inline void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

// Philox4x32 with 10 rounds; checked against the Random123 known-answer vectors.
inline Philox4x32 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, c0, hi0, lo0);
    philox_mulhilo(0xCD9E8D57u, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0;
    const uint32_t n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  return Philox4x32{{c0, c1, c2, c3}};
}

// Two 32-bit words -> a double in the open interval (0, 1) with 53 random bits.
inline double uniform_from_words(uint32_t a, uint32_t b) {
  const double hi = static_cast<double>(a >> 5);  // 27 bits
  const double lo = static_cast<double>(b >> 6);  // 26 bits
  return (hi * 67108864.0 + lo + 0.5) * (1.0 / 9007199254740992.0);
}

// Named streams: the same numbers in src/data/rng.ts.
enum Stream : uint32_t {
  kStreamFeatures = 0,
  kStreamObsNoise = 1,
  kStreamLogger = 2,
  kStreamPurchase = 3,
  kStreamEngagement = 4,
  kStreamSplit = 5,
  kStreamLambda = 6,
  kStreamWeights = 16,  // 16 + k: the k-th global weight vector
};

constexpr uint32_t kGlobalUser = 0xFFFFFFFFu;

// A sequence of uniforms for one (seed, user, round, stream); each Philox block gives two.
class CounterStream {
 public:
  CounterStream(uint64_t seed, uint32_t user, uint32_t round, uint32_t stream)
      : k0_(static_cast<uint32_t>(seed & 0xFFFFFFFFu)),
        k1_(static_cast<uint32_t>(seed >> 32)),
        user_(user), round_(round), stream_(stream) {}

  double uniform() {
    if (slot_ == 0) {
      block_ = philox4x32_10(user_, round_, stream_, index_++, k0_, k1_);
      slot_ = 1;
      return uniform_from_words(block_.v[0], block_.v[1]);
    }
    slot_ = 0;
    return uniform_from_words(block_.v[2], block_.v[3]);
  }

  // Marsaglia's polar method: needs only log and sqrt, which are reproducible across
  // languages (pmath::log is ours, sqrt is correctly rounded by IEEE 754).
  double normal() {
    for (;;) {
      const double v1 = 2.0 * uniform() - 1.0;
      const double v2 = 2.0 * uniform() - 1.0;
      const double s = v1 * v1 + v2 * v2;
      if (s >= 1.0 || s == 0.0) continue;
      return v1 * std::sqrt(-2.0 * pmath::log(s) / s);
    }
  }

 private:
  uint32_t k0_, k1_, user_, round_, stream_;
  uint32_t index_ = 0;
  int slot_ = 0;
  Philox4x32 block_{{0, 0, 0, 0}};
};

}  // namespace saco
