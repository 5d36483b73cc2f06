#pragma once
// 16-bit floating-point value types usable in host and device code.
//
//   Half      IEEE 754 binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
//   BFloat16  bfloat16:          1 sign, 8 exponent (bias 127), 7 mantissa bits
//             (the top half of an IEEE binary32).
//
// Conversions from float round to nearest, ties to even; NaN stays NaN (quiet), infinities
// and signed zeros are kept, half subnormals are produced and read exactly, and values past
// the largest finite half (65504) overflow to infinity as IEEE rounding says. Arithmetic is
// done in float: the types convert implicitly to float and back explicitly.
#include <cstdint>
#include <cstring>

#include "keel/core/macros.h"

namespace keel {

namespace detail {
KEEL_HOST_DEVICE inline uint32_t float_bits(float value) {
#if defined(KEEL_DEVICE_CODE) && defined(__CUDA_ARCH__)
  return __float_as_uint(value);
#else
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
#endif
}
KEEL_HOST_DEVICE inline float bits_float(uint32_t bits) {
#if defined(KEEL_DEVICE_CODE) && defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
#endif
}

// float -> binary16, round to nearest even, with subnormals, overflow to inf and quiet NaN.
KEEL_HOST_DEVICE inline uint16_t float_to_half_bits(float value) {
  const uint32_t bits = float_bits(value);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t abs_bits = bits & 0x7fffffffu;
  if (abs_bits >= 0x7f800000u) {  // inf or NaN
    const bool is_nan = abs_bits > 0x7f800000u;
    return static_cast<uint16_t>(sign | 0x7c00u | (is_nan ? 0x0200u | ((abs_bits >> 13) & 0x3ffu) : 0u));
  }
  if (abs_bits >= 0x477ff000u) {  // rounds to >= 65520 -> inf
    return static_cast<uint16_t>(sign | 0x7c00u);
  }
  if (abs_bits < 0x38800000u) {  // below the smallest normal half (2^-14): subnormal or zero
    // Scale so that the half subnormal's integer mantissa sits in the float's integer part,
    // letting the float adder do the round-to-nearest-even: value * 2^24 rounded to integer.
    const float scaled = bits_float(abs_bits) + 0.5f;  // 0.5 = 2^-1: aligns ulp(half sub)=2^-24
    // Adding 0.5 places bit 2^-24 of the original at the float's last mantissa bit (ulp of
    // 0.5 is 2^-24), so the addition itself rounds to nearest even.
    return static_cast<uint16_t>(sign | (float_bits(scaled) - 0x3f000000u));
  }
  // Normal: rebias exponent (127 -> 15) and round the 13 dropped mantissa bits to nearest even.
  const uint32_t mantissa_odd = (abs_bits >> 13) & 1u;
  uint32_t rounded = abs_bits + 0xc8000fffu + mantissa_odd;  // -(112 << 23) + 0xfff + odd
  return static_cast<uint16_t>(sign | (rounded >> 13));
}

KEEL_HOST_DEVICE inline float half_bits_to_float(uint16_t half) {
  const uint32_t sign = static_cast<uint32_t>(half & 0x8000u) << 16;
  const uint32_t exponent = (half >> 10) & 0x1fu;
  const uint32_t mantissa = half & 0x3ffu;
  if (exponent == 0x1fu) {  // inf / NaN
    return bits_float(sign | 0x7f800000u | (mantissa << 13));
  }
  if (exponent == 0) {
    if (mantissa == 0) return bits_float(sign);
    // subnormal: mantissa * 2^-24, exact in float
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-08f;
    return sign ? -magnitude : magnitude;
  }
  return bits_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

// float -> bfloat16: keep the top 16 bits, rounding the low 16 to nearest even; NaN stays quiet.
KEEL_HOST_DEVICE inline uint16_t float_to_bfloat16_bits(float value) {
  const uint32_t bits = float_bits(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  }
  const uint32_t rounding_bias = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding_bias) >> 16);
}

KEEL_HOST_DEVICE inline float bfloat16_bits_to_float(uint16_t value) {
  return bits_float(static_cast<uint32_t>(value) << 16);
}
}  // namespace detail

struct Half {
  uint16_t bits = 0;
  struct FromBits {};
  Half() = default;
  KEEL_HOST_DEVICE constexpr Half(uint16_t raw, FromBits) : bits(raw) {}
  KEEL_HOST_DEVICE Half(float value) : bits(detail::float_to_half_bits(value)) {}
  KEEL_HOST_DEVICE Half(double value) : Half(static_cast<float>(value)) {}
  KEEL_HOST_DEVICE Half(int value) : Half(static_cast<float>(value)) {}
  KEEL_HOST_DEVICE operator float() const { return detail::half_bits_to_float(bits); }
};

struct BFloat16 {
  uint16_t bits = 0;
  struct FromBits {};
  BFloat16() = default;
  KEEL_HOST_DEVICE constexpr BFloat16(uint16_t raw, FromBits) : bits(raw) {}
  KEEL_HOST_DEVICE BFloat16(float value) : bits(detail::float_to_bfloat16_bits(value)) {}
  KEEL_HOST_DEVICE BFloat16(double value) : BFloat16(static_cast<float>(value)) {}
  KEEL_HOST_DEVICE BFloat16(int value) : BFloat16(static_cast<float>(value)) {}
  KEEL_HOST_DEVICE operator float() const { return detail::bfloat16_bits_to_float(bits); }
};

}  // namespace keel
