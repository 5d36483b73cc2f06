// Elementwise CPU kernels: unary, binary, where, clamp, copy (with dtype conversion), fill.
//
//   out[i] = f(x[i])  /  f(a[i], b[i])  /  cond[i] ? a[i] : b[i]     over any strided views
//   bytes per element: itemsize * (operands); FLOPs: 1 for arithmetic, more for transcendental.
//
// The math of each op is in kernels/op_math.h (shared with CUDA); this file only walks memory.
// Contiguous runs (and a contiguous operand against a broadcast scalar) get plain indexed
// loops that the compiler vectorizes for this file's instruction set; other strides fall back
// to pointer-stepping loops. The reference these must match is kernels/reference/.
//
// f16/bf16 contiguous runs compute in float with conversions that vectorize and give the same
// bits as core/half.h's scalar ones for every input (tested on all 65536 patterns and millions
// of floats). bf16 <-> float is a shift and a branch-free rounding, fused into the compute loop.
// f16 runs go in chunks of kChunk elements through float buffers: half -> float branch-free (not
// F16C: vcvtph2ps quiets signalling NaNs, half.h keeps them), float -> half with F16C's
// vcvtps2ph where the variant has it, else half.h's cases as bit selects.
#include <algorithm>
#include <cstring>
#include <type_traits>

// GCC 12 reports its own AVX-512 intrinsics' undefined-vector idiom (in _mm512_cvtepi32_epi16,
// simd::store of bf16) as "(may be) used uninitialized" once they are inlined here.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "keel/kernels/convert.h"
#include "keel/kernels/cpu/isa_table.h"
#include "keel/kernels/cpu/simd.h"
#include "keel/kernels/cpu/strided_loop.h"
#include "keel/kernels/dispatch.h"

namespace keel::cpu::KEEL_CPU_ISA {

namespace {

template <typename T> inline constexpr bool is_float16_v = std::is_same_v<T, Half> || std::is_same_v<T, BFloat16>;

// Elements per chunk of an f16 run: 1 KiB float buffers stay in L1.
constexpr int64_t kChunk = 256;

inline uint32_t bits_of(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}
inline float float_of(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}
// condition ? if_true : if_false as a bit mask: with a plain ?: GCC sinks the float arithmetic
// of the unused arm into a branch and then cannot vectorize the loop ("control flow in loop").
inline uint32_t select_bits(bool condition, uint32_t if_true, uint32_t if_false) {
  const uint32_t mask = 0u - static_cast<uint32_t>(condition);
  return (if_true & mask) | (if_false & ~mask);
}

// binary16 -> float, as detail::half_bits_to_float: normals and inf/NaN rebias the exponent
// (NaN payloads kept as they are), subnormals are mantissa * 2^-24 (exact in float).
inline void load_floats(const Half* src, float* __restrict dst, int64_t count) {
  const uint16_t* __restrict bits = reinterpret_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < count; ++i) {
    const uint32_t half = bits[i];
    const uint32_t sign = (half & 0x8000u) << 16;
    const uint32_t magnitude = half & 0x7fffu;
    const uint32_t rebiased = (magnitude << 13) + ((magnitude >= 0x7c00u ? 224u : 112u) << 23);
    const float subnormal = static_cast<float>(static_cast<int32_t>(magnitude)) * 5.9604644775390625e-08f;
    dst[i] = float_of(sign | select_bits(magnitude < 0x400u, bits_of(subnormal), rebiased));
  }
}

// bfloat16 -> float: the bits are the float's top half.
inline float bfloat16_to_float(BFloat16 value) { return float_of(static_cast<uint32_t>(value.bits) << 16); }

// float -> bfloat16: the top 16 bits rounded to nearest even; NaN kept quiet (as
// detail::float_to_bfloat16_bits).
inline BFloat16 float_to_bfloat16(float value) {
  const uint32_t bits = bits_of(value);
  const uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (bits >> 16) | 0x0040u;
  // A plain ?: here (both arms integer, nothing to sink) vectorizes and is ~15% faster than
  // select_bits in cache.
  return BFloat16(static_cast<uint16_t>((bits & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded), BFloat16::FromBits{});
}

inline void load_floats(const BFloat16* __restrict src, float* __restrict dst, int64_t count) {
  for (int64_t i = 0; i < count; ++i) dst[i] = bfloat16_to_float(src[i]);
}

// float -> binary16, round to nearest even: vcvtps2ph where the variant has F16C (it rounds,
// handles subnormals, overflow and NaN exactly as detail::float_to_half_bits does), else that
// function's cases as selects instead of branches.
inline void store_floats(const float* __restrict src, Half* dst, int64_t count) {
  uint16_t* __restrict bits = reinterpret_cast<uint16_t*>(dst);
  int64_t i = 0;
#if defined(__F16C__)
  for (; i + 8 <= count; i += 8) {
    const __m128i halves = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(bits + i), halves);
  }
#endif
  for (; i < count; ++i) {
    const uint32_t value = bits_of(src[i]);
    const uint32_t sign = (value >> 16) & 0x8000u;
    const uint32_t magnitude = value & 0x7fffffffu;
    const uint32_t inf_nan = 0x7c00u | (magnitude > 0x7f800000u ? 0x0200u | ((magnitude >> 13) & 0x3ffu) : 0u);
    // Subnormal or zero: adding 0.5 lines bit 2^-24 up with the float's last mantissa bit, so
    // the float adder rounds to nearest even.
    const uint32_t subnormal = bits_of(float_of(magnitude) + 0.5f) - 0x3f000000u;
    const uint32_t normal = (magnitude + 0xc8000fffu + ((magnitude >> 13) & 1u)) >> 13;
    uint32_t result = select_bits(magnitude < 0x38800000u, subnormal, normal);
    result = select_bits(magnitude >= 0x477ff000u, 0x7c00u, result);
    result = select_bits(magnitude >= 0x7f800000u, inf_nan, result);
    bits[i] = static_cast<uint16_t>(sign | result);
  }
}

inline void store_floats(const float* __restrict src, BFloat16* __restrict dst, int64_t count) {
  for (int64_t i = 0; i < count; ++i) dst[i] = float_to_bfloat16(src[i]);
}

// One element in its compute type, and a computed value stored as Out: the plain casts, except
// bf16, which uses the vectorizable conversions above (f16 runs are chunked instead).
template <typename T> inline compute_t<T> load_value(T value) {
  if constexpr (std::is_same_v<T, BFloat16>) return bfloat16_to_float(value);
  else return static_cast<compute_t<T>>(value);
}
template <typename Out, typename V> inline Out store_value(V value) {
  if constexpr (std::is_same_v<Out, BFloat16>) return float_to_bfloat16(value);
  else return static_cast<Out>(value);
}

// Applies f to one inner run of two operands: out[i] = Out(f(C(x[i]))) with C = compute_t<In>,
// out (Out), x (In). f takes and gives the compute type (or bool for predicates).
template <typename Out, typename In, typename F>
inline void unary_run(char* const* pointers, const int64_t* strides, int64_t count, F f) {
  if (strides[0] == sizeof(Out) && strides[1] == sizeof(In)) {
    Out* __restrict out = reinterpret_cast<Out*>(pointers[0]);
    const In* __restrict x = reinterpret_cast<const In*>(pointers[1]);
    if constexpr (std::is_same_v<In, Half>) {
      alignas(64) float in_chunk[kChunk];
      alignas(64) float out_chunk[kChunk];
      for (int64_t start = 0; start < count; start += kChunk) {
        const int64_t n = std::min(kChunk, count - start);
        load_floats(x + start, in_chunk, n);
        if constexpr (std::is_same_v<Out, Half>) {
          for (int64_t i = 0; i < n; ++i) out_chunk[i] = f(in_chunk[i]);
          store_floats(out_chunk, out + start, n);
        } else {
          for (int64_t i = 0; i < n; ++i) out[start + i] = static_cast<Out>(f(in_chunk[i]));
        }
      }
    } else {
      for (int64_t i = 0; i < count; ++i) out[i] = store_value<Out>(f(load_value(x[i])));
    }
  } else {
    char* out = pointers[0];
    const char* x = pointers[1];
    for (int64_t i = 0; i < count; ++i, out += strides[0], x += strides[1])
      *reinterpret_cast<Out*>(out) = store_value<Out>(f(load_value(*reinterpret_cast<const In*>(x))));
  }
}

// One chunk of an f16 binary run: a and b are float buffers (a_stride/b_stride 1, or 0 for a
// broadcast scalar held in element 0).
template <typename Out, typename F>
inline void binary_chunk(Out* __restrict out, const float* __restrict a, int64_t a_stride,
                         const float* __restrict b, int64_t b_stride, int64_t n, F f) {
  if constexpr (std::is_same_v<Out, Half>) {
    alignas(64) float out_chunk[kChunk];
    if (a_stride && b_stride) for (int64_t i = 0; i < n; ++i) out_chunk[i] = f(a[i], b[i]);
    else if (a_stride) for (int64_t i = 0; i < n; ++i) out_chunk[i] = f(a[i], b[0]);
    else for (int64_t i = 0; i < n; ++i) out_chunk[i] = f(a[0], b[i]);
    store_floats(out_chunk, out, n);
  } else {
    if (a_stride && b_stride) for (int64_t i = 0; i < n; ++i) out[i] = static_cast<Out>(f(a[i], b[i]));
    else if (a_stride) for (int64_t i = 0; i < n; ++i) out[i] = static_cast<Out>(f(a[i], b[0]));
    else for (int64_t i = 0; i < n; ++i) out[i] = static_cast<Out>(f(a[0], b[i]));
  }
}

// out[i] = Out(f(C(a[i]), C(b[i]))) over one inner run, C = compute_t<In>.
template <typename Out, typename In, typename F>
inline void binary_run(char* const* pointers, const int64_t* strides, int64_t count, F f) {
  using C = compute_t<In>;
  Out* __restrict out = reinterpret_cast<Out*>(pointers[0]);
  const In* __restrict a = reinterpret_cast<const In*>(pointers[1]);
  const In* __restrict b = reinterpret_cast<const In*>(pointers[2]);
  const bool contiguous_out = strides[0] == sizeof(Out);
  const bool a_run = strides[1] == sizeof(In), b_run = strides[2] == sizeof(In);
  const bool a_scalar = strides[1] == 0, b_scalar = strides[2] == 0;
  if constexpr (std::is_same_v<In, Half>) {
    if (contiguous_out && (a_run || a_scalar) && (b_run || b_scalar) && (a_run || b_run)) {
      alignas(64) float a_chunk[kChunk];
      alignas(64) float b_chunk[kChunk];
      if (a_scalar) load_floats(a, a_chunk, 1);
      if (b_scalar) load_floats(b, b_chunk, 1);
      for (int64_t start = 0; start < count; start += kChunk) {
        const int64_t n = std::min(kChunk, count - start);
        if (a_run) load_floats(a + start, a_chunk, n);
        if (b_run) load_floats(b + start, b_chunk, n);
        binary_chunk(out + start, a_chunk, a_run ? 1 : 0, b_chunk, b_run ? 1 : 0, n, f);
      }
      return;
    }
  } else {
    if (contiguous_out && a_run && b_run) {
      for (int64_t i = 0; i < count; ++i) out[i] = store_value<Out>(f(load_value(a[i]), load_value(b[i])));
      return;
    }
    if (contiguous_out && a_run && b_scalar) {
      const C scalar = load_value(*b);
      for (int64_t i = 0; i < count; ++i) out[i] = store_value<Out>(f(load_value(a[i]), scalar));
      return;
    }
    if (contiguous_out && a_scalar && b_run) {
      const C scalar = load_value(*a);
      for (int64_t i = 0; i < count; ++i) out[i] = store_value<Out>(f(scalar, load_value(b[i])));
      return;
    }
  }
  char* o = pointers[0];
  const char* pa = pointers[1];
  const char* pb = pointers[2];
  for (int64_t i = 0; i < count; ++i, o += strides[0], pa += strides[1], pb += strides[2])
    *reinterpret_cast<Out*>(o) = store_value<Out>(
        f(load_value(*reinterpret_cast<const In*>(pa)), load_value(*reinterpret_cast<const In*>(pb))));
}

// dst[i] = convert<To, From>(src[i]) over one contiguous run where one side is f16/bf16 (and
// the dtypes differ): through a float chunk. convert<To, From> goes through float for these
// (f16/bf16 to anything: float(x) first; anything to f16/bf16: float(compute value) first), so
// the chunked path gives the same bits.
template <typename To, typename From>
inline void convert_run_float16(To* __restrict dst, const From* __restrict src, int64_t count) {
  if constexpr (std::is_same_v<To, float>) {
    load_floats(src, dst, count);
  } else if constexpr (std::is_same_v<From, float>) {
    store_floats(src, dst, count);
  } else {
    alignas(64) float chunk[kChunk];
    for (int64_t start = 0; start < count; start += kChunk) {
      const int64_t n = std::min(kChunk, count - start);
      if constexpr (is_float16_v<From>) load_floats(src + start, chunk, n);
      else for (int64_t i = 0; i < n; ++i) chunk[i] = convert<float, From>(src[start + i]);
      if constexpr (is_float16_v<To>) store_floats(chunk, dst + start, n);
      else for (int64_t i = 0; i < n; ++i) dst[start + i] = convert<To, float>(chunk[i]);
    }
  }
}

// Runs body<T> for x's dtype, instantiating only the dtypes the op accepts.
template <bool floating_only, typename F> void dispatch_for(DType dtype, const char* op, F&& body) {
  if constexpr (floating_only) dispatch_floating(dtype, op, body);
  else dispatch_all(dtype, op, body);
}

// erf and exact gelu over a contiguous f32 or bf16 run, explicitly vectorized with simd::erf (the
// vector form of math::erf_f32, full register width, masked tail on AVX-512). Returns false where
// it does not apply (other ops and dtypes, strided runs: those take unary_run and math::unary).
template <UnaryOp op, typename T>
inline bool unary_vector_run(char* const* pointers, const int64_t* strides, int64_t count) {
  if constexpr ((op == UnaryOp::erf || op == UnaryOp::gelu_erf) &&
                (std::is_same_v<T, float> || std::is_same_v<T, BFloat16>)) {
    if (strides[0] != sizeof(T) || strides[1] != sizeof(T)) return false;
    T* out = reinterpret_cast<T*>(pointers[0]);
    const T* x = reinterpret_cast<const T*>(pointers[1]);
    auto f = [](simd::vfloat v) {
      if constexpr (op == UnaryOp::erf) return simd::erf(v);
      else return 0.5f * v * (1.0f + simd::erf(v * 0.70710678118654752440f));
    };
    int64_t i = 0;
    for (; i + simd::kWidth <= count; i += simd::kWidth) simd::store(out + i, f(simd::load(x + i)));
    if (i < count) simd::store(out + i, f(simd::load(x + i, count - i, 0.0f)), count - i);
    return true;
  } else {
    (void)pointers, (void)strides, (void)count;
    return false;
  }
}

template <UnaryOp op> void unary_typed(const Tensor& out, const Tensor& x) {
  dispatch_for<unary_floating_only(op)>(x.dtype(), "unary", [&]<typename T>() {
    using C = compute_t<T>;
    if constexpr (unary_gives_bool(op)) {
      for_each<2>({&out, &x}, [](char* const* p, const int64_t* s, int64_t n) {
        unary_run<bool, T>(p, s, n, [](C v) { return math::unary_predicate<op>(v); });
      });
    } else {
      for_each<2>({&out, &x}, [](char* const* p, const int64_t* s, int64_t n) {
        if (unary_vector_run<op, T>(p, s, n)) return;
        unary_run<T, T>(p, s, n, [](C v) { return math::unary<op>(v); });
      });
    }
  });
}

template <BinaryOp op> void binary_typed(const Tensor& out, const Tensor& a, const Tensor& b) {
  dispatch_for<binary_floating_only(op)>(a.dtype(), "binary", [&]<typename T>() {
    using C = compute_t<T>;
    if constexpr (binary_gives_bool(op)) {
      for_each<3>({&out, &a, &b}, [](char* const* p, const int64_t* s, int64_t n) {
        binary_run<bool, T>(p, s, n, [](C x, C y) { return math::binary_predicate<op>(x, y); });
      });
    } else {
      for_each<3>({&out, &a, &b}, [](char* const* p, const int64_t* s, int64_t n) {
        binary_run<T, T>(p, s, n, [](C x, C y) { return math::binary<op>(x, y); });
      });
    }
  });
}

}  // namespace

void unary(UnaryOp op, const Tensor& out, const Tensor& x) {
  switch (op) {
#define KEEL_UNARY_CASE(name) \
  case UnaryOp::name: return unary_typed<UnaryOp::name>(out, x);
    KEEL_FORALL_UNARY_OPS(KEEL_UNARY_CASE)
#undef KEEL_UNARY_CASE
  }
}

void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  switch (op) {
#define KEEL_BINARY_CASE(name) \
  case BinaryOp::name: return binary_typed<BinaryOp::name>(out, a, b);
    KEEL_FORALL_BINARY_OPS(KEEL_BINARY_CASE)
#undef KEEL_BINARY_CASE
  }
}

// g * (Phi(x) + x phi(x)), Phi(x) = (1 + erf(x / sqrt 2)) / 2, phi(x) = e^(-x^2 / 2) / sqrt(2 pi):
// contiguous f32 / bf16 runs with simd::erf and simd::exp, the rest through binary_run with the
// scalar math (erf_f32 / exp_f32 in float, std::erf / std::exp in double).
void gelu_erf_backward(const Tensor& out, const Tensor& g, const Tensor& x) {
  dispatch_floating(out.dtype(), "gelu_backward", [&]<typename T>() {
    using C = compute_t<T>;
    for_each<3>({&out, &g, &x}, [](char* const* p, const int64_t* s, int64_t n) {
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, BFloat16>) {
        if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == sizeof(T)) {
          T* o = reinterpret_cast<T*>(p[0]);
          const T* gp = reinterpret_cast<const T*>(p[1]);
          const T* xp = reinterpret_cast<const T*>(p[2]);
          auto f = [](simd::vfloat gv, simd::vfloat xv) {
            const simd::vfloat cdf = 0.5f + 0.5f * simd::erf(xv * 0.70710678118654752440f);
            const simd::vfloat pdf = simd::exp_nonpositive(xv * xv * -0.5f) * 0.39894228040143267794f;
            return gv * (cdf + xv * pdf);
          };
          int64_t i = 0;
          for (; i + simd::kWidth <= n; i += simd::kWidth) simd::store(o + i, f(simd::load(gp + i), simd::load(xp + i)));
          if (i < n) simd::store(o + i, f(simd::load(gp + i, n - i, 0.0f), simd::load(xp + i, n - i, 0.0f)), n - i);
          return;
        }
      }
      binary_run<T, T>(p, s, n, [](C gv, C xv) {
        if constexpr (std::is_same_v<C, float>) {
          const float cdf = 0.5f + 0.5f * math::erf_f32(xv * 0.70710678118654752440f);
          const float pdf = math::exp_f32(xv * xv * -0.5f) * 0.39894228040143267794f;
          return gv * (cdf + xv * pdf);
        } else {
          const C cdf = C(0.5) + C(0.5) * std::erf(xv * C(0.70710678118654752440));
          const C pdf = std::exp(xv * xv * C(-0.5)) * C(0.39894228040143267794);
          return gv * (cdf + xv * pdf);
        }
      });
    });
  });
}

void where(const Tensor& out, const Tensor& condition, const Tensor& a, const Tensor& b) {
  dispatch_all(out.dtype(), "where", [&]<typename T>() {
    for_each<4>({&out, &condition, &a, &b}, [](char* const* p, const int64_t* s, int64_t n) {
      if (s[0] == sizeof(T) && s[1] == 1 && s[2] == sizeof(T) && s[3] == sizeof(T)) {
        T* __restrict o = reinterpret_cast<T*>(p[0]);
        const bool* __restrict c = reinterpret_cast<const bool*>(p[1]);
        const T* __restrict x = reinterpret_cast<const T*>(p[2]);
        const T* __restrict y = reinterpret_cast<const T*>(p[3]);
        for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? x[i] : y[i];
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        const bool c = *reinterpret_cast<const bool*>(p[1] + i * s[1]);
        *reinterpret_cast<T*>(p[0] + i * s[0]) =
            *reinterpret_cast<const T*>((c ? p[2] + i * s[2] : p[3] + i * s[3]));
      }
    });
  });
}

void clamp(const Tensor& out, const Tensor& x, const Tensor& low, const Tensor& high) {
  const bool has_low = low.defined(), has_high = high.defined();
  // An absent bound is passed as x itself so that the loop has a fixed arity; it is ignored.
  const Tensor& low_or_x = has_low ? low : x;
  const Tensor& high_or_x = has_high ? high : x;
  dispatch_all(out.dtype(), "clamp", [&]<typename T>() {
    using C = compute_t<T>;
    for_each<4>({&out, &x, &low_or_x, &high_or_x}, [has_low, has_high](char* const* p, const int64_t* s, int64_t n) {
      if (s[0] == sizeof(T) && s[1] == sizeof(T) && s[2] == 0 && s[3] == 0) {
        T* __restrict o = reinterpret_cast<T*>(p[0]);
        const T* __restrict v = reinterpret_cast<const T*>(p[1]);
        const C lo = static_cast<C>(*reinterpret_cast<const T*>(p[2]));
        const C hi = static_cast<C>(*reinterpret_cast<const T*>(p[3]));
        for (int64_t i = 0; i < n; ++i)
          o[i] = static_cast<T>(math::clamp(static_cast<C>(v[i]), lo, hi, has_low, has_high));
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        const C v = static_cast<C>(*reinterpret_cast<const T*>(p[1] + i * s[1]));
        const C lo = static_cast<C>(*reinterpret_cast<const T*>(p[2] + i * s[2]));
        const C hi = static_cast<C>(*reinterpret_cast<const T*>(p[3] + i * s[3]));
        *reinterpret_cast<T*>(p[0] + i * s[0]) = static_cast<T>(math::clamp(v, lo, hi, has_low, has_high));
      }
    });
  });
}

void copy(const Tensor& dst, const Tensor& src) {
  dispatch_all(dst.dtype(), "copy", [&]<typename To>() {
    dispatch_all(src.dtype(), "copy", [&]<typename From>() {
      for_each<2>({&dst, &src}, [](char* const* p, const int64_t* s, int64_t n) {
        const bool contiguous = s[0] == sizeof(To) && s[1] == sizeof(From);
        if constexpr (std::is_same_v<To, From>) {
          if (contiguous) {
            std::memcpy(p[0], p[1], static_cast<size_t>(n) * sizeof(To));
            return;
          }
        } else if constexpr (is_float16_v<To> || is_float16_v<From>) {
          if (contiguous) {
            convert_run_float16(reinterpret_cast<To*>(p[0]), reinterpret_cast<const From*>(p[1]), n);
            return;
          }
        } else {
          if (contiguous) {
            To* __restrict d = reinterpret_cast<To*>(p[0]);
            const From* __restrict v = reinterpret_cast<const From*>(p[1]);
            for (int64_t i = 0; i < n; ++i) d[i] = convert<To, From>(v[i]);
            return;
          }
        }
        char* d = p[0];
        const char* v = p[1];
        for (int64_t i = 0; i < n; ++i, d += s[0], v += s[1])
          *reinterpret_cast<To*>(d) = convert<To, From>(*reinterpret_cast<const From*>(v));
      });
    });
  });
}

void fill(const Tensor& dst, const Scalar& value) {
  dispatch_all(dst.dtype(), "fill", [&]<typename T>() {
    const T filled = std::is_same_v<T, bool> || std::is_integral_v<T>
                         ? (value.is_floating() ? convert<T, double>(value.to_double()) : value.to<T>())
                         : convert<T, double>(value.to_double());
    for_each<1>({&dst}, [filled](char* const* p, const int64_t* s, int64_t n) {
      if (s[0] == sizeof(T)) {
        T* __restrict o = reinterpret_cast<T*>(p[0]);
        for (int64_t i = 0; i < n; ++i) o[i] = filled;
      } else {
        for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * s[0]) = filled;
      }
    });
  });
}

}  // namespace keel::cpu::KEEL_CPU_ISA
