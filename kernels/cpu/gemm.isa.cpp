// Batched matrix product on the CPU, compiled once per instruction set (an entry of the kernel
// table, isa_table.h, picked by dispatch.cpp with the other kernels), with linear's fused tail.
//
//   out[z, i, j] = act(sum_p a[z, i, p] * b[z, p, j] + bias[j])
//        a: (Z..., M, K)  b: (Z..., K, N)  out: (Z..., M, N)  bias: (N) or none  act: none, relu,
//        gelu_erf, gelu_tanh, silu (math::unary, the same function as the unfused op)
//   FLOPs: 2 * Z * M * N * K;  bytes: itemsize * Z * (M*K + K*N + M*N) at best (each operand once)
//   reference: float64 loops (tests/kernels/test_gemm.cpp, tests/ops/test_linalg.cpp)
//
// Loop nest (GotoBLAS / BLIS), per batch entry and thread (whole entries go to threads when there
// are more entries than threads; otherwise each thread takes one rectangle of the output: its
// rows, or its NR-wide column strips, whichever makes the threads pack less twice; each packs its
// own blocks, and there is no shared buffer and no barrier):
//   for each NC-wide column block:  for each KC-deep slice of K:
//     B's KC x NC block is packed into NR-wide strips (p-major), one strip just before its tiles
//     in the first row block (the tiles of the strip before prefetch the next one's source lines
//     when B is transposed and large), or, for row-major f32 B with rows at most 1 KiB apart,
//     read in place (no packing);
//     for each MC-high row block:
//       pack A's MC x KC block (AVX-512: row-major with padded rows, a copy for row-major A;
//       AVX2, baseline: MR-high strips, p-major)
//       for each B strip, for each A strip: the micro-kernel adds a_strip^T b_strip to the output
//       tile, held in registers over the whole KC slice.
// Packing is where strides, transposed operands and the 16-bit -> f32 conversions are handled (no
// copy of a whole operand): B read transposed (W^T in linear) and A read transposed go through
// 16 x 16 AVX-512 transposes. Edge tiles run kernels of the tile's height and masked columns
// (AVX-512) or a buffer (AVX2, baseline). An f32 output with unit column stride accumulates in
// place; others (f16, bf16, strided) accumulate in an f32 scratch block and are rounded once after
// all of K. On the last K slice the epilogue (bias, activation) runs on the tile while it is in L1.
// Thin products whose operands are both contiguous along K (x W^T with few rows or few outputs)
// are computed as 6 x 4 blocks of dot products, without packing.
//
// Micro-kernels (the output tile lives in vector registers; per k step: NR/lanes B loads, MR
// broadcasts of A, MR * NR/lanes FMAs):
//   avx512  f32: 14 x 32 (28 zmm accumulators + 2 B vectors + the broadcast: the 32 zmm registers);
//           f16 and bf16 are converted to f32 while packing (vcvtph2ps, a shift for bf16)
//   avx512  bf16 with vdpbf16ps (cpu::set_gemm_bf16_dot(true)): 14 x 32, A and B packed in pairs
//           along K. Not the default: on this Xeon vdpbf16ps zmm retires at half the FMA rate
//           (measured 105 vs 213 GFLOP/s per core, 12 independent chains), so converting to f32
//           and using FMAs is 1.6x faster (and 1.1-1.7x oneDNN's avx512_core_bf16 matmul).
//   avx2    f32: 6 x 16 (12 ymm accumulators);  baseline f32: 6 x 8 (12 xmm accumulators)
//   f64: a 6 x 2-vector generic kernel (correct, not tuned)
// AMX-BF16: bf16 products go to kernels/cpu/gemm_amx.h where cpu_features().amx_bf16 (never run on
// the development machine, which has no AMX; tested there through the tile emulator).
//
// Blocking for this Xeon (per core: L1d 48 KiB, L2 2 MiB): a B strip KC x NR x 4 B = 32 KiB stays in
// L1 while the A strips (14 rows x (KC + 16) x 4 B = 15 KiB each) stream from L2; the packed A block
// (MC x (KC + 16) = 168 x 272 x 4 B = 178 KiB) and B block (KC x NC = 256 x 1024 x 4 B = 1 MiB) fit
// L2.
//
// Versions (f32, 1 thread, GFLOP/s, keel / oneDNN; bench/kernels/gemm_bench.cpp):
//   v1 generic 6 x 2-vector kernel, one tile buffer:       ~60 at 1024^3
//   v2 14 x 32 AVX-512 kernel, scalar packing:            178 / 183 at 1024^3, 92 / 173 on linear 64x784->256
//   v3 + 16 x 16 transposes in packing:                   182 / 187, 152 / 174
//   v4 + per-height kernels and masked edges, shared B block for 2 threads, dot products for thin
//      products: 184 / 185, 163 / 176 (see the report for all cases). Tried without gain: KC 128-384,
//      MC 112-336, prefetching C, software prefetch of the transposed B rows.
//   v5 2 threads: one rectangle each, no shared B block and no barrier (256^3 on 2 threads 269 ->
//      351 GFLOP/s); A block row-major (copies, not transposes; the kernel's broadcasts at fixed
//      offsets measured 4% faster in isolation); small row-major B read in place; unmasked B loads
//      except at the edge (masked loads with a mask register cost 7%); transposes from 128-bit
//      pieces; thin products in 6 x 4 blocks, one shuffle tree for 16 sums, no divisions per block
//      (64x256->10: 79 -> 130 GFLOP/s). At 256^3: 190 -> 198 / 210 on 1 thread.
//   v6 row-major f32 A with rows 256 apart read in place (no copy): 256^3 198 -> 207 / 211 on 1
//      thread. Tried without gain: tiles of balanced heights (256 rows as 9 x 14 + 10 x 13 instead
//      of 18 x 14 + 4: 196-198 against 198-200), 512^3 on 2 threads split by columns (within
//      noise of the row split), software prefetch (T1) of the next 16 W rows in the transposes
//      (within noise), computing x W^T as (W x^T)^T (0.55-0.75x: the transposed write-out).
//   v7 B packed strip by strip just before its first tiles, not as a whole block first (64x784->256
//      155.6 -> 151.0 us, 1 thread); for transposed B over 1 MiB (W^T of a large linear layer) the
//      tiles software-prefetch (T1) the next strip's W rows, one line every two k steps
//      (256x1024->1024 3126 -> 3059 us). Packing costs ~10% there (3126 against 2804 us with the
//      packing skipped); the W reads from L3 are most of it (a second pack of a strip from cache:
//      ~60 us of the ~320), and the prefetch hides only a quarter of them.
#include <omp.h>

#include <algorithm>
#include <array>
#include <utility>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>

#if defined(__SSE4_2__) || defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "keel/kernels/convert.h"
#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/kernels/cpu/gemm_amx.h"
#include "keel/kernels/cpu/strided_loop.h"
#include "keel/kernels/op_math.h"

// The micro-kernel's a * b + c must compile to FMA where the ISA has it; -std=c++20 (not gnu++20)
// turns GCC's contraction off by default.
#pragma GCC optimize("fp-contract=fast")
// GCC 12's AVX-512 intrinsics (unpack, shuffle_f32x4, cvtph_ps, ...) start from a self-initialized
// "undefined" register that -W(maybe-)uninitialized reports once they are inlined; the values are
// never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace keel::cpu::KEEL_CPU_ISA {

namespace {

inline int64_t round_up(int64_t value, int64_t step) { return (value + step - 1) / step * step; }

// One operand matrix: element (r, c) at data[r * row_stride + c * col_stride].
template <typename T> struct MatrixView {
  const T* data;
  int64_t row_stride, col_stride;
};

// A 64-byte aligned buffer that only grows (one per thread and role, reused across calls).
template <typename E> class Buffer {
 public:
  E* get(int64_t count) {
    if (count > capacity_) {
      data_.reset(static_cast<E*>(::operator new[](static_cast<size_t>(count) * sizeof(E), std::align_val_t{64})));
      capacity_ = count;
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(E* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  std::unique_ptr<E, Free> data_;
  int64_t capacity_ = 0;
};


// ---- element loads: any operand dtype -> f32 ------------------------------------------------------
inline float to_float(float x) { return x; }
inline float to_float(BFloat16 x) {
  const uint32_t bits = static_cast<uint32_t>(x.bits) << 16;
  float value;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}
inline float to_float(Half x) {
#if defined(__F16C__)
  return _cvtsh_ss(x.bits);
#else
  return static_cast<float>(x);
#endif
}

#if defined(__AVX512F__)
// 16 consecutive elements as f32.
inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16(const Half* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 load16(const BFloat16* p) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

// r[i][j] <- r[j][i] for a 16 x 16 block of f32 (unpack, shuffle within 128-bit lanes, then two
// rounds of 128-bit lane shuffles; 64 shuffles for 256 elements).
inline void transpose_16x16(__m512 r[16]) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i + 0], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h)
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      t[8 * h + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0x88);
      t[8 * h + 4 + i] = _mm512_shuffle_f32x4(r[8 * h + i], r[8 * h + 4 + i], 0xdd);
    }
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
  }
}

// dst[q * dst_stride + l] = lines[l][q] for l < count (lanes >= count untouched), q < depth: lines
// are `count` (<= 16) runs of `depth` consecutive elements, line l at src + l * line_stride.
// A 16 x 16 f32 block, line l at src + l * line_stride, stored transposed: 128-bit pieces of four
// lines loaded into the four lanes of a register (inserts from memory run on two ports), then 4 x 4
// transposes within the lanes: 32 shuffles instead of 64 on the one shuffle port.
inline void transpose_16x16_f32(const float* src, int64_t line_stride, float* dst, int64_t dst_stride) {
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) {
    __m512 x[4];
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const float* p = src + i * line_stride + 4 * g;
      __m512 v = _mm512_castps128_ps512(_mm_loadu_ps(p));
      v = _mm512_insertf32x4(v, _mm_loadu_ps(p + 4 * line_stride), 1);
      v = _mm512_insertf32x4(v, _mm_loadu_ps(p + 8 * line_stride), 2);
      x[i] = _mm512_insertf32x4(v, _mm_loadu_ps(p + 12 * line_stride), 3);
    }
    constexpr __mmask16 all = 0xffff;
    const __m512 t0 = _mm512_maskz_unpacklo_ps(all, x[0], x[1]), t1 = _mm512_maskz_unpackhi_ps(all, x[0], x[1]);
    const __m512 t2 = _mm512_maskz_unpacklo_ps(all, x[2], x[3]), t3 = _mm512_maskz_unpackhi_ps(all, x[2], x[3]);
    _mm512_storeu_ps(dst + (4 * g + 0) * dst_stride, _mm512_maskz_shuffle_ps(all, t0, t2, 0x44));
    _mm512_storeu_ps(dst + (4 * g + 1) * dst_stride, _mm512_maskz_shuffle_ps(all, t0, t2, 0xEE));
    _mm512_storeu_ps(dst + (4 * g + 2) * dst_stride, _mm512_maskz_shuffle_ps(all, t1, t3, 0x44));
    _mm512_storeu_ps(dst + (4 * g + 3) * dst_stride, _mm512_maskz_shuffle_ps(all, t1, t3, 0xEE));
  }
}

template <typename T>
void pack_transposed(const T* src, int64_t line_stride, int64_t count, int64_t depth, float* dst, int64_t dst_stride) {
  const __mmask16 lanes = static_cast<__mmask16>((1u << count) - 1);
  int64_t q0 = 0;
  if constexpr (std::is_same_v<T, float>) {
    // (Lines a multiple of 2 KiB apart share L1 sets: the four passes over the same 16 lines would
    // miss; those take the full-line loads below.)
    if (count == 16 && line_stride % 512 != 0) {
      for (; q0 + 16 <= depth; q0 += 16) transpose_16x16_f32(src + q0, line_stride, dst + q0 * dst_stride, dst_stride);
    }
  }
  for (; q0 + 16 <= depth; q0 += 16) {
    __m512 r[16];
#pragma GCC unroll 16
    for (int l = 0; l < 16; ++l) r[l] = l < count ? load16(src + l * line_stride + q0) : _mm512_setzero_ps();
    transpose_16x16(r);
#pragma GCC unroll 16
    for (int q = 0; q < 16; ++q) _mm512_mask_storeu_ps(dst + (q0 + q) * dst_stride, lanes, r[q]);
  }
  for (; q0 < depth; ++q0)
    for (int64_t l = 0; l < count; ++l) dst[q0 * dst_stride + l] = to_float(src[l * line_stride + q0]);
}
#endif

// Lines a tile prefetches while it runs (for the next B strip's packing): `rows` runs of
// `lines_per_row` cache lines, `stride` bytes apart, from `base`; base == nullptr: none.
struct LinePrefetch {
  const char* base = nullptr;
  int64_t stride = 0, lines_per_row = 0, rows = 0;
};

// ---- f32 micro-kernels: c[MR x NR] (row stride ldc) (+)= a_strip^T b_strip -------------------------
// a_strip: kc x MR (p-major), b_strip: kc x NR (p-major). accumulate = false overwrites c.
// K depth of a packed slice (see the block sizes below).
constexpr int64_t kKC = 256;

#if defined(__AVX512F__)
constexpr int64_t kMR = 14, kNR = 32;
// The packed A block is row-major: row i of the block at a_pack + i * kAStride, K along the row.
// The padding (16 floats = one cache line) puts the 14 rows of a strip in 14 different L1 sets.
constexpr int64_t kAStride = kKC + 16;
// Column masks of a tile `width` (1..32) columns wide.
struct TileMasks {
  __mmask16 low, high;
  explicit TileMasks(int64_t width)
      : low(static_cast<__mmask16>(width >= 16 ? 0xffff : (1u << width) - 1)),
        high(static_cast<__mmask16>(width >= 32 ? 0xffff : width > 16 ? (1u << (width - 16)) - 1 : 0)) {}
};

// Rows [0, R) of the tile: c (+)= acc, masked to the tile's columns.
template <int R> inline void store_tile(__m512 (&acc)[kMR][2], float* c, int64_t ldc, bool accumulate, TileMasks m) {
  if (accumulate) {
#pragma GCC unroll 14
    for (int i = 0; i < R; ++i) {
      acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(m.low, c + i * ldc));
      acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(m.high, c + i * ldc + 16));
    }
  }
#pragma GCC unroll 14
  for (int i = 0; i < R; ++i) {
    _mm512_mask_storeu_ps(c + i * ldc, m.low, acc[i][0]);
    _mm512_mask_storeu_ps(c + i * ldc + 16, m.high, acc[i][1]);
  }
}

// One k step of an R x 32 f32 tile: acc[i] += a[i * kLda] * b[0 .. 32), then a and b move to
// the next k. (Masked loads only at the edge: with a mask in a register they cost 7% at full width.)
template <int R, bool kMasked, int64_t kLda>
__attribute__((always_inline)) inline void f32_k_step(__m512 (&acc)[kMR][2], const float* __restrict& a,
                                                      const float* __restrict& b,
                                                      int64_t ldb, const TileMasks& masks) {
  const __m512 b0 = kMasked ? _mm512_maskz_loadu_ps(masks.low, b) : _mm512_loadu_ps(b);
  const __m512 b1 = kMasked ? _mm512_maskz_loadu_ps(masks.high, b + 16) : _mm512_loadu_ps(b + 16);
#pragma GCC unroll 14
  for (int i = 0; i < R; ++i) {
    const __m512 av = _mm512_set1_ps(a[i * kLda]);
    acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
    acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
  }
  a += 1;
  b += ldb;
}

// R rows x `width` columns; B's rows are ldb apart (kNR in a packed strip, or B itself); the
// loads are masked to the width (B itself has nothing past its last column).
template <int R, bool kMasked, int64_t kLda = kAStride>
void micro_kernel_f32(int64_t kc, const float* __restrict a, const float* __restrict b, int64_t ldb,
                      float* __restrict c, int64_t ldc, bool accumulate, int64_t width) {
  const TileMasks masks(width);
  __m512 acc[kMR][2];
#pragma GCC unroll 14
  for (int i = 0; i < R; ++i) {
    acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  }
#pragma GCC unroll 2
  for (int64_t p = 0; p < kc; ++p) f32_k_step<R, kMasked, kLda>(acc, a, b, ldb, masks);
  store_tile<R>(acc, c, ldc, accumulate, masks);
}

// The same with one software prefetch (T1) every two k steps, spread over the k loop.
template <int R, bool kMasked>
void micro_kernel_f32_prefetch(int64_t kc, const float* __restrict a, const float* __restrict b, int64_t ldb,
                               float* __restrict c, int64_t ldc, bool accumulate, int64_t width, LinePrefetch pf) {
  const TileMasks masks(width);
  __m512 acc[kMR][2];
#pragma GCC unroll 14
  for (int i = 0; i < R; ++i) {
    acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  }
  const char* row = pf.base;
  const char* line = row;
  int64_t piece = 0, rows_left = pf.rows;
  auto step = [&]() __attribute__((always_inline)) { f32_k_step<R, kMasked, kAStride>(acc, a, b, ldb, masks); };
  int64_t p = 0;
  for (; p + 2 <= kc; p += 2) {
    step();
    if (rows_left > 0) {
      _mm_prefetch(line, _MM_HINT_T1);
      line += 64;
      if (++piece == pf.lines_per_row) {
        piece = 0;
        row += pf.stride;
        line = row;
        --rows_left;
      }
    }
    step();
  }
  if (p < kc) step();
  store_tile<R>(acc, c, ldc, accumulate, masks);
}

// Kernels by height: table[R - 1] computes R rows.
using F32TileFn = void (*)(int64_t, const float*, const float*, int64_t, float*, int64_t, bool, int64_t);
template <bool kMasked, int64_t kLda, int... R>
constexpr std::array<F32TileFn, sizeof...(R)> f32_kernels(std::integer_sequence<int, R...>) {
  return {&micro_kernel_f32<R + 1, kMasked, kLda>...};
}
constexpr std::array<F32TileFn, kMR> kF32Kernels = f32_kernels<false, kAStride>(std::make_integer_sequence<int, kMR>{});
constexpr std::array<F32TileFn, kMR> kF32EdgeKernels = f32_kernels<true, kAStride>(std::make_integer_sequence<int, kMR>{});
// Row-major f32 A with rows exactly kDirectALda elements apart is read in place by kernels with
// that row stride as a constant (broadcasts at fixed offsets, as from the packed block): 256^3
// 198 -> 207 GFLOP/s on 1 thread (the copy of A was ~4% of the time). Rows 1 KiB apart fall in 4
// L1 sets per strip column, which the 12 ways hold beside the B strip. (Rows 2 KiB apart, 512^3:
// within the noise of the copy, not enabled; 4 KiB apart would put 14 rows in one 12-way set.)
constexpr int64_t kDirectALda = 256;
constexpr std::array<F32TileFn, kMR> kF32DirectAKernels =
    f32_kernels<false, kDirectALda>(std::make_integer_sequence<int, kMR>{});
constexpr std::array<F32TileFn, kMR> kF32DirectAEdgeKernels =
    f32_kernels<true, kDirectALda>(std::make_integer_sequence<int, kMR>{});
using F32PrefetchTileFn = void (*)(int64_t, const float*, const float*, int64_t, float*, int64_t, bool, int64_t,
                                   LinePrefetch);
template <bool kMasked, int... R>
constexpr std::array<F32PrefetchTileFn, sizeof...(R)> f32_prefetch_kernels(std::integer_sequence<int, R...>) {
  return {&micro_kernel_f32_prefetch<R + 1, kMasked>...};
}
constexpr std::array<F32PrefetchTileFn, kMR> kF32PrefetchKernels =
    f32_prefetch_kernels<false>(std::make_integer_sequence<int, kMR>{});
constexpr std::array<F32PrefetchTileFn, kMR> kF32PrefetchEdgeKernels =
    f32_prefetch_kernels<true>(std::make_integer_sequence<int, kMR>{});
// a_direct: `a` is A itself (rows kDirectALda apart), not the packed block.
inline void compute_tile_f32(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                             bool accumulate, int64_t height, int64_t width, bool a_direct, const LinePrefetch& pf) {
  if (pf.base && !a_direct)
    return (width == kNR ? kF32PrefetchKernels : kF32PrefetchEdgeKernels)[height - 1](kc, a, b, ldb, c, ldc,
                                                                                      accumulate, width, pf);
  if (a_direct)
    return (width == kNR ? kF32DirectAKernels : kF32DirectAEdgeKernels)[height - 1](kc, a, b, ldb, c, ldc, accumulate,
                                                                                    width);
  (width == kNR ? kF32Kernels : kF32EdgeKernels)[height - 1](kc, a, b, ldb, c, ldc, accumulate, width);
}
#else
// GCC's generic vectors: 6 rows x 2 vectors, 12 accumulators + 2 B vectors + 1 broadcast fit the
// 16 vector registers of SSE and AVX2.
#if defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif
typedef float f32_vector __attribute__((vector_size(kVectorBytes)));
constexpr int64_t kLanesF32 = kVectorBytes / 4;
constexpr int64_t kMR = 6, kNR = 2 * kLanesF32;
inline f32_vector load_f32(const float* p) {
  f32_vector v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_f32(float* p, f32_vector v) { std::memcpy(p, &v, sizeof v); }
inline void micro_kernel_f32(int64_t kc, const float* __restrict a, const float* __restrict b, float* __restrict c,
                             int64_t ldc, bool accumulate) {
  f32_vector acc[kMR][2] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const f32_vector b0 = load_f32(b), b1 = load_f32(b + kLanesF32);
#pragma GCC unroll 6
    for (int i = 0; i < kMR; ++i) {
      const f32_vector av = f32_vector{} + a[i];
      acc[i][0] += av * b0;
      acc[i][1] += av * b1;
    }
    a += kMR;
    b += kNR;
  }
#pragma GCC unroll 6
  for (int i = 0; i < kMR; ++i) {
    if (accumulate) {
      acc[i][0] += load_f32(c + i * ldc);
      acc[i][1] += load_f32(c + i * ldc + kLanesF32);
    }
    store_f32(c + i * ldc, acc[i][0]);
    store_f32(c + i * ldc + kLanesF32, acc[i][1]);
  }
}
// Tiles cut by the output's edge go through a full tile in a buffer.
inline void compute_tile_f32(int64_t kc, const float* a, const float* b, int64_t /*ldb: always kNR*/, float* c,
                             int64_t ldc, bool accumulate, int64_t height, int64_t width, bool /*a_direct*/,
                             const LinePrefetch& /*pf*/) {
  if (height == kMR && width == kNR) return micro_kernel_f32(kc, a, b, c, ldc, accumulate);
  alignas(64) float tile[kMR * kNR];
  micro_kernel_f32(kc, a, b, tile, kNR, false);
  for (int64_t i = 0; i < height; ++i)
    for (int64_t j = 0; j < width; ++j) c[i * ldc + j] = accumulate ? c[i * ldc + j] + tile[i * kNR + j] : tile[i * kNR + j];
}
#endif

// Block sizes (multiples of the micro-tile).
// (KC 128..320 and MC 112..336 measured within noise of each other at 512^3.)
constexpr int64_t kMC = kMR * (168 / kMR);
constexpr int64_t kNC = 1024;
static_assert(kNC % kNR == 0);
// Row-major f32 B with rows at most this many elements apart is read in place, not packed.
constexpr int64_t kDirectBMaxStride = 256;
// Transposed B sources larger than this are prefetched ahead of their packing (a smaller W, e.g.
// 64x784->256's 784 KiB, stays in L2 between calls, and the prefetches measured 1% slower there).
constexpr int64_t kPrefetchBMinBytes = int64_t{1} << 20;
// Multiply-adds per extra thread below which one thread is faster (fork/join ~ a few us).
constexpr int64_t kGrain = int64_t{1} << 18;

// The f32 kernel with its packing: any operand dtype converted to f32 strips.
struct F32Kernel {
  using Packed = float;
  static constexpr int64_t mr = kMR, nr = kNR, kc_max = kKC;
  static int64_t packed_depth(int64_t kc) { return kc; }
#if defined(__AVX512F__)
  // The micro-kernel can read f32 B rows in place (masked at the edge) instead of a packed strip.
  static constexpr bool reads_b_directly = true;
#else
  static constexpr bool reads_b_directly = false;
#endif

#if defined(__AVX512F__)
  // A block: rows x kc, row-major with row stride kAStride (rows past the block are never read:
  // the edge strip runs the kernel of its height).
  static int64_t a_pack_elements(int64_t) { return kMC * kAStride; }
  static int64_t a_strip_offset(int64_t row, int64_t) { return row * kAStride; }
  template <typename T> static void pack_a(MatrixView<T> a, int64_t rows, int64_t kc, float* __restrict dst) {
    if (a.col_stride == 1) {
      // Rows contiguous along K: copies.
      for (int64_t i = 0; i < rows; ++i) {
        const T* src = a.data + i * a.row_stride;
        float* row = dst + i * kAStride;
        int64_t p = 0;
        for (; p + 16 <= kc; p += 16) _mm512_store_ps(row + p, load16(src + p));
        for (; p < kc; ++p) row[p] = to_float(src[p]);
      }
    } else if (a.row_stride == 1) {
      // Columns contiguous along M (a transposed operand): 16 x 16 transposes.
      for (int64_t p0 = 0; p0 < kc; p0 += 16)
        pack_transposed(a.data + p0 * a.col_stride, a.col_stride, std::min<int64_t>(16, kc - p0), rows, dst + p0,
                        kAStride);
    } else {
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t p = 0; p < kc; ++p) dst[i * kAStride + p] = to_float(a.data[i * a.row_stride + p * a.col_stride]);
    }
  }
#else
  // A block: MR-high strips, p-major (a strip is kc x MR).
  static int64_t a_pack_elements(int64_t depth) { return kMC * depth; }
  static int64_t a_strip_offset(int64_t row, int64_t depth) { return row * depth; }
  template <typename T> static void pack_a(MatrixView<T> a, int64_t rows, int64_t kc, float* __restrict dst) {
    for (int64_t r0 = 0; r0 < rows; r0 += mr) {
      const int64_t height = std::min(mr, rows - r0);
      if (height == mr && a.col_stride == 1) {
        // Rows contiguous along K: read mr rows side by side.
        const T* src = a.data + r0 * a.row_stride;
        for (int64_t p = 0; p < kc; ++p)
#pragma GCC unroll 14
          for (int64_t i = 0; i < mr; ++i) dst[p * mr + i] = to_float(src[i * a.row_stride + p]);
      } else if (height == mr && a.row_stride == 1) {
        const T* src = a.data + r0;
        for (int64_t p = 0; p < kc; ++p)
          for (int64_t i = 0; i < mr; ++i) dst[p * mr + i] = to_float(src[p * a.col_stride + i]);
      } else {
        for (int64_t i = 0; i < mr; ++i) {
          if (i < height) {
            const T* src = a.data + (r0 + i) * a.row_stride;
            for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = to_float(src[p * a.col_stride]);
          } else {
            for (int64_t p = 0; p < kc; ++p) dst[p * mr + i] = 0.0f;
          }
        }
      }
      dst += kc * mr;
    }
  }
#endif

  template <typename T> static void pack_b(MatrixView<T> b, int64_t kc, int64_t cols, float* __restrict dst) {
    for (int64_t c0 = 0; c0 < cols; c0 += nr) {
      const int64_t width = std::min(nr, cols - c0);
      if (b.col_stride == 1 && width == nr) {
        const T* src = b.data + c0;
#if defined(__AVX512F__)
        for (int64_t p = 0; p < kc; ++p) {
          _mm512_store_ps(dst + p * nr, load16(src + p * b.row_stride));
          _mm512_store_ps(dst + p * nr + 16, load16(src + p * b.row_stride + 16));
        }
#else
        for (int64_t p = 0; p < kc; ++p)
          for (int64_t j = 0; j < nr; ++j) dst[p * nr + j] = to_float(src[p * b.row_stride + j]);
#endif
      }
#if defined(__AVX512F__)
      else if (b.row_stride == 1) {
        // Transposed B (W^T in linear): each column is contiguous along K; 16 x 16 transposes.
        for (int64_t h = 0; h < nr; h += 16) {
          const int64_t count = std::clamp<int64_t>(width - h, 0, 16);
          if (count > 0) pack_transposed(b.data + (c0 + h) * b.col_stride, b.col_stride, count, kc, dst + h, nr);
          for (int64_t p = 0; p < kc; ++p)
            for (int64_t j = h + count; j < h + 16; ++j) dst[p * nr + j] = 0.0f;
        }
      }
#endif
      else if (b.row_stride == 1 && width == nr) {
        // Transposed B (e.g. W^T in linear): columns are contiguous along K; 4 columns at a time
        // keeps 4 read streams and writes 16-byte pieces.
        const T* src = b.data + c0 * b.col_stride;
        for (int64_t j = 0; j < nr; j += 4)
          for (int64_t p = 0; p < kc; ++p)
#pragma GCC unroll 4
            for (int64_t jj = 0; jj < 4; ++jj) dst[p * nr + j + jj] = to_float(src[(j + jj) * b.col_stride + p]);
      } else {
        for (int64_t p = 0; p < kc; ++p) {
          const T* src = b.data + p * b.row_stride + c0 * b.col_stride;
          float* row = dst + p * nr;
          for (int64_t j = 0; j < width; ++j) row[j] = to_float(src[j * b.col_stride]);
          for (int64_t j = width; j < nr; ++j) row[j] = 0.0f;
        }
      }
      dst += kc * nr;
    }
  }

  static void compute(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate,
                      int64_t height, int64_t width, bool a_direct, const LinePrefetch& pf) {
    compute_tile_f32(kc, a, b, ldb, c, ldc, accumulate, height, width, a_direct, pf);
  }
};

#if defined(__AVX512F__)
// bf16 pairs: A strip [kc/2][MR][2], B strip [kc/2][NR][2] (bf16 bits, zero-padded to even kc);
// vdpbf16ps adds a[i][2q] b[2q][j] + a[i][2q+1] b[2q+1][j] to the f32 lane j of row i.
template <int R>
__attribute__((target("avx512bf16"))) void micro_kernel_bf16_dot(int64_t kc, const uint16_t* __restrict a_bits,
                                                                  const uint16_t* __restrict b_bits,
                                                                  float* __restrict c, int64_t ldc, bool accumulate,
                                                                  int64_t width) {
  const int32_t* a = reinterpret_cast<const int32_t*>(a_bits);
  const __m512i* b = reinterpret_cast<const __m512i*>(b_bits);
  __m512 acc[kMR][2];
#pragma GCC unroll 14
  for (int i = 0; i < R; ++i) {
    acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_T0);
  }
  const int64_t pairs = kc / 2;
#pragma GCC unroll 2
  for (int64_t q = 0; q < pairs; ++q) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(b), b1 = (__m512bh)_mm512_load_si512(b + 1);
#pragma GCC unroll 14
    for (int i = 0; i < R; ++i) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(a[i]);
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], av, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], av, b1);
    }
    a += kMR;
    b += 2;
  }
  store_tile<R>(acc, c, ldc, accumulate, TileMasks(width));
}

struct Bf16DotKernel {
  using Packed = uint16_t;
  static constexpr int64_t mr = kMR, nr = kNR, kc_max = 2 * kKC;
  static int64_t packed_depth(int64_t kc) { return round_up(kc, 2); }
  static int64_t a_pack_elements(int64_t depth) { return kMC * depth; }
  static int64_t a_strip_offset(int64_t row, int64_t depth) { return row * depth; }

  static void pack_a(MatrixView<BFloat16> a, int64_t rows, int64_t kc, uint16_t* __restrict dst) {
    const int64_t depth = packed_depth(kc);
    for (int64_t r0 = 0; r0 < rows; r0 += mr) {
      const int64_t height = std::min(mr, rows - r0);
      for (int64_t i = 0; i < mr; ++i) {
        if (i < height) {
          const BFloat16* src = a.data + (r0 + i) * a.row_stride;
          for (int64_t p = 0; p < kc; ++p) dst[(p / 2) * 2 * mr + 2 * i + (p & 1)] = src[p * a.col_stride].bits;
          if (kc & 1) dst[(kc / 2) * 2 * mr + 2 * i + 1] = 0;
        } else {
          for (int64_t p = 0; p < depth; ++p) dst[(p / 2) * 2 * mr + 2 * i + (p & 1)] = 0;
        }
      }
      dst += depth * mr;
    }
  }

  static void pack_b(MatrixView<BFloat16> b, int64_t kc, int64_t cols, uint16_t* __restrict dst) {
    const int64_t depth = packed_depth(kc);
    for (int64_t c0 = 0; c0 < cols; c0 += nr) {
      const int64_t width = std::min(nr, cols - c0);
      if (b.row_stride == 1 && width == nr) {
        // Transposed B: each column is contiguous along K, and a pair is two neighbours.
        for (int64_t j = 0; j < nr; ++j) {
          const BFloat16* src = b.data + (c0 + j) * b.col_stride;
          for (int64_t p = 0; p < kc; ++p) dst[(p / 2) * 2 * nr + 2 * j + (p & 1)] = src[p].bits;
        }
      } else {
        for (int64_t p = 0; p < kc; ++p) {
          const BFloat16* src = b.data + p * b.row_stride + c0 * b.col_stride;
          uint16_t* row = dst + (p / 2) * 2 * nr + (p & 1);
          for (int64_t j = 0; j < width; ++j) row[2 * j] = src[j * b.col_stride].bits;
          for (int64_t j = width; j < nr; ++j) row[2 * j] = 0;
        }
      }
      if (kc & 1)
        for (int64_t j = 0; j < nr; ++j) dst[(kc / 2) * 2 * nr + 2 * j + 1] = 0;
      dst += depth * nr;
    }
  }

  using TileFn = void (*)(int64_t, const uint16_t*, const uint16_t*, float*, int64_t, bool, int64_t);
  template <int... R> static constexpr std::array<TileFn, sizeof...(R)> kernels(std::integer_sequence<int, R...>) {
    return {&micro_kernel_bf16_dot<R + 1>...};
  }
  static constexpr bool reads_b_directly = false;
  static void compute(int64_t kc, const uint16_t* a, const uint16_t* b, int64_t /*ldb*/, float* c, int64_t ldc,
                      bool accumulate,
                      int64_t height, int64_t width, bool /*a_direct*/, const LinePrefetch& /*pf*/) {
    static constexpr std::array<TileFn, kMR> table = kernels(std::make_integer_sequence<int, kMR>{});
    table[height - 1](packed_depth(kc), a, b, c, ldc, accumulate, width);
  }
};
#endif

// The problem after folding and transposing: Z products of (M x K) by (K x N), strides in elements.
struct Problem {
  Shape batch_shape;                                  // Z = its product
  Shape a_batch_strides, b_batch_strides, out_batch_strides;
  int64_t m = 0, n = 0, k = 0;
  int64_t a_m = 0, a_k = 0, b_k = 0, b_n = 0, out_m = 0, out_n = 0;
  bool transposed = false;  // computed as out^T = b^T a^T: the first operand is b's data
};

// Folds the batch dims into M when B does not move along them and A and out step through
// (batch..., M) with one stride each; size-1 dims never stop a fold.
void fold_batch_into_rows(Problem& p) {
  for (size_t d = 0; d < p.batch_shape.size(); ++d)
    if (p.batch_shape[d] != 1 && p.b_batch_strides[d] != 0) return;
  // Walk (batch..., M) from the inside out, keeping the stride one row step takes.
  int64_t a_stride = p.a_m, out_stride = p.out_m, rows = p.m;
  bool have_inner = p.m != 1;
  for (size_t e = p.batch_shape.size(); e-- > 0;) {
    const int64_t size = p.batch_shape[e];
    if (size == 1) continue;
    if (!have_inner) {  // everything inside was size 1: this dim's strides become the row strides
      a_stride = p.a_batch_strides[e];
      out_stride = p.out_batch_strides[e];
      have_inner = true;
    } else if (p.a_batch_strides[e] != a_stride * rows || p.out_batch_strides[e] != out_stride * rows) {
      return;
    }
    rows *= size;
  }
  p.m = rows;
  p.a_m = a_stride;
  p.out_m = out_stride;
  p.batch_shape.clear();
  p.a_batch_strides.clear();
  p.b_batch_strides.clear();
  p.out_batch_strides.clear();
}

// out^T = b^T a^T: swaps the roles of rows and columns.
void transpose_problem(Problem& p) {
  std::swap(p.m, p.n);
  std::swap(p.a_batch_strides, p.b_batch_strides);
  const int64_t a_m = p.a_m, a_k = p.a_k;
  p.a_m = p.b_n;
  p.a_k = p.b_k;
  p.b_k = a_k;
  p.b_n = a_m;
  std::swap(p.out_m, p.out_n);
  p.transposed = !p.transposed;
}

// Offsets of batch entry z (row-major over batch_shape).
struct BatchOffsets {
  int64_t a = 0, b = 0, out = 0;
};
BatchOffsets batch_offsets(const Problem& p, int64_t z) {
  BatchOffsets o;
  for (size_t d = p.batch_shape.size(); d-- > 0;) {
    const int64_t coordinate = z % p.batch_shape[d];
    z /= p.batch_shape[d];
    o.a += coordinate * p.a_batch_strides[d];
    o.b += coordinate * p.b_batch_strides[d];
    o.out += coordinate * p.out_batch_strides[d];
  }
  return o;
}

// ---- epilogue: bias and activation on a tile of f32 results -----------------------------------------
struct Epilogue {
  const float* bias = nullptr;  // per column of the computed problem (per row when bias_per_row)
  bool bias_per_row = false;
  bool has_activation = false;
  UnaryOp activation = UnaryOp::relu;
  bool any() const { return bias != nullptr || has_activation; }
};

template <UnaryOp op>
void epilogue_tile(const Epilogue& e, float* c, int64_t ldc, int64_t rows, int64_t cols, int64_t row0, int64_t col0) {
  for (int64_t i = 0; i < rows; ++i) {
    float* row = c + i * ldc;
    if (e.bias && e.bias_per_row) {
      const float value = e.bias[row0 + i];
      for (int64_t j = 0; j < cols; ++j) row[j] += value;
    } else if (e.bias) {
      const float* bias = e.bias + col0;
      for (int64_t j = 0; j < cols; ++j) row[j] += bias[j];
    }
    if (e.has_activation)
      for (int64_t j = 0; j < cols; ++j) row[j] = math::unary<op, float>(row[j]);
  }
}

void apply_epilogue(const Epilogue& e, float* c, int64_t ldc, int64_t rows, int64_t cols, int64_t row0, int64_t col0) {
  if (!e.has_activation) return epilogue_tile<UnaryOp::relu>(e, c, ldc, rows, cols, row0, col0);
  switch (e.activation) {
    case UnaryOp::relu: return epilogue_tile<UnaryOp::relu>(e, c, ldc, rows, cols, row0, col0);
    case UnaryOp::gelu_erf: return epilogue_tile<UnaryOp::gelu_erf>(e, c, ldc, rows, cols, row0, col0);
    case UnaryOp::gelu_tanh: return epilogue_tile<UnaryOp::gelu_tanh>(e, c, ldc, rows, cols, row0, col0);
    case UnaryOp::silu: return epilogue_tile<UnaryOp::silu>(e, c, ldc, rows, cols, row0, col0);
    default: KEEL_ASSERT(!"[matmul] unsupported epilogue activation");
  }
}

// Per-thread packing and scratch buffers, reused across calls.
template <typename Packed> struct ThreadBuffers {
  Buffer<Packed> a_pack, b_pack;
  Buffer<float> scratch;
};
template <typename Packed> ThreadBuffers<Packed>& thread_buffers() {
  static thread_local ThreadBuffers<Packed> buffers;
  return buffers;
}

// [begin, end) of `count` items cut into `parts` runs of whole `step`s: part `index`.
inline std::pair<int64_t, int64_t> share(int64_t count, int64_t step, int index, int parts) {
  const int64_t chunk = round_up((count + parts - 1) / parts, step);
  const int64_t begin = std::min(count, index * chunk);
  return {begin, std::min(count, begin + chunk)};
}

// Sizes of a region's buffers.
struct RegionSizes {
  int64_t nc_max, rows_per_pass, scratch_floats, b_pack_elements;
  bool in_place;
};
template <typename Kernel, typename T> RegionSizes region_sizes(const Problem& p, int64_t rows, int64_t cols) {
  RegionSizes r;
  const int64_t depth_max = Kernel::packed_depth(std::min(Kernel::kc_max, p.k));
  r.nc_max = std::min(kNC, round_up(cols, Kernel::nr));
  r.in_place = std::is_same_v<T, float> && p.out_n == 1;
  // f32 with unit column stride accumulates in place; the rest in an f32 scratch of at most
  // ~1 MiB (rows_per_pass x nc), converted once after all of K.
  r.rows_per_pass = r.in_place ? rows : std::max(kMC, (int64_t{1} << 18) / r.nc_max / kMC * kMC);
  r.scratch_floats = r.in_place ? 0 : round_up(std::min(r.rows_per_pass, rows), Kernel::mr) * r.nc_max;
  r.b_pack_elements = std::max<int64_t>(r.nc_max * depth_max, 1);
  return r;
}

// Rows [i0, i1) x columns [j0, j1) of one product (already offset to its batch entry), by the
// calling thread alone, with its own packing buffers.
template <typename Kernel, typename T>
void gemm_region(const Problem& p, T* out, const T* a, const T* b, int64_t i0, int64_t i1, int64_t j0, int64_t j1,
                 const Epilogue& epilogue) {
  using Packed = typename Kernel::Packed;
  constexpr int64_t mr = Kernel::mr, nr = Kernel::nr;
  if (i0 >= i1 || j0 >= j1) return;
  auto& buffers = thread_buffers<Packed>();
  const int64_t k = p.k;
  const RegionSizes sizes = region_sizes<Kernel, T>(p, i1 - i0, j1 - j0);
  const int64_t depth_max = Kernel::packed_depth(std::min(Kernel::kc_max, k));
  Packed* a_pack = buffers.a_pack.get(std::max<int64_t>(Kernel::a_pack_elements(depth_max), 1));
  Packed* b_pack = buffers.b_pack.get(sizes.b_pack_elements);
  const bool in_place = sizes.in_place;
  float* scratch = in_place ? nullptr : buffers.scratch.get(sizes.scratch_floats);
  // Small row-major f32 B is read in place: packing it would cost more than the strided reads
  // (rows <= 1 KiB apart, so that a strip's rows share pages; 4 KiB apart measured 15% slower).
  constexpr bool direct_b_possible = Kernel::reads_b_directly && std::is_same_v<T, float> && std::is_same_v<Packed, float>;
  const bool direct_b = direct_b_possible && p.b_n == 1 && p.b_k <= kDirectBMaxStride;
#if defined(__AVX512F__)
  const bool direct_a = direct_b_possible && p.a_k == 1 && p.a_m == kDirectALda;
#else
  constexpr bool direct_a = false;
#endif

  // Transposed B (W^T in linear): columns contiguous along K.
  const bool transposed_b = p.b_k == 1 && p.b_n != 1;
  // The source of the region's B columns does not stay in L2 between calls (W in linear): its
  // lines are prefetched while the tiles before their packing run (below).
  const bool prefetch_b =
      transposed_b && (j1 - j0) * k * static_cast<int64_t>(sizeof(T)) > kPrefetchBMinBytes;
  for (int64_t r0 = i0; r0 < i1; r0 += sizes.rows_per_pass) {
    const int64_t rows = std::min(i1, r0 + sizes.rows_per_pass) - r0;
    for (int64_t jc = j0; jc < j1; jc += kNC) {
      const int64_t nc = std::min(kNC, j1 - jc);
      // The f32 destination of rows [r0, r0 + rows) x columns [jc, jc + nc).
      float* c_base;
      int64_t ldc;
      if (in_place) {
        c_base = reinterpret_cast<float*>(out) + r0 * p.out_m + jc;
        ldc = p.out_m;
      } else {
        c_base = scratch;
        ldc = sizes.nc_max;
      }
      if (k == 0) {
        for (int64_t i = 0; i < rows; ++i) std::fill(c_base + i * ldc, c_base + i * ldc + nc, 0.0f);
        if (epilogue.any()) apply_epilogue(epilogue, c_base, ldc, rows, nc, r0, jc);
      }
      for (int64_t pc = 0; pc < k; pc += Kernel::kc_max) {
        const int64_t kc = std::min(Kernel::kc_max, k - pc), depth = Kernel::packed_depth(kc);
        const bool first = pc == 0, last = pc + kc == k;
        const MatrixView<T> b_block{b + pc * p.b_k + jc * p.b_n, p.b_k, p.b_n};
        for (int64_t ic = 0; ic < rows; ic += kMC) {
          const int64_t mc = std::min(kMC, rows - ic);
          if (!direct_a) Kernel::pack_a(MatrixView<T>{a + (r0 + ic) * p.a_m + pc * p.a_k, p.a_m, p.a_k}, mc, kc, a_pack);
          for (int64_t jr = 0; jr < nc; jr += nr) {
            const int64_t width = std::min(nr, nc - jr);
            // B is packed strip by strip in the first row block, each strip just before its tiles
            // (still in L1 for them; packing the whole KC x NC block first measured ~3% slower at
            // 64x784->256). While those tiles run, they prefetch the source lines of the next
            // strip (prefetch_b: 256x1024->1024 ~2% faster).
            const bool pack_now = !direct_b && ic == 0;
            if (pack_now)
              Kernel::pack_b(MatrixView<T>{b_block.data + jr * p.b_n, p.b_k, p.b_n}, kc, width, b_pack + jr * depth);
            const bool prefetch_next = pack_now && prefetch_b && jr + nr < nc;
            const int64_t next_cols = prefetch_next ? std::min(nr, nc - jr - nr) : 0;
            LinePrefetch pf;
            pf.stride = p.b_n * static_cast<int64_t>(sizeof(T));
            pf.lines_per_row = (kc * static_cast<int64_t>(sizeof(T)) + 63) / 64;
            // A tile prefetches kc / 2 lines: this many of the next strip's source rows.
            const int64_t rows_per_tile = std::max<int64_t>(1, (kc / 2) / pf.lines_per_row);
            int64_t next_col = 0;
            for (int64_t ir = 0; ir < mc; ir += mr) {
              if (next_col < next_cols) {
                pf.base = reinterpret_cast<const char*>(b_block.data + (jr + nr + next_col) * p.b_n);
                pf.rows = std::min(rows_per_tile, next_cols - next_col);
                next_col += pf.rows;
              } else {
                pf.base = nullptr;
              }
              const int64_t height = std::min(mr, mc - ir);
              float* c = c_base + (ic + ir) * ldc + jr;
              const Packed* b_strip;
              int64_t ldb;
              if constexpr (direct_b_possible) {
                if (direct_b) {
                  b_strip = b + pc * p.b_k + jc + jr;
                  ldb = p.b_k;
                } else {
                  b_strip = b_pack + jr * depth;
                  ldb = nr;
                }
              } else {
                b_strip = b_pack + jr * depth;
                ldb = nr;
              }
              const Packed* a_strip = a_pack + Kernel::a_strip_offset(ir, depth);
              if constexpr (direct_b_possible)
                if (direct_a) a_strip = a + (r0 + ic + ir) * p.a_m + pc;
              Kernel::compute(kc, a_strip, b_strip, ldb, c, ldc, !first, height, width, direct_a, pf);
              if (last && epilogue.any()) apply_epilogue(epilogue, c, ldc, height, width, r0 + ic + ir, jc + jr);
            }
          }
        }
      }
      if (!in_place) {
        for (int64_t i = 0; i < rows; ++i) {
          const float* src = scratch + i * ldc;
          T* dst = out + (r0 + i) * p.out_m + jc * p.out_n;
          for (int64_t j = 0; j < nc; ++j) dst[j * p.out_n] = convert<T>(src[j]);
        }
      }
    }
  }
}

// How `threads` threads share one product: by rows (each packs its rows of A and all of B) or by
// column strips (each packs its columns of B and all of A), whichever packs less twice. Each
// thread then runs gemm_region on its own rectangle with its own buffers: no shared packed block,
// no barrier. (v4 shared one packed B block between the threads with a barrier per K slice: the
// reads of the half packed by the other core and the barriers cost 15-30% at 256-512.)
template <typename Kernel, typename T> bool split_by_rows(const Problem& p, int threads) {
  constexpr int64_t mr = Kernel::mr, nr = Kernel::nr;
  if ((p.n + nr - 1) / nr < threads) return true;
  if (p.m < threads * mr) return false;
  // Packing cost per element: rows of A contiguous along K and rows of B contiguous along N are
  // plain copies (or, for small f32 B, not packed at all); the rest goes through transposes.
  const bool direct_b = Kernel::reads_b_directly && std::is_same_v<T, float> && p.b_n == 1 && p.b_k <= kDirectBMaxStride;
  const double a_cost = p.a_k == 1 ? 1.0 : 4.0, b_cost = direct_b ? 0.0 : p.b_n == 1 ? 1.0 : 4.0;
  auto a_packs = [&](int64_t rows, int64_t cols) { return a_cost * rows * p.k * ((cols + kNC - 1) / kNC); };
  auto b_packs = [&](int64_t cols) { return b_cost * p.k * cols; };
  const int64_t row_share = (p.m + threads - 1) / threads;
  const int64_t col_share = round_up((p.n + threads - 1) / threads, nr);
  const double by_rows = a_packs(row_share, p.n) + b_packs(p.n);
  const double by_cols = a_packs(p.m, col_share) + b_packs(col_share);
  return by_rows <= by_cols;
}

// Shares the product out over threads: whole batch entries when there are enough, otherwise each
// batch entry cut into one rectangle per thread (split_by_rows).
template <typename Kernel, typename T>
void run_f32(const Problem& p, T* out, const T* a, const T* b, const Epilogue& epilogue) {
  const int64_t batch = shape_numel(p.batch_shape);
  if (batch == 0 || p.m == 0 || p.n == 0) return;
  const int64_t multiply_adds = batch * p.m * p.n * p.k;
  const int threads = p.k == 0 ? 1 : threads_for(multiply_adds, kGrain);
  if (threads == 1) {
    for (int64_t z = 0; z < batch; ++z) {
      const BatchOffsets o = batch_offsets(p, z);
      gemm_region<Kernel>(p, out + o.out, a + o.a, b + o.b, 0, p.m, 0, p.n, epilogue);
    }
    return;
  }
  if (batch >= threads) {
#pragma omp parallel for num_threads(threads) schedule(dynamic)
    for (int64_t z = 0; z < batch; ++z) {
      const BatchOffsets o = batch_offsets(p, z);
      gemm_region<Kernel>(p, out + o.out, a + o.a, b + o.b, 0, p.m, 0, p.n, epilogue);
    }
    return;
  }
  const bool by_rows = split_by_rows<Kernel, T>(p, threads);
#pragma omp parallel num_threads(threads)
  {
    const int rank = omp_get_thread_num(), size = omp_get_num_threads();
    for (int64_t z = 0; z < batch; ++z) {
      const BatchOffsets o = batch_offsets(p, z);
      if (by_rows) {
        const auto [begin, end] = share(p.m, 1, rank, size);
        gemm_region<Kernel>(p, out + o.out, a + o.a, b + o.b, begin, end, 0, p.n, epilogue);
      } else {
        const auto [begin, end] = share(p.n, Kernel::nr, rank, size);
        gemm_region<Kernel>(p, out + o.out, a + o.a, b + o.b, 0, p.m, begin, end, epilogue);
      }
    }
  }
}

// ---- f64: the generic kernel of the first version -------------------------------------------------
#if defined(__AVX512F__)
constexpr int kVectorBytesF64 = 64;
#elif defined(__AVX__)
constexpr int kVectorBytesF64 = 32;
#else
constexpr int kVectorBytesF64 = 16;
#endif
typedef double f64_vector __attribute__((vector_size(kVectorBytesF64)));
constexpr int64_t kLanesF64 = kVectorBytesF64 / 8;
constexpr int64_t kMRF64 = 6, kNRF64 = 2 * kLanesF64;
constexpr int64_t kMCF64 = 96, kKCF64 = 256, kNCF64 = 256;

inline f64_vector load_f64(const double* p) {
  f64_vector v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store_f64(double* p, f64_vector v) { std::memcpy(p, &v, sizeof v); }

void micro_kernel_f64(int64_t kc, const double* __restrict a, const double* __restrict b, double* __restrict c,
                      int64_t ldc) {
  f64_vector acc[kMRF64][2];
#pragma GCC unroll 6
  for (int64_t i = 0; i < kMRF64; ++i) {
    acc[i][0] = load_f64(c + i * ldc);
    acc[i][1] = load_f64(c + i * ldc + kLanesF64);
  }
  for (int64_t p = 0; p < kc; ++p) {
    const f64_vector b0 = load_f64(b + p * kNRF64), b1 = load_f64(b + p * kNRF64 + kLanesF64);
#pragma GCC unroll 6
    for (int64_t i = 0; i < kMRF64; ++i) {
      const f64_vector av = f64_vector{} + a[p * kMRF64 + i];
      acc[i][0] += av * b0;
      acc[i][1] += av * b1;
    }
  }
#pragma GCC unroll 6
  for (int64_t i = 0; i < kMRF64; ++i) {
    store_f64(c + i * ldc, acc[i][0]);
    store_f64(c + i * ldc + kLanesF64, acc[i][1]);
  }
}

void pack_a_f64(MatrixView<double> a, int64_t rows, int64_t kc, double* __restrict dst) {
  for (int64_t r0 = 0; r0 < rows; r0 += kMRF64) {
    const int64_t height = std::min(kMRF64, rows - r0);
    for (int64_t i = 0; i < kMRF64; ++i) {
      const double* src = a.data + (r0 + i) * a.row_stride;
      for (int64_t p = 0; p < kc; ++p) dst[p * kMRF64 + i] = i < height ? src[p * a.col_stride] : 0.0;
    }
    dst += kc * kMRF64;
  }
}

void pack_b_f64(MatrixView<double> b, int64_t kc, int64_t cols, double* __restrict dst) {
  for (int64_t c0 = 0; c0 < cols; c0 += kNRF64) {
    const int64_t width = std::min(kNRF64, cols - c0);
    for (int64_t p = 0; p < kc; ++p) {
      const double* src = b.data + p * b.row_stride + c0 * b.col_stride;
      double* row = dst + p * kNRF64;
      for (int64_t j = 0; j < kNRF64; ++j) row[j] = j < width ? src[j * b.col_stride] : 0.0;
    }
    dst += kc * kNRF64;
  }
}

// Tiles of out (batch entry, MC rows, NC columns) shared over threads; per tile an f64 buffer.
void run_f64(const Problem& p, double* out, const double* a, const double* b) {
  const int64_t batch = shape_numel(p.batch_shape);
  const int64_t row_blocks = (p.m + kMCF64 - 1) / kMCF64, col_blocks = (p.n + kNCF64 - 1) / kNCF64;
  const int64_t tiles = batch * row_blocks * col_blocks;
  if (tiles == 0) return;
  const int64_t multiply_adds = batch * p.m * p.n * std::max<int64_t>(p.k, 1);
  const int threads = static_cast<int>(std::min<int64_t>(threads_for(multiply_adds, kGrain), tiles));
  const int64_t ldc = std::min(round_up(p.n, kNRF64), kNCF64);
  const int64_t mc_max = std::min(round_up(p.m, kMRF64), kMCF64), kc_max = std::max<int64_t>(std::min(p.k, kKCF64), 1);
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    std::unique_ptr<double[]> a_pack(new double[static_cast<size_t>(mc_max * kc_max)]);
    std::unique_ptr<double[]> b_pack(new double[static_cast<size_t>(kc_max * ldc)]);
    std::unique_ptr<double[]> c_tile(new double[static_cast<size_t>(mc_max * ldc)]);
#pragma omp for schedule(dynamic)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t z = tile / (row_blocks * col_blocks);
      const int64_t i0 = tile / col_blocks % row_blocks * kMCF64, j0 = tile % col_blocks * kNCF64;
      const int64_t mc = std::min(kMCF64, p.m - i0), nc = std::min(kNCF64, p.n - j0);
      const int64_t mc_padded = round_up(mc, kMRF64), nc_padded = round_up(nc, kNRF64);
      const BatchOffsets o = batch_offsets(p, z);
      std::fill(c_tile.get(), c_tile.get() + mc_padded * ldc, 0.0);
      for (int64_t p0 = 0; p0 < p.k; p0 += kKCF64) {
        const int64_t kc = std::min(kKCF64, p.k - p0);
        pack_b_f64(MatrixView<double>{b + o.b + p0 * p.b_k + j0 * p.b_n, p.b_k, p.b_n}, kc, nc, b_pack.get());
        pack_a_f64(MatrixView<double>{a + o.a + i0 * p.a_m + p0 * p.a_k, p.a_m, p.a_k}, mc, kc, a_pack.get());
        for (int64_t jr = 0; jr < nc_padded; jr += kNRF64)
          for (int64_t ir = 0; ir < mc_padded; ir += kMRF64)
            micro_kernel_f64(kc, a_pack.get() + ir * kc, b_pack.get() + jr * kc, c_tile.get() + ir * ldc + jr, ldc);
      }
      double* out_tile = out + o.out + i0 * p.out_m + j0 * p.out_n;
      for (int64_t i = 0; i < mc; ++i)
        for (int64_t j = 0; j < nc; ++j) out_tile[i * p.out_m + j * p.out_n] = c_tile[i * ldc + j];
    }
  }
}

// f64 epilogue: after the product, over the output (bias [N] along the output's last dim).
template <UnaryOp op> void epilogue_f64_typed(const Tensor& out, const Tensor& bias, bool has_activation) {
  const int64_t ndim = out.dim(), rows = out.numel() / std::max<int64_t>(out.shape()[ndim - 1], 1);
  const int64_t n = out.shape()[ndim - 1];
  KEEL_ASSERT(out.is_contiguous());
  double* data = out.data_ptr<double>();
  const double* b = bias.defined() ? bias.data_ptr<double>() : nullptr;
  const int64_t bias_stride = bias.defined() ? bias.strides()[0] : 0;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double v = data[r * n + j];
      if (b) v += b[j * bias_stride];
      if (has_activation) v = math::unary<op, double>(v);
      data[r * n + j] = v;
    }
}

void epilogue_f64(const Tensor& out, const MatmulEpilogue& e) {
  if (!e.activation) return epilogue_f64_typed<UnaryOp::relu>(out, e.bias, false);
  switch (*e.activation) {
    case UnaryOp::relu: return epilogue_f64_typed<UnaryOp::relu>(out, e.bias, true);
    case UnaryOp::gelu_erf: return epilogue_f64_typed<UnaryOp::gelu_erf>(out, e.bias, true);
    case UnaryOp::gelu_tanh: return epilogue_f64_typed<UnaryOp::gelu_tanh>(out, e.bias, true);
    case UnaryOp::silu: return epilogue_f64_typed<UnaryOp::silu>(out, e.bias, true);
    default: KEEL_ASSERT(!"[matmul] unsupported epilogue activation");
  }
}

#if defined(__AVX512F__)
// ---- thin products as dot products ---------------------------------------------------------------
// When rows of A and columns of B are both contiguous along K (x W^T in linear) and one side is
// thin (a classifier head, a single input row), every output is a dot product of two contiguous
// runs: no packing at all, and 6 x 4 blocks of outputs share their loads (10 loads per 24 FMAs).
inline __m512 load16_masked(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load16_masked(const Half* p, __mmask16 m) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p)); }
inline __m512 load16_masked(const BFloat16* p, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

// (GCC 12's unmasked unpacks and shuffles start from an "undefined" register that
// -Wuninitialized reports; the zero-masked forms with all lanes on are the same instructions.)
// Lane v of the result = the sum of the 16 lanes of v[v]: a tree of unpacks and 128-bit shuffles
// (30 shuffles and 15 adds for all 16, against 4 + 4 each with sum_lanes).
inline __m512 sum_lanes_16(const __m512 v[16]) {
  constexpr __mmask16 all = 0xffff;
  __m512 t[8], u[4];
#pragma GCC unroll 8
  for (int k = 0; k < 8; ++k)  // per 128-bit lane: [v2k, v2k+1, v2k, v2k+1] partial sums
    t[k] = _mm512_add_ps(_mm512_maskz_unpacklo_ps(all, v[2 * k], v[2 * k + 1]),
                         _mm512_maskz_unpackhi_ps(all, v[2 * k], v[2 * k + 1]));
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {  // per 128-bit lane: [v4k, v4k+1, v4k+2, v4k+3] partial sums
    const __m512d a = _mm512_castps_pd(t[2 * k]), b = _mm512_castps_pd(t[2 * k + 1]);
    u[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xff, a, b)),
                         _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xff, a, b)));
  }
  // Sum the four 128-bit lanes of each u[k] into 128-bit lane k of the result.
  const __m512 w01 = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(all, u[0], u[1], 0x44),
                                   _mm512_maskz_shuffle_f32x4(all, u[0], u[1], 0xEE));
  const __m512 w23 = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(all, u[2], u[3], 0x44),
                                   _mm512_maskz_shuffle_f32x4(all, u[2], u[3], 0xEE));
  return _mm512_add_ps(_mm512_maskz_shuffle_f32x4(all, w01, w23, 0x88),
                       _mm512_maskz_shuffle_f32x4(all, w01, w23, 0xDD));
}

// result[r * C + c] = sum_p a[r * lda + p] * b[c * ldb + p]
template <int R, int C, typename T>
void dot_block(const T* a, int64_t lda, const T* b, int64_t ldb, int64_t k, float* result) {
  __m512 acc[R][C];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  auto step = [&](int64_t p, auto load) {
    __m512 bv[C];
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) bv[c] = load(b + c * ldb + p);
#pragma GCC unroll 6
    for (int r = 0; r < R; ++r) {
      const __m512 av = load(a + r * lda + p);
#pragma GCC unroll 4
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(av, bv[c], acc[r][c]);
    }
  };
  int64_t p = 0;
  for (; p + 16 <= k; p += 16) step(p, [](const T* q) { return load16(q); });
  if (p < k) {
    const __mmask16 m = static_cast<__mmask16>((1u << (k - p)) - 1);
    step(p, [m](const T* q) { return load16_masked(q, m); });
  }
  // The R * C sums, 16 at a time.
#pragma GCC unroll 2
  for (int v0 = 0; v0 < R * C; v0 += 16) {
    __m512 all[16];
#pragma GCC unroll 16
    for (int v = 0; v < 16; ++v) all[v] = v0 + v < R * C ? acc[(v0 + v) / C][(v0 + v) % C] : _mm512_setzero_ps();
    const __m512 sums = sum_lanes_16(all);
    if (R * C - v0 >= 16) {
      _mm512_storeu_ps(result + v0, sums);
    } else {
      _mm512_mask_storeu_ps(result + v0, static_cast<__mmask16>((1u << (R * C - v0)) - 1), sums);
    }
  }
}

template <typename T>
void dot_block_any(int rows, int cols, const T* a, int64_t lda, const T* b, int64_t ldb, int64_t k, float* result) {
#define KEEL_DOT_CASE(R, C) \
  case (R - 1) * 4 + (C - 1): return dot_block<R, C>(a, lda, b, ldb, k, result);
  switch ((rows - 1) * 4 + (cols - 1)) {
    KEEL_DOT_CASE(1, 1) KEEL_DOT_CASE(1, 2) KEEL_DOT_CASE(1, 3) KEEL_DOT_CASE(1, 4)
    KEEL_DOT_CASE(2, 1) KEEL_DOT_CASE(2, 2) KEEL_DOT_CASE(2, 3) KEEL_DOT_CASE(2, 4)
    KEEL_DOT_CASE(3, 1) KEEL_DOT_CASE(3, 2) KEEL_DOT_CASE(3, 3) KEEL_DOT_CASE(3, 4)
    KEEL_DOT_CASE(4, 1) KEEL_DOT_CASE(4, 2) KEEL_DOT_CASE(4, 3) KEEL_DOT_CASE(4, 4)
    KEEL_DOT_CASE(5, 1) KEEL_DOT_CASE(5, 2) KEEL_DOT_CASE(5, 3) KEEL_DOT_CASE(5, 4)
    KEEL_DOT_CASE(6, 1) KEEL_DOT_CASE(6, 2) KEEL_DOT_CASE(6, 3) KEEL_DOT_CASE(6, 4)
  }
#undef KEEL_DOT_CASE
}

// Thin enough for dot products: the GEMM would pad or pack more than it computes.
bool use_dot_products(const Problem& p) {
  return p.a_k == 1 && p.b_k == 1 && p.k >= 16 && std::min(p.m, p.n) <= 16;
}

// Output blocks of up to kDotRows x 4 dot products (24 accumulators; each B row loaded once per
// step serves 6 rows of A, which stay in L1).
constexpr int64_t kDotRows = 6;
template <typename T> void run_dot(const Problem& p, T* out, const T* a, const T* b, const Epilogue& epilogue) {
  const int64_t batch = shape_numel(p.batch_shape);
  const int64_t row_blocks = (p.m + kDotRows - 1) / kDotRows, col_blocks = (p.n + 3) / 4;
  const int64_t blocks = batch * row_blocks * col_blocks;
  const int threads = threads_for(batch * p.m * p.n * p.k, kGrain);
  // Blocks [begin, end) in (batch, row block, column block) order; the indices advance by
  // counting (three 64-bit divisions per block cost as much as a 2 x 4 block's products).
  auto run_blocks = [&](int64_t begin, int64_t end) {
    if (begin >= end) return;
    int64_t z = begin / (row_blocks * col_blocks), rb = begin / col_blocks % row_blocks, cb = begin % col_blocks;
    BatchOffsets o = batch_offsets(p, z);
    for (int64_t block = begin; block < end; ++block) {
      const int64_t i0 = rb * kDotRows, j0 = cb * 4;
      const int rows = static_cast<int>(std::min<int64_t>(kDotRows, p.m - i0));
      const int cols = static_cast<int>(std::min<int64_t>(4, p.n - j0));
      float tile[kDotRows * 4];
      dot_block_any(rows, cols, a + o.a + i0 * p.a_m, p.a_m, b + o.b + j0 * p.b_n, p.b_n, p.k, tile);
      if (epilogue.any()) apply_epilogue(epilogue, tile, cols, rows, cols, i0, j0);
      T* dst = out + o.out + i0 * p.out_m + j0 * p.out_n;
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) dst[r * p.out_m + c * p.out_n] = convert<T>(tile[r * cols + c]);
      if (++cb == col_blocks) {
        cb = 0;
        if (++rb == row_blocks) {
          rb = 0;
          if (++z < batch) o = batch_offsets(p, z);
        }
      }
    }
  };
  if (threads == 1) return run_blocks(0, blocks);
#pragma omp parallel num_threads(threads)
  {
    const auto [begin, end] = share(blocks, 1, omp_get_thread_num(), omp_get_num_threads());
    run_blocks(begin, end);
  }
}
#endif

// AMX-BF16 (kernels/cpu/gemm_amx.h), one call per batch entry.
void run_amx_bf16(const Problem& p, BFloat16* out, const BFloat16* a, const BFloat16* b, const Epilogue& e) {
  AmxBf16GemmArgs args{.m = p.m, .n = p.n, .k = p.k, .a_row_stride = p.a_m, .a_col_stride = p.a_k, .b_k_stride = p.b_k,
                       .b_n_stride = p.b_n, .out_row_stride = p.out_m, .out_col_stride = p.out_n, .bias = e.bias,
                       .bias_per_row = e.bias_per_row, .has_activation = e.has_activation, .activation = e.activation};
  for (int64_t z = 0; z < shape_numel(p.batch_shape); ++z) {
    const BatchOffsets o = batch_offsets(p, z);
    args.a = &a[o.a].bits, args.b = &b[o.b].bits, args.out = &out[o.out].bits;
    gemm_bf16_amx(args);
  }
}

template <typename T>
void run_float_compute(const Problem& p, const Tensor& out, const Tensor& first, const Tensor& second,
                       const Epilogue& epilogue) {
  T* o = out.data_ptr<T>();
  const T* a = first.data_ptr<T>();
  const T* b = second.data_ptr<T>();
  if constexpr (std::is_same_v<T, BFloat16>) {
    if (amx_bf16_gemm_enabled()) return run_amx_bf16(p, o, a, b, epilogue);
  }
#if defined(__AVX512F__)
  // f32 only: 16-bit operands would be converted at every load (8 conversions per 16 FMAs), which
  // measured slower than converting once while packing (bf16 64x256->10: 6.2 against 4.5 us).
  if constexpr (std::is_same_v<T, float>) {
    if (use_dot_products(p)) return run_dot(p, o, a, b, epilogue);
  }
  if constexpr (std::is_same_v<T, BFloat16>) {
    if (cpu_features().avx512_bf16 && gemm_bf16_dot()) return run_f32<Bf16DotKernel>(p, o, a, b, epilogue);
  }
#endif
  run_f32<F32Kernel>(p, o, a, b, epilogue);
}

}  // namespace

void matmul(const Tensor& out, const Tensor& a, const Tensor& b, const MatmulEpilogue& fused) {
  const int64_t ndim = out.dim();
  Problem p;
  p.batch_shape.assign(out.shape().begin(), out.shape().end() - 2);
  p.a_batch_strides.assign(a.strides().begin(), a.strides().end() - 2);
  p.b_batch_strides.assign(b.strides().begin(), b.strides().end() - 2);
  p.out_batch_strides.assign(out.strides().begin(), out.strides().end() - 2);
  p.m = out.shape()[ndim - 2];
  p.n = out.shape()[ndim - 1];
  p.k = a.shape()[ndim - 1];
  p.a_m = a.strides()[ndim - 2];
  p.a_k = a.strides()[ndim - 1];
  p.b_k = b.strides()[ndim - 2];
  p.b_n = b.strides()[ndim - 1];
  p.out_m = out.strides()[ndim - 2];
  p.out_n = out.strides()[ndim - 1];
  fold_batch_into_rows(p);
  if (out.dtype() == DType::f64) {
    // Narrow products are computed transposed so that the small side pays the MR padding.
    if (p.n < p.m && p.n < kNRF64) transpose_problem(p);
    run_f64(p, out.data_ptr<double>(), (p.transposed ? b : a).data_ptr<double>(),
            (p.transposed ? a : b).data_ptr<double>());
    if (fused.bias.defined() || fused.activation) epilogue_f64(out, fused);
    return;
  }
  if (p.n < p.m && p.n < kNR) transpose_problem(p);
  const Tensor& first = p.transposed ? b : a;
  const Tensor& second = p.transposed ? a : b;
  // The bias as f32 values along the output's last dim.
  std::vector<float> bias_values;
  Epilogue epilogue;
  if (fused.bias.defined()) {
    const Tensor& bias = fused.bias;
    const int64_t count = bias.shape()[0], stride = bias.strides()[0];
    bias_values.resize(static_cast<size_t>(count));
    for (int64_t j = 0; j < count; ++j) {
      switch (bias.dtype()) {
        case DType::f32: bias_values[j] = bias.data_ptr<float>()[j * stride]; break;
        case DType::f16: bias_values[j] = to_float(bias.data_ptr<Half>()[j * stride]); break;
        case DType::bf16: bias_values[j] = to_float(bias.data_ptr<BFloat16>()[j * stride]); break;
        default: fail("[linear] no fused bias for dtype ", dtype_name(bias.dtype()));
      }
    }
    epilogue.bias = bias_values.data();
    epilogue.bias_per_row = p.transposed;
  }
  if (fused.activation) {
    epilogue.has_activation = true;
    epilogue.activation = *fused.activation;
  }
  switch (out.dtype()) {
    case DType::f32: run_float_compute<float>(p, out, first, second, epilogue); break;
    case DType::f16: run_float_compute<Half>(p, out, first, second, epilogue); break;
    case DType::bf16: run_float_compute<BFloat16>(p, out, first, second, epilogue); break;
    default: fail("[matmul] no CPU kernel for dtype ", dtype_name(out.dtype()));
  }
}

}  // namespace keel::cpu::KEEL_CPU_ISA
