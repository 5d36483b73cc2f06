#pragma once
// A small float vector for the hand-written CPU kernels (*.isa.cpp only): GCC vector extensions
// of this variant's widest float register (16 lanes with AVX-512, 8 with AVX2, 4 with SSE4.2), so
// one source gives every instruction set. Everything here lives in keel::cpu::KEEL_CPU_ISA::simd:
// each variant has its own types and no definition is shared between variants.
//
// Loads and stores convert f32, bf16 and f16 storage to and from f32 lanes; bf16 rounds to
// nearest even (NaN kept quiet) as core/half.h; f16 uses F16C where the variant has it (AVX2,
// AVX-512), otherwise core/half.h's scalar conversions. exp(): range reduction by n ln2 in two
// FMAs, a degree-5 polynomial, 2^n by vscalefps (AVX-512) or exponent-field factors; max relative
// error ~1-2 ulp; exp(-inf) = 0, exp(NaN) = NaN, overflow gives inf, results below
// 2^-125 are flushed to 0 (no subnormals: they are slow). erf(): math::erf_f32's two pieces
// (kernels/op_math.h) on vectors, with the exp below.
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "keel/core/half.h"
#include "keel/kernels/op_math.h"

#ifndef KEEL_CPU_ISA
#error "simd.h is for the per-instruction-set kernel files (*.isa.cpp)"
#endif

#if defined(__AVX512F__)
#define KEEL_SIMD_WIDTH 16
#elif defined(__AVX2__)
#define KEEL_SIMD_WIDTH 8
#else
#define KEEL_SIMD_WIDTH 4
#endif

namespace keel::cpu::KEEL_CPU_ISA::simd {

inline constexpr int kWidth = KEEL_SIMD_WIDTH;
typedef float vfloat __attribute__((vector_size(KEEL_SIMD_WIDTH * 4)));
typedef int32_t vint __attribute__((vector_size(KEEL_SIMD_WIDTH * 4)));
typedef uint32_t vuint __attribute__((vector_size(KEEL_SIMD_WIDTH * 4)));
typedef uint16_t vbits16 __attribute__((vector_size(KEEL_SIMD_WIDTH * 2)));

inline vfloat splat(float value) { return vfloat{} + value; }

inline float to_float(float v) { return v; }
inline float to_float(BFloat16 v) { return static_cast<float>(v); }
inline float to_float(Half v) { return static_cast<float>(v); }
struct NativeBFloat16;
template <typename T> inline T from_float(float v) {
  if constexpr (std::is_same_v<T, float>) return v;
  else if constexpr (std::is_same_v<T, NativeBFloat16>) return T{BFloat16(v).bits};
  else return T(v);
}

// ---- full-width loads and stores ----------------------------------------------------------------
inline vfloat load(const float* p) {
  vfloat v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline vfloat load(const BFloat16* p) {
#if KEEL_SIMD_WIDTH == 16
  // One vpermw with a zeroing mask puts word k in the high half of lane k (the low half 0): one
  // shuffle instead of a widening and a shift (GCC splits the generic widening in 256-bit halves).
  // (A 256-bit load of the 16 words zeroes the upper half; spelled in assembly because GCC 12's
  // cast and zero-extension intrinsics warn of an uninitialized upper half.)
  __m512i words;
  __asm__("vmovdqu16 %1, %t0" : "=v"(words) : "m"(*reinterpret_cast<const __m256i*>(p)));
  const __m512i index = _mm512_set_epi16(15, 0, 14, 0, 13, 0, 12, 0, 11, 0, 10, 0, 9, 0, 8, 0, 7, 0, 6, 0, 5, 0, 4, 0,
                                         3, 0, 2, 0, 1, 0, 0, 0);
  return reinterpret_cast<vfloat>(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, index, words));
#else
  vbits16 h;
  std::memcpy(&h, p, sizeof h);
  return reinterpret_cast<vfloat>(__builtin_convertvector(h, vuint) << 16);
#endif
}
inline vfloat load(const Half* p) {
#if KEEL_SIMD_WIDTH == 16
  return reinterpret_cast<vfloat>(_mm512_maskz_cvtph_ps(0xffff, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))));
#elif KEEL_SIMD_WIDTH == 8 && defined(__F16C__)
  return reinterpret_cast<vfloat>(_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
#else
  vfloat v;
  for (int k = 0; k < kWidth; ++k) v[k] = static_cast<float>(p[k]);
  return v;
#endif
}

inline void store(float* p, vfloat v) { std::memcpy(p, &v, sizeof v); }
inline void store(BFloat16* p, vfloat v) {
  const vuint bits = reinterpret_cast<vuint>(v);
  const vuint rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  const vuint quiet_nan = (bits >> 16) | 0x0040u;
  const vuint result = (bits & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded;
#if KEEL_SIMD_WIDTH == 16
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(reinterpret_cast<__m512i>(result)));
#elif KEEL_SIMD_WIDTH == 8
  // result < 2^16: the unsigned saturating pack is exact; it packs within 128-bit lanes.
  const __m256i packed = _mm256_packus_epi32(reinterpret_cast<__m256i>(result), reinterpret_cast<__m256i>(result));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(_mm256_permute4x64_epi64(packed, 0x08)));
#else
  const vbits16 h = __builtin_convertvector(result, vbits16);
  std::memcpy(static_cast<void*>(p), &h, sizeof h);
#endif
}
inline void store(Half* p, vfloat v) {
#if KEEL_SIMD_WIDTH == 16
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                      _mm512_maskz_cvtps_ph(0xffff, reinterpret_cast<__m512>(v), _MM_FROUND_TO_NEAREST_INT));
#elif KEEL_SIMD_WIDTH == 8 && defined(__F16C__)
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                   _mm256_cvtps_ph(reinterpret_cast<__m256>(v), _MM_FROUND_TO_NEAREST_INT));
#else
  for (int k = 0; k < kWidth; ++k) p[k] = Half(v[k]);
#endif
}

#if KEEL_SIMD_WIDTH == 16
// bf16 storage for CPUs with AVX512-BF16 (the kernels pick it from cpu_features()): the same
// bits, but stores round with one vcvtneps2bf16 (nearest even, NaN kept quiet) instead of the
// integer sequence above. Unlike core/half.h it flushes f32 subnormals (|v| < 2^-126) to zero.
// Inline assembly: the instruction is beyond -march=x86-64-v4, and a target attribute would have
// to be repeated on every function it is inlined into.
struct NativeBFloat16 {
  uint16_t bits;
};
inline float to_float(NativeBFloat16 v) { return to_float(BFloat16(v.bits, BFloat16::FromBits{})); }
inline vfloat load(const NativeBFloat16* p) { return load(reinterpret_cast<const BFloat16*>(p)); }
inline void store(NativeBFloat16* p, vfloat v) {
  __m256i packed;
  __asm__("vcvtneps2bf16 %1, %0" : "=v"(packed) : "v"(reinterpret_cast<__m512>(v)));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), packed);
}
// Two vectors (2 * kWidth elements, a first) in one vcvtne2ps2bf16: the same rounding as store.
inline void store_pair(NativeBFloat16* p, vfloat a, vfloat b) {
  __m512i packed;
  __asm__("vcvtne2ps2bf16 %2, %1, %0" : "=v"(packed) : "v"(reinterpret_cast<__m512>(b)), "v"(reinterpret_cast<__m512>(a)));
  _mm512_storeu_si512(p, packed);
}
#endif
template <typename T> inline void store_pair(T* p, vfloat a, vfloat b) {
  store(p, a);
  store(p + kWidth, b);
}

// ---- pairs of vectors in a lane order of the kernel's choosing ----------------------------------
// load_pair_any(p, a, b): the 2 * kWidth elements at p as two f32 vectors. With AVX-512 and bf16
// storage (kEvenOddPairs), a holds the even elements and b the odd ones: each 32-bit word of memory
// splits into its two halves by one shift and one and (either vector port), where load() spends a
// vpermw (port 5 only) per vector; measured ~1.0 against ~1.6 cycles per 16 elements loaded and
// summed from L1. Otherwise a = p[0, kWidth) and b = p[kWidth, 2 kWidth). For work that does not
// depend on the order (sums, max) or that keeps it (store_pair_any, pair_position).
// store_pair_any(p, a, b) stores such a pair back in memory order (bf16 on AVX-512: one
// vcvtne2ps2bf16 and one vpermw per pair with AVX512-BF16, or the rounding of store() on each
// half and one or-shift, no shuffle, without).
template <typename T>
inline constexpr bool kEvenOddPairs =
    KEEL_SIMD_WIDTH == 16 && (std::is_same_v<T, BFloat16> || std::is_same_v<T, NativeBFloat16>);

// Where element k (< 2 kWidth) of a pair lands: lane k' of a for k' < kWidth, lane k' - kWidth of b.
template <typename T> constexpr int pair_position(int k) {
  if constexpr (kEvenOddPairs<T>) return k % 2 ? kWidth + k / 2 : k / 2;
  else return k;
}

template <typename T> inline void load_pair_any(const T* p, vfloat& a, vfloat& b) {
  if constexpr (kEvenOddPairs<T>) {
    vuint words;
    std::memcpy(&words, p, sizeof words);
    a = reinterpret_cast<vfloat>(words << 16);
    b = reinterpret_cast<vfloat>(words & 0xffff0000u);
  } else {
    a = load(p);
    b = load(p + kWidth);
  }
}

#if KEEL_SIMD_WIDTH == 16
// bf16 bits of v (round to nearest even, NaN kept quiet) in the low half of each 32-bit lane.
inline vuint bf16_bits(vfloat v) {
  const vuint bits = reinterpret_cast<vuint>(v);
  const vuint rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  const vuint quiet_nan = (bits >> 16) | 0x0040u;
  return (bits & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded;
}
#endif

template <typename T> inline void store_pair_any(T* p, vfloat a, vfloat b) {
#if KEEL_SIMD_WIDTH == 16
  if constexpr (std::is_same_v<T, NativeBFloat16>) {
    // vcvtne2ps2bf16 gives the words a0..a15 b0..b15; memory order is a0 b0 a1 b1 ...
    __m512i packed;
    __asm__("vcvtne2ps2bf16 %2, %1, %0" : "=v"(packed) : "v"(reinterpret_cast<__m512>(b)), "v"(reinterpret_cast<__m512>(a)));
    const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                           5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    _mm512_storeu_si512(p, _mm512_permutexvar_epi16(order, packed));
    return;
  } else if constexpr (std::is_same_v<T, BFloat16>) {
    const vuint words = bf16_bits(a) | (bf16_bits(b) << 16);
    std::memcpy(static_cast<void*>(p), &words, sizeof words);
    return;
  }
#endif
  store(p, a);
  store(p + kWidth, b);
}

// ---- partial loads and stores: the first `count` lanes (count <= kWidth) ----------------------
// Lanes past count read `fill`. AVX-512 uses masked loads and stores; the others go through a
// small buffer (elementwise inserts into a vector register are several times slower).
#if KEEL_SIMD_WIDTH == 16
inline __mmask16 lane_mask(int64_t count) { return static_cast<__mmask16>((1u << count) - 1u); }
inline vfloat load(const float* p, int64_t count, float fill) {
  if (count == kWidth) return load(p);
  return reinterpret_cast<vfloat>(_mm512_mask_loadu_ps(_mm512_set1_ps(fill), lane_mask(count), p));
}
template <typename T> inline vfloat load(const T* p, int64_t count, float fill) {
  if (count == kWidth) return load(p);
  T fill_value = from_float<T>(fill);
  uint16_t fill_bits;
  std::memcpy(&fill_bits, &fill_value, sizeof fill_bits);
  const __m256i bits = _mm256_mask_loadu_epi16(_mm256_set1_epi16(static_cast<short>(fill_bits)), lane_mask(count), p);
  return load(reinterpret_cast<const T*>(&bits));
}
inline void store(float* p, vfloat v, int64_t count) {
  if (count == kWidth) return store(p, v);
  _mm512_mask_storeu_ps(p, lane_mask(count), reinterpret_cast<__m512>(v));
}
template <typename T> inline void store(T* p, vfloat v, int64_t count) {
  if (count == kWidth) return store(p, v);
  __m256i bits;
  store(reinterpret_cast<T*>(&bits), v);
  _mm256_mask_storeu_epi16(p, lane_mask(count), bits);
}
#else
template <typename T> inline vfloat load(const T* p, int64_t count, float fill) {
  if (count == kWidth) return load(p);
  T buffer[kWidth];
  const T fill_value = from_float<T>(fill);
  for (int k = 0; k < kWidth; ++k) buffer[k] = fill_value;
  std::memcpy(static_cast<void*>(buffer), p, static_cast<size_t>(count) * sizeof(T));
  return load(buffer);
}
template <typename T> inline void store(T* p, vfloat v, int64_t count) {
  if (count == kWidth) return store(p, v);
  T buffer[kWidth];
  store(buffer, v);
  std::memcpy(static_cast<void*>(p), buffer, static_cast<size_t>(count) * sizeof(T));
}
#endif
// All-ones in the first count lanes: for selecting the valid lanes of a partial vector.
inline vint first_lanes(int64_t count) {
  vint index;
  for (int k = 0; k < kWidth; ++k) index[k] = k;
  return index < static_cast<int32_t>(count);
}

// ---- arithmetic ---------------------------------------------------------------------------------
inline vfloat max(vfloat a, vfloat b) { return a > b ? a : b; }
inline vfloat sqrt(vfloat v) {
#if KEEL_SIMD_WIDTH == 16
  return reinterpret_cast<vfloat>(_mm512_maskz_sqrt_ps(0xffff, reinterpret_cast<__m512>(v)));
#elif KEEL_SIMD_WIDTH == 8
  return reinterpret_cast<vfloat>(_mm256_sqrt_ps(reinterpret_cast<__m256>(v)));
#else
  return reinterpret_cast<vfloat>(_mm_sqrt_ps(reinterpret_cast<__m128>(v)));
#endif
}
// Horizontal sum and max as trees (a chain of kWidth dependent adds would cost ~4 * kWidth cycles).
inline __m128 fold_to_128(vfloat v, bool is_max) {
#if KEEL_SIMD_WIDTH == 16
  const __m256 lo = reinterpret_cast<__m256>(__builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7));
  const __m256 hi = reinterpret_cast<__m256>(__builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15));
  const __m256 half = is_max ? _mm256_max_ps(lo, hi) : _mm256_add_ps(lo, hi);
  const __m128 a = _mm256_castps256_ps128(half), b = _mm256_extractf128_ps(half, 1);
  return is_max ? _mm_max_ps(a, b) : _mm_add_ps(a, b);
#elif KEEL_SIMD_WIDTH == 8
  const __m256 x = reinterpret_cast<__m256>(v);
  const __m128 a = _mm256_castps256_ps128(x), b = _mm256_extractf128_ps(x, 1);
  return is_max ? _mm_max_ps(a, b) : _mm_add_ps(a, b);
#else
  (void)is_max;
  return reinterpret_cast<__m128>(v);
#endif
}
inline float reduce_add(vfloat v) {
  __m128 x = fold_to_128(v, false);
  x = _mm_add_ps(x, _mm_movehl_ps(x, x));
  x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
  return _mm_cvtss_f32(x);
}
inline float reduce_max(vfloat v) {
  __m128 x = fold_to_128(v, true);
  x = _mm_max_ps(x, _mm_movehl_ps(x, x));
  x = _mm_max_ss(x, _mm_shuffle_ps(x, x, 1));
  return _mm_cvtss_f32(x);
}

// exp(x) per lane (see the header comment). Results below 2^-125 (x < -86.5, ~2.6e-38) are
// flushed to 0: computing them would go through subnormals, which cost a microcode assist per
// lane (softmax rows with a wide range, and -inf fills, hit that constantly).
//
// x = n ln2 + r, n = round(x / ln2) (the 1.5 * 2^23 trick: n sits in the low mantissa bits of t),
// r = x - n ln2 in two FMAs (ln2 split in a float and a remainder, so r is exact to ~1 ulp of r),
// |r| <= ln2 / 2; e^r by a degree-5 polynomial (minimax of the relative error on [-ln2/2, ln2/2]
// with constant term 1, ~0.8 ulp), then p * 2^n. Max error against std::exp (double) over every
// float in [-86.5, 88.7], measured: 1.99 ulp with FMA (AVX2, AVX-512), 2.27 ulp without
// (x86-64-v2); the former Cephes polynomial (degree 7, ~19 instructions) had 1.01 ulp. About 11
// vector instructions (AVX-512: 2^n by vscalefps and the flush by the compare's mask).
// kNonPositive: the caller guarantees x <= 0 or NaN (softmax's x - max): no overflow clamp.
// kCoarse (exp_nonpositive_coarse, for results stored as bf16): r = x - n ln2 in one FMA and a
// degree-4 polynomial (Lawson-fitted minimax of the relative error, constant term 1), two vector
// instructions fewer; max relative error 3.6e-6 from the polynomial plus ~2.6e-6 from the reduction, against bf16's
// half ulp of 2^-9 = 2e-3.
template <bool kNonPositive, bool kCoarse = false> inline vfloat exp_impl(vfloat x) {
  if constexpr (!kNonPositive) x = splat(89.f) < x ? splat(89.f) : x;  // above 88.73 exp is inf; NaN kept
  const vfloat magic = splat(12582912.f);
  const vfloat t = x * 1.44269504088896341f + magic;
  const vfloat n = t - magic;
  vfloat p, r;
  if constexpr (kCoarse) {
    r = x - n * 0.693147180559945f;
    p = splat(0.041513849049806595f);
    p = p * r + 0.16787473857402802f;
    p = p * r + 0.5000301599502563f;
    p = p * r + 0.9999668598175049f;
    p = p * r + 1.f;  // exp(0) = 1 exactly
  } else {
    r = x - n * 0.693145751953125f;  // ln2 high part: 16 significant bits, so n * it is exact
    r = r - n * 1.4286068203094173e-06f;      // ln2 - high part
    p = splat(8.2902293652e-03f);
    p = p * r + 4.1898392141e-02f;
    p = p * r + 1.6667640209e-01f;
    p = p * r + 4.9999144673e-01f;
    p = p * r + 9.9999970198e-01f;
    p = p * r + 1.f;
  }
#if KEEL_SIMD_WIDTH == 16
  // vscalefps: p * 2^n in one instruction (overflowing to inf, NaN kept); lanes with x < -86.5
  // come out 0 by the mask (not less than, unordered: NaN lanes are kept).
  const __mmask16 keep = _mm512_cmp_ps_mask(reinterpret_cast<__m512>(x), _mm512_set1_ps(-86.5f), _CMP_NLT_UQ);
  return reinterpret_cast<vfloat>(
      _mm512_maskz_scalef_ps(keep, reinterpret_cast<__m512>(p), reinterpret_cast<__m512>(n)));
#else
  const vint underflow = x < -86.5f;
  // The low 9 bits of t hold n (two's complement): (t << 23) + (127 << 23) is 2^n for n in
  // [-126, 127]. A product (not an add to p's bits) so that NaN lanes stay NaN.
  vfloat result;
  if constexpr (kNonPositive) {
    result = p * reinterpret_cast<vfloat>((reinterpret_cast<vint>(t) << 23) + (127 << 23));
  } else {
    // n up to 129: 2^n = 2^(n/2, floored) * 2^(rest), both factors normal for n in [-125, 129].
    const vint n_int = reinterpret_cast<vint>(t) - 0x4b400000;
    const vint half_n = n_int >> 1;
    const vfloat scale_a = reinterpret_cast<vfloat>((half_n + 127) << 23);
    const vfloat scale_b = reinterpret_cast<vfloat>((n_int - half_n + 127) << 23);
    result = p * scale_a * scale_b;
  }
  return underflow ? splat(0.f) : result;
#endif
}
#if KEEL_SIMD_WIDTH == 16
// 2^t per lane for results stored as bf16 (AVX-512; softmax's exp(x - m) = 2^((x - m) log2 e)):
// f = t - floor(t) in [0, 1) by one vreduceps (exact), 2^f by a degree-4 polynomial (Lawson-fitted
// minimax of the relative error with constant term 1; max relative error 3.0e-6 in f32, against
// bf16's half ulp of 2^-9), then p * 2^floor(t) by vscalefps (which floors its exponent operand).
// Lanes with t < -125 come out 0 by the compare's mask (no subnormal results: they cost a
// microcode assist per lane); NaN lanes stay NaN (unordered compare keeps them), -inf gives 0.
// 7 vector instructions (4 FMAs, vreduceps, the compare, vscalefps), against 9 for
// exp_nonpositive_coarse without its subtraction.
inline vfloat exp2_for_bf16(vfloat t) {
  const __m512 tt = reinterpret_cast<__m512>(t);
  const vfloat f = reinterpret_cast<vfloat>(_mm512_reduce_ps(tt, 0x09));  // M = 0, round down, no exceptions
  vfloat p = splat(0.013426518999040127f);
  p = p * f + 0.052242740988731384f;
  p = p * f + 0.24128007888793945f;
  p = p * f + 0.6930448412895203f;
  p = p * f + 1.f;
  const __mmask16 keep = _mm512_cmp_ps_mask(tt, _mm512_set1_ps(-125.f), _CMP_NLT_UQ);
  return reinterpret_cast<vfloat>(_mm512_maskz_scalef_ps(keep, reinterpret_cast<__m512>(p), tt));
}
#endif
inline vfloat exp(vfloat x) { return exp_impl<false>(x); }
inline vfloat exp_nonpositive(vfloat x) { return exp_impl<true>(x); }
inline vfloat exp_nonpositive_coarse(vfloat x) { return exp_impl<true, true>(x); }

// erf(x) per lane: the vector form of math::erf_f32 (kernels/op_math.h; the same pieces and
// coefficients): a = |x|; a < 1: a + a P(a^2); else 1 - e^(-c^2) Q(c - 1) with c = min(a, 4)
// (1 exactly from a ~ 3.92 on and for inf); x's sign copied on (erf(-0) = -0, NaN stays NaN: it
// fails every compare, keeps its value through the clamp and takes the large piece). About 22
// vector instructions and the exp. Max error measured under 2 ulp (tests/ops/test_erf.cpp).
inline vfloat erf(vfloat x) {
  const vuint bits = reinterpret_cast<vuint>(x);
  const vuint sign = bits & 0x80000000u;
  const vfloat a = reinterpret_cast<vfloat>(bits & 0x7fffffffu);
  const vfloat a2 = a * a;
  vfloat p = splat(math::kErfSmall[6]);
  for (int k = 5; k >= 0; --k) p = p * a2 + math::kErfSmall[k];
  const vfloat small = a * p + a;
  const vfloat c = a > 4.f ? splat(4.f) : a;
  const vfloat u = c - 1.f;
  vfloat q = splat(math::kErfLarge[8]);
  for (int k = 7; k >= 0; --k) q = q * u + math::kErfLarge[k];
  const vfloat large = 1.f - exp_nonpositive(-(c * c)) * q;
  const vfloat result = a < 1.f ? small : large;
  return reinterpret_cast<vfloat>(reinterpret_cast<vuint>(result) | sign);
}

}  // namespace keel::cpu::KEEL_CPU_ISA::simd
