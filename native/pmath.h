// exp and log written out so that C++ and TypeScript (src/data/pmath.ts) compute the same
// bits: libm and V8 use different algorithms that may differ in the last place, and the
// synthetic environment must be identical in both languages. The algorithms are the
// classic fdlibm reductions (Sun, 1993) with their published minimax coefficients; every
// operation is a plain IEEE double +, -, *, / (the build sets -ffp-contract=off).
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>

namespace saco::pmath {

inline uint32_t high_word(double x) {
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return static_cast<uint32_t>(bits >> 32);
}

inline double with_high_word(double x, uint32_t hi) {
  uint64_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  bits = (static_cast<uint64_t>(hi) << 32) | (bits & 0xFFFFFFFFull);
  double out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// 2^k for -1022 <= k <= 1023, exactly.
inline double pow2i(int k) {
  const uint64_t bits = static_cast<uint64_t>(k + 1023) << 52;
  double out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;
constexpr double kInvLn2 = 1.44269504088896338700e+00;

inline double exp(double x) {
  if (x != x) return x;
  if (x > 709.782712893383973096) return std::numeric_limits<double>::infinity();
  if (x < -745.13321910194110842) return 0.0;
  const double kd = x * kInvLn2 + (x < 0 ? -0.5 : 0.5);
  const int k = static_cast<int>(kd);  // truncation toward zero = round half away
  const double hi = x - k * kLn2Hi;
  const double lo = k * kLn2Lo;
  const double r = hi - lo;
  const double t = r * r;
  const double c = r - t * (1.66666666666666019037e-01 +
                            t * (-2.77777777770155933842e-03 +
                                 t * (6.61375632143793436117e-05 +
                                      t * (-1.65339022054652515390e-06 +
                                           t * 4.13813679705723846039e-08))));
  const double y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
  if (k >= -1021) {
    if (k == 1024) return y * 2.0 * pow2i(1023);
    return y * pow2i(k);
  }
  return y * pow2i(k + 1000) * pow2i(-1000);
}

inline double log(double x) {
  if (x != x || x < 0) return std::numeric_limits<double>::quiet_NaN();
  if (x == 0) return -std::numeric_limits<double>::infinity();
  if (x == std::numeric_limits<double>::infinity()) return x;
  int k = 0;
  if (x < 2.2250738585072014e-308) {  // subnormal: scale into the normal range
    k -= 54;
    x *= 18014398509481984.0;
  }
  uint32_t hx = high_word(x);
  k += static_cast<int>(hx >> 20) - 1023;
  hx &= 0x000FFFFFu;
  const uint32_t i = (hx + 0x95F64u) & 0x100000u;
  x = with_high_word(x, hx | (i ^ 0x3FF00000u));  // x in [sqrt(2)/2, sqrt(2))
  k += static_cast<int>(i >> 20);
  const double f = x - 1.0;
  const double s = f / (2.0 + f);
  const double z = s * s;
  const double w = z * z;
  const double t1 = w * (3.999999999940941908e-01 +
                         w * (2.222219843214978396e-01 + w * 1.531383769920937332e-01));
  const double t2 = z * (6.666666666666735130e-01 +
                         w * (2.857142874366239149e-01 +
                              w * (1.818357216161805012e-01 + w * 1.479819860511658591e-01)));
  const double R = t2 + t1;
  const double hfsq = 0.5 * f * f;
  const double dk = static_cast<double>(k);
  return dk * kLn2Hi - ((hfsq - (s * (hfsq + R) + dk * kLn2Lo)) - f);
}

inline double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

// log(1 + exp(x)) without overflow.
inline double softplus(double x) {
  if (x > 0) return x + log(1.0 + exp(-x));
  return log(1.0 + exp(x));
}

}  // namespace saco::pmath
