// Pooling loops, one (n, c) plane per task (parallel over N C planes), with PyTorch's window rules.
//
//   max:  y[i,j] = max over the window of x (first maximum wins; a NaN wins, the last
//         NaN's index, as PyTorch's CPU kernel), indices[i,j] = h W + w
//         dx[h,w] = sum of dy[i,j] over the outputs whose index is h W + w
//   avg:  y[i,j] = sum over the window of x / divisor(i, j)
//         dx[h,w] = sum over the windows (i, j) that contain (h, w) of dy[i,j] / divisor(i, j)
// Windows per axis (PoolAxis): output o reads start[o], start[o] + dilation, ... below end[o].
// Bytes per call: read x once, write y (and the i64 indices) once; FLOPs are negligible.
// Forward: f32, f64, f16, bf16 (16-bit sums in f32). Backward: f32 and f64 (the op computes
// 16-bit gradients in f32, so that overlapping windows accumulate without bf16 rounding).
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <limits>

#include "keel/core/half.h"
#include "keel/kernels/cpu/cpu_features.h"
#include "keel/kernels/cpu/conv_kernels.h"

// GCC 12 warns that the _mm512_undefined_* operands inside its own intrinsics "may be used
// uninitialized" once inlined into masked loads/conversions; they are undefined by design.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace keel::cpu {

PoolAxis pool_axis(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
                   bool is_max) {
  PoolAxis axis;
  axis.dilation = is_max ? dilation : 1;
  axis.kernel = kernel;
  axis.stride = stride;
  axis.padding = padding;
  // Interior: o stride - padding >= 0 and o stride - padding + (kernel - 1) dilation <= in - 1.
  axis.interior_begin = std::min(out, (padding + stride - 1) / stride);
  const int64_t last = in - 1 + padding - (kernel - 1) * axis.dilation;
  axis.interior_end = last < 0 ? 0 : std::min(out, last / stride + 1);
  axis.interior_end = std::max(axis.interior_end, axis.interior_begin);
  axis.start.resize(out);
  axis.end.resize(out);
  axis.padded_size.resize(out);
  for (int64_t o = 0; o < out; ++o) {
    int64_t start = o * stride - padding;
    if (is_max) {
      // PyTorch's max_pool2d: end = min(start + (k - 1) d + 1, in); start steps by d until >= 0.
      const int64_t end = std::min(start + (kernel - 1) * dilation + 1, in);
      while (start < 0) start += dilation;
      axis.start[o] = start;
      axis.end[o] = end;
      axis.padded_size[o] = 0;
    } else {
      // PyTorch's avg_pool2d: the padded window ends at min(start + k, in + pad).
      const int64_t padded_end = std::min(start + kernel, in + padding);
      axis.padded_size[o] = padded_end - start;
      axis.start[o] = std::max<int64_t>(start, 0);
      axis.end[o] = std::min(padded_end, in);
    }
  }
  return axis;
}

PoolAxis adaptive_pool_axis(int64_t in, int64_t out) {
  PoolAxis axis;
  axis.start.resize(out);
  axis.end.resize(out);
  axis.padded_size.resize(out);
  for (int64_t o = 0; o < out; ++o) {
    axis.start[o] = o * in / out;                   // floor(o in / out)
    axis.end[o] = ((o + 1) * in + out - 1) / out;  // ceil((o + 1) in / out)
    axis.padded_size[o] = axis.end[o] - axis.start[o];
  }
  return axis;
}

namespace {

// take ? a : b through integer masks.
template <typename V> inline V select(bool take, V a, V b) {
  using Bits = std::conditional_t<sizeof(V) == 8, uint64_t, uint32_t>;
  static_assert(sizeof(V) == sizeof(Bits));
  Bits bits_a, bits_b;
  std::memcpy(&bits_a, &a, sizeof(V));
  std::memcpy(&bits_b, &b, sizeof(V));
  const Bits mask = Bits(0) - static_cast<Bits>(take);
  const Bits bits = (bits_a & mask) | (bits_b & ~mask);
  V result;
  std::memcpy(&result, &bits, sizeof(V));
  return result;
}

template <typename T>
void max_forward(const Tensor& y, const Tensor& indices, const Tensor& x, const PoolAxis& rows, const PoolAxis& cols) {
  using Acc = compute_t<T>;
  const int64_t planes = x.shape()[0] * x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  const int64_t oh = y.shape()[2], ow = y.shape()[3];
  KEEL_ASSERT(h * w < (int64_t(1) << 31));  // indices within a plane fit 32 bits in the inner loop
  const T* xd = x.data_ptr<T>();
  T* yd = y.data_ptr<T>();
  int64_t* id = indices.data_ptr<int64_t>();
  const int64_t j0 = cols.interior_begin, j1 = cols.interior_end;
  const int64_t col_stride = cols.stride, col_dilation = cols.dilation;
#pragma omp parallel if (planes * h * w > 32768)
  {
    // The interior columns of one output row, vectorized across outputs j (the taps in PyTorch's
    // order, row by row, so the first maximum still wins).
    std::vector<Acc> best_row(static_cast<size_t>(ow));
    std::vector<int32_t> index_row(static_cast<size_t>(ow));
#pragma omp for schedule(static)
    for (int64_t plane = 0; plane < planes; ++plane) {
      const T* xp = xd + plane * h * w;
      for (int64_t i = 0; i < oh; ++i) {
        T* y_row = yd + plane * oh * ow + i * ow;
        int64_t* index_out = id + plane * oh * ow + i * ow;
        // Border columns (clipped windows): one output at a time.
        auto one = [&](int64_t j) {
          int64_t best_index = rows.start[i] * w + cols.start[j];
          Acc best = -std::numeric_limits<Acc>::infinity();
          for (int64_t r = rows.start[i]; r < rows.end[i]; r += rows.dilation) {
            for (int64_t c = cols.start[j]; c < cols.end[j]; c += cols.dilation) {
              // Branch-free (bit masks): with random data a branch on the comparison
              // mispredicts half the time (3-4x slower here).
              const Acc value = static_cast<Acc>(xp[r * w + c]);
              const bool take = (value > best) | (value != value);
              best = select(take, value, best);
              best_index = select(take, r * w + c, best_index);
            }
          }
          y_row[j] = T(best);
          index_out[j] = best_index;
        };
        for (int64_t j = 0; j < j0; ++j) one(j);
        for (int64_t j = std::max(j0, j1); j < ow; ++j) one(j);
        if (j1 <= j0) continue;
        Acc* best = best_row.data();
        int32_t* index = index_row.data();
        const int64_t first_col = j0 * col_stride - cols.padding;
        for (int64_t j = j0; j < j1; ++j) {
          best[j] = -std::numeric_limits<Acc>::infinity();
          index[j] = static_cast<int32_t>(rows.start[i] * w + j * col_stride - cols.padding);
        }
        for (int64_t r = rows.start[i]; r < rows.end[i]; r += rows.dilation) {
          for (int64_t q = 0; q < cols.kernel; ++q) {
            const int64_t offset = r * w + first_col + q * col_dilation;  // input of output j0 at tap q
            const T* source = xp + offset - j0 * col_stride;
            const int32_t base = static_cast<int32_t>(offset - j0 * col_stride);
#pragma omp simd
            for (int64_t j = j0; j < j1; ++j) {
              const Acc value = static_cast<Acc>(source[j * col_stride]);
              const bool take = (value > best[j]) | (value != value);
              best[j] = take ? value : best[j];
              index[j] = take ? base + static_cast<int32_t>(j * col_stride) : index[j];
            }
          }
        }
        for (int64_t j = j0; j < j1; ++j) {
          y_row[j] = T(best[j]);
          index_out[j] = index[j];
        }
      }
    }
  }
}

template <typename T> void max_backward(const Tensor& grad_x, const Tensor& grad_y, const Tensor& indices) {
  const int64_t planes = grad_x.shape()[0] * grad_x.shape()[1], hw = grad_x.shape()[2] * grad_x.shape()[3];
  const int64_t ohw = grad_y.shape()[2] * grad_y.shape()[3];
  const T* gy = grad_y.data_ptr<T>();
  const int64_t* id = indices.data_ptr<int64_t>();
  T* gx = grad_x.data_ptr<T>();
#pragma omp parallel for schedule(static) if (planes * hw > 32768)
  for (int64_t plane = 0; plane < planes; ++plane) {
    T* gxp = gx + plane * hw;
    std::fill(gxp, gxp + hw, T(0));
    for (int64_t k = 0; k < ohw; ++k) gxp[id[plane * ohw + k]] += gy[plane * ohw + k];
  }
}

inline int64_t divisor_of(const PoolAxis& rows, const PoolAxis& cols, int64_t i, int64_t j, AvgDivisor divisor) {
  if (divisor.divisor_override > 0) return divisor.divisor_override;
  if (divisor.count_include_pad) return rows.padded_size[i] * cols.padded_size[j];
  return (rows.end[i] - rows.start[i]) * (cols.end[j] - cols.start[j]);
}

template <typename T>
void avg_forward(const Tensor& y, const Tensor& x, const PoolAxis& rows, const PoolAxis& cols, AvgDivisor divisor) {
  using Acc = compute_t<T>;
  const int64_t planes = x.shape()[0] * x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  const int64_t oh = y.shape()[2], ow = y.shape()[3];
  const T* xd = x.data_ptr<T>();
  T* yd = y.data_ptr<T>();
#pragma omp parallel for schedule(static) if (planes * h * w > 32768)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const T* xp = xd + plane * h * w;
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        T& out = yd[plane * oh * ow + i * ow + j];
        if (rows.start[i] >= rows.end[i] || cols.start[j] >= cols.end[j]) {
          out = T(0);
          continue;
        }
        Acc sum = 0;
        for (int64_t r = rows.start[i]; r < rows.end[i]; ++r)
          for (int64_t c = cols.start[j]; c < cols.end[j]; ++c) sum += static_cast<Acc>(xp[r * w + c]);
        out = T(sum / static_cast<Acc>(divisor_of(rows, cols, i, j, divisor)));
      }
    }
  }
}

template <typename T>
void avg_backward(const Tensor& grad_x, const Tensor& grad_y, const PoolAxis& rows, const PoolAxis& cols,
                  AvgDivisor divisor) {
  const int64_t planes = grad_x.shape()[0] * grad_x.shape()[1], h = grad_x.shape()[2], w = grad_x.shape()[3];
  const int64_t oh = grad_y.shape()[2], ow = grad_y.shape()[3];
  const T* gy = grad_y.data_ptr<T>();
  T* gx = grad_x.data_ptr<T>();
#pragma omp parallel for schedule(static) if (planes * h * w > 32768)
  for (int64_t plane = 0; plane < planes; ++plane) {
    T* gxp = gx + plane * h * w;
    std::fill(gxp, gxp + h * w, T(0));
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        if (rows.start[i] >= rows.end[i] || cols.start[j] >= cols.end[j]) continue;
        const T share = gy[plane * oh * ow + i * ow + j] / static_cast<T>(divisor_of(rows, cols, i, j, divisor));
        for (int64_t r = rows.start[i]; r < rows.end[i]; ++r)
          for (int64_t c = cols.start[j]; c < cols.end[j]; ++c) gxp[r * w + c] += share;
      }
    }
  }
}

template <template <typename> class Body, typename... Args> void by_dtype(DType dtype, Args&&... args) {
  switch (dtype) {
    case DType::f32: return Body<float>::run(args...);
    case DType::f64: return Body<double>::run(args...);
    case DType::bf16: return Body<BFloat16>::run(args...);
    case DType::f16: return Body<Half>::run(args...);
    default: KEEL_ASSERT(false);
  }
}
template <typename T> struct MaxForward {
  static void run(const Tensor& y, const Tensor& i, const Tensor& x, const PoolAxis& r, const PoolAxis& c) {
    max_forward<T>(y, i, x, r, c);
  }
};
template <typename T> struct AvgForward {
  static void run(const Tensor& y, const Tensor& x, const PoolAxis& r, const PoolAxis& c, AvgDivisor d) {
    avg_forward<T>(y, x, r, c, d);
  }
};

}  // namespace

// ---- f32 fast path: kernel 2x2, stride 2, no padding, dilation 1, floor-sized output ----------
// Output row i reads input rows 2i and 2i+1; output j reads columns 2j, 2j+1 (a trailing odd
// row/column is never read). The four taps in PyTorch's window order, (2i,2j), (2i,2j+1),
// (2i+1,2j), (2i+1,2j+1), through the same rule as the general loop (take a tap when it is
// greater than the best so far or NaN), so values, indices, ties and NaNs come out identical.
// AVX-512: 16 outputs per step (two 16-float loads per row, even/odd columns split with vpermt2ps);
// AVX2: 8 outputs per step (vshufps + vpermpd). Indices: i32 within the plane, widened to i64.
// Backward: the saved index of output (i, j) must lie in its 2x2 window (checked per output; a
// plane with any other index goes through the general scatter), then dx is written once, densely
// (the window's four positions get dy or 0), with no zero fill and no scatter.
// The baseline path (KEEL_CPU_ISA=baseline) keeps the general loops: tests compare against it.
namespace {

inline bool pool_2x2(const PoolAxis& rows, const PoolAxis& cols) {
  auto fits = [](const PoolAxis& a) { return a.kernel == 2 && a.stride == 2 && a.padding == 0 && a.dilation == 1; };
  return fits(rows) && fits(cols);
}

#define KEEL_POOL_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))
#define KEEL_POOL_AVX2 __attribute__((target("avx2,fma")))

// Masks for outputs [j, j + n) of an output row, n <= 16: the outputs, and the first and second
// 16 floats of the 2n input floats under them in each input row.
struct RowMasks {
  __mmask16 out, low, high;
};
KEEL_POOL_AVX512 inline RowMasks row_masks(int64_t n) {
  return {static_cast<__mmask16>((uint32_t(1) << n) - 1),
          static_cast<__mmask16>(n >= 8 ? 0xffff : (uint32_t(1) << (2 * n)) - 1),
          static_cast<__mmask16>(n > 8 ? (uint32_t(1) << (2 * n - 16)) - 1 : 0)};
}

KEEL_POOL_AVX512 inline __m512i tap16(__m512 value, __m512& best, __m512i rel, __m512i code) {
  const __mmask16 take = _mm512_cmp_ps_mask(value, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(value, value, _CMP_UNORD_Q);
  best = _mm512_mask_mov_ps(best, take, value);
  return _mm512_mask_mov_epi32(rel, take, code);
}

// Output row: r0, r1 the input rows, base = 2 i W (the plane offset of r0).
KEEL_POOL_AVX512 void max_row_avx512(const float* r0, const float* r1, float* y, int64_t* index, int64_t ow,
                                     int32_t base, int32_t w) {
  const __m512i lane2 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(lane2, _mm512_set1_epi32(1));
  const __m512i one = _mm512_set1_epi32(1), code_w = _mm512_set1_epi32(w), code_w1 = _mm512_set1_epi32(w + 1);
  for (int64_t j = 0; j < ow; j += 16) {
    const auto [m_out, m_lo, m_hi] = row_masks(std::min<int64_t>(16, ow - j));
    const float* p0 = r0 + 2 * j;
    const float* p1 = r1 + 2 * j;
    const __m512 a0 = _mm512_maskz_loadu_ps(m_lo, p0), a1 = _mm512_maskz_loadu_ps(m_hi, p0 + 16);
    const __m512 b0 = _mm512_maskz_loadu_ps(m_lo, p1), b1 = _mm512_maskz_loadu_ps(m_hi, p1 + 16);
    __m512 best = _mm512_permutex2var_ps(a0, lane2, a1);
    __m512i rel = _mm512_setzero_si512();
    rel = tap16(_mm512_permutex2var_ps(a0, odd, a1), best, rel, one);
    rel = tap16(_mm512_permutex2var_ps(b0, lane2, b1), best, rel, code_w);
    rel = tap16(_mm512_permutex2var_ps(b0, odd, b1), best, rel, code_w1);
    const __m512i flat = _mm512_add_epi32(_mm512_set1_epi32(base + static_cast<int32_t>(2 * j)), _mm512_add_epi32(lane2, rel));
    _mm512_mask_storeu_ps(y + j, m_out, best);
    _mm512_mask_storeu_epi64(index + j, static_cast<__mmask8>(m_out), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(flat)));
    _mm512_mask_storeu_epi64(index + j + 8, static_cast<__mmask8>(m_out >> 8),
                             _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(flat, 1)));
  }
}

// Two output rows i, i+1 in one vector when ow <= 8 (the 14x14 -> 7x7 pool would fill 7 of 16
// lanes otherwise): lanes [0, ow) from input rows 2i, 2i+1, lanes [ow, 2 ow) from rows 2i+2,
// 2i+3; the two output rows are adjacent in y and in the indices.
struct Packed2 {
  // lane -> element of (input row pair of output row i: 0..15, of row i+1: 16..31), even taps;
  // lane -> flat offset from 2 i W of its window (2 j, or 2 W + 2 j for row i+1).
  alignas(64) int32_t even[16], odd[16], offset[16];
  // Backward: dx columns 0 .. 2 ow - 1 of the first / second row pair from (e: lanes 0..15,
  // o: 16..31), e and o the gradients at the even / odd column taps.
  alignas(64) int32_t mix_first[16], mix_second[16];
  uint32_t mask = 0;  // lanes [0, 2 ow)
};
Packed2 packed2(int64_t ow, int64_t w) {
  Packed2 k;
  for (int64_t l = 0; l < 16; ++l) {
    const bool second = l >= ow && l < 2 * ow;
    const int64_t j = second ? l - ow : l;
    k.even[l] = l < 2 * ow ? static_cast<int32_t>((second ? 16 : 0) + 2 * j) : 0;
    k.odd[l] = k.even[l] + 1;
    k.offset[l] = l < 2 * ow ? static_cast<int32_t>((second ? 2 * w : 0) + 2 * j) : 0;
    const int32_t from = static_cast<int32_t>(l / 2 + (l % 2 ? 16 : 0));
    k.mix_first[l] = l < 2 * ow ? from : 0;
    k.mix_second[l] = l < 2 * ow ? from + static_cast<int32_t>(ow) : 0;
  }
  k.mask = (uint32_t(1) << (2 * ow)) - 1;
  return k;
}

// Output rows i and i+1 (base = 2 i W): x rows at xp + base, + W, + 2W, + 3W.
KEEL_POOL_AVX512 void max_rows2_avx512(const Packed2& k, const float* xp, float* y, int64_t* index, int32_t base,
                                       int32_t w) {
  const __m512i one = _mm512_set1_epi32(1), code_w = _mm512_set1_epi32(w), code_w1 = _mm512_set1_epi32(w + 1);
  const __m512i even = _mm512_load_si512(k.even), odd = _mm512_load_si512(k.odd);
  const __mmask16 m = static_cast<__mmask16>(k.mask);  // 2 ow lanes out; the same 2 ow columns in per row
  const float* p = xp + base;
  const __m512 a0 = _mm512_maskz_loadu_ps(m, p), b0 = _mm512_maskz_loadu_ps(m, p + w);
  const __m512 a1 = _mm512_maskz_loadu_ps(m, p + 2 * w), b1 = _mm512_maskz_loadu_ps(m, p + 3 * w);
  __m512 best = _mm512_permutex2var_ps(a0, even, a1);
  __m512i rel = _mm512_setzero_si512();
  rel = tap16(_mm512_permutex2var_ps(a0, odd, a1), best, rel, one);
  rel = tap16(_mm512_permutex2var_ps(b0, even, b1), best, rel, code_w);
  rel = tap16(_mm512_permutex2var_ps(b0, odd, b1), best, rel, code_w1);
  const __m512i flat = _mm512_add_epi32(_mm512_set1_epi32(base), _mm512_add_epi32(_mm512_load_si512(k.offset), rel));
  _mm512_mask_storeu_ps(y, m, best);
  _mm512_mask_storeu_epi64(index, static_cast<__mmask8>(m), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(flat)));
  _mm512_mask_storeu_epi64(index + 8, static_cast<__mmask8>(m >> 8),
                           _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(flat, 1)));
}

// Backward row: writes dx rows d0 = 2i and d1 = 2i+1 (columns 0 .. 2 ow - 1); false on an index
// outside its window.
KEEL_POOL_AVX512 bool max_row_backward_avx512(const float* gy, const int64_t* index, float* d0, float* d1,
                                              int64_t ow, int32_t base, int32_t w) {
  const __m512i lane2 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i mix_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i mix_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i one = _mm512_set1_epi32(1), code_w = _mm512_set1_epi32(w), code_w1 = _mm512_set1_epi32(w + 1);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t j = 0; j < ow; j += 16) {
    const auto [m_out, m_lo, m_hi] = row_masks(std::min<int64_t>(16, ow - j));
    const __m512 g = _mm512_maskz_loadu_ps(m_out, gy + j);
    // Saturating narrowing: an index beyond 32 bits can never match a window position.
    const __m256i i_lo = _mm512_cvtsepi64_epi32(_mm512_maskz_loadu_epi64(static_cast<__mmask8>(m_out), index + j));
    const __m256i i_hi =
        _mm512_cvtsepi64_epi32(_mm512_maskz_loadu_epi64(static_cast<__mmask8>(m_out >> 8), index + j + 8));
    const __m512i flat = _mm512_inserti64x4(_mm512_castsi256_si512(i_lo), i_hi, 1);
    const __m512i rel =
        _mm512_sub_epi32(flat, _mm512_add_epi32(_mm512_set1_epi32(base + static_cast<int32_t>(2 * j)), lane2));
    const __mmask16 t0 = _mm512_cmpeq_epi32_mask(rel, _mm512_setzero_si512());
    const __mmask16 t1 = _mm512_cmpeq_epi32_mask(rel, one);
    const __mmask16 t2 = _mm512_cmpeq_epi32_mask(rel, code_w);
    const __mmask16 t3 = _mm512_cmpeq_epi32_mask(rel, code_w1);
    if (static_cast<__mmask16>((t0 | t1 | t2 | t3) & m_out) != m_out) return false;
    const __m512 e0 = _mm512_maskz_add_ps(t0, zero, g), o0 = _mm512_maskz_add_ps(t1, zero, g);
    const __m512 e1 = _mm512_maskz_add_ps(t2, zero, g), o1 = _mm512_maskz_add_ps(t3, zero, g);
    float* q0 = d0 + 2 * j;
    float* q1 = d1 + 2 * j;
    _mm512_mask_storeu_ps(q0, m_lo, _mm512_permutex2var_ps(e0, mix_lo, o0));
    _mm512_mask_storeu_ps(q0 + 16, m_hi, _mm512_permutex2var_ps(e0, mix_hi, o0));
    _mm512_mask_storeu_ps(q1, m_lo, _mm512_permutex2var_ps(e1, mix_lo, o1));
    _mm512_mask_storeu_ps(q1 + 16, m_hi, _mm512_permutex2var_ps(e1, mix_hi, o1));
  }
  return true;
}

// Backward of output rows i and i+1 (ow <= 8): dx rows 2i .. 2i+3 at d = dx + 2 i W.
KEEL_POOL_AVX512 bool max_rows2_backward_avx512(const Packed2& k, const float* gy, const int64_t* index, float* d,
                                                int32_t base, int32_t w) {
  const __m512i one = _mm512_set1_epi32(1), code_w = _mm512_set1_epi32(w), code_w1 = _mm512_set1_epi32(w + 1);
  const __mmask16 m = static_cast<__mmask16>(k.mask);
  const __m512 zero = _mm512_setzero_ps();
  const __m512 g = _mm512_maskz_loadu_ps(m, gy);
  const __m256i i_lo = _mm512_cvtsepi64_epi32(_mm512_maskz_loadu_epi64(static_cast<__mmask8>(m), index));
  const __m256i i_hi = _mm512_cvtsepi64_epi32(_mm512_maskz_loadu_epi64(static_cast<__mmask8>(m >> 8), index + 8));
  const __m512i flat = _mm512_inserti64x4(_mm512_castsi256_si512(i_lo), i_hi, 1);
  const __m512i rel =
      _mm512_sub_epi32(flat, _mm512_add_epi32(_mm512_set1_epi32(base), _mm512_load_si512(k.offset)));
  const __mmask16 t0 = _mm512_cmpeq_epi32_mask(rel, _mm512_setzero_si512());
  const __mmask16 t1 = _mm512_cmpeq_epi32_mask(rel, one);
  const __mmask16 t2 = _mm512_cmpeq_epi32_mask(rel, code_w);
  const __mmask16 t3 = _mm512_cmpeq_epi32_mask(rel, code_w1);
  if (static_cast<__mmask16>((t0 | t1 | t2 | t3) & m) != m) return false;
  const __m512 e0 = _mm512_maskz_add_ps(t0, zero, g), o0 = _mm512_maskz_add_ps(t1, zero, g);
  const __m512 e1 = _mm512_maskz_add_ps(t2, zero, g), o1 = _mm512_maskz_add_ps(t3, zero, g);
  const __m512i first = _mm512_load_si512(k.mix_first), second = _mm512_load_si512(k.mix_second);
  _mm512_mask_storeu_ps(d, m, _mm512_permutex2var_ps(e0, first, o0));
  _mm512_mask_storeu_ps(d + w, m, _mm512_permutex2var_ps(e1, first, o1));
  _mm512_mask_storeu_ps(d + 2 * w, m, _mm512_permutex2var_ps(e0, second, o0));
  _mm512_mask_storeu_ps(d + 3 * w, m, _mm512_permutex2var_ps(e1, second, o1));
  return true;
}

KEEL_POOL_AVX2 inline __m256i tap8(__m256 value, __m256& best, __m256i rel, __m256i code) {
  const __m256 take = _mm256_or_ps(_mm256_cmp_ps(value, best, _CMP_GT_OQ), _mm256_cmp_ps(value, value, _CMP_UNORD_Q));
  best = _mm256_blendv_ps(best, value, take);
  return _mm256_blendv_epi8(rel, code, _mm256_castps_si256(take));
}

// Even and odd elements of a[0..7], b[0..7]: [a0 a2 a4 a6 b0 b2 b4 b6], [a1 a3 ... b7].
KEEL_POOL_AVX2 inline __m256 even8(__m256 a, __m256 b) {
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
}
KEEL_POOL_AVX2 inline __m256 odd8(__m256 a, __m256 b) {
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}

// Lanes [0, n) of 8 (n may be <= 0 or >= 8).
KEEL_POOL_AVX2 inline __m256i first_lanes8(int64_t n) {
  const int32_t k = static_cast<int32_t>(std::clamp<int64_t>(n, 0, 8));
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// i64 lanes [0, n) of 4, as a mask for _mm256_maskstore_epi64.
KEEL_POOL_AVX2 inline __m256i first_lanes4x64(int64_t n) {
  const int64_t k = std::clamp<int64_t>(n, 0, 4);
  return _mm256_cmpgt_epi64(_mm256_set1_epi64x(k), _mm256_setr_epi64x(0, 1, 2, 3));
}

// 8 outputs per step; the last step masked (no scalar tail: with random data a per-window branch
// would mispredict).
KEEL_POOL_AVX2 void max_row_avx2(const float* r0, const float* r1, float* y, int64_t* index, int64_t ow,
                                 int32_t base, int32_t w) {
  const __m256i lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i one = _mm256_set1_epi32(1), code_w = _mm256_set1_epi32(w), code_w1 = _mm256_set1_epi32(w + 1);
  for (int64_t j = 0; j < ow; j += 8) {
    const int64_t n = std::min<int64_t>(8, ow - j);
    const float* p0 = r0 + 2 * j;
    const float* p1 = r1 + 2 * j;
    __m256 a0, a1, b0, b1;
    if (n == 8) {
      a0 = _mm256_loadu_ps(p0), a1 = _mm256_loadu_ps(p0 + 8);
      b0 = _mm256_loadu_ps(p1), b1 = _mm256_loadu_ps(p1 + 8);
    } else {
      const __m256i m_lo = first_lanes8(2 * n), m_hi = first_lanes8(2 * n - 8);
      a0 = _mm256_maskload_ps(p0, m_lo), a1 = _mm256_maskload_ps(p0 + 8, m_hi);
      b0 = _mm256_maskload_ps(p1, m_lo), b1 = _mm256_maskload_ps(p1 + 8, m_hi);
    }
    __m256 best = even8(a0, a1);
    __m256i rel = _mm256_setzero_si256();
    rel = tap8(odd8(a0, a1), best, rel, one);
    rel = tap8(even8(b0, b1), best, rel, code_w);
    rel = tap8(odd8(b0, b1), best, rel, code_w1);
    const __m256i flat = _mm256_add_epi32(_mm256_set1_epi32(base + static_cast<int32_t>(2 * j)), _mm256_add_epi32(lane2, rel));
    const __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(flat));
    const __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(flat, 1));
    if (n == 8) {
      _mm256_storeu_ps(y + j, best);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(index + j), lo);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(index + j + 4), hi);
    } else {
      _mm256_maskstore_ps(y + j, first_lanes8(n), best);
      _mm256_maskstore_epi64(reinterpret_cast<long long*>(index + j), first_lanes4x64(n), lo);
      _mm256_maskstore_epi64(reinterpret_cast<long long*>(index + j + 4), first_lanes4x64(n - 4), hi);
    }
  }
}

KEEL_POOL_AVX2 bool max_row_backward_avx2(const float* gy, const int64_t* index, float* d0, float* d1, int64_t ow,
                                          int32_t base, int32_t w) {
  const __m256i lane2 = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i low_halves = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  const __m256i one = _mm256_set1_epi32(1), code_w = _mm256_set1_epi32(w), code_w1 = _mm256_set1_epi32(w + 1);
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t j = 0; j < ow; j += 8) {
    const int64_t n = std::min<int64_t>(8, ow - j);
    __m256 g;
    __m256i v_lo, v_hi;
    if (n == 8) {
      g = _mm256_loadu_ps(gy + j);
      v_lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index + j));
      v_hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(index + j + 4));
    } else {  // masked-off lanes load 0 (rel = -(2 j') is no window position; they are not checked)
      g = _mm256_maskload_ps(gy + j, first_lanes8(n));
      v_lo = _mm256_maskload_epi64(reinterpret_cast<const long long*>(index + j), first_lanes4x64(n));
      v_hi = _mm256_maskload_epi64(reinterpret_cast<const long long*>(index + j + 4), first_lanes4x64(n - 4));
    }
    // An index must fit 32 bits (high halves all 0: indices are non-negative plane offsets).
    const __m256i high = _mm256_or_si256(_mm256_srli_epi64(v_lo, 32), _mm256_srli_epi64(v_hi, 32));
    if (!_mm256_testz_si256(high, high)) return false;
    const __m256i flat = _mm256_set_m128i(_mm256_castsi256_si128(_mm256_permutevar8x32_epi32(v_hi, low_halves)),
                                          _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(v_lo, low_halves)));
    const __m256i rel =
        _mm256_sub_epi32(flat, _mm256_add_epi32(_mm256_set1_epi32(base + static_cast<int32_t>(2 * j)), lane2));
    const __m256i t0 = _mm256_cmpeq_epi32(rel, _mm256_setzero_si256()), t1 = _mm256_cmpeq_epi32(rel, one);
    const __m256i t2 = _mm256_cmpeq_epi32(rel, code_w), t3 = _mm256_cmpeq_epi32(rel, code_w1);
    const __m256i any = _mm256_or_si256(_mm256_or_si256(t0, t1), _mm256_or_si256(t2, t3));
    const int live = n == 8 ? 0xff : (1 << n) - 1;
    if ((_mm256_movemask_ps(_mm256_castsi256_ps(any)) & live) != live) return false;
    const __m256 e0 = _mm256_add_ps(zero, _mm256_and_ps(_mm256_castsi256_ps(t0), g));
    const __m256 o0 = _mm256_add_ps(zero, _mm256_and_ps(_mm256_castsi256_ps(t1), g));
    const __m256 e1 = _mm256_add_ps(zero, _mm256_and_ps(_mm256_castsi256_ps(t2), g));
    const __m256 o1 = _mm256_add_ps(zero, _mm256_and_ps(_mm256_castsi256_ps(t3), g));
    float* q0 = d0 + 2 * j;
    float* q1 = d1 + 2 * j;
    const __m256 lo0 = _mm256_unpacklo_ps(e0, o0), hi0 = _mm256_unpackhi_ps(e0, o0);
    const __m256 lo1 = _mm256_unpacklo_ps(e1, o1), hi1 = _mm256_unpackhi_ps(e1, o1);
    if (n == 8) {
      _mm256_storeu_ps(q0, _mm256_permute2f128_ps(lo0, hi0, 0x20));
      _mm256_storeu_ps(q0 + 8, _mm256_permute2f128_ps(lo0, hi0, 0x31));
      _mm256_storeu_ps(q1, _mm256_permute2f128_ps(lo1, hi1, 0x20));
      _mm256_storeu_ps(q1 + 8, _mm256_permute2f128_ps(lo1, hi1, 0x31));
    } else {
      const __m256i m_lo = first_lanes8(2 * n), m_hi = first_lanes8(2 * n - 8);
      _mm256_maskstore_ps(q0, m_lo, _mm256_permute2f128_ps(lo0, hi0, 0x20));
      _mm256_maskstore_ps(q0 + 8, m_hi, _mm256_permute2f128_ps(lo0, hi0, 0x31));
      _mm256_maskstore_ps(q1, m_lo, _mm256_permute2f128_ps(lo1, hi1, 0x20));
      _mm256_maskstore_ps(q1 + 8, m_hi, _mm256_permute2f128_ps(lo1, hi1, 0x31));
    }
  }
  return true;
}

// 0: no fast path (baseline or a shape it does not cover), 1: AVX2, 2: AVX-512.
int fast_2x2_level() {
  const CpuFeatures f = cpu_features();
  return f.avx512 ? 2 : f.avx2 ? 1 : 0;
}

bool max_forward_2x2(const Tensor& y, const Tensor& indices, const Tensor& x, const PoolAxis& rows,
                     const PoolAxis& cols) {
  const int level = fast_2x2_level();
  if (level == 0 || x.dtype() != DType::f32 || !pool_2x2(rows, cols)) return false;
  const int64_t planes = x.shape()[0] * x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  const int64_t oh = y.shape()[2], ow = y.shape()[3];
  if (2 * oh > h || 2 * ow > w || h * w >= (int64_t(1) << 31)) return false;
  const float* xd = x.data_ptr<float>();
  float* yd = y.data_ptr<float>();
  int64_t* id = indices.data_ptr<int64_t>();
  Packed2 pack{};
  if (level == 2 && ow <= 8) pack = packed2(ow, w);
#pragma omp parallel for schedule(static) if (planes * h * w > 32768)
  for (int64_t plane = 0; plane < planes; ++plane) {
    const float* xp = xd + plane * h * w;
    int64_t i = 0;
    if (level == 2 && ow <= 8) {
      for (; i + 2 <= oh; i += 2)
        max_rows2_avx512(pack, xp, yd + (plane * oh + i) * ow, id + (plane * oh + i) * ow,
                         static_cast<int32_t>(2 * i * w), static_cast<int32_t>(w));
    }
    for (; i < oh; ++i) {
      const int32_t base = static_cast<int32_t>(2 * i * w);
      float* y_row = yd + (plane * oh + i) * ow;
      int64_t* i_row = id + (plane * oh + i) * ow;
      if (level == 2) max_row_avx512(xp + base, xp + base + w, y_row, i_row, ow, base, static_cast<int32_t>(w));
      else max_row_avx2(xp + base, xp + base + w, y_row, i_row, ow, base, static_cast<int32_t>(w));
    }
  }
  return true;
}

void max_backward_general_plane(float* gxp, const float* gy, const int64_t* id, int64_t hw, int64_t ohw) {
  std::fill(gxp, gxp + hw, 0.0f);
  for (int64_t k = 0; k < ohw; ++k) gxp[id[k]] += gy[k];
}

bool max_backward_2x2(const Tensor& grad_x, const Tensor& grad_y, const Tensor& indices) {
  const int level = fast_2x2_level();
  if (level == 0 || grad_x.dtype() != DType::f32) return false;
  const int64_t planes = grad_x.shape()[0] * grad_x.shape()[1], h = grad_x.shape()[2], w = grad_x.shape()[3];
  const int64_t oh = grad_y.shape()[2], ow = grad_y.shape()[3];
  // The shapes of a floor-mode 2x2 / stride 2 pool (other pools may give them too: their indices
  // then fail the window check and the plane takes the general scatter).
  if (oh != h / 2 || ow != w / 2 || oh == 0 || ow == 0 || h * w >= (int64_t(1) << 31)) return false;
  const float* gy = grad_y.data_ptr<float>();
  const int64_t* id = indices.data_ptr<int64_t>();
  float* gx = grad_x.data_ptr<float>();
  Packed2 pack{};
  if (level == 2 && ow <= 8) pack = packed2(ow, w);
#pragma omp parallel for schedule(static) if (planes * h * w > 32768)
  for (int64_t plane = 0; plane < planes; ++plane) {
    float* gxp = gx + plane * h * w;
    const float* gyp = gy + plane * oh * ow;
    const int64_t* idp = id + plane * oh * ow;
    bool ok = true;
    int64_t i = 0;
    if (level == 2 && ow <= 8) {
      for (; i + 2 <= oh && ok; i += 2) {
        float* d = gxp + 2 * i * w;
        ok = max_rows2_backward_avx512(pack, gyp + i * ow, idp + i * ow, d, static_cast<int32_t>(2 * i * w),
                                       static_cast<int32_t>(w));
        if (w > 2 * ow) d[w - 1] = d[2 * w - 1] = d[3 * w - 1] = d[4 * w - 1] = 0.0f;  // the dropped last column
      }
    }
    for (; i < oh && ok; ++i) {
      const int32_t base = static_cast<int32_t>(2 * i * w);
      float* d0 = gxp + base;
      float* d1 = d0 + w;
      ok = level == 2 ? max_row_backward_avx512(gyp + i * ow, idp + i * ow, d0, d1, ow, base, static_cast<int32_t>(w))
                      : max_row_backward_avx2(gyp + i * ow, idp + i * ow, d0, d1, ow, base, static_cast<int32_t>(w));
      if (w > 2 * ow) d0[w - 1] = d1[w - 1] = 0.0f;  // the dropped last column
    }
    if (!ok) {
      max_backward_general_plane(gxp, gyp, idp, h * w, oh * ow);
      continue;
    }
    if (h > 2 * oh) std::fill(gxp + 2 * oh * w, gxp + h * w, 0.0f);  // the dropped last row
  }
  return true;
}

// avg_pool2d f32, 2x2 / stride 2 / no padding, floor-sized output (AVX-512 only; AVX2 and
// baseline keep the general loop): every window is whole, so the divisor is divisor_override or
// 4; the sum in the general loop's order, 0 + x00 + x01 + x10 + x11 (so -0 sums alike), then a
// true division. Backward: dx = 0 + dy / divisor at the window's four positions (dense writes).
KEEL_POOL_AVX512 void avg_row_avx512(const float* r0, const float* r1, float* y, int64_t ow, float divisor) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512 zero = _mm512_setzero_ps(), d = _mm512_set1_ps(divisor);
  for (int64_t j = 0; j < ow; j += 16) {
    const auto [m_out, m_lo, m_hi] = row_masks(std::min<int64_t>(16, ow - j));
    const float* p0 = r0 + 2 * j;
    const float* p1 = r1 + 2 * j;
    const __m512 a0 = _mm512_maskz_loadu_ps(m_lo, p0), a1 = _mm512_maskz_loadu_ps(m_hi, p0 + 16);
    const __m512 b0 = _mm512_maskz_loadu_ps(m_lo, p1), b1 = _mm512_maskz_loadu_ps(m_hi, p1 + 16);
    __m512 sum = _mm512_add_ps(zero, _mm512_permutex2var_ps(a0, even, a1));
    sum = _mm512_add_ps(sum, _mm512_permutex2var_ps(a0, odd, a1));
    sum = _mm512_add_ps(sum, _mm512_permutex2var_ps(b0, even, b1));
    sum = _mm512_add_ps(sum, _mm512_permutex2var_ps(b0, odd, b1));
    _mm512_mask_storeu_ps(y + j, m_out, _mm512_div_ps(sum, d));
  }
}

KEEL_POOL_AVX512 void avg_row_backward_avx512(const float* gy, float* d0, float* d1, int64_t ow, float divisor) {
  const __m512i dup_lo = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m512i dup_hi = _mm512_setr_epi32(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
  const __m512 zero = _mm512_setzero_ps(), d = _mm512_set1_ps(divisor);
  for (int64_t j = 0; j < ow; j += 16) {
    const auto [m_out, m_lo, m_hi] = row_masks(std::min<int64_t>(16, ow - j));
    const __m512 share = _mm512_add_ps(zero, _mm512_div_ps(_mm512_maskz_loadu_ps(m_out, gy + j), d));
    const __m512 lo = _mm512_permutexvar_ps(dup_lo, share), hi = _mm512_permutexvar_ps(dup_hi, share);
    _mm512_mask_storeu_ps(d0 + 2 * j, m_lo, lo);
    _mm512_mask_storeu_ps(d0 + 2 * j + 16, m_hi, hi);
    _mm512_mask_storeu_ps(d1 + 2 * j, m_lo, lo);
    _mm512_mask_storeu_ps(d1 + 2 * j + 16, m_hi, hi);
  }
}

bool avg_2x2_applies(const Tensor& x, const Tensor& y, const PoolAxis& rows, const PoolAxis& cols) {
  if (fast_2x2_level() != 2 || x.dtype() != DType::f32 || !pool_2x2(rows, cols)) return false;
  const int64_t h = x.shape()[2], w = x.shape()[3];
  return 2 * y.shape()[2] <= h && 2 * y.shape()[3] <= w && y.shape()[2] > 0 && y.shape()[3] > 0;
}

bool avg_forward_2x2(const Tensor& y, const Tensor& x, const PoolAxis& rows, const PoolAxis& cols,
                     AvgDivisor divisor) {
  if (!avg_2x2_applies(x, y, rows, cols)) return false;
  const int64_t planes = x.shape()[0] * x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  const int64_t oh = y.shape()[2], ow = y.shape()[3];
  const float d = static_cast<float>(divisor.divisor_override > 0 ? divisor.divisor_override : 4);
  const float* xd = x.data_ptr<float>();
  float* yd = y.data_ptr<float>();
#pragma omp parallel for schedule(static) if (planes * h * w > 32768)
  for (int64_t plane = 0; plane < planes; ++plane)
    for (int64_t i = 0; i < oh; ++i) {
      const float* r0 = xd + plane * h * w + 2 * i * w;
      avg_row_avx512(r0, r0 + w, yd + (plane * oh + i) * ow, ow, d);
    }
  return true;
}

bool avg_backward_2x2(const Tensor& grad_x, const Tensor& grad_y, const PoolAxis& rows, const PoolAxis& cols,
                      AvgDivisor divisor) {
  if (!avg_2x2_applies(grad_x, grad_y, rows, cols)) return false;
  const int64_t planes = grad_x.shape()[0] * grad_x.shape()[1], h = grad_x.shape()[2], w = grad_x.shape()[3];
  const int64_t oh = grad_y.shape()[2], ow = grad_y.shape()[3];
  const float d = static_cast<float>(divisor.divisor_override > 0 ? divisor.divisor_override : 4);
  const float* gy = grad_y.data_ptr<float>();
  float* gx = grad_x.data_ptr<float>();
#pragma omp parallel for schedule(static) if (planes * h * w > 32768)
  for (int64_t plane = 0; plane < planes; ++plane) {
    float* gxp = gx + plane * h * w;
    for (int64_t i = 0; i < oh; ++i) {
      float* d0 = gxp + 2 * i * w;
      avg_row_backward_avx512(gy + (plane * oh + i) * ow, d0, d0 + w, ow, d);
      std::fill(d0 + 2 * ow, d0 + w, 0.0f);  // the dropped last column
      std::fill(d0 + w + 2 * ow, d0 + 2 * w, 0.0f);
    }
    std::fill(gxp + 2 * oh * w, gxp + h * w, 0.0f);  // the dropped last row
  }
  return true;
}

}  // namespace

void max_pool2d_forward(const Tensor& y, const Tensor& indices, const Tensor& x, const PoolAxis& rows,
                        const PoolAxis& cols) {
  if (max_forward_2x2(y, indices, x, rows, cols)) return;
  by_dtype<MaxForward>(x.dtype(), y, indices, x, rows, cols);
}
void max_pool2d_backward(const Tensor& grad_x, const Tensor& grad_y, const Tensor& indices) {
  KEEL_ASSERT(grad_x.dtype() == DType::f32 || grad_x.dtype() == DType::f64);
  if (max_backward_2x2(grad_x, grad_y, indices)) return;
  if (grad_x.dtype() == DType::f64) max_backward<double>(grad_x, grad_y, indices);
  else max_backward<float>(grad_x, grad_y, indices);
}
void avg_pool2d_forward(const Tensor& y, const Tensor& x, const PoolAxis& rows, const PoolAxis& cols,
                        AvgDivisor divisor) {
  if (avg_forward_2x2(y, x, rows, cols, divisor)) return;
  by_dtype<AvgForward>(x.dtype(), y, x, rows, cols, divisor);
}
void avg_pool2d_backward(const Tensor& grad_x, const Tensor& grad_y, const PoolAxis& rows, const PoolAxis& cols,
                         AvgDivisor divisor) {
  KEEL_ASSERT(grad_x.dtype() == DType::f32 || grad_x.dtype() == DType::f64);
  if (avg_backward_2x2(grad_x, grad_y, rows, cols, divisor)) return;
  if (grad_x.dtype() == DType::f64) avg_backward<double>(grad_x, grad_y, rows, cols, divisor);
  else avg_backward<float>(grad_x, grad_y, rows, cols, divisor);
}

}  // namespace keel::cpu
