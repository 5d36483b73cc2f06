// Fused row kernels: softmax, log_softmax, layer_norm, rms_norm (forward and backward).
//
// Every tensor is a contiguous [R, C] matrix (R rows, C columns; the op moved the reduced dim
// last and flattened the rest); x, y, dy, dx share one storage dtype T (f32, bf16 or f16) and
// compute in f32; per-row statistics and the affine parameters are f32.
//
//   softmax       y = exp(x - m) / s,   m = max_c x,  s = sum_c exp(x - m)
//                 dx = y * (dy - sum_c(dy * y))
//   log_softmax   y = x - m - log s
//                 dx = dy - exp(y) * sum_c(dy)
//   layer_norm    mean = sum_c x / C, rstd = 1 / sqrt(sum_c (x - mean)^2 / C + eps),
//                 xhat = (x - mean) * rstd,  y = xhat * w + b          (w, b: [C], optional)
//                 g = dy * w:  dx = rstd * (g - mean_c g - xhat * mean_c(g * xhat))
//                 dw = sum_r dy * xhat,  db = sum_r dy
//   rms_norm      rstd = 1 / sqrt(sum_c x^2 / C + eps), xhat = x * rstd, y = xhat * w
//                 dx = rstd * (g - xhat * mean_c(g * xhat)),  dw = sum_r dy * xhat
//     saved by the ops: y (softmax), mean and rstd as f32 [R] (norms).
//
// Bytes per call (the memory traffic the kernels aim for): forward R*C*sizeof(T) read + the same
// written; backward two such reads (y or x, and dy) + one write. FLOPs are a few per element,
// ~11 vector instructions per 16 elements for softmax's exp (simd.h): the norms, the backward
// kernels and the f32 softmax forward run near the bandwidth of the cache level their data sits
// in (the softmax forward once it prefetches across rows: see the exp pass); the bf16 softmax
// forward, with half the bytes per element, is bound by the ~19 vector instructions per 16
// elements (max, exp, scale, bf16 conversions) on the two AVX-512 ports (see
// bench/kernels/norms_bench.cpp).
//
// Passes: a row is read from memory once and then re-read from L1/L2 (statistics pass, then the
// write pass). layer_norm takes both moments of d = x - x[0] in one pass (a second pass over
// (d - mean d)^2 when x[0] lies far from the mean). Softmax rows of up to kCachedRow elements keep
// their exponentials in an f32 scratch row (max pass, exp pass, scale pass; exp runs once per
// element). Longer softmax rows go in chunks: the max and the
// rescaled sum of each chunk are taken while the chunk is in L1 (online softmax: s = s * exp(m_old
// - m_new) + chunk sum), then one write pass recomputes exp: two reads of x from memory.
// Sums accumulate in f32 lanes (4 vectors) per chunk of at most kChunk elements and in double
// across chunks. Rows are split across OpenMP threads above kGrain elements of work; the norm
// backward gives each thread a block of rows and its own f32 dw/db partial row, summed at the end
// in double. Reference: the composites of ops/nn_functional.cpp in float64.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "keel/kernels/cpu/cpu_features.h"
#include "keel/kernels/cpu/fused_kernels.h"
#include "keel/kernels/cpu/simd.h"

namespace keel::cpu::KEEL_CPU_ISA {

namespace {

using namespace simd;

constexpr int64_t kGrain = 32768;        // elements of work below which one thread runs
constexpr int64_t kCachedRow = 16384;    // softmax rows up to this length use the scratch row
constexpr int64_t kChunk = 4096;         // f32 lane sums cover at most this many elements
constexpr int kUnroll = 4;

int threads_for(int64_t work) { return work < kGrain ? 1 : omp_get_max_threads(); }

// sum over i in [0, n) of f(i, count) where f gives the vector at element i with `count` valid
// lanes; lanes past count must come out 0 (f uses the fill of simd::load or selects).
template <typename F> double sum_lanes(int64_t n, F f) {
  double total = 0.0;
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t end = std::min(n, start + kChunk);
    vfloat acc[kUnroll] = {};
    int64_t i = start;
    for (; i + kUnroll * kWidth <= end; i += kUnroll * kWidth)
      for (int u = 0; u < kUnroll; ++u) acc[u] += f(i + u * kWidth, kWidth);
    for (; i < end; i += kWidth) acc[0] += f(i, std::min<int64_t>(kWidth, end - i));
    total += static_cast<double>(reduce_add((acc[0] + acc[1]) + (acc[2] + acc[3])));
  }
  return total;
}

template <typename T> float row_max(const T* x, int64_t n) {
  vfloat acc[kUnroll];
  for (auto& a : acc) a = splat(-INFINITY);
  int64_t i = 0;
  for (; i + kUnroll * kWidth <= n; i += kUnroll * kWidth)
    for (int u = 0; u < kUnroll; ++u) acc[u] = max(acc[u], load(x + i + u * kWidth));
  for (; i < n; i += kWidth) acc[0] = max(acc[0], load(x + i, std::min<int64_t>(kWidth, n - i), -INFINITY));
  return reduce_max(max(max(acc[0], acc[1]), max(acc[2], acc[3])));
}

// ---- softmax forward ------------------------------------------------------------------------------
// R rows of up to kCachedRow elements at once: rows x + k n, y + k n, scratch + k (n + kWidth),
// k < R; each row takes the same arithmetic as alone (the same lanes and order of the sums). The
// ops use R = 1: two rows interleaved (so that one row's reductions overlap the other's vector
// work) measured slower for f32 4096 x 1024 (44 against 57 GB/s, 2 threads; four streams to
// memory instead of two) and within noise elsewhere.
template <int R, typename T> void softmax_cached_rows(T* y, const T* x, int64_t n, bool is_log, float* scratch) {
  const int64_t stride = n + kWidth;  // scratch rows
  // Max pass.
  vfloat macc[R][kUnroll];
  for (auto& row : macc)
    for (auto& a : row) a = splat(-INFINITY);
  int64_t i = 0;
  for (; i + kUnroll * kWidth <= n; i += kUnroll * kWidth)
    for (int u = 0; u < kUnroll; ++u)
      for (int k = 0; k < R; ++k) macc[k][u] = max(macc[k][u], load(x + k * n + i + u * kWidth));
  for (; i < n; i += kWidth)
    for (int k = 0; k < R; ++k)
      macc[k][0] = max(macc[k][0], load(x + k * n + i, std::min<int64_t>(kWidth, n - i), -INFINITY));
  vfloat vm[R];
  float m[R];
  for (int k = 0; k < R; ++k) {
    m[k] = reduce_max(max(max(macc[k][0], macc[k][1]), max(macc[k][2], macc[k][3])));
    vm[k] = splat(m[k]);
  }
  // Exp pass: e = exp(x - m) into the f32 scratch row (softmax), summed in f32 lanes per chunk.
  // Meanwhile fetch the next rows of x (rows are contiguous; a prefetch past the end of the
  // tensor is harmless) and take the lines of these rows of y for writing: rows of 4 KiB are
  // whole pages, where the hardware prefetcher stops, and stores that miss would otherwise stall
  // the write pass (1.6 -> 1.2 ms per 4096 x 1024 f32 rows, one thread).
  double s[R] = {};
  auto step = [&](int k, int64_t j, int64_t count) {
    __builtin_prefetch(x + (R + k) * n + j, 0, 3);
    __builtin_prefetch(y + k * n + j, 1, 3);
    const vfloat e = exp_nonpositive(load(x + k * n + j, count, -INFINITY) - vm[k]);
    if (!is_log) store(scratch + k * stride + j, e);  // scratch has room for a whole last vector
    return e;
  };
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t end = std::min(n, start + kChunk);
    vfloat acc[R][kUnroll] = {};
    int64_t j = start;
    for (; j + kUnroll * kWidth <= end; j += kUnroll * kWidth)
      for (int u = 0; u < kUnroll; ++u)
        for (int k = 0; k < R; ++k) acc[k][u] += step(k, j + u * kWidth, kWidth);
    for (; j < end; j += kWidth)
      for (int k = 0; k < R; ++k) acc[k][0] += step(k, j, std::min<int64_t>(kWidth, end - j));
    for (int k = 0; k < R; ++k)
      s[k] += static_cast<double>(reduce_add((acc[k][0] + acc[k][1]) + (acc[k][2] + acc[k][3])));
  }
  // Write pass.
  for (int k = 0; k < R; ++k) {
    T* yk = y + k * n;
    if (is_log) {
      const T* xk = x + k * n;
      const vfloat shift = splat(static_cast<float>(m[k] + std::log(s[k])));
      for (int64_t j = 0; j < n; j += kWidth) {
        const int64_t count = std::min<int64_t>(kWidth, n - j);
        store(yk + j, load(xk + j, count, 0.f) - shift, count);
      }
    } else {
      const float* ek = scratch + k * stride;
      const vfloat inv = splat(static_cast<float>(1.0 / s[k]));
      int64_t j = 0;
      for (; j + 2 * kWidth <= n; j += 2 * kWidth) store_pair(yk + j, load(ek + j) * inv, load(ek + j + kWidth) * inv);
      for (; j < n; j += kWidth) store(yk + j, load(ek + j) * inv, std::min<int64_t>(kWidth, n - j));
    }
  }
}

// Rows longer than kCachedRow, in chunks that stay in L1 (online softmax), then one write pass.
template <typename T> void softmax_long_row(T* y, const T* x, int64_t n, bool is_log) {
  float m = -INFINITY;
  double s = 0.0;
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t count = std::min(kChunk, n - start);
    const float chunk_max = row_max(x + start, count);
    if (std::isnan(chunk_max)) {  // the whole row is NaN
      m = chunk_max;
      s = chunk_max;
      break;
    }
    const float new_m = std::max(m, chunk_max);
    if (new_m == -INFINITY) continue;  // all -inf so far: nothing to add
    const vfloat vm = splat(new_m);
    const double chunk_sum = sum_lanes(count, [&](int64_t i, int64_t c) {
      return exp_nonpositive(load(x + start + i, c, -INFINITY) - vm);
    });
    s = s * std::exp(static_cast<double>(m) - new_m) + chunk_sum;
    m = new_m;
  }
  const vfloat vm = splat(m);
  if (is_log) {
    const vfloat shift = splat(static_cast<float>(m + std::log(s)));
    for (int64_t i = 0; i < n; i += kWidth) {
      const int64_t count = std::min<int64_t>(kWidth, n - i);
      store(y + i, load(x + i, count, 0.f) - shift, count);
    }
  } else {
    const vfloat inv = splat(static_cast<float>(1.0 / s));
    for (int64_t i = 0; i < n; i += kWidth) {
      const int64_t count = std::min<int64_t>(kWidth, n - i);
      store(y + i, exp_nonpositive(load(x + i, count, 0.f) - vm) * inv, count);
    }
  }
}

template <typename T> void softmax_impl(T* y, const T* x, int64_t rows, int64_t cols, bool is_log) {
  if (cols > kCachedRow) {
#pragma omp parallel for schedule(static) num_threads(threads_for(rows * cols))
    for (int64_t r = 0; r < rows; ++r) softmax_long_row(y + r * cols, x + r * cols, cols, is_log);
    return;
  }
#pragma omp parallel num_threads(threads_for(rows * cols))
  {
    std::vector<float> scratch(is_log ? 0 : static_cast<size_t>(cols + kWidth));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) softmax_cached_rows<1>(y + r * cols, x + r * cols, cols, is_log, scratch.data());
  }
}

// ---- softmax backward -----------------------------------------------------------------------------
template <typename T> void softmax_backward_row(T* dx, const T* y, const T* dy, int64_t n, bool is_log) {
  if (is_log) {
    const vfloat total = splat(static_cast<float>(
        sum_lanes(n, [&](int64_t i, int64_t count) { return load(dy + i, count, 0.f); })));
    for (int64_t i = 0; i < n; i += kWidth) {
      const int64_t count = std::min<int64_t>(kWidth, n - i);
      store(dx + i, load(dy + i, count, 0.f) - exp(load(y + i, count, 0.f)) * total, count);
    }
  } else {
    const vfloat dot = splat(static_cast<float>(sum_lanes(
        n, [&](int64_t i, int64_t count) { return load(dy + i, count, 0.f) * load(y + i, count, 0.f); })));
    for (int64_t i = 0; i < n; i += kWidth) {
      const int64_t count = std::min<int64_t>(kWidth, n - i);
      store(dx + i, load(y + i, count, 0.f) * (load(dy + i, count, 0.f) - dot), count);
    }
  }
}

template <typename T>
void softmax_backward_impl(T* dx, const T* y, const T* dy, int64_t rows, int64_t cols, bool is_log) {
#pragma omp parallel for schedule(static) num_threads(threads_for(rows * cols))
  for (int64_t r = 0; r < rows; ++r) softmax_backward_row(dx + r * cols, y + r * cols, dy + r * cols, cols, is_log);
}

// ---- layer_norm / rms_norm forward ----------------------------------------------------------------
template <typename T>
void norm_forward_impl(T* y, float* mean_out, float* rstd_out, const T* x, const float* weight, const float* bias,
                       int64_t rows, int64_t cols, double eps) {
  const bool centered = mean_out != nullptr;
#pragma omp parallel for schedule(static) num_threads(threads_for(rows * cols))
  for (int64_t r = 0; r < rows; ++r) {
    const T* xr = x + r * cols;
    T* yr = y + r * cols;
    // One pass for both moments of d = x - pivot, pivot = x[0] (0 for rms_norm): var = E[d^2] -
    // E[d]^2. With the pivot inside the row's spread the subtraction loses little; when the pivot
    // lies more than ~1.7 standard deviations from the mean (E[d]^2 > 3 var) a second pass takes
    // sum((d - E[d])^2) instead. x - mean is then (x - pivot) - delta, delta = mean - pivot: both
    // differences are small, so a large mean (x = 1000 + noise) costs no precision.
    const float pivot = centered ? to_float(xr[0]) : 0.f;
    const vfloat vpivot = splat(pivot);
    double sum_d = 0.0, squares = 0.0;
    for (int64_t start = 0; start < cols; start += kChunk) {
      const int64_t end = std::min(cols, start + kChunk);
      vfloat s1[2] = {}, s2[2] = {};
      int64_t i = start;
      for (; i + 2 * kWidth <= end; i += 2 * kWidth) {
        for (int u = 0; u < 2; ++u) {
          const vfloat d = load(xr + i + u * kWidth) - vpivot;
          s1[u] += d;
          s2[u] += d * d;
        }
      }
      for (; i < end; i += kWidth) {
        const vfloat d = load(xr + i, std::min<int64_t>(kWidth, end - i), pivot) - vpivot;  // 0 past the row
        s1[0] += d;
        s2[0] += d * d;
      }
      sum_d += reduce_add(s1[0] + s1[1]);
      squares += reduce_add(s2[0] + s2[1]);
    }
    const double mean_d = centered ? sum_d / cols : 0.0;
    const float delta = static_cast<float>(mean_d);
    if (centered) mean_out[r] = static_cast<float>(static_cast<double>(pivot) + mean_d);
    squares -= mean_d * mean_d * cols;
    if (centered && mean_d * mean_d * cols > 3.0 * squares) {
      const vfloat vdelta = splat(delta);
      squares = sum_lanes(cols, [&](int64_t i, int64_t c) {
        const vfloat d = (load(xr + i, c, pivot) - vpivot) - vdelta;
        if (c == kWidth) return d * d;
        return first_lanes(c) ? d * d : splat(0.f);  // lanes past the row hold -delta
      });
    }
    squares = std::max(squares, 0.0);
    const float rstd = static_cast<float>(1.0 / std::sqrt(squares / cols + eps));
    rstd_out[r] = rstd;
    // xhat = (x - pivot) * rstd - delta * rstd: one subtraction and one FMA.
    const vfloat vrstd = splat(rstd);
    const vfloat shift = splat(-delta * rstd);
    for (int64_t i = 0; i < cols; i += kWidth) {
      const int64_t count = std::min<int64_t>(kWidth, cols - i);
      vfloat v = (load(xr + i, count, 0.f) - vpivot) * vrstd + shift;
      if (weight) v *= load(weight + i, count, 0.f);
      if (bias) v += load(bias + i, count, 0.f);
      store(yr + i, v, count);
    }
  }
}

// ---- layer_norm / rms_norm backward ---------------------------------------------------------------
template <typename T>
void norm_backward_impl(T* dx, float* dweight, float* dbias, const T* dy, const T* x, const float* mean,
                        const float* rstd, const float* weight, int64_t rows, int64_t cols) {
  const int threads = static_cast<int>(std::min<int64_t>(threads_for(rows * cols), std::max<int64_t>(rows, 1)));
  // Per-thread partial dw and db rows in one buffer, padded to whole vectors plus one cache line
  // (rows 4 KiB apart would alias in the load/store unit: 2x slower with 1024 columns).
  const int64_t padded = (cols + kWidth - 1) / kWidth * kWidth + 16;
  const bool partials = dweight || dbias;
  std::vector<float> partial(partials ? static_cast<size_t>(threads * 2 * padded) : 0, 0.f);
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int64_t begin = rows * t / threads, end = rows * (t + 1) / threads;
    float* pdw = partials ? partial.data() + 2 * t * padded : nullptr;
    float* pdb = dbias ? partial.data() + (2 * t + 1) * padded : nullptr;
    for (int64_t r = begin; r < end; ++r) {
      const T* xr = x + r * cols;
      const T* dyr = dy + r * cols;
      const vfloat vmu = splat(mean ? mean[r] : 0.f);
      const vfloat vrstd = splat(rstd[r]);
      // Pass 1: sum g, sum g * xhat, and the dw/db partials.
      double total_g = 0.0, total_gx = 0.0;
      for (int64_t start = 0; start < cols; start += kChunk) {
        const int64_t end = std::min(cols, start + kChunk);
        vfloat sum_g = {}, sum_gx = {};
        // One vector of the row: its g and g * xhat sums and the dw/db partials (d = 0 past the row).
        auto step = [&](int64_t i, int64_t count) {
          const vfloat d = load(dyr + i, count, 0.f);
          const vfloat xhat = (load(xr + i, count, 0.f) - vmu) * vrstd;
          const vfloat g = weight ? d * load(weight + i, count, 0.f) : d;
          if (pdw) store(pdw + i, load(pdw + i) + d * xhat);
          if (pdb) store(pdb + i, load(pdb + i) + d);
          return std::pair<vfloat, vfloat>{g, g * xhat};
        };
        vfloat sum_g2 = {}, sum_gx2 = {};
        int64_t i = start;
        for (; i + 2 * kWidth <= end; i += 2 * kWidth) {
          const auto [g0, gx0] = step(i, kWidth);
          const auto [g1, gx1] = step(i + kWidth, kWidth);
          sum_g += g0;
          sum_gx += gx0;
          sum_g2 += g1;
          sum_gx2 += gx1;
        }
        for (; i < end; i += kWidth) {
          const auto [g0, gx0] = step(i, std::min<int64_t>(kWidth, end - i));
          sum_g += g0;
          sum_gx += gx0;
        }
        total_g += reduce_add(sum_g + sum_g2);
        total_gx += reduce_add(sum_gx + sum_gx2);
      }
      if (!dx) continue;
      // Pass 2: dx = rstd * (g - mean g - xhat * mean(g * xhat)) (no mean g term for rms_norm).
      const vfloat mean_g = splat(mean ? static_cast<float>(total_g / cols) : 0.f);
      const vfloat mean_gx = splat(static_cast<float>(total_gx / cols));
      T* dxr = dx + r * cols;
      for (int64_t i = 0; i < cols; i += kWidth) {
        const int64_t count = std::min<int64_t>(kWidth, cols - i);
        const vfloat d = load(dyr + i, count, 0.f);
        const vfloat xhat = (load(xr + i, count, 0.f) - vmu) * vrstd;
        const vfloat g = weight ? d * load(weight + i, count, 0.f) : d;
        store(dxr + i, vrstd * (g - mean_g - xhat * mean_gx), count);
      }
    }
  }
  if (!partials) return;
  for (int64_t c = 0; c < cols; ++c) {
    double dw = 0.0, db = 0.0;
    for (int t = 0; t < threads; ++t) {
      dw += partial[2 * t * padded + c];
      if (dbias) db += partial[(2 * t + 1) * padded + c];
    }
    if (dweight) dweight[c] = static_cast<float>(dw);
    if (dbias) dbias[c] = static_cast<float>(db);
  }
}

template <typename F> void by_dtype(DType dtype, F f) {
  switch (dtype) {
    case DType::f32: f(float{}); break;
    case DType::bf16:
#if KEEL_SIMD_WIDTH == 16
      if (cpu_features().avx512_bf16) {
        f(NativeBFloat16{});
        break;
      }
#endif
      f(BFloat16{});
      break;
    case DType::f16: f(Half{}); break;
    default: KEEL_ASSERT(false && "norm kernels take f32, bf16 or f16");
  }
}

template <typename T> T* ptr(const Tensor& t) { return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr; }

}  // namespace

void softmax_rows(const Tensor& y, const Tensor& x, bool is_log) {
  const int64_t cols = x.dim() == 0 ? 1 : x.shape().back();
  const int64_t rows = cols == 0 ? 0 : x.numel() / cols;
  by_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    softmax_impl(ptr<T>(y), ptr<const T>(x), rows, cols, is_log);
  });
}

void softmax_backward_rows(const Tensor& dx, const Tensor& y, const Tensor& dy, bool is_log) {
  const int64_t cols = y.dim() == 0 ? 1 : y.shape().back();
  const int64_t rows = cols == 0 ? 0 : y.numel() / cols;
  by_dtype(y.dtype(), [&](auto tag) {
    using T = decltype(tag);
    softmax_backward_impl(ptr<T>(dx), ptr<const T>(y), ptr<const T>(dy), rows, cols, is_log);
  });
}

void norm_forward_rows(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                       const Tensor& bias, double eps) {
  const int64_t rows = rstd.numel();
  const int64_t cols = rows == 0 ? 0 : x.numel() / rows;
  by_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    norm_forward_impl(ptr<T>(y), ptr<float>(mean), ptr<float>(rstd), ptr<const T>(x), ptr<const float>(weight),
                      ptr<const float>(bias), rows, cols, eps);
  });
}

void norm_backward_rows(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dy,
                        const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight) {
  const int64_t rows = rstd.numel();
  const int64_t cols = rows == 0 ? 0 : x.numel() / rows;
  by_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    norm_backward_impl(ptr<T>(dx), ptr<float>(dweight), ptr<float>(dbias), ptr<const T>(dy), ptr<const T>(x),
                       ptr<const float>(mean), ptr<const float>(rstd), ptr<const float>(weight), rows, cols);
  });
}

}  // namespace keel::cpu::KEEL_CPU_ISA
