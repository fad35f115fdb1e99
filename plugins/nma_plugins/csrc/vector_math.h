// e^x, ln x, tanh x and the logistic function in float32, written without calls or branches so that the compiler turns
// a loop over an array of them into vector instructions (libm's expf and logf are
// scalar calls, a third of the NTM kernels' time before these). float64 keeps libm:
// the tests compare the kernels with the composable reference to 1e-10 in float64.
//
// exp: x = n ln 2 + r with n = round(x / ln 2), |r| <= ln(2) / 2, e^x = 2^n e^r, e^r
// by its Taylor series to r^7 (the first term left out, r^8 / 8!, is under 6e-9).
// log: x = 2^e m with m in [sqrt(1/2), sqrt(2)), ln x = e ln 2 + ln m, and
// ln m = 2 atanh(s) = 2 (s + s^3/3 + ... + s^9/9) with s = (m - 1) / (m + 1), |s| <= 0.172
// (the first term left out, 2 s^11 / 11, is under 2e-9 of the result).
// Both are within a few units in the last place of the exact values; exp(x) for x below
// -87.3 (results under the smallest normal float) is 0, no subnormals.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace nma_native {

inline float float_from_bits(int32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

inline int32_t bits_of(float value) {
  int32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}

inline float exp_value(float x) {
  const float log2e = 1.44269504088896341f;
  const float ln2_hi = 0.693145751953125f;  // 16 significant bits: n ln2_hi is exact
  const float ln2_lo = 1.42860682030941723e-6f;
  const float round_shift = 12582912.0f;    // 1.5 * 2^23: adding it rounds to an integer
  const float lowest = -87.33654f;          // ln of the smallest normal float
  const float highest = 88.72283f;          // ln of the largest float
  // Selects, not branches or fmin/fmax, so that the loop has no control flow; every
  // operation is computed on every lane (a NaN runs through and is returned at the end).
  float y = x < lowest ? lowest : x;
  y = y > highest ? highest : y;
  const float shifted = y * log2e + round_shift;
  const float n = shifted - round_shift;
  const int32_t k = bits_of(shifted) - bits_of(round_shift);
  const float r = (y - n * ln2_hi) - n * ln2_lo;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^k as two factors, each a normal float, for k in [-126, 128].
  const int32_t half = k / 2;
  const float scaled = p * float_from_bits((half + 127) << 23) * float_from_bits((k - half + 127) << 23);
  const float inf = std::numeric_limits<float>::infinity();
  float result = x > highest ? inf : scaled;
  result = x < lowest ? 0.0f : result;
  return x != x ? x : result;
}

inline float log_value(float x) {
  const float ln2_hi = 0.693145751953125f;
  const float ln2_lo = 1.42860682030941723e-6f;
  const float smallest = std::numeric_limits<float>::min();
  const bool subnormal = x < smallest;
  const float enlarged = x * 8388608.0f;  // 2^23
  const float scaled = subnormal ? enlarged : x;
  const int32_t bits = bits_of(scaled);
  int32_t e = ((bits >> 23) & 0xff) - 127 - (subnormal ? 23 : 0);
  float m = float_from_bits((bits & 0x007fffff) | 0x3f800000);  // in [1, 2)
  const bool above = m > 1.41421356f;
  const float halved = 0.5f * m;
  m = above ? halved : m;
  e = above ? e + 1 : e;
  const float f = m - 1.0f;  // exact
  const float s = f / (2.0f + f);
  const float s2 = s * s;
  float series = 1.0f / 9.0f;
  series = series * s2 + 1.0f / 7.0f;
  series = series * s2 + 1.0f / 5.0f;
  series = series * s2 + 1.0f / 3.0f;
  const float ln_m = 2.0f * s + 2.0f * s * (s2 * series);
  const float ef = static_cast<float>(e);
  float result = ef * ln2_hi + (ln_m + ef * ln2_lo);
  const float inf = std::numeric_limits<float>::infinity();
  result = x == inf ? inf : result;
  result = x == 0.0f ? -inf : result;
  return x >= 0.0f ? result : std::numeric_limits<float>::quiet_NaN();
}

// tanh x = sign(x) (1 - e) / (1 + e) with e = e^{-2|x|}; below |x| = 1/4, where 1 - e
// loses digits, its Taylor series to x^11 (the first term left out is under 6e-11 of it).
inline float tanh_value(float x) {
  const float a = std::fabs(x);
  const float e = exp_value(-2.0f * a);
  const float ratio = (1.0f - e) / (1.0f + e);
  const float a2 = a * a;
  float series = -1382.0f / 155925.0f;
  series = series * a2 + 62.0f / 2835.0f;
  series = series * a2 - 17.0f / 315.0f;
  series = series * a2 + 2.0f / 15.0f;
  series = series * a2 - 1.0f / 3.0f;
  const float small = a + a * (a2 * series);
  return std::copysign(a < 0.25f ? small : ratio, x);
}

// The logistic function 1 / (1 + e^{-x}).
inline float sigmoid_value(float x) { return 1.0f / (1.0f + exp_value(-x)); }

inline double exp_value(double x) { return std::exp(x); }
inline double log_value(double x) { return std::log(x); }
inline double tanh_value(double x) { return std::tanh(x); }
inline double sigmoid_value(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace nma_native
