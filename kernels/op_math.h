#pragma once
// The scalar math of every elementwise op, shared by the CPU and CUDA kernels and by nothing
// else: one definition per op. `T` is the compute type (float for f16/bf16 storage).
//
//   gelu (erf):  x/2 * (1 + erf(x / sqrt 2))
//   gelu (tanh): x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
//   silu:        x * sigmoid(x)          sigmoid: 1 / (1 + exp(-x))
//   maximum/minimum propagate NaN; clamp keeps NaN; div on integers is true division in the
//   default float dtype, as PyTorch, so an integer divided by 0 gives inf or nan, never a trap.
//
// exp and erf in float (the compute type of f32, f16 and bf16) on the host are math::exp_f32 and
// math::erf_f32 below, not the C library's expf / erff: glibc's are a call per element that GCC
// cannot vectorize without -ffast-math, which made exp/sigmoid/silu 10x slower than a
// memory-bound loop (and erf / exact GELU ~30x). Device code keeps expf / erff; double keeps
// std::exp / std::erf.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "keel/core/macros.h"

namespace keel {

// The op lists, once: the enums and every kernel's switch over them are generated from these.
#define KEEL_FORALL_UNARY_OPS(_)                                                              \
  _(neg) _(abs) _(exp) _(log) _(log1p) _(expm1) _(sqrt) _(rsqrt) _(sin) _(cos) _(tanh)       \
  _(sigmoid) _(relu) _(gelu_erf) _(gelu_tanh) _(silu) _(erf) _(logical_not) _(isnan) _(isinf)
#define KEEL_FORALL_BINARY_OPS(_)                                                             \
  _(add) _(sub) _(mul) _(div) _(pow) _(maximum) _(minimum)                                    \
  _(eq) _(ne) _(lt) _(le) _(gt) _(ge) _(logical_and) _(logical_or) _(logical_xor)

#define KEEL_OP_ENUMERATOR(name) name,
enum class UnaryOp : uint8_t { KEEL_FORALL_UNARY_OPS(KEEL_OP_ENUMERATOR) };
enum class BinaryOp : uint8_t { KEEL_FORALL_BINARY_OPS(KEEL_OP_ENUMERATOR) };
#undef KEEL_OP_ENUMERATOR

// Predicates give bool whatever their input dtype.
KEEL_HOST_DEVICE constexpr bool unary_gives_bool(UnaryOp op) {
  return op == UnaryOp::logical_not || op == UnaryOp::isnan || op == UnaryOp::isinf;
}
KEEL_HOST_DEVICE constexpr bool binary_gives_bool(BinaryOp op) {
  return op >= BinaryOp::eq;
}
// Ops defined on floating values only: integer and bool inputs are promoted to the default
// float dtype first (torch.exp(int_tensor) is float32).
KEEL_HOST_DEVICE constexpr bool unary_floating_only(UnaryOp op) {
  return op != UnaryOp::neg && op != UnaryOp::abs && op != UnaryOp::relu && !unary_gives_bool(op);
}
KEEL_HOST_DEVICE constexpr bool binary_floating_only(BinaryOp op) { return op == BinaryOp::div; }

namespace math {
// e^x in float, branch-free so that loops over it vectorize (baseline SSE4.2, AVX2, AVX-512).
//
//   x clamped to [-104, 89]    e^-104 < 2^-150 rounds to 0 and e^89 > 2^128 overflows to inf,
//                              so the clamp changes no result; NaN passes the clamp unchanged
//   n = rint(x * log2 e)       |n| <= 150; rounded with the 1.5 * 2^23 shift (ties to even)
//   r = x - n ln2_hi - n ln2_lo   Cody-Waite: ln2_hi has 15 significant bits, so n ln2_hi is
//                              exact and x - n ln2_hi is exact (Sterbenz); |r| <= ~0.347
//   e^r = 1 + r + r^2 P(r)     P of degree 5, Cephes expf's minimax coefficients
//   e^x = e^r * 2^(n/2) * 2^(n - n/2)   two exact power-of-two factors: 2^n alone does not fit
//                              the float exponent for n = 128 (results near FLT_MAX) or for
//                              n < -126 (subnormal results); the last multiply rounds once, so
//                              subnormal results keep the same error bound in ulps
// Max error 1.01 ulp against e^x in double over every float, with or without the compiler
// contracting a*b+c into fma (GCC does for -march=x86-64-v3/v4, so the ISA variants may differ
// in the last bit); test_elementwise.cpp checks the bound through each variant.
KEEL_HOST_DEVICE inline float exp_f32(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  constexpr float kMax = 89.0f, kMin = -104.0f;
  constexpr float kLog2e = 1.44269504088896341f;
  constexpr float kShift = 12582912.0f;                   // 1.5 * 2^23
  constexpr float kLn2Hi = 0.693145751953125f;            // 0x3f317200
  constexpr float kLn2Lo = 1.428606765330187045e-06f;     // ln 2 - kLn2Hi
  // The clamp as a bit select: written as `x > kMax ? kMax : x`, GCC's PRE splits the loop body
  // into a constant path and a computed one, and the vectorizer gives up on the control flow.
  const uint32_t above = 0u - static_cast<uint32_t>(x > kMax);  // all ones or zero
  const uint32_t below = 0u - static_cast<uint32_t>(x < kMin);
  uint32_t x_bits;
  std::memcpy(&x_bits, &x, sizeof x_bits);
  x_bits = (x_bits & ~(above | below)) | (0x42b20000u & above) | (0xc2d00000u & below);  // 89, -104
  std::memcpy(&x, &x_bits, sizeof x);
  const float shifted = x * kLog2e + kShift;  // n sits in the low mantissa bits
  const float n = shifted - kShift;
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float e_r = p * (r * r) + r + 1.0f;
  // bits(shifted) = bits(1.5 * 2^23) + n; unsigned arithmetic: NaN gives some bits, no UB.
  uint32_t shifted_bits;
  std::memcpy(&shifted_bits, &shifted, sizeof shifted_bits);
  const int32_t n_int = static_cast<int32_t>(shifted_bits - 0x4b400000u);
  const int32_t half_n = n_int >> 1;  // arithmetic shift (C++20): floor(n / 2)
  const uint32_t scale1_bits = static_cast<uint32_t>(half_n + 127) << 23;
  const uint32_t scale2_bits = static_cast<uint32_t>(n_int - half_n + 127) << 23;
  float scale1, scale2;
  std::memcpy(&scale1, &scale1_bits, sizeof scale1);
  std::memcpy(&scale2, &scale2_bits, sizeof scale2);
  return e_r * scale1 * scale2;
#endif
}

// erf(x) in float, branch-free so that loops over it vectorize (as exp_f32; glibc's erff is a
// call per element, ~15 ns, which made exact GELU ~10% of a GPT training step). Two pieces, both
// computed and one selected by a bit mask:
//
//   |x| < 1    erf(x) = x + x P(x^2)            P of degree 6 (kErfSmall); adding x last keeps
//                                               the leading coefficient 2/sqrt(pi) = 1 + 0.128...
//                                               exact enough that it costs no ulp
//   |x| >= 1   erf(|x|) = 1 - e^(-a^2) Q(a - 1)  a = min(|x|, 4), Q of degree 8 (kErfLarge), the
//                                               expansion of erfc(a) e^(a^2) about 1; erfc(4) =
//                                               1.5e-8 is below half an ulp of 1, so the result is
//                                               exactly 1 from |x| ~ 3.92 on and for inf
//   sign       copied from x: erf(-0) = -0, erf(-inf) = -1, NaN stays NaN
//
// P and Q: Lawson (minimax) fits, of erf's relative error on [0, 1] (1.2e-9) and of erfc's
// absolute error on [1, 4] (2.4e-9, weight e^(-a^2)), rounded to float. Max error against erf in
// double, measured over every float in [0, 4.5] by tests/ops/test_erf.cpp through each ISA: see
// kErfMaxUlp there (under 2 ulp). Device code keeps erff; double keeps std::erf.
inline constexpr float kErfSmall[7] = {1.283791661e-01f,  -3.761262596e-01f, 1.128358543e-01f, -2.685381100e-02f,
                                       5.188326351e-03f,  -8.010179736e-04f, 7.853810530e-05f};
inline constexpr float kErfLarge[9] = {4.275835752e-01f,  -2.732110620e-01f, 1.543505639e-01f,
                                       -7.905336469e-02f, 3.687503189e-02f,  -1.511022635e-02f,
                                       4.911337979e-03f,  -1.057075919e-03f, 1.068461279e-04f};
KEEL_HOST_DEVICE inline float erf_f32(float x) {
#if defined(__CUDA_ARCH__)
  return erff(x);
#else
  uint32_t x_bits;
  std::memcpy(&x_bits, &x, sizeof x_bits);
  const uint32_t sign = x_bits & 0x80000000u;
  const uint32_t a_bits = x_bits & 0x7fffffffu;
  float a;
  std::memcpy(&a, &a_bits, sizeof a);
  const float a2 = a * a;
  float p = kErfSmall[6];
  for (int k = 5; k >= 0; --k) p = p * a2 + kErfSmall[k];
  const float small = a * p + a;
  // Clamp and select as bit masks (see exp_f32: a ?: makes GCC split the loop). NaN compares
  // false everywhere: it is kept by the clamp and takes the large piece, which stays NaN.
  const uint32_t above = 0u - static_cast<uint32_t>(a > 4.0f);
  const uint32_t c_bits = (a_bits & ~above) | (0x40800000u & above);  // 4.0f
  float c;
  std::memcpy(&c, &c_bits, sizeof c);
  const float u = c - 1.0f;
  float q = kErfLarge[8];
  for (int k = 7; k >= 0; --k) q = q * u + kErfLarge[k];
  const float large = 1.0f - exp_f32(-(c * c)) * q;
  const uint32_t use_small = 0u - static_cast<uint32_t>(a < 1.0f);
  uint32_t small_bits, large_bits;
  std::memcpy(&small_bits, &small, sizeof small_bits);
  std::memcpy(&large_bits, &large, sizeof large_bits);
  const uint32_t result_bits = ((small_bits & use_small) | (large_bits & ~use_small)) | sign;
  float result;
  std::memcpy(&result, &result_bits, sizeof result);
  return result;
#endif
}

// Signed integer overflow is undefined in C++; Keel's integer add/sub/mul/neg wrap modulo 2^n
// like PyTorch's, so they are done in the unsigned type.
template <typename T> inline constexpr bool is_signed_int_v =
    std::is_integral_v<T> && std::is_signed_v<T> && !std::is_same_v<T, bool>;
template <typename T, typename F> KEEL_HOST_DEVICE inline T wrapping(T a, T b, F f) {
  if constexpr (is_signed_int_v<T>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(f(static_cast<U>(a), static_cast<U>(b)));
  } else {
    return static_cast<T>(f(a, b));
  }
}

template <typename T> KEEL_HOST_DEVICE inline bool is_nan(T value) {
  if constexpr (std::is_floating_point_v<T>) return value != value;
  else return false;
}

template <UnaryOp op, typename T> KEEL_HOST_DEVICE inline T unary(T x) {
  using std::abs, std::exp, std::log, std::log1p, std::expm1, std::sqrt, std::sin, std::cos,
      std::tanh, std::erf;
  if constexpr (op == UnaryOp::neg) {
    if constexpr (std::is_same_v<T, bool>) return x;
    else if constexpr (std::is_floating_point_v<T>) return -x;  // neg(0.0) = -0.0, as PyTorch
    else return wrapping(T(0), x, [](auto p, auto q) { return p - q; });
  }
  else if constexpr (op == UnaryOp::abs) {
    if constexpr (std::is_unsigned_v<T> || std::is_same_v<T, bool>) return x;
    else if constexpr (is_signed_int_v<T>) return x < T(0) ? unary<UnaryOp::neg>(x) : x;
    else return x < T(0) ? -x : (x == T(0) ? T(0) : x);  // abs(-0.0) = +0.0
  }
  else if constexpr (op == UnaryOp::exp) {
    if constexpr (std::is_same_v<T, float>) return exp_f32(x);
    else return exp(x);
  }
  else if constexpr (op == UnaryOp::log) return log(x);
  else if constexpr (op == UnaryOp::log1p) return log1p(x);
  else if constexpr (op == UnaryOp::expm1) return expm1(x);
  else if constexpr (op == UnaryOp::sqrt) return sqrt(x);
  else if constexpr (op == UnaryOp::rsqrt) return T(1) / sqrt(x);
  else if constexpr (op == UnaryOp::sin) return sin(x);
  else if constexpr (op == UnaryOp::cos) return cos(x);
  else if constexpr (op == UnaryOp::tanh) return tanh(x);
  else if constexpr (op == UnaryOp::sigmoid) {
    if constexpr (std::is_same_v<T, float>) return 1.0f / (1.0f + exp_f32(-x));
    else return T(1) / (T(1) + exp(-x));
  }
  else if constexpr (op == UnaryOp::relu) return is_nan(x) ? x : (x > T(0) ? x : T(0));
  else if constexpr (op == UnaryOp::erf) {
    if constexpr (std::is_same_v<T, float>) return erf_f32(x);
    else return erf(x);
  }
  else if constexpr (op == UnaryOp::gelu_erf) {
    if constexpr (std::is_same_v<T, float>) return 0.5f * x * (1.0f + erf_f32(x * 0.70710678118654752440f));
    else return T(0.5) * x * (T(1) + erf(x * T(0.70710678118654752440)));
  }
  else if constexpr (op == UnaryOp::gelu_tanh) {
    const T inner = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x);
    return T(0.5) * x * (T(1) + tanh(inner));
  }
  else if constexpr (op == UnaryOp::silu) {
    if constexpr (std::is_same_v<T, float>) return x / (1.0f + exp_f32(-x));
    else return x / (T(1) + exp(-x));
  }
  else static_assert(op == UnaryOp::neg, "predicate ops go through unary_predicate");
}

template <UnaryOp op, typename T> KEEL_HOST_DEVICE inline bool unary_predicate(T x) {
  if constexpr (op == UnaryOp::logical_not) return !(x != T(0));
  else if constexpr (op == UnaryOp::isnan) return is_nan(x);
  else if constexpr (op == UnaryOp::isinf) {
    if constexpr (std::is_floating_point_v<T>) return x == x && (x - x) != (x - x);
    else return false;
  }
  else return false;
}

template <typename T> KEEL_HOST_DEVICE inline T power(T base, T exponent) {
  if constexpr (std::is_floating_point_v<T>) {
    using std::pow;
    return pow(base, exponent);
  } else if constexpr (std::is_same_v<T, bool>) {
    return base || !exponent;
  } else {
    // Integer power by squaring; negative exponents give 0 except for bases 1 and -1
    // (PyTorch's integer pow).
    if constexpr (std::is_signed_v<T>) {  // (no negative exponents for u8)
      if (exponent < 0) {
        if (base == 1) return 1;
        if (base == T(-1)) return (exponent & 1) ? T(-1) : T(1);
        return 0;
      }
    }
    T result = 1;
    while (exponent) {
      if (exponent & 1) result = wrapping(result, base, [](auto p, auto q) { return p * q; });
      base = wrapping(base, base, [](auto p, auto q) { return p * q; });
      exponent >>= 1;
    }
    return result;
  }
}

template <BinaryOp op, typename T> KEEL_HOST_DEVICE inline T binary(T a, T b) {
  if constexpr (op == BinaryOp::add) {
    if constexpr (std::is_same_v<T, bool>) return a || b;
    else return wrapping(a, b, [](auto p, auto q) { return p + q; });
  }
  else if constexpr (op == BinaryOp::sub) return wrapping(a, b, [](auto p, auto q) { return p - q; });
  else if constexpr (op == BinaryOp::mul) {
    if constexpr (std::is_same_v<T, bool>) return a && b;
    else return wrapping(a, b, [](auto p, auto q) { return p * q; });
  }
  else if constexpr (op == BinaryOp::div) return static_cast<T>(a / b);
  else if constexpr (op == BinaryOp::pow) return power(a, b);
  else if constexpr (op == BinaryOp::maximum) return is_nan(a) ? a : is_nan(b) ? b : (a > b ? a : b);
  else if constexpr (op == BinaryOp::minimum) return is_nan(a) ? a : is_nan(b) ? b : (a < b ? a : b);
  else static_assert(op == BinaryOp::add, "comparison ops go through binary_predicate");
}

template <BinaryOp op, typename T> KEEL_HOST_DEVICE inline bool binary_predicate(T a, T b) {
  if constexpr (op == BinaryOp::eq) return a == b;
  else if constexpr (op == BinaryOp::ne) return a != b;
  else if constexpr (op == BinaryOp::lt) return a < b;
  else if constexpr (op == BinaryOp::le) return a <= b;
  else if constexpr (op == BinaryOp::gt) return a > b;
  else if constexpr (op == BinaryOp::ge) return a >= b;
  else if constexpr (op == BinaryOp::logical_and) return (a != T(0)) && (b != T(0));
  else if constexpr (op == BinaryOp::logical_or) return (a != T(0)) || (b != T(0));
  else if constexpr (op == BinaryOp::logical_xor) return (a != T(0)) != (b != T(0));
  else return false;
}

// clamp(x, lo, hi) = min(max(x, lo), hi), NaN in x kept.
template <typename T> KEEL_HOST_DEVICE inline T clamp(T x, T lo, T hi, bool has_lo, bool has_hi) {
  if (is_nan(x)) return x;
  if (has_lo && (x < lo || is_nan(lo))) x = lo;
  if (has_hi && (x > hi || is_nan(hi))) x = hi;
  return x;
}
}  // namespace math

}  // namespace keel
