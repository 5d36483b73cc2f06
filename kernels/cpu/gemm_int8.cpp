// INT8 GEMM (see gemm_int8.h for the math and the epilogues).
//
//   a: (M, K) u8 (s8 is shifted to u8: a + 128, za + 128)   b: (N, K) s8   out: (M, N)
//   ops: 2 * M * N * K;  bytes: M*K + N*K + M*N*sizeof(out) at best
//   reference: an int64 triple loop (tests/ops/test_quantize.cpp)
//
// Zero points are folded out of the inner loop:
//   sum_p (a - za)(b - zb) = sum_p a b  - za * colsum_b[j]  - zb[j] * rowsum_a[i]  + K za zb[j]
// The raw sum_p a b is accumulated in s32 (products of u8 and s8 never saturate here: vpdpbusd
// adds four exact 17-bit products to s32 without saturation, and the AVX2 path uses vpmaddwd on
// 16-bit values, whose pair sums are exact; not vpmaddubsw, which saturates to s16). Raw sums
// and the correction may wrap in s32 (two's complement arithmetic, done in uint32_t), but the
// corrected value is exact whenever it fits in s32, which the op guarantees by bounding K.
//
// Paths, picked from cpu_features() at each call (tests force each one with set_cpu_isa /
// set_cpu_disabled("avx512_vnni")):
//   avx512_vnni  micro-tile 6 x 64: 24 zmm accumulators, vpdpbusd on 4-deep k groups; B packed
//                per 64-column strip as [K/4][64][4] bytes, A read in place (u8 with unit column
//                stride and K % 4 == 0) or copied row-major to K rounded up to 4.
//   avx2         micro-tile 6 x 16: 12 ymm accumulators, vpmaddwd + vpaddd on 2-deep k groups of
//                16-bit values; B packed as [K/2][16][2] s16 per strip, A copied to s16 rows.
//                Also taken on AVX-512 CPUs without VNNI.
//   scalar       plain loops over the strided operands (x86-64-v2 baseline).
// amx_int8 (kernels/cpu/gemm_amx.h) comes first where cpu_features().amx_int8 and B is not
// prepacked: never run on the development machine, which has no AMX; tested there through the tile
// emulator. Prepacked weights (Int8PackedB) run the VNNI kernel; an AMX kernel could read the same
// VNNI strips as its B tiles (row stride 256 bytes), which is not written yet.
//
// B packed beforehand (Int8PackedB, pack_int8_b: keel::pack_quantized_weight) or here, per call.
// The SIMD paths start their sums from the column terms (-za colsum_b[j] + K za zb[j]), so the
// epilogue only subtracts zb[j] rowsum_a[i] (when some zb != 0) and converts.
//
// Blocking (both SIMD paths): tiles of out (MC x NC) are shared out over OpenMP threads (B packed
// in the call), or, with B prepacked, each thread takes one rectangle of out (a run of 6-row or of
// 64-column strips) and walks its tiles alone. One thread runs without a parallel region. Scratch
// (epilogue vectors, packed A and B, tile buffers) is per thread and grow-only. When K
// fits one KC block (K <= 4096 on the VNNI path), the VNNI micro-kernel converts its 24
// accumulators to the output in registers after its k loop (micro_vnni_fused: the epilogue fused,
// as oneDNN does; +1-5% on the whole product against the sums going through a 6 x 64 buffer
// first), and the AVX2 path's micro-tiles go through the epilogue from a 6 x NR buffer that stays
// in L1; deeper K walks KC blocks with the tile's sums waiting in a per-thread MC x NC buffer, and
// the last block's micro-kernel starts from them and converts its registers (VNNI: the fused
// epilogue again; measured 0.5-1% faster at K = 4100 and 8192, within this machine's noise; AVX2:
// the epilogue reads the buffer after the last block).
#include "keel/kernels/cpu/gemm_int8.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <type_traits>
#include <vector>

#include "keel/core/error.h"
#include "keel/kernels/cpu/cpu_features.h"
#include "keel/kernels/cpu/gemm_amx.h"
#include "keel/kernels/cpu/quantize.h"

// GCC 12 warns that the _mm512_undefined_* operands inside its own intrinsics "may be used
// uninitialized" once they are inlined into masked loads/conversions; they are undefined by design.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// The f32 epilogue is fma(f32(acc), a_scale * b_scale, bias), rounded once, in every path
// (std::fma in the scalar ones); nothing else may be contracted.
#pragma GCC optimize("fp-contract=off")

namespace keel::cpu {

namespace {

#define KEEL_TARGET_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define KEEL_TARGET_AVX2 __attribute__((target("avx2,fma")))

constexpr int64_t kMR = 6;  // rows of a micro-tile (both SIMD paths)
constexpr int64_t kGrain = int64_t{1} << 20;  // multiply-adds below which one thread is faster
constexpr int64_t kBBlockBytes = int64_t{1} << 20;  // packed B per tile when K is one block

inline int64_t round_up(int64_t value, int64_t step) { return (value + step - 1) / step * step; }
inline int64_t ceil_div(int64_t value, int64_t step) { return (value + step - 1) / step; }

template <typename T> struct AlignedFree {
  void operator()(T* p) const { std::free(p); }
};
template <typename T> using Buffer = std::unique_ptr<T[], AlignedFree<T>>;
template <typename T> Buffer<T> allocate(int64_t count) {
  const size_t bytes = static_cast<size_t>(round_up(std::max<int64_t>(count, 1) * int64_t(sizeof(T)), 64));
  return Buffer<T>(static_cast<T*>(std::aligned_alloc(64, bytes)));
}

// Per-thread scratch that only grows (as gemm.isa.cpp's ThreadBuffers): a call allocates nothing
// once the buffers have reached its size, where it allocated and zeroed five to eight vectors.
// The contents are not kept from call to call: every call writes what it reads.
enum ScratchSlot : int { kEpilogueScratch, kAPackScratch, kBPackScratch, kColSumsScratch, kTileScratch, kScratchSlots };
struct Scratch {
  Buffer<char> buffer;
  int64_t bytes = 0;
  template <typename T> T* get(int64_t count) {
    const int64_t need = round_up(std::max<int64_t>(count, 1) * int64_t(sizeof(T)), 64);
    if (need > bytes) {
      buffer.reset();
      buffer = allocate<char>(need);
      bytes = need;
    }
    return reinterpret_cast<T*>(buffer.get());
  }
};
Scratch& scratch(ScratchSlot slot) {
  static thread_local Scratch buffers[kScratchSlots];
  return buffers[slot];
}

// A view of a scratch array (the Epilogue's per-column and per-row values).
template <typename T> struct Span {
  T* ptr = nullptr;
  int64_t size = 0;
  T* data() const { return ptr; }
  bool empty() const { return size == 0; }
  T& operator[](int64_t i) const { return ptr[i]; }
};

// ---- the epilogue, shared by every path -----------------------------------------------------------
// What the epilogue needs per column (length N) and per row (length M): folded zero points and
// the f32 multipliers.
struct Epilogue {
  const Int8GemmArgs* args = nullptr;
  int32_t za = 0;                      // the u8 zero point (za + 128 for s8 activations)
  Span<int32_t> column_term;    // -za * colsum_b[j] + K * za * zb[j] (mod 2^32), 0 beyond N
  Span<int32_t> zb;             // zb[j]
  Span<int32_t> row_sums;       // sum_p a[i, p] (u8 values); empty when every zb is 0
  Span<float> multiplier;       // a_scale * b_scale[j]
  Span<float> bias;             // bias[j] or 0
  float qmin = 0, qmax = 0;
};

inline uint32_t wrap(int64_t value) { return static_cast<uint32_t>(value); }

// out[i, j0 .. j0 + count) from the raw sums acc[0 .. count).
// add_column_term: false when the sums started from the column terms (the SIMD paths).
void epilogue_row_scalar(const Epilogue& e, int64_t i, int64_t j0, int64_t count, const int32_t* acc,
                         bool add_column_term) {
  const Int8GemmArgs& args = *e.args;
  const bool has_rows = !e.row_sums.empty();
  const uint32_t row_sum = has_rows ? wrap(e.row_sums[i]) : 0;
  for (int64_t t = 0; t < count; ++t) {
    const int64_t j = j0 + t;
    uint32_t v = wrap(acc[t]) + (add_column_term ? wrap(e.column_term[j]) : 0u);
    if (has_rows) v -= wrap(e.zb[j]) * row_sum;
    const int32_t exact = static_cast<int32_t>(v);
    switch (args.output) {
      case Int8GemmOutput::s32:
        static_cast<int32_t*>(args.out)[i * args.out_row_stride + j] = exact;
        break;
      case Int8GemmOutput::f32:
        static_cast<float*>(args.out)[i * args.out_row_stride + j] = std::fma(static_cast<float>(exact), e.multiplier[j], e.bias[j]);
        break;
      case Int8GemmOutput::u8:
      case Int8GemmOutput::i8: {
        const float real = std::fma(static_cast<float>(exact), e.multiplier[j], e.bias[j]);
        const int32_t q = quantize_value(real, args.out_scale, static_cast<float>(args.out_zero_point), e.qmin, e.qmax);
        if (args.output == Int8GemmOutput::u8) static_cast<uint8_t*>(args.out)[i * args.out_row_stride + j] = static_cast<uint8_t>(q);
        else static_cast<int8_t*>(args.out)[i * args.out_row_stride + j] = static_cast<int8_t>(q);
        break;
      }
    }
  }
}

// The same with AVX-512, 16 columns at a time (identical results: the same f32 operations in the
// same order, IEEE division, round-half-even, and the NaN-to-qmin clamp of quantize_value).
template <Int8GemmOutput kOutput>
using OutElement = std::conditional_t<kOutput == Int8GemmOutput::s32, int32_t,
                                      std::conditional_t<kOutput == Int8GemmOutput::f32, float,
                                                         std::conditional_t<kOutput == Int8GemmOutput::u8, uint8_t, int8_t>>>;

// The output conversion of 16 exact sums v (zero points folded in) of one row: the f32 epilogue
// real = v * multiplier + bias, then the output dtype; stores the lanes of mask at out.
template <Int8GemmOutput kOutput>
KEEL_TARGET_VNNI inline __attribute__((always_inline)) void finish_vector(const Epilogue& e, __m512i v, __m512 multiplier,
                                                                         __m512 bias, OutElement<kOutput>* out,
                                                                         __mmask16 mask) {
  if constexpr (kOutput == Int8GemmOutput::s32) {
    _mm512_mask_storeu_epi32(out, mask, v);
  } else {
    const __m512 real = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v), multiplier, bias);
    if constexpr (kOutput == Int8GemmOutput::f32) {
      _mm512_mask_storeu_ps(out, mask, real);
    } else {
      const Int8GemmArgs& args = *e.args;
      __m512 y = _mm512_roundscale_ps(_mm512_div_ps(real, _mm512_set1_ps(args.out_scale)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      y = _mm512_add_ps(y, _mm512_set1_ps(static_cast<float>(args.out_zero_point)));
      y = _mm512_min_ps(_mm512_max_ps(y, _mm512_set1_ps(e.qmin)), _mm512_set1_ps(e.qmax));  // vmaxps gives its second operand for NaN
      const __m512i q = _mm512_cvtps_epi32(y);
      if constexpr (kOutput == Int8GemmOutput::u8) _mm512_mask_cvtusepi32_storeu_epi8(out, mask, q);
      else _mm512_mask_cvtsepi32_storeu_epi8(out, mask, q);
    }
  }
}

// out[i0 + r, j0 .. j0 + count) for r < rows from the raw sums acc[r * ld ..]. A full 64-column
// block (the VNNI micro-tile) loads its column operands once for all its rows.
template <Int8GemmOutput kOutput, bool kHasRows>
KEEL_TARGET_VNNI void epilogue_block_avx512(const Epilogue& e, int64_t i0, int64_t rows, int64_t j0, int64_t count,
                                            const int32_t* __restrict acc, int64_t ld) {
  const Int8GemmArgs& args = *e.args;
  OutElement<kOutput>* out = static_cast<OutElement<kOutput>*>(args.out) + i0 * args.out_row_stride + j0;
  const int32_t* __restrict zb = e.zb.data() + j0;
  const float* __restrict multiplier = e.multiplier.data() + j0;
  const float* __restrict bias = e.bias.data() + j0;
  if (count == 64) {
    __m512i zbv[4];
    __m512 mul[4], add[4];
    for (int v = 0; v < 4; ++v) {
      if constexpr (kHasRows) zbv[v] = _mm512_loadu_si512(zb + 16 * v);
      mul[v] = _mm512_loadu_ps(multiplier + 16 * v);
      add[v] = _mm512_loadu_ps(bias + 16 * v);
    }
    // A local copy: the stores to out may alias args as far as GCC knows, which reloaded the
    // stride (and multiplied it again) for every vector (measured: +2-5% on the whole product).
    const int64_t out_row_stride = args.out_row_stride;
    for (int64_t r = 0; r < rows; ++r) {
      const __m512i row_sum = _mm512_set1_epi32(kHasRows ? e.row_sums[i0 + r] : 0);
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) {
        __m512i x = _mm512_loadu_si512(acc + r * ld + 16 * v);
        if constexpr (kHasRows) x = _mm512_sub_epi32(x, _mm512_mullo_epi32(zbv[v], row_sum));
        finish_vector<kOutput>(e, x, mul[v], add[v], out + r * out_row_stride + 16 * v, __mmask16(0xffff));
      }
    }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const __m512i row_sum = _mm512_set1_epi32(kHasRows ? e.row_sums[i0 + r] : 0);
    for (int64_t t = 0; t < count; t += 16) {
      const __mmask16 mask = count - t >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << (count - t)) - 1);
      __m512i x = _mm512_maskz_loadu_epi32(mask, acc + r * ld + t);
      if constexpr (kHasRows) x = _mm512_sub_epi32(x, _mm512_mullo_epi32(_mm512_maskz_loadu_epi32(mask, zb + t), row_sum));
      finish_vector<kOutput>(e, x, _mm512_maskz_loadu_ps(mask, multiplier + t), _mm512_maskz_loadu_ps(mask, bias + t),
                             out + r * args.out_row_stride + t, mask);
    }
  }
}

void epilogue_block_scalar(const Epilogue& e, int64_t i0, int64_t rows, int64_t j0, int64_t count, const int32_t* acc,
                           int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) epilogue_row_scalar(e, i0 + r, j0, count, acc + r * ld, false);
}

using EpilogueBlock = void (*)(const Epilogue&, int64_t, int64_t, int64_t, int64_t, const int32_t*, int64_t);

template <bool kHasRows> EpilogueBlock pick_avx512_epilogue(Int8GemmOutput output) {
  switch (output) {
    case Int8GemmOutput::s32: return &epilogue_block_avx512<Int8GemmOutput::s32, kHasRows>;
    case Int8GemmOutput::f32: return &epilogue_block_avx512<Int8GemmOutput::f32, kHasRows>;
    case Int8GemmOutput::u8: return &epilogue_block_avx512<Int8GemmOutput::u8, kHasRows>;
    default: return &epilogue_block_avx512<Int8GemmOutput::i8, kHasRows>;
  }
}

// ---- reading the operands ----------------------------------------------------------------------
inline uint8_t a_at(const Int8GemmArgs& args, int64_t i, int64_t p) {
  const uint8_t raw = static_cast<const uint8_t*>(args.a)[i * args.a_row_stride + p * args.a_col_stride];
  return args.a_is_signed ? static_cast<uint8_t>(raw ^ 0x80) : raw;  // s8 x -> u8 x + 128
}
inline int8_t b_at(const Int8GemmArgs& args, int64_t j, int64_t p) { return args.b[j * args.b_n_stride + p * args.b_k_stride]; }

// ---- avx512_vnni path -----------------------------------------------------------------------
struct VnniPath {
  static constexpr int64_t kNR = 64;      // 4 zmm of 16 s32
  static constexpr int64_t kKGroup = 4;   // k values per vpdpbusd lane
  using AElement = uint8_t;
  using BElement = int8_t;
  // Measured on the development machine (all the benchmark's shapes, 1 and 2 threads): one K block
  // up to K = 4096 (B strips of up to 256 KiB, streamed from L2) is as fast as K blocks of
  // 256 / 512 / 1024 with tiles of 48 x 64 .. 96 x 128 (the partial sums then wait in a tile
  // buffer), and each micro-tile goes through the epilogue straight after its sums.
  static constexpr int64_t kKC = 4096;
  // Rows per tile: 192 on 2 threads (+3% at 512^3 against 96 with the former 128-column tiles),
  // 96 on one (the same speed as 192 there). kNC: columns per tile when K spans several blocks.
  static constexpr int64_t kMC = 192;
  static constexpr int64_t kNC = 128;
};

// Packs columns j0 .. j0 + 64 of b (zero beyond N and K) as [kp / 4][64][4] and returns their
// column sums in col_sums[0 .. 64).
KEEL_TARGET_VNNI void pack_b_vnni(const Int8GemmArgs& args, int64_t j0, int64_t kp, int8_t* dst, int32_t* col_sums) {
  const int64_t columns = std::min<int64_t>(64, args.n - j0);
  const int64_t full_groups = args.k / 4;
  if (args.b_k_stride == 1 && columns == 64) {
    // Rows of a [N, K] weight: a transpose of dwords (4 k values each), then the last k groups
    // by gathering one dword of 16 rows per instruction.
    const __m512i row_offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                   _mm512_set1_epi32(static_cast<int32_t>(args.b_n_stride)));
    const bool offsets_fit = args.b_n_stride * 15 < (int64_t{1} << 31);
    int64_t g = 0;
    // Four k groups (16 bytes) of 16 rows at a time: rows 4l + i go to lane l of z_i, and a 4 x 4
    // dword transpose inside each lane leaves k group q of the 16 rows in o_q.
    for (; g + 4 <= full_groups; g += 4) {
      for (int64_t v = 0; v < 4; ++v) {
        const int8_t* base = args.b + (j0 + 16 * v) * args.b_n_stride + 4 * g;
        __m512i z[4];
        for (int i = 0; i < 4; ++i) {
          const int8_t* row = base + i * args.b_n_stride;
          z[i] = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row)));
          z[i] = _mm512_inserti32x4(z[i], _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 4 * args.b_n_stride)), 1);
          z[i] = _mm512_inserti32x4(z[i], _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 8 * args.b_n_stride)), 2);
          z[i] = _mm512_inserti32x4(z[i], _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 12 * args.b_n_stride)), 3);
        }
        const __m512i a0 = _mm512_unpacklo_epi32(z[0], z[1]), a1 = _mm512_unpackhi_epi32(z[0], z[1]);
        const __m512i a2 = _mm512_unpacklo_epi32(z[2], z[3]), a3 = _mm512_unpackhi_epi32(z[2], z[3]);
        int8_t* out = dst + g * 256 + v * 64;
        _mm512_store_si512(out, _mm512_unpacklo_epi64(a0, a2));
        _mm512_store_si512(out + 256, _mm512_unpackhi_epi64(a0, a2));
        _mm512_store_si512(out + 512, _mm512_unpacklo_epi64(a1, a3));
        _mm512_store_si512(out + 768, _mm512_unpackhi_epi64(a1, a3));
      }
    }
    if (offsets_fit) {
      for (; g < full_groups; ++g) {
        for (int64_t v = 0; v < 4; ++v) {
          const int8_t* base = args.b + (j0 + 16 * v) * args.b_n_stride + 4 * g;
          _mm512_store_si512(dst + g * 256 + v * 64, _mm512_i32gather_epi32(row_offsets, base, 1));
        }
      }
    } else {
      for (; g < full_groups; ++g)
        for (int64_t c = 0; c < 64; ++c) std::memcpy(dst + g * 256 + c * 4, args.b + (j0 + c) * args.b_n_stride + 4 * g, 4);
    }
  } else if (args.b_n_stride == 1) {
    // Rows of a [K, N] matrix: 4 rows of 64 bytes interleaved into 64 dwords of 4 k values.
    const __mmask64 mask = columns == 64 ? ~__mmask64(0) : (__mmask64(1) << columns) - 1;
    for (int64_t g = 0; g < full_groups; ++g) {
      const int8_t* row = args.b + 4 * g * args.b_k_stride + j0;
      const __m512i r0 = _mm512_maskz_loadu_epi8(mask, row), r1 = _mm512_maskz_loadu_epi8(mask, row + args.b_k_stride);
      const __m512i r2 = _mm512_maskz_loadu_epi8(mask, row + 2 * args.b_k_stride);
      const __m512i r3 = _mm512_maskz_loadu_epi8(mask, row + 3 * args.b_k_stride);
      // Per 128-bit lane l: t0/t1 pair rows 0-1 for columns 16l + 0..7 / 8..15, t2/t3 rows 2-3.
      const __m512i t0 = _mm512_unpacklo_epi8(r0, r1), t1 = _mm512_unpackhi_epi8(r0, r1);
      const __m512i t2 = _mm512_unpacklo_epi8(r2, r3), t3 = _mm512_unpackhi_epi8(r2, r3);
      // u0..u3: lane l holds columns 16l + 4q .. 16l + 4q + 3 as 4 k values each.
      const __m512i u0 = _mm512_unpacklo_epi16(t0, t2), u1 = _mm512_unpackhi_epi16(t0, t2);
      const __m512i u2 = _mm512_unpacklo_epi16(t1, t3), u3 = _mm512_unpackhi_epi16(t1, t3);
      // Transpose the 4 x 4 grid of lanes: vector v = lane v of u0, u1, u2, u3.
      const __m512i x0 = _mm512_shuffle_i32x4(u0, u1, 0x44), x1 = _mm512_shuffle_i32x4(u0, u1, 0xee);
      const __m512i x2 = _mm512_shuffle_i32x4(u2, u3, 0x44), x3 = _mm512_shuffle_i32x4(u2, u3, 0xee);
      int8_t* out = dst + g * 256;
      _mm512_store_si512(out, _mm512_shuffle_i32x4(x0, x2, 0x88));
      _mm512_store_si512(out + 64, _mm512_shuffle_i32x4(x0, x2, 0xdd));
      _mm512_store_si512(out + 128, _mm512_shuffle_i32x4(x1, x3, 0x88));
      _mm512_store_si512(out + 192, _mm512_shuffle_i32x4(x1, x3, 0xdd));
    }
  } else {
    for (int64_t g = 0; g < full_groups; ++g)
      for (int64_t c = 0; c < 64; ++c)
        for (int64_t q = 0; q < 4; ++q) dst[g * 256 + c * 4 + q] = c < columns ? b_at(args, j0 + c, 4 * g + q) : 0;
  }
  for (int64_t g = full_groups; g < kp / 4; ++g)  // the K tail, zero padded
    for (int64_t c = 0; c < 64; ++c)
      for (int64_t q = 0; q < 4; ++q) {
        const int64_t p = 4 * g + q;
        dst[g * 256 + c * 4 + q] = c < columns && p < args.k ? b_at(args, j0 + c, p) : 0;
      }
  // Column sums: vpdpbusd of all-ones u8 with the packed strip.
  const __m512i ones = _mm512_set1_epi8(1);
  __m512i sums[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  for (int64_t g = 0; g < kp / 4; ++g)
    for (int v = 0; v < 4; ++v) sums[v] = _mm512_dpbusd_epi32(sums[v], ones, _mm512_load_si512(dst + g * 256 + v * 64));
  for (int v = 0; v < 4; ++v) _mm512_storeu_si512(col_sums + 16 * v, sums[v]);
}

// c[rows x 64] (row stride ldc) = (init ? init : c) + a[rows x 4*groups] * strip (init: one row of
// 64 start values for every row, the column terms of the epilogue), where a is
// row-major u8 (row stride lda) and strip a packed B strip ([groups][64][4]). 24 zmm accumulators,
// 4 B vectors and one broadcast register: 24 vpdpbusd per 10 loads. Used when K spans several
// blocks; with one block, micro_vnni_fused below also converts the sums.
// The k loop of both VNNI micro-kernels: acc[r][v] += the u8 x s8 quad products of `groups` groups
// of 4 along K (A rows lda apart, B strip in VNNI order). Inlined, so acc stays in registers.
template <int kRows>
KEEL_TARGET_VNNI inline __attribute__((always_inline)) void vnni_k_loop(__m512i (&acc)[kRows][4], int64_t groups,
                                                                        const uint8_t* a, int64_t lda,
                                                                        const int8_t* strip) {
  for (int64_t g = 0; g < groups; ++g) {
    const __m512i b0 = _mm512_load_si512(strip), b1 = _mm512_load_si512(strip + 64);
    const __m512i b2 = _mm512_load_si512(strip + 128), b3 = _mm512_load_si512(strip + 192);
    strip += 256;
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r) {
      int32_t quad;
      std::memcpy(&quad, a + r * lda + 4 * g, 4);
      const __m512i av = _mm512_set1_epi32(quad);
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], av, b0);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], av, b1);
      acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], av, b2);
      acc[r][3] = _mm512_dpbusd_epi32(acc[r][3], av, b3);
    }
  }
}

template <int kRows>
KEEL_TARGET_VNNI void micro_vnni(int64_t groups, const uint8_t* a, int64_t lda, const int8_t* strip, int32_t* c,
                                 int64_t ldc, const int32_t* init) {
  __m512i acc[kRows][4];
#pragma GCC unroll 6
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_loadu_si512(init ? init + 16 * v : c + r * ldc + 16 * v);
  vnni_k_loop<kRows>(acc, groups, a, lda, strip);
#pragma GCC unroll 6
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) _mm512_storeu_si512(c + r * ldc + 16 * v, acc[r][v]);
}

// The micro-kernel with the epilogue fused in (one K block): the sums never leave the registers.
// Everything the epilogue reads (out, its stride, the multipliers, bias, zb, row sums) is loaded
// only after the k loop, behind a compiler barrier, so that nothing but the 24 accumulators, the
// 4 B vectors and the broadcast lives across the loop (checked in the disassembly: no stack
// access inside the k loop). Results are those of epilogue_block_avx512 bit for bit: the same
// finish_vector on the same values.
struct FusedTail {
  const Epilogue* e;
  void* out;                 // out[i0, j0]
  int64_t out_row_stride;    // elements
  const float* multiplier;   // + j0
  const float* bias;         // + j0
  const int32_t* zb;         // + j0
  const int32_t* row_sums;   // + i0 (kHasRows)
  int64_t count;             // columns of the strip that exist (1 .. 64)
};

// One row of 4-byte results (s32, or f32 bits) y[0 .. 4) for out_row[0 .. count), count 1 .. 64.
// A row that does not start on a 64-byte line (an output whose row stride is not a multiple of 16
// elements, or which does not start on a line) is written with aligned masked stores of the
// vectors shifted into line order (vpermt2d), not with stores that each straddle two lines:
// see micro_vnni_fused for when (the same values stored).
template <int kRows>
KEEL_TARGET_VNNI inline __attribute__((always_inline)) void store_wide_row(const __m512i (&y)[kRows][4], int r,
                                                                          int32_t* out_row, int64_t count) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(out_row);
  const int shift = static_cast<int>(address >> 2) & 15;
  if (shift == 0 || (address & 3) != 0) {
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      const int64_t left = count - 16 * v;
      if (left <= 0) break;
      const __mmask16 mask = left >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << left) - 1);
      _mm512_mask_storeu_epi32(out_row + 16 * v, mask, y[r][v]);
    }
    return;
  }
  // Line u of the row (64-byte aligned, starting shift elements before out_row) holds lanes
  // 16 - shift .. 15 of y[u - 1] and lanes 0 .. 15 - shift of y[u].
  int32_t* const line = out_row - shift;
  const __m512i index = _mm512_add_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(16 - shift));
  const unsigned __int128 valid = ((static_cast<unsigned __int128>(1) << count) - 1) << shift;
  const int64_t lines = (shift + count + 15) / 16;
#pragma GCC unroll 5
  for (int u = 0; u < 5; ++u) {
    if (u >= lines) break;
    const __m512i low = u > 0 ? y[r][u - 1] : _mm512_setzero_si512();
    const __m512i high = u < 4 ? y[r][u] : _mm512_setzero_si512();
    _mm512_mask_store_epi32(line + 16 * u, static_cast<__mmask16>(valid >> (16 * u)), _mm512_permutex2var_epi32(low, index, high));
  }
}

// init: the sums' start values, row r at init + r * init_ld (init_ld 0: the column terms, one row
// for all; the tile buffer's partial sums of the earlier K blocks otherwise).
template <int kRows, Int8GemmOutput kOutput, bool kHasRows>
KEEL_TARGET_VNNI void micro_vnni_fused(int64_t groups, const uint8_t* a, int64_t lda, const int8_t* strip,
                                       const int32_t* init, int64_t init_ld, const FusedTail* tail) {
  __m512i acc[kRows][4];
  if (init_ld == 0) {  // 4 loads, not one per row (-1% at 256^3 measured when each row loaded them)
    __m512i first[4];
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) first[v] = _mm512_loadu_si512(init + 16 * v);
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[r][v] = first[v];
  } else {
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) acc[r][v] = _mm512_loadu_si512(init + r * init_ld + 16 * v);
  }
  vnni_k_loop<kRows>(acc, groups, a, lda, strip);
  asm volatile("" ::: "memory");  // keep the epilogue's loads after the loop
  const FusedTail t = *tail;
  OutElement<kOutput>* out = static_cast<OutElement<kOutput>*>(t.out);
  const int64_t stride = t.out_row_stride;
  // Each vector stored as it is finished; but for 4-byte outputs whose rows are not on 64-byte
  // lines and K <= 48 (where the stores bound the time), the finished vectors wait in acc and go
  // out row by row, line by line (store_wide_row). Measured on 1 thread, 256 x K -> 256 f32 with
  // the output 16 bytes past a line, stores straddling lines against store_wide_row: K = 4 13.8
  // -> 8.9 us, 16 12.4 -> 8.0, 32 13.3 -> 10.4, 48 13.9 -> 12.7, 64 11.6 -> 11.9, 256 41.8 -> 43.9.
  constexpr bool kWide = kOutput == Int8GemmOutput::s32 || kOutput == Int8GemmOutput::f32;
  const bool on_lines = !kWide || groups > 12 || ((reinterpret_cast<uintptr_t>(out) & 63) == 0 && stride % 16 == 0);
  // Walks the finished sums vector by vector (column terms already in, the zb * row_sums term taken
  // off here) and hands each to `sink` with its column vector's multiplier, bias and mask.
  const auto for_each_finished = [&](auto&& sink) __attribute__((always_inline)) {
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) {
      const int64_t left = t.count - 16 * v;
      if (left <= 0) break;
      const __mmask16 mask = left >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << left) - 1);
      const __m512 mul = _mm512_maskz_loadu_ps(mask, t.multiplier + 16 * v);
      const __m512 add = _mm512_maskz_loadu_ps(mask, t.bias + 16 * v);
      __m512i zbv = _mm512_setzero_si512();
      if constexpr (kHasRows) zbv = _mm512_maskz_loadu_epi32(mask, t.zb + 16 * v);
#pragma GCC unroll 6
      for (int r = 0; r < kRows; ++r) {
        __m512i x = acc[r][v];
        if constexpr (kHasRows) x = _mm512_sub_epi32(x, _mm512_mullo_epi32(zbv, _mm512_set1_epi32(t.row_sums[r])));
        sink(r, v, x, mul, add, mask);
      }
    }
  };
  if (on_lines) {
    for_each_finished([&](int r, int v, __m512i x, __m512 mul, __m512 add, __mmask16 mask) __attribute__((always_inline)) {
      finish_vector<kOutput>(*t.e, x, mul, add, out + r * stride + 16 * v, mask);
    });
  } else if constexpr (kWide) {
    for_each_finished([&](int r, int v, __m512i x, __m512 mul, __m512 add, __mmask16) __attribute__((always_inline)) {
      if constexpr (kOutput == Int8GemmOutput::s32) acc[r][v] = x;
      else acc[r][v] = _mm512_castps_si512(_mm512_fmadd_ps(_mm512_cvtepi32_ps(x), mul, add));  // as finish_vector
    });
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r) store_wide_row<kRows>(acc, r, reinterpret_cast<int32_t*>(out + r * stride), t.count);
  }
}

using FusedMicro = void (*)(int64_t, const uint8_t*, int64_t, const int8_t*, const int32_t*, int64_t, const FusedTail*);

template <Int8GemmOutput kOutput, bool kHasRows> FusedMicro pick_fused_rows(int64_t rows) {
  switch (rows) {
    case 6: return &micro_vnni_fused<6, kOutput, kHasRows>;
    case 5: return &micro_vnni_fused<5, kOutput, kHasRows>;
    case 4: return &micro_vnni_fused<4, kOutput, kHasRows>;
    case 3: return &micro_vnni_fused<3, kOutput, kHasRows>;
    case 2: return &micro_vnni_fused<2, kOutput, kHasRows>;
    default: return &micro_vnni_fused<1, kOutput, kHasRows>;
  }
}

template <bool kHasRows> FusedMicro pick_fused(Int8GemmOutput output, int64_t rows) {
  switch (output) {
    case Int8GemmOutput::s32: return pick_fused_rows<Int8GemmOutput::s32, kHasRows>(rows);
    case Int8GemmOutput::f32: return pick_fused_rows<Int8GemmOutput::f32, kHasRows>(rows);
    case Int8GemmOutput::u8: return pick_fused_rows<Int8GemmOutput::u8, kHasRows>(rows);
    default: return pick_fused_rows<Int8GemmOutput::i8, kHasRows>(rows);
  }
}

// ---- avx2 path ----------------------------------------------------------------------------
struct Avx2Path {
  static constexpr int64_t kNR = 16;      // 2 ymm of 8 s32
  static constexpr int64_t kKGroup = 2;   // k values per vpmaddwd lane
  using AElement = int16_t;
  using BElement = int16_t;
  static constexpr int64_t kKC = 512;
  static constexpr int64_t kMC = 192;  // halved on one thread
  static constexpr int64_t kNC = 256;
};

// Packs columns j0 .. j0 + 16 of b as 16-bit values [kp / 2][16][2] (zero beyond N and K).
void pack_b_avx2(const Int8GemmArgs& args, int64_t j0, int64_t kp, int16_t* dst, int32_t* col_sums) {
  const int64_t columns = std::min<int64_t>(16, args.n - j0);
  for (int64_t c = 0; c < 16; ++c) col_sums[c] = 0;
  for (int64_t g = 0; g < kp / 2; ++g)
    for (int64_t c = 0; c < 16; ++c)
      for (int64_t q = 0; q < 2; ++q) {
        const int64_t p = 2 * g + q;
        const int16_t value = c < columns && p < args.k ? b_at(args, j0 + c, p) : 0;
        dst[g * 32 + c * 2 + q] = value;
        col_sums[c] += value;
      }
}

template <int kRows>
KEEL_TARGET_AVX2 void micro_avx2(int64_t groups, const int16_t* a, int64_t lda, const int16_t* strip, int32_t* c,
                                 int64_t ldc, const int32_t* init) {
  __m256i acc[kRows][2];
#pragma GCC unroll 6
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < 2; ++v)
      acc[r][v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(init ? init + 8 * v : c + r * ldc + 8 * v));
  for (int64_t g = 0; g < groups; ++g) {
    const __m256i b0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(strip));
    const __m256i b1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(strip + 16));
    strip += 32;
#pragma GCC unroll 6
    for (int r = 0; r < kRows; ++r) {
      int32_t pair;
      std::memcpy(&pair, a + r * lda + 2 * g, 4);
      const __m256i av = _mm256_set1_epi32(pair);
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(av, b0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(av, b1));
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < 2; ++v) _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * ldc + 8 * v), acc[r][v]);
}

// ---- the blocked driver of both SIMD paths ------------------------------------------------------
template <typename Path>
void call_micro(int64_t rows, int64_t groups, const typename Path::AElement* a, int64_t lda,
                const typename Path::BElement* strip, int32_t* c, int64_t ldc, const int32_t* init) {
  if constexpr (std::is_same_v<Path, VnniPath>) {
    switch (rows) {
      case 6: return micro_vnni<6>(groups, a, lda, strip, c, ldc, init);
      case 5: return micro_vnni<5>(groups, a, lda, strip, c, ldc, init);
      case 4: return micro_vnni<4>(groups, a, lda, strip, c, ldc, init);
      case 3: return micro_vnni<3>(groups, a, lda, strip, c, ldc, init);
      case 2: return micro_vnni<2>(groups, a, lda, strip, c, ldc, init);
      default: return micro_vnni<1>(groups, a, lda, strip, c, ldc, init);
    }
  } else {
    switch (rows) {
      case 6: return micro_avx2<6>(groups, a, lda, strip, c, ldc, init);
      case 5: return micro_avx2<5>(groups, a, lda, strip, c, ldc, init);
      case 4: return micro_avx2<4>(groups, a, lda, strip, c, ldc, init);
      case 3: return micro_avx2<3>(groups, a, lda, strip, c, ldc, init);
      case 2: return micro_avx2<2>(groups, a, lda, strip, c, ldc, init);
      default: return micro_avx2<1>(groups, a, lda, strip, c, ldc, init);
    }
  }
}

// Row i of A as the path reads it (K rounded up to 4, zero padded, u8 values), and its sum.
template <typename Path>
int32_t pack_a_row(const Int8GemmArgs& args, int64_t i, int64_t kp, typename Path::AElement* __restrict dst) {
  const uint8_t* __restrict row = static_cast<const uint8_t*>(args.a) + i * args.a_row_stride;
  const uint8_t flip = args.a_is_signed ? 0x80 : 0;  // s8 x -> u8 x + 128
  int32_t sum = 0;
  if (args.a_col_stride == 1) {
    for (int64_t p = 0; p < args.k; ++p) {
      const uint8_t value = row[p] ^ flip;
      dst[p] = value;
      sum += value;
    }
  } else {
    for (int64_t p = 0; p < args.k; ++p) {
      const uint8_t value = row[p * args.a_col_stride] ^ flip;
      dst[p] = value;
      sum += value;
    }
  }
  for (int64_t p = args.k; p < kp; ++p) dst[p] = 0;
  return sum;
}

template <typename Path>
void run_blocked(const Int8GemmArgs& args, Epilogue& e, int threads) {
  using AElement = typename Path::AElement;
  using BElement = typename Path::BElement;
  constexpr int64_t nr = Path::kNR, group = Path::kKGroup;
  const int64_t m = args.m, n = args.n, k = args.k;
  const int64_t kp = round_up(k, 4);
  const int64_t strips = ceil_div(n, nr);
  // B: packed beforehand (pack_int8_b), or here, shared out over the threads.
  const bool prepacked = args.packed_b != nullptr;
  BElement* const b_buffer = prepacked ? nullptr : scratch(kBPackScratch).get<BElement>(strips * nr * kp);
  int32_t* const col_sums_buffer = prepacked ? nullptr : scratch(kColSumsScratch).get<int32_t>(strips * nr);
  const BElement* b_packed = prepacked ? static_cast<const BElement*>(args.packed_b->data.get()) : b_buffer;
  const int32_t* col_sums = prepacked ? args.packed_b->column_sums.data() : col_sums_buffer;
  // A is read in place when it already is what the VNNI kernel reads; otherwise copied.
  constexpr bool vnni = std::is_same_v<Path, VnniPath>;
  const bool a_in_place = vnni && !args.a_is_signed && args.a_col_stride == 1 && k % 4 == 0;
  const bool need_row_sums = !e.row_sums.empty();
  AElement* const a_packed = a_in_place ? nullptr : scratch(kAPackScratch).get<AElement>(m * kp);
  const AElement* a_rows = a_in_place ? static_cast<const AElement*>(args.a) : a_packed;
  const int64_t lda = a_in_place ? args.a_row_stride : kp;
  if (prepacked) {  // the column terms from the stored sums (O(N), before any thread starts)
    // The same values mod 2^32 as the int64 formula of the packing loop, in u32 (vectorized).
    const uint32_t minus_za = wrap(-int64_t{e.za}), k_za = wrap(k * int64_t{e.za});
    const int32_t* __restrict zb = e.zb.data();
    int32_t* __restrict column_term = e.column_term.data();
    for (int64_t j = 0; j < n; ++j)
      column_term[j] = static_cast<int32_t>(minus_za * static_cast<uint32_t>(col_sums[j]) + k_za * static_cast<uint32_t>(zb[j]));
  }
  const bool prologue = !prepacked || !a_in_place || need_row_sums;

  // Tiles. One K block: tiles as wide as a B block of about 1 MiB (half of this machine's L2)
  // allows, walked one row strip at a time across all their columns, so that the A panel (6 x K)
  // stays in L1 and each row of out is written in long runs. Measured on 1 thread against
  // 128-column tiles walked column strip by column strip: +6% at 1024^3 and 2048^3, the same on
  // the others (2 threads: +2-4% at 1024^3 and 2048^3). The tiles are shrunk until every thread
  // has a few (4 on one thread).
  const int64_t kc = Path::kKC;
  const bool one_block = kp <= kc;
  struct Tiling {
    int64_t mc, nc;
  };
  auto tiling = [&](int64_t rows, int64_t columns, int parts) {
    int64_t mc = parts > 1 ? Path::kMC : Path::kMC / 2;
    int64_t nc = one_block ? std::clamp<int64_t>(kBBlockBytes / std::max<int64_t>(kp * int64_t(sizeof(BElement)), 1) / nr * nr,
                                                 nr, round_up(columns, nr))
                           : Path::kNC;
    auto tile_count = [&] { return ceil_div(rows, mc) * ceil_div(columns, nc); };
    while (tile_count() < 4 * parts && nc > nr) nc = std::max(nr, nc / 2 / nr * nr);
    while (tile_count() < 4 * parts && mc > 2 * kMR) mc = mc / 2 / kMR * kMR;
    return Tiling{mc, nc};
  };
  // B prepacked, several threads: each thread takes one rectangle of out, a run of whole 6-row
  // strips or of whole 64-column strips, and walks it as one thread walks the whole product:
  // nothing shared, no barrier after the prologue. Rows unless the columns split the work more
  // evenly by more than 4%, counting a strip of fewer than 6 rows as 3/4 of a full one (it reads
  // as much B) and one of fewer than 64 columns as a whole one. Measured on 2 threads (one
  // process, alternating) against the tiles of the whole product shared out statically (still
  // done for B packed in the call, whose strips each thread packs for the columns it computes):
  // 256^3 34 -> 24 us, 512^3 187 -> 164 us, 64 x 784 -> 256 (by columns) the same; splitting
  // 256^3 and 512^3 by columns instead is as slow as the shared tiles, splitting 64 x 784 -> 256
  // by rows (32 + 32 or 36 + 28) 5-10% slower.
  // Only while all of B (read by every thread when the rows are split) is at most 512 KiB: with
  // 1 MiB (1024^3, 256 x 1024 -> 1024) and 4 MiB (2048^3) the rectangles measured the same or
  // slower in the benchmark (2048^3: 14.1 against 10.9-11.0 ms), so those keep the shared tiles.
  const bool rectangles = prepacked && threads > 1 && strips * nr * kp * int64_t(sizeof(BElement)) <= (int64_t{1} << 19);
  bool split_rows = false;
  if (rectangles) {
    auto rows_cost = [](int64_t rows) { return double(rows / kMR) + (rows % kMR ? 0.75 : 0.0); };
    const int64_t row_chunk = std::min(m, round_up(ceil_div(m, threads), kMR));
    const int64_t strips_n = ceil_div(n, nr);
    double by_rows = 0;
    for (int64_t begin = 0; begin < m; begin += row_chunk)
      by_rows = std::max(by_rows, rows_cost(std::min(row_chunk, m - begin)) * double(strips_n));
    const double by_columns = rows_cost(m) * double(ceil_div(strips_n, threads));
    split_rows = by_rows <= 1.04 * by_columns;
  }
  const Tiling whole = tiling(m, n, threads);

  // The work of each thread; on one thread called without a parallel region (its worksharing
  // constructs then run on their own), which costs libgomp a team allocation and futex calls
  // (~0.1-0.2 us a call, measured with perf on 6 x 4 -> 64 products).
  auto thread_body = [&] {
    // One barrier before the tiles, when there is a prologue: B's strips (with their column terms;
    // not when B is prepacked) and A's rows (only when A is copied or its row sums are needed)
    // are shared out first.
    if (!prepacked) {
#pragma omp for schedule(static) nowait
      for (int64_t s = 0; s < strips; ++s) {
        if constexpr (vnni) pack_b_vnni(args, s * nr, kp, b_buffer + s * nr * kp, col_sums_buffer + s * nr);
        else pack_b_avx2(args, s * nr, kp, b_buffer + s * nr * kp, col_sums_buffer + s * nr);
        for (int64_t j = s * nr; j < std::min(n, (s + 1) * nr); ++j)
          e.column_term[j] = static_cast<int32_t>(wrap(-int64_t{e.za} * col_sums[j] + k * int64_t{e.za} * e.zb[j]));
      }
    }
    if (!a_in_place || need_row_sums) {
#pragma omp for schedule(static) nowait
      for (int64_t i = 0; i < m; ++i) {
        if (!a_in_place) {
          const int32_t sum = pack_a_row<Path>(args, i, kp, a_packed + i * kp);
          if (need_row_sums) e.row_sums[i] = sum;
        } else {
          int32_t sum = 0;
          for (int64_t p = 0; p < k; ++p) sum += a_rows[i * lda + p];
          e.row_sums[i] = sum;
        }
      }
    }
    if (prologue) {
#pragma omp barrier
    }
    // This thread's part of out and its tiles.
    int64_t i_begin = 0, i_end = m, j_begin = 0, j_end = n;
    Tiling t = whole;
    if (rectangles) {
      const int part = omp_get_thread_num(), parts = omp_get_num_threads();
      const int64_t count = split_rows ? m : n, step = split_rows ? kMR : nr;
      const int64_t chunk = round_up(ceil_div(count, parts), step);
      const int64_t begin = std::min(count, part * chunk), end = std::min(count, begin + chunk);
      if (split_rows) i_begin = begin, i_end = end;
      else j_begin = begin, j_end = end;
      t = tiling(i_end - i_begin, j_end - j_begin, 1);
    }
    const int64_t mc = t.mc, nc = t.nc;
    // All of K in one block: each micro-tile goes through the epilogue straight away from a small
    // buffer that stays in L1, where a tile of mc x nc sums would fill L1 (48 KiB here).
    // (None on the VNNI path with one K block: its epilogue is fused into the micro-kernel.)
    int32_t* const tile = one_block && vnni ? nullptr : scratch(kTileScratch).get<int32_t>(one_block ? kMR * nr : mc * nc);
    const EpilogueBlock epilogue_block = !vnni           ? &epilogue_block_scalar
                                     : e.row_sums.empty() ? pick_avx512_epilogue<false>(args.output)
                                                          : pick_avx512_epilogue<true>(args.output);
    FusedMicro fused[kMR] = {};
    if constexpr (vnni)
      for (int64_t r = 1; r <= kMR; ++r)
        fused[r - 1] = e.row_sums.empty() ? pick_fused<false>(args.output, r) : pick_fused<true>(args.output, r);
    // out[i0 .. i0 + rows, j0 .. j0 + columns), rows <= mc, columns <= nc, j0 a multiple of nr.
    auto compute_tile = [&](int64_t i0, int64_t rows, int64_t j0, int64_t columns) {
      const size_t out_size = args.output == Int8GemmOutput::s32 || args.output == Int8GemmOutput::f32 ? 4 : 1;
      // What the fused epilogue needs for out[i .. i + kMR, j .. j + count).
      auto tail_at = [&](int64_t i, int64_t j, int64_t count) {
        return FusedTail{&e,
                         static_cast<char*>(args.out) + (i * args.out_row_stride + j) * out_size,
                         args.out_row_stride,
                         e.multiplier.data() + j,
                         e.bias.data() + j,
                         e.zb.data() + j,
                         e.row_sums.empty() ? nullptr : e.row_sums.data() + i,
                         count};
      };
      if (one_block && vnni) {  // the epilogue fused into the micro-kernel
        for (int64_t is = 0; is < rows; is += kMR) {
          const int64_t strip_rows = std::min(kMR, rows - is);
          const FusedMicro micro = fused[strip_rows - 1];
          for (int64_t js = 0; js < columns; js += nr) {
            const int64_t i = i0 + is, j = j0 + js;
            const FusedTail tail = tail_at(i, j, std::min(nr, columns - js));
            if constexpr (vnni)
              micro(kp / group, a_rows + i * lda, lda, b_packed + j / nr * nr * kp, e.column_term.data() + j, 0, &tail);
          }
        }
        return;
      }
      if (one_block) {
        for (int64_t is = 0; is < rows; is += kMR) {
          const int64_t strip_rows = std::min(kMR, rows - is);
          for (int64_t js = 0; js < columns; js += nr) {
            const BElement* strip = b_packed + (j0 + js) / nr * nr * kp;
            call_micro<Path>(strip_rows, kp / group, a_rows + (i0 + is) * lda, lda, strip, tile, nr,
                             e.column_term.data() + j0 + js);
            epilogue_block(e, i0 + is, strip_rows, j0 + js, std::min(nr, columns - js), tile, nr);
          }
        }
        return;
      }
      if (kp == 0) {
        std::fill(tile, tile + mc * nc, 0);
        epilogue_block(e, i0, rows, j0, columns, tile, nc);
      }
      for (int64_t p0 = 0; p0 < kp; p0 += kc) {
        const int64_t depth = std::min(kc, kp - p0);
        const bool last = p0 + depth == kp;
        for (int64_t js = 0; js < columns; js += nr) {
          const BElement* strip = b_packed + (j0 + js) / nr * nr * kp + p0 * nr;
          for (int64_t is = 0; is < rows; is += kMR) {
            const int64_t strip_rows = std::min(kMR, rows - is);
            int32_t* block = tile + is * nc + js;
            if constexpr (vnni) {
              // The last K block: the micro-kernel starts from the partial sums in the tile buffer
              // and converts its registers to the output (the epilogue fused, as with one block).
              if (last) {
                const int64_t i = i0 + is, j = j0 + js;
                const FusedTail tail = tail_at(i, j, std::min(nr, columns - js));
                fused[strip_rows - 1](depth / group, a_rows + i * lda + p0, lda, strip, block, nc, &tail);
                continue;
              }
            }
            call_micro<Path>(strip_rows, depth / group, a_rows + (i0 + is) * lda + p0, lda, strip, block, nc,
                             p0 == 0 ? e.column_term.data() + j0 + js : nullptr);
            // After the last K block, the epilogue reads the micro-tile while it is still in L1.
            if (last) epilogue_block(e, i0 + is, strip_rows, j0 + js, std::min(nr, columns - js), block, nc);
          }
        }
      }
    };
    // Tiles in column-major order. Shared out over the threads (B packed in the call) in
    // contiguous static chunks: each thread computes the columns whose B strips it packed itself
    // (the same static split), which stay in its own L2, and walks all of A. Measured on 2 threads
    // against row-major order shared out dynamically (which lets the threads walk A's row blocks
    // together) and column-major order shared out dynamically: +4% at 1024^3 and 2048^3, +5% at
    // 512^3, the same at 256^3.
    const int64_t rows = i_end - i_begin, columns = j_end - j_begin;
    const int64_t m_tiles = ceil_div(rows, mc), n_tiles = ceil_div(columns, nc);
    auto run_tile = [&](int64_t index) {
      const int64_t i0 = i_begin + index % m_tiles * mc, j0 = j_begin + index / m_tiles * nc;
      compute_tile(i0, std::min(mc, i_end - i0), j0, std::min(nc, j_end - j0));
    };
    if (rectangles || threads == 1) {
      for (int64_t index = 0; index < m_tiles * n_tiles; ++index) run_tile(index);
    } else {
#pragma omp for schedule(static)
      for (int64_t index = 0; index < m_tiles * n_tiles; ++index) run_tile(index);
    }
  };
  if (threads > 1) {
#pragma omp parallel num_threads(threads)
    thread_body();
  } else {
    thread_body();
  }
}

// ---- scalar path ------------------------------------------------------------------------------
void run_scalar(const Int8GemmArgs& given, Epilogue& e, int threads) {
  Int8GemmArgs args = given;
  if (given.packed_b) {  // the scalar packing is B as [N, K] row-major
    args.b = static_cast<const int8_t*>(given.packed_b->data.get());
    args.b_n_stride = given.k;
    args.b_k_stride = 1;
  }
  const int64_t m = args.m, n = args.n, k = args.k;
  for (int64_t j = 0; j < n; ++j) {
    int32_t sum = 0;
    for (int64_t p = 0; p < k; ++p) sum += b_at(args, j, p);
    e.column_term[j] = static_cast<int32_t>(wrap(-int64_t{e.za} * sum + k * int64_t{e.za} * e.zb[j]));
  }
  const bool need_row_sums = !e.row_sums.empty();
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
  for (int64_t i = 0; i < m; ++i) {
    std::vector<int32_t> row(n);
    uint32_t row_sum = 0;
    for (int64_t p = 0; p < k; ++p) row_sum += a_at(args, i, p);
    if (need_row_sums) e.row_sums[i] = static_cast<int32_t>(row_sum);
    for (int64_t j = 0; j < n; ++j) {
      uint32_t acc = 0;  // wraps like the SIMD paths' s32 lanes
      for (int64_t p = 0; p < k; ++p) acc += static_cast<uint32_t>(int32_t{a_at(args, i, p)} * int32_t{b_at(args, j, p)});
      row[j] = static_cast<int32_t>(acc);
    }
    epilogue_row_scalar(e, i, 0, n, row.data(), true);
  }
}

Int8GemmPath pick_path() {
  const CpuFeatures f = cpu_features();
  if (f.avx512 && f.avx512_vnni) return Int8GemmPath::avx512_vnni;
  if (f.avx2) return Int8GemmPath::avx2;
  return Int8GemmPath::scalar;
}

}  // namespace

std::string_view int8_gemm_path_name(Int8GemmPath path) {
  switch (path) {
    case Int8GemmPath::avx512_vnni: return "avx512_vnni";
    case Int8GemmPath::avx2: return "avx2";
    default: return "scalar";
  }
}

std::string_view gemm_int8_path() {
  if (amx_int8_gemm_enabled()) return amx_emulation() ? "amx_int8 (emulated)" : "amx_int8";
  return int8_gemm_path_name(pick_path());
}
Int8GemmPath gemm_int8_path_kind() { return pick_path(); }

int64_t gemm_int8_max_depth(int64_t max_abs_a, int64_t max_abs_b) {
  const int64_t product = std::max<int64_t>(1, max_abs_a * max_abs_b);
  return std::numeric_limits<int32_t>::max() / product;
}

Int8PackedB pack_int8_b(const int8_t* b, int64_t n, int64_t k, int64_t b_n_stride, int64_t b_k_stride) {
  KEEL_ASSERT(n >= 0 && k >= 0);
  Int8PackedB packed;
  packed.path = pick_path();
  packed.n = n;
  packed.k = k;
  Int8GemmArgs args;  // the packing functions read B through these fields
  args.n = n, args.k = k, args.b = b, args.b_n_stride = b_n_stride, args.b_k_stride = b_k_stride;
  const int64_t kp = round_up(k, 4);
  auto pack_strips = [&]<typename Path>(Path) {
    using BElement = typename Path::BElement;
    constexpr int64_t nr = Path::kNR;
    const int64_t strips = ceil_div(n, nr);
    std::shared_ptr<BElement> data(allocate<BElement>(strips * nr * kp).release(), AlignedFree<BElement>());
    packed.column_sums.assign(strips * nr, 0);
    const int64_t work = strips * nr * kp;
    const int threads = work < 2 * kGrain || omp_in_parallel() ? 1 : omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t s = 0; s < strips; ++s) {
      if constexpr (std::is_same_v<Path, VnniPath>) pack_b_vnni(args, s * nr, kp, data.get() + s * nr * kp, packed.column_sums.data() + s * nr);
      else pack_b_avx2(args, s * nr, kp, data.get() + s * nr * kp, packed.column_sums.data() + s * nr);
    }
    packed.data = std::move(data);
  };
  switch (packed.path) {
    case Int8GemmPath::avx512_vnni: pack_strips(VnniPath{}); break;
    case Int8GemmPath::avx2: pack_strips(Avx2Path{}); break;
    default: {
      std::shared_ptr<int8_t> data(allocate<int8_t>(n * k).release(), AlignedFree<int8_t>());
      packed.column_sums.assign(n, 0);
      for (int64_t j = 0; j < n; ++j)
        for (int64_t p = 0; p < k; ++p) {
          data.get()[j * k + p] = b_at(args, j, p);
          packed.column_sums[j] += b_at(args, j, p);
        }
      packed.data = std::move(data);
    }
  }
  return packed;
}

void gemm_int8(const Int8GemmArgs& args) {
  KEEL_ASSERT(args.m >= 0 && args.n >= 0 && args.k >= 0);
  const Int8GemmPath path = pick_path();
  KEEL_ASSERT(!args.packed_b || (args.packed_b->path == path && args.packed_b->n == args.n && args.packed_b->k == args.k));
  if (args.m == 0 || args.n == 0) return;
  // AMX-INT8 (kernels/cpu/gemm_amx.h) for B read in place; prepacked B runs its own path's kernel.
  if (amx_int8_gemm_enabled() && !args.packed_b) return gemm_int8_amx(args);
  Epilogue e;
  e.args = &args;
  e.za = args.a_zero_point + (args.a_is_signed ? 128 : 0);
  // The per-column and per-row arrays, 64-byte aligned, in this thread's scratch.
  const int64_t columns = round_up(args.n, 64), rows = round_up(args.m, 16);
  static_assert(sizeof(float) == sizeof(int32_t));
  int32_t* const values = scratch(kEpilogueScratch).get<int32_t>(4 * columns + rows);
  e.column_term = {values, columns};  // whole strips: the SIMD paths start their sums from it
  e.zb = {values + columns, args.n};
  e.multiplier = {reinterpret_cast<float*>(values + 2 * columns), args.n};
  e.bias = {reinterpret_cast<float*>(values + 3 * columns), args.n};
  std::fill(values + args.n, values + columns, 0);  // the column terms beyond N
  // One value per tensor (stride 0) fills; one per channel copies (a loop the compiler vectorizes;
  // the per-column loop with strides took ~0.5 us of a 64 x 784 -> 256 product).
  bool any_zb = false;
  if (!args.b_zero_points || args.b_zero_point_stride == 0) {
    const int32_t zb = args.b_zero_points ? args.b_zero_points[0] : 0;
    std::fill(e.zb.data(), e.zb.data() + args.n, zb);
    any_zb = zb != 0;
  } else {
    int32_t any = 0;
    for (int64_t j = 0; j < args.n; ++j) any |= e.zb[j] = args.b_zero_points[j * args.b_zero_point_stride];
    any_zb = any != 0;
  }
  if (!args.b_scales || args.b_scale_stride == 0) {
    std::fill(e.multiplier.data(), e.multiplier.data() + args.n, args.a_scale * (args.b_scales ? args.b_scales[0] : 1.0f));
  } else {
    for (int64_t j = 0; j < args.n; ++j) e.multiplier[j] = args.a_scale * args.b_scales[j * args.b_scale_stride];
  }
  if (args.bias) std::memcpy(e.bias.data(), args.bias, static_cast<size_t>(args.n) * sizeof(float));
  else std::fill(e.bias.data(), e.bias.data() + args.n, 0.0f);
  if (any_zb) e.row_sums = {values + 4 * columns, args.m};  // written before they are read
  e.qmin = args.output == Int8GemmOutput::u8 ? 0.0f : -128.0f;
  e.qmax = args.output == Int8GemmOutput::u8 ? 255.0f : 127.0f;

  const int64_t work = args.m * args.n * std::max<int64_t>(args.k, 1);
  const int threads = work < 2 * kGrain || omp_in_parallel()
                          ? 1
                          : static_cast<int>(std::min<int64_t>(omp_get_max_threads(), work / kGrain));
  switch (path) {
    case Int8GemmPath::avx512_vnni: return run_blocked<VnniPath>(args, e, threads);
    case Int8GemmPath::avx2: return run_blocked<Avx2Path>(args, e, threads);
    default: return run_scalar(args, e, threads);
  }
}

}  // namespace keel::cpu
