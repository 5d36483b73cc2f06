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
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <limits>

#include "keel/core/half.h"
#include "keel/kernels/cpu/conv_kernels.h"

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

void max_pool2d_forward(const Tensor& y, const Tensor& indices, const Tensor& x, const PoolAxis& rows,
                        const PoolAxis& cols) {
  by_dtype<MaxForward>(x.dtype(), y, indices, x, rows, cols);
}
void max_pool2d_backward(const Tensor& grad_x, const Tensor& grad_y, const Tensor& indices) {
  KEEL_ASSERT(grad_x.dtype() == DType::f32 || grad_x.dtype() == DType::f64);
  if (grad_x.dtype() == DType::f64) max_backward<double>(grad_x, grad_y, indices);
  else max_backward<float>(grad_x, grad_y, indices);
}
void avg_pool2d_forward(const Tensor& y, const Tensor& x, const PoolAxis& rows, const PoolAxis& cols,
                        AvgDivisor divisor) {
  by_dtype<AvgForward>(x.dtype(), y, x, rows, cols, divisor);
}
void avg_pool2d_backward(const Tensor& grad_x, const Tensor& grad_y, const PoolAxis& rows, const PoolAxis& cols,
                         AvgDivisor divisor) {
  KEEL_ASSERT(grad_x.dtype() == DType::f32 || grad_x.dtype() == DType::f64);
  if (grad_x.dtype() == DType::f64) avg_backward<double>(grad_x, grad_y, rows, cols, divisor);
  else avg_backward<float>(grad_x, grad_y, rows, cols, divisor);
}

}  // namespace keel::cpu
