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
// written; backward two such reads (y or x, and dy) + one write. The f32 kernels run at the
// bandwidth of the cache level their data sits in. With bf16 storage (half the bytes per element,
// so twice the elements per second for the same bandwidth) the norms and the backward kernels
// come near it too; the softmax forward is bound by its vector instructions: on AVX-512 per 16
// elements the max pass takes 0.5 (16-bit integer max on the bits, bf16_row_max), the exp pass 10
// (split of the 32-bit words, t in one FMA, exp2_for_bf16's 7, the sum; simd.h) and the write
// pass 2 (two multiplies, vcvtne2ps2bf16 and vpermw per 32): >= 6.3 cycles on the two vector
// ports, ~8.8 measured with the rows in L2, against the ~8.8 cycles per 16 elements that 80% of
// the copy bandwidth (~30 GB/s one thread) leaves (see bench/kernels/NOTES.md).
//
// bf16 with AVX-512: where the lane order does not matter (sums, max) or is kept (exp into the
// scratch row and back, the norm backward's pass 1 with the weight and dw/db partials in the same
// order), whole pairs of vectors are loaded as the even and odd halves of 32-bit words (one shift
// and one and; simd.h load_pair_any) instead of a vpermw per vector, and stored back with
// vcvtne2ps2bf16 + one vpermw per pair (store_pair_any).
//
// Passes: a row is read from memory once and then re-read from L1/L2 (statistics pass, then the
// write pass). layer_norm takes both moments of d = x - x[0] in one pass (a second pass over
// (d - mean d)^2 when x[0] lies far from the mean). Softmax rows of up to kCachedRow elements keep
// their exponentials in an f32 scratch row (max pass, exp pass, scale pass; exp runs once per
// element). Longer softmax rows go in chunks: the max and the
// rescaled sum of each chunk are taken while the chunk is in L1 (online softmax: s = s * exp(m_old
// - m_new) + chunk sum), then one write pass recomputes exp: two reads of x from memory.
// Short rows go in blocks of up to kNormBlockBytes (softmax and norm forward, 16-bit norm
// backward; half that for 16-bit softmax, beside its f32 scratch rows): each pass over every row of the block before the next pass, so that a row's serial
// tail (horizontal sums, sqrt, log, division) overlaps the next row's work; the next block is
// prefetched meanwhile (rows end within a page, where the hardware prefetcher stops).
// Sums accumulate in f32 lanes per chunk of at most kChunk elements and in double across chunks.
// Rows are split across OpenMP threads above kGrain elements of work; the norm backward gives each
// thread a block of rows and its own f32 dw/db partial rows (on cache lines of their own), summed
// at the end in double. Reference: the composites of ops/nn_functional.cpp in float64.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

#include "keel/kernels/cpu/cpu_features.h"
#include "keel/kernels/cpu/fused_kernels.h"
#include "keel/kernels/cpu/simd.h"

// GCC 12's AVX-512 intrinsics start from a self-initialized "undefined" register that
// -W(maybe-)uninitialized reports once they are inlined; the values are never read.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace keel::cpu::KEEL_CPU_ISA {

namespace {

using namespace simd;

constexpr int64_t kGrain = 32768;        // elements of work below which one thread runs
constexpr int64_t kCachedRow = 16384;    // softmax rows up to this length use the scratch row
constexpr int64_t kChunk = 4096;         // f32 lane sums cover at most this many elements
constexpr int kUnroll = 4;
constexpr int64_t kNormBlockBytes = 8192;  // row blocks (softmax and norms); 2048 and 16384 measured slower
constexpr int64_t kNormBlockRows = 32;

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

#if KEEL_SIMD_WIDTH == 16
// Max of a bf16 row by 16-bit signed integer max/min on the raw bits (32 elements per instruction,
// no conversion): as signed integers, non-negative bf16 values (and +NaN above +inf) order like
// their values and lie above every negative one. So the integer max is the answer when it is >= 0;
// when the whole row is negative, the largest value is the one of smallest magnitude: the integer
// minimum (-0.0 = 0x8000 first), taken by a second pass over the row (in L1). A -NaN in such a
// row is not picked, but it makes the row's sum NaN (and so every output) as the f32 path does.
template <typename T> float bf16_row_max(const T* x, int64_t n) {
  const auto* p = reinterpret_cast<const uint16_t*>(x);
  auto pass = [&](bool is_max) {
    const __m512i fill = _mm512_set1_epi16(is_max ? static_cast<short>(0x8000) : 0x7fff);
    __m512i acc[kUnroll] = {fill, fill, fill, fill};
    auto op = [&](__m512i a, __m512i b) { return is_max ? _mm512_max_epi16(a, b) : _mm512_min_epi16(a, b); };
    int64_t i = 0;
    for (; i + kUnroll * 32 <= n; i += kUnroll * 32)
      for (int u = 0; u < kUnroll; ++u) acc[u] = op(acc[u], _mm512_loadu_si512(p + i + 32 * u));
    for (; i < n; i += 32) {
      const __mmask32 mask = n - i >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << (n - i)) - 1u);
      acc[0] = op(acc[0], _mm512_mask_loadu_epi16(fill, mask, p + i));
    }
    const __m512i v = op(op(acc[0], acc[1]), op(acc[2], acc[3]));
    __m256i h = _mm512_castsi512_si256(v);
    const __m256i h2 = _mm512_extracti64x4_epi64(v, 1);
    h = is_max ? _mm256_max_epi16(h, h2) : _mm256_min_epi16(h, h2);
    __m128i q = _mm256_castsi256_si128(h);
    const __m128i q2 = _mm256_extracti128_si256(h, 1);
    auto op128 = [&](__m128i a, __m128i b) { return is_max ? _mm_max_epi16(a, b) : _mm_min_epi16(a, b); };
    q = op128(q, q2);
    q = op128(q, _mm_shuffle_epi32(q, 0x4e));
    q = op128(q, _mm_shuffle_epi32(q, 0xb1));
    q = op128(q, _mm_srli_epi32(q, 16));
    return static_cast<int16_t>(_mm_extract_epi16(q, 0));
  };
  int16_t bits = pass(true);
  if (bits < 0) bits = pass(false);
  return to_float(BFloat16(static_cast<uint16_t>(bits), BFloat16::FromBits{}));
}
#endif

// ---- softmax forward ------------------------------------------------------------------------------
// Rows of up to kCachedRow elements, in blocks of `count` consecutive rows (each row's arithmetic is
// the same as alone): the max of every row of the block, then their exp passes, then their write
// passes, so that one row's serial tails (horizontal max and sum, log or division) overlap the next
// row's vector work (short rows: 8192 x 256 bf16). Whole pairs of vectors (2 * kWidth elements) go
// through load_pair_any/store_pair_any (simd.h: for bf16 on AVX-512 the even and odd elements, no
// shuffle on the loads), and the f32 scratch rows hold the exponentials in the same lane order; the
// last < 2 * kWidth elements of a row go by single vectors in memory order. (Two rows interleaved
// within each pass measured slower for f32 4096 x 1024: four streams to memory instead of two.)
template <typename T, bool is_log>
void softmax_cached_rows(T* y, const T* x, int64_t count, int64_t n, float* scratch, int64_t ahead) {
  constexpr int64_t kPair = 2 * kWidth;
  constexpr bool kBF16 = std::is_same_v<T, BFloat16> || std::is_same_v<T, NativeBFloat16>;
  const int64_t stride = n + kWidth;  // scratch rows: room for a whole last vector
  float m[kNormBlockRows];
  double s[kNormBlockRows];
  // Max passes.
  for (int64_t k = 0; k < count; ++k) {
    const T* xk = x + k * n;
#if KEEL_SIMD_WIDTH == 16
    if constexpr (kBF16) {
      m[k] = bf16_row_max(xk, n);
      continue;
    }
#endif
    vfloat macc[kUnroll];
    for (auto& a : macc) a = splat(-INFINITY);
    int64_t i = 0;
    for (; i + 2 * kPair <= n; i += 2 * kPair) {
      vfloat v[4];
      load_pair_any(xk + i, v[0], v[1]);
      load_pair_any(xk + i + kPair, v[2], v[3]);
      for (int u = 0; u < kUnroll; ++u) macc[u] = max(macc[u], v[u]);
    }
    for (; i < n; i += kWidth) macc[0] = max(macc[0], load(xk + i, std::min<int64_t>(kWidth, n - i), -INFINITY));
    m[k] = reduce_max(max(max(macc[0], macc[1]), max(macc[2], macc[3])));
  }
  // Exp passes: e = exp(x - m) into the f32 scratch rows (softmax), summed in f32 lanes per chunk.
  // Meanwhile fetch the rows `ahead` elements further on (the next block; a prefetch past the end
  // of the tensor is harmless) and take the lines of these rows of y for writing: rows of <= 4 KiB
  // end within a page, where the hardware prefetcher stops, and stores that miss would otherwise
  // stall the write pass (1.6 -> 1.2 ms per 4096 x 1024 f32 rows, one thread).
  // bf16 on AVX-512: exp(x - m) = 2^t, t = x log2(e) - m log2(e) in one FMA for softmax where
  // |m| < 64 (the rounding of m log2(e) moves t by at most 2^-18: a relative error of ~2.6e-6 in
  // exp), else t = (x - m) log2(e), which is exactly 0 at x = m (log_softmax of the maximum
  // element must come out exactly 0 - log s); then exp2_for_bf16 (simd.h). Other ISAs and dtypes: exp_nonpositive(x - m),
  // the coarse one for bf16 (bf16 results keep 8 significant bits).
  auto exp_row = [&](int64_t k, auto fold_tag) {
    [[maybe_unused]] constexpr bool kFold = decltype(fold_tag)::value;
    const T* xk = x + k * n;
    T* yk = y + k * n;
    float* ek = scratch + k * stride;
    const vfloat vm = splat(m[k]);
    [[maybe_unused]] const vfloat vlog2e = splat(1.44269504088896341f);
    [[maybe_unused]] const vfloat vshift = splat(-m[k] * 1.44269504088896341f);
    auto exp_at = [&](int64_t j, vfloat v) {
      if (sizeof(T) == 4 || j % kPair == 0) {  // once per 64 bytes of x and of y
        // 16-bit softmax: into L2 only (prefetcht1; the block's x, its f32 scratch, twice the
        // size, and y fill ~32 of L1's 48 KiB; bf16, one thread: 8192 x 256 ~460 -> ~415 us,
        // 4096 x 1024 ~800 -> ~740 us); f32 softmax and log_softmax (no scratch) measured
        // faster with prefetcht0 (f32 8192 x 256: 548 against 583 us).
        if constexpr (!is_log && sizeof(T) == 2) __builtin_prefetch(xk + ahead + j, 0, 2);
        else __builtin_prefetch(xk + ahead + j, 0, 3);
        __builtin_prefetch(yk + j, 1, 3);
      }
      vfloat e;
#if KEEL_SIMD_WIDTH == 16
      if constexpr (kBF16) e = exp2_for_bf16(kFold ? v * vlog2e + vshift : (v - vm) * vlog2e);
      else e = exp_nonpositive(v - vm);
#else
      e = kBF16 ? exp_nonpositive_coarse(v - vm) : exp_nonpositive(v - vm);
#endif
      if constexpr (!is_log) store(ek + j, e);
      return e;
    };
    double sum = 0.0;
    for (int64_t start = 0; start < n; start += kChunk) {  // kChunk is a multiple of 2 * kPair
      const int64_t end = std::min(n, start + kChunk);
      vfloat acc[kUnroll] = {};
      int64_t j = start;
      for (; j + 2 * kPair <= end; j += 2 * kPair) {
        vfloat v[4];
        load_pair_any(xk + j, v[0], v[1]);
        load_pair_any(xk + j + kPair, v[2], v[3]);
        for (int u = 0; u < kUnroll; ++u) acc[u] += exp_at(j + u * kWidth, v[u]);
      }
      if (j + kPair <= end) {
        vfloat a, b;
        load_pair_any(xk + j, a, b);
        acc[0] += exp_at(j, a);
        acc[1] += exp_at(j + kWidth, b);
        j += kPair;
      }
      for (; j < end; j += kWidth) acc[0] += exp_at(j, load(xk + j, std::min<int64_t>(kWidth, end - j), -INFINITY));
      sum += static_cast<double>(reduce_add((acc[0] + acc[1]) + (acc[2] + acc[3])));
    }
    s[k] = sum;
  };
  for (int64_t k = 0; k < count; ++k) {
    // One call site (inlined) where the fold does not apply: f32 4096 x 1024 measured ~12% slower
    // with both instantiations called.
    if constexpr (!is_log && kBF16 && kWidth == 16) {
      if (std::fabs(m[k]) < 64.f) exp_row(k, std::true_type{});
      else exp_row(k, std::false_type{});
    } else {
      exp_row(k, std::false_type{});
    }
  }
  // Write passes.
  for (int64_t k = 0; k < count; ++k) {
    const T* xk = x + k * n;
    T* yk = y + k * n;
    const float* ek = scratch + k * stride;
    int64_t j = 0;
    if constexpr (is_log) {
      const vfloat shift = splat(static_cast<float>(m[k] + std::log(s[k])));
      for (; j + kPair <= n; j += kPair) {
        vfloat a, b;
        load_pair_any(xk + j, a, b);
        store_pair_any(yk + j, a - shift, b - shift);
      }
      for (; j < n; j += kWidth) {
        const int64_t c = std::min<int64_t>(kWidth, n - j);
        store(yk + j, load(xk + j, c, 0.f) - shift, c);
      }
    } else {
      const vfloat inv = splat(static_cast<float>(1.0 / s[k]));
      for (; j + kPair <= n; j += kPair) store_pair_any(yk + j, load(ek + j) * inv, load(ek + j + kWidth) * inv);
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
  if (rows == 0 || cols == 0) return;
  if (cols > kCachedRow) {
#pragma omp parallel for schedule(static) num_threads(threads_for(rows * cols))
    for (int64_t r = 0; r < rows; ++r) softmax_long_row(y + r * cols, x + r * cols, cols, is_log);
    return;
  }
  // Blocks of rows of at most kNormBlockBytes of x for f32 rows of up to 256 bytes and half that
  // for 16-bit rows of up to 2 KiB; other rows one at a time (f32 8192 x 256 measured ~10% slower
  // in blocks, 4096 x 1024 ~4%). 16-bit rows with 8 KiB blocks: softmax bf16 4096 x 1024 (two
  // rows per block instead of four) ~750 -> ~700 us one thread, log_softmax ~820 -> ~795 us;
  // 2 KiB blocks (one such row) measured slower: ~770 us.
  const int64_t row_bytes = cols * static_cast<int64_t>(sizeof(T));
  const bool blocked = sizeof(T) == 2 ? row_bytes < 4096 : row_bytes <= 256;
  const int64_t block_bytes = sizeof(T) == 2 ? kNormBlockBytes / 2 : kNormBlockBytes;
  const int64_t block = blocked ? std::clamp<int64_t>(block_bytes / row_bytes, 1, kNormBlockRows) : 1;
  const int64_t blocks = (rows + block - 1) / block;
  const int threads = static_cast<int>(std::min<int64_t>(threads_for(rows * cols), blocks));
#pragma omp parallel num_threads(threads)
  {
    std::vector<float> scratch(is_log ? 0 : static_cast<size_t>(block * (cols + kWidth)));
    const int t = omp_get_thread_num(), count = omp_get_num_threads();
    const int64_t first = blocks * t / count * block, last = std::min(rows, blocks * (t + 1) / count * block);
    for (int64_t r = first; r < last; r += block) {
      const int64_t n = std::min(block, last - r);
      if (is_log) softmax_cached_rows<T, true>(y + r * cols, x + r * cols, n, cols, scratch.data(), n * cols);
      else softmax_cached_rows<T, false>(y + r * cols, x + r * cols, n, cols, scratch.data(), n * cols);
    }
  }
}

// ---- softmax backward -----------------------------------------------------------------------------
// Whole pairs of vectors in load_pair_any's lane order in both passes (the same order for y, dy and
// dx); the last < 2 * kWidth elements by single vectors. 16-bit rows take the row's dx lines for
// writing during pass 1 and fetch the next row during pass 2 (rows end within a page, where the
// hardware prefetcher stops); bf16 takes the coarse exp for log_softmax.
template <typename T> void softmax_backward_row(T* dx, const T* y, const T* dy, int64_t n, bool is_log) {
  constexpr int64_t kPair = 2 * kWidth;
  constexpr bool kPrefetch = sizeof(T) == 2;
  constexpr bool kBF16 = std::is_same_v<T, BFloat16> || std::is_same_v<T, NativeBFloat16>;
  // Pass 1: sum dy (log) or sum dy * y.
  double total = 0.0;
  for (int64_t start = 0; start < n; start += kChunk) {  // kChunk is a multiple of kPair
    const int64_t end = std::min(n, start + kChunk);
    vfloat acc[kUnroll] = {};
    int64_t i = start;
    for (; i + kPair <= end; i += kPair) {
      if (kPrefetch) __builtin_prefetch(dx + i, 1, 3);
      vfloat da, db;
      load_pair_any(dy + i, da, db);
      if (is_log) {
        acc[0] += da;
        acc[1] += db;
      } else {
        vfloat ya, yb;
        load_pair_any(y + i, ya, yb);
        acc[0] += da * ya;
        acc[1] += db * yb;
      }
    }
    for (; i < end; i += kWidth) {
      const int64_t count = std::min<int64_t>(kWidth, end - i);
      const vfloat d = load(dy + i, count, 0.f);
      acc[2] += is_log ? d : d * load(y + i, count, 0.f);
    }
    total += static_cast<double>(reduce_add((acc[0] + acc[1]) + (acc[2] + acc[3])));
  }
  // Pass 2.
  const vfloat t = splat(static_cast<float>(total));
  auto value = [&](vfloat yv, vfloat d) {
    if (!is_log) return yv * (d - t);
    return d - (kBF16 ? exp_impl<false, true>(yv) : exp(yv)) * t;
  };
  int64_t i = 0;
  for (; i + kPair <= n; i += kPair) {
    if (kPrefetch) {
      __builtin_prefetch(y + n + i, 0, 3);
      __builtin_prefetch(dy + n + i, 0, 3);
    }
    vfloat ya, yb, da, db;
    load_pair_any(y + i, ya, yb);
    load_pair_any(dy + i, da, db);
    store_pair_any(dx + i, value(ya, da), value(yb, db));
  }
  for (; i < n; i += kWidth) {
    const int64_t count = std::min<int64_t>(kWidth, n - i);
    store(dx + i, value(load(y + i, count, 0.f), load(dy + i, count, 0.f)), count);
  }
}

template <typename T>
void softmax_backward_impl(T* dx, const T* y, const T* dy, int64_t rows, int64_t cols, bool is_log) {
#pragma omp parallel for schedule(static) num_threads(threads_for(rows * cols))
  for (int64_t r = 0; r < rows; ++r) softmax_backward_row(dx + r * cols, y + r * cols, dy + r * cols, cols, is_log);
}

// ---- layer_norm / rms_norm forward ----------------------------------------------------------------
// The statistics of one row (pass 1): what the write pass needs.
struct RowStats {
  float pivot, delta, rstd;
};

// norm_moments_row: pass 1 over one row; meanwhile the lines of the row's output yr are taken for
// writing (stores that miss would stall the write pass). One pass for both moments of d = x - pivot, pivot = x[0] (0 for rms_norm): var = E[d^2] - E[d]^2.
// With the pivot inside the row's spread the subtraction loses little; when the pivot lies more
// than ~1.7 standard deviations from the mean (E[d]^2 > 3 var, far()) norm_finish_row takes
// sum((d - E[d])^2) in a second pass instead. x - mean is then (x - pivot) - delta, delta = mean -
// pivot: both differences are small, so a large mean (x = 1000 + noise) costs no precision.
// The far test is left to the caller, after the first pass of every row of the block: as a branch
// at the end of the row's chain of horizontal sums it resolved ~60 cycles late, and with random
// rows it mispredicts on ~8% of them (|x[0] - mean| > 1.7 sd), each time discarding the next
// row's work done meanwhile.
struct RowMoments {
  float pivot;
  double mean_d, squares;  // squares: sum d^2 - cols mean_d^2
  bool far(int64_t cols) const { return mean_d * mean_d * cols > 3.0 * squares; }
};

template <typename T, bool kCentered> RowMoments norm_moments_row(const T* xr, int64_t cols, T* yr) {
  const float pivot = kCentered ? to_float(xr[0]) : 0.f;
  const vfloat vpivot = splat(pivot);
  double sum_d = 0.0, squares = 0.0;
  for (int64_t start = 0; start < cols; start += kChunk) {
    const int64_t end = std::min(cols, start + kChunk);
    vfloat s1[2] = {}, s2[2] = {};
    int64_t i = start;
    for (; i + 2 * kWidth <= end; i += 2 * kWidth) {  // order-free: pairs in any lane order
      vfloat a, b;
      __builtin_prefetch(yr + i, 1, 3);
      if constexpr (sizeof(T) == 4) __builtin_prefetch(yr + i + kWidth, 1, 3);
      load_pair_any(xr + i, a, b);
      a -= vpivot;
      b -= vpivot;
      s1[0] += a;
      s2[0] += a * a;
      s1[1] += b;
      s2[1] += b * b;
    }
    for (; i < end; i += kWidth) {
      const vfloat d = load(xr + i, std::min<int64_t>(kWidth, end - i), pivot) - vpivot;  // 0 past the row
      s1[0] += d;
      s2[0] += d * d;
    }
    sum_d += reduce_add(s1[0] + s1[1]);
    squares += reduce_add(s2[0] + s2[1]);
  }
  const double mean_d = kCentered ? sum_d / cols : 0.0;
  return {pivot, mean_d, squares - mean_d * mean_d * cols};
}

// The statistics from the moments (the second pass over the row, in L1, when the pivot is far).
template <typename T, bool kCentered>
RowStats norm_finish_row(const T* xr, int64_t cols, double eps, float* mean_out, RowMoments m) {
  const float pivot = m.pivot;
  const float delta = static_cast<float>(m.mean_d);
  if (kCentered) *mean_out = static_cast<float>(static_cast<double>(pivot) + m.mean_d);
  double squares = m.squares;
  if (kCentered && m.far(cols)) {
    const vfloat vpivot = splat(pivot);
    const vfloat vdelta = splat(delta);
    squares = sum_lanes(cols, [&](int64_t i, int64_t c) {
      const vfloat d = (load(xr + i, c, pivot) - vpivot) - vdelta;
      if (c == kWidth) return d * d;
      return first_lanes(c) ? d * d : splat(0.f);  // lanes past the row hold -delta
    });
  }
  squares = std::max(squares, 0.0);
  return {pivot, delta, static_cast<float>(1.0 / std::sqrt(squares / cols + eps))};
}

// The write pass of one row; meanwhile fetch the row `ahead` elements further on (the next block's:
// rows of <= 4 KiB end within a page, where the hardware prefetcher stops; 835 -> 680 us for bf16
// 4096 x 1024 layer_norm, one thread). The flags make the weight and bias branches compile-time.
template <typename T, bool kWeight, bool kBias>
void norm_write_row(T* yr, const T* xr, const float* weight, const float* bias, int64_t cols, RowStats stats,
                    int64_t ahead) {
  // xhat = (x - pivot) * rstd - delta * rstd: one subtraction and one FMA; then one FMA (or one
  // multiply or add) for the weight and bias.
  const vfloat vpivot = splat(stats.pivot);
  const vfloat vrstd = splat(stats.rstd);
  const vfloat shift = splat(-stats.delta * stats.rstd);
  auto value = [&](vfloat xv, int64_t i, int64_t count) {
    vfloat v = (xv - vpivot) * vrstd + shift;
    if constexpr (kWeight && kBias) v = v * load(weight + i, count, 0.f) + load(bias + i, count, 0.f);
    else if constexpr (kWeight) v *= load(weight + i, count, 0.f);
    else if constexpr (kBias) v += load(bias + i, count, 0.f);
    return v;
  };
  int64_t i = 0;
  for (; i + 2 * kWidth <= cols; i += 2 * kWidth) {
    __builtin_prefetch(xr + ahead + i, 0, 3);
    if constexpr (sizeof(T) == 4) __builtin_prefetch(xr + ahead + i + kWidth, 0, 3);
    store_pair(yr + i, value(load(xr + i), i, kWidth), value(load(xr + i + kWidth), i + kWidth, kWidth));
  }
  for (; i < cols; i += kWidth) {
    const int64_t count = std::min<int64_t>(kWidth, cols - i);
    __builtin_prefetch(xr + ahead + i, 0, 3);
    store(yr + i, value(load(xr + i, count, 0.f), i, count), count);
  }
}

// Rows go in blocks of up to kNormBlockBytes of x: the statistics of every row of the block, then
// their write passes. The statistics of consecutive rows are independent, so each row's serial tail
// (horizontal sums, sqrt, division: ~100 cycles) overlaps the next row's loads instead of stalling
// short rows (bf16 8192 x 256: ~16 vectors per row).

template <typename T, bool kCentered, bool kWeight, bool kBias>
void norm_forward_all(T* y, float* mean, float* rstd, const T* x, const float* weight, const float* bias, int64_t rows,
                      int64_t cols, double eps) {
  if (rows == 0 || cols == 0) return;
  const int64_t block = std::clamp<int64_t>(kNormBlockBytes / std::max<int64_t>(1, cols * sizeof(T)), 1, kNormBlockRows);
  const int threads = static_cast<int>(std::min<int64_t>(threads_for(rows * cols), (rows + block - 1) / block));
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), count = omp_get_num_threads();
    const int64_t blocks = (rows + block - 1) / block;
    const int64_t first = blocks * t / count * block, last = std::min(rows, blocks * (t + 1) / count * block);
    RowStats stats[kNormBlockRows];
    for (int64_t r0 = first; r0 < last; r0 += block) {
      const int64_t n = std::min(block, last - r0);
      RowMoments moments[kNormBlockRows];
      for (int64_t k = 0; k < n; ++k) moments[k] = norm_moments_row<T, kCentered>(x + (r0 + k) * cols, cols, y + (r0 + k) * cols);
      for (int64_t k = 0; k < n; ++k) {
        const int64_t r = r0 + k;
        stats[k] = norm_finish_row<T, kCentered>(x + r * cols, cols, eps, kCentered ? mean + r : nullptr, moments[k]);
        rstd[r] = stats[k].rstd;
      }
      for (int64_t k = 0; k < n; ++k) {
        const int64_t r = r0 + k;
        norm_write_row<T, kWeight, kBias>(y + r * cols, x + r * cols, weight, bias, cols, stats[k], n * cols);
      }
    }
  }
}

template <typename T>
void norm_forward_impl(T* y, float* mean_out, float* rstd_out, const T* x, const float* weight, const float* bias,
                       int64_t rows, int64_t cols, double eps) {
  const bool centered = mean_out != nullptr;
  auto run = [&](auto centered_tag, auto weight_tag, auto bias_tag) {
    norm_forward_all<T, decltype(centered_tag)::value, decltype(weight_tag)::value, decltype(bias_tag)::value>(
        y, mean_out, rstd_out, x, weight, bias, rows, cols, eps);
  };
  using Y = std::true_type;
  using N = std::false_type;
  if (centered) {
    if (weight && bias) run(Y{}, Y{}, Y{});
    else if (weight) run(Y{}, Y{}, N{});
    else if (bias) run(Y{}, N{}, Y{});
    else run(Y{}, N{}, N{});
  } else {
    if (weight && bias) run(N{}, Y{}, Y{});
    else if (weight) run(N{}, Y{}, N{});
    else if (bias) run(N{}, N{}, Y{});
    else run(N{}, N{}, N{});
  }
}

// ---- layer_norm / rms_norm backward ---------------------------------------------------------------
// Pass 1 (sums of g and g * xhat, the dw/db partials) takes whole pairs of vectors in
// load_pair_any's lane order (bf16 on AVX-512: even and odd elements, no shuffle): the weight is
// copied once per call into that order (wpair) and each thread's dw/db partial rows are kept in it,
// put back in column order when the threads' partials are summed. Pass 2 (dx) takes the same pairs
// (stored back with store_pair_any) and single vectors in memory order for the rest:
//   dx = rstd * (g - mean g - xhat * mean(g * xhat)) = g * rstd + ((x - mu) * k1 + k0),
//   k1 = -rstd^2 mean(g * xhat), k0 = -rstd mean g:  one subtraction, one multiply, two FMAs.
// 16-bit rows go in blocks of kNormBlockBytes of x, the next block of x and dy fetched during
// pass 2 (f32 rows one at a time, without prefetches: measured ~10% faster).
template <typename T> int64_t pair_column(int64_t c, int64_t cols) {
  constexpr int64_t kPair = 2 * kWidth;
  const int64_t whole = cols / kPair * kPair;
  return c < whole ? c / kPair * kPair + pair_position<T>(static_cast<int>(c % kPair)) : c;
}

template <typename T, bool kCentered, bool kWeight>
void norm_backward_rows_of(T* dx, float* pdw, float* pdb, const T* dy, const T* x, const float* mean,
                           const float* rstd, const float* weight, const float* wpair, int64_t first, int64_t last,
                           int64_t cols) {
  constexpr int64_t kPair = 2 * kWidth;
  constexpr bool kPrefetch = sizeof(T) == 2;
  const int64_t block =
      kPrefetch ? std::clamp<int64_t>(kNormBlockBytes / std::max<int64_t>(1, cols * sizeof(T)), 1, kNormBlockRows) : 1;
  float mean_g[kNormBlockRows], mean_gx[kNormBlockRows];
  for (int64_t r0 = first; r0 < last; r0 += block) {
    const int64_t n = std::min(block, last - r0);
    // Pass 1 over R = 2 rows at a time (one row for the last of an odd block): the weight and the
    // dw/db partials are loaded and stored once per pair of rows (layer_norm bf16 [8192, 256]: the
    // partial rows' loads and stores were the difference to rms_norm).
    auto pass1 = [&](int64_t k0, auto rows_tag) {
      constexpr int R = decltype(rows_tag)::value;
      const T* xr[R];
      const T* dyr[R];
      vfloat vmu[R], vrstd[R];
      double total_g[R] = {}, total_gx[R] = {};
      for (int q = 0; q < R; ++q) {
        const int64_t r = r0 + k0 + q;
        xr[q] = x + r * cols;
        dyr[q] = dy + r * cols;
        vmu[q] = splat(kCentered ? mean[r] : 0.f);
        vrstd[q] = splat(rstd[r]);
      }
      for (int64_t start = 0; start < cols; start += kChunk) {  // kChunk is a multiple of kPair
        const int64_t end = std::min(cols, start + kChunk);
        vfloat sum_g[R][2] = {}, sum_gx[R][2] = {};
        int64_t i = start;
        for (; i + kPair <= end; i += kPair) {
          vfloat pw[2] = {}, pb[2] = {}, w[2];
          for (int h = 0; h < 2; ++h) {
            if (pdw) pw[h] = load(pdw + i + h * kWidth);
            if (pdb) pb[h] = load(pdb + i + h * kWidth);
            if (kWeight) w[h] = load(wpair + i + h * kWidth);
          }
          for (int q = 0; q < R; ++q) {
            // 16-bit rows: take the lines of the row's dx for writing (stores that miss stall pass
            // 2; bf16 4096 x 1024 layer_norm 1.23 -> 1.09 ms, one thread). With f32 rows (and the
            // prefetch of the next block below) it measured 10% slower.
            if (kPrefetch && dx) __builtin_prefetch(dx + (r0 + k0 + q) * cols + i, 1, 3);
            vfloat d[2], xv[2];
            load_pair_any(dyr[q] + i, d[0], d[1]);
            load_pair_any(xr[q] + i, xv[0], xv[1]);
            for (int h = 0; h < 2; ++h) {
              const vfloat xhat = (xv[h] - vmu[q]) * vrstd[q];
              const vfloat g = kWeight ? d[h] * w[h] : d[h];
              pw[h] += d[h] * xhat;
              pb[h] += d[h];
              sum_g[q][h] += g;
              sum_gx[q][h] += g * xhat;
            }
          }
          for (int h = 0; h < 2; ++h) {
            if (pdw) store(pdw + i + h * kWidth, pw[h]);
            if (pdb) store(pdb + i + h * kWidth, pb[h]);
          }
        }
        // The rest by single vectors in memory order (d = 0 past the row).
        for (; i < end; i += kWidth) {
          const int64_t count = std::min<int64_t>(kWidth, end - i);
          for (int q = 0; q < R; ++q) {
            const vfloat d = load(dyr[q] + i, count, 0.f);
            const vfloat xhat = (load(xr[q] + i, count, 0.f) - vmu[q]) * vrstd[q];
            const vfloat g = kWeight ? d * load(wpair + i, count, 0.f) : d;
            if (pdw) store(pdw + i, load(pdw + i) + d * xhat);
            if (pdb) store(pdb + i, load(pdb + i) + d);
            sum_g[q][0] += g;
            sum_gx[q][0] += g * xhat;
          }
        }
        for (int q = 0; q < R; ++q) {
          total_g[q] += reduce_add(sum_g[q][0] + sum_g[q][1]);
          total_gx[q] += reduce_add(sum_gx[q][0] + sum_gx[q][1]);
        }
      }
      for (int q = 0; q < R; ++q) {
        mean_g[k0 + q] = kCentered ? static_cast<float>(total_g[q] / cols) : 0.f;
        mean_gx[k0 + q] = static_cast<float>(total_gx[q] / cols);
      }
    };
    int64_t k = 0;
    for (; k + 2 <= n; k += 2) pass1(k, std::integral_constant<int, 2>{});
    if (k < n) pass1(k, std::integral_constant<int, 1>{});
    if (!dx) continue;
    const int64_t ahead = n * cols;
    for (int64_t k = 0; k < n; ++k) {
      const int64_t r = r0 + k;
      const T* xr = x + r * cols;
      const T* dyr = dy + r * cols;
      T* dxr = dx + r * cols;
      const float rs = rstd[r];
      const vfloat vmu = splat(kCentered ? mean[r] : 0.f);
      const vfloat vrstd = splat(rs);
      const vfloat k1 = splat(-rs * rs * mean_gx[k]);
      const vfloat k0 = splat(-rs * mean_g[k]);
      // w: the weight in the lane order of d and xv (wpair for whole pairs, weight for the rest).
      auto value = [&](vfloat d, vfloat xv, const float* w, int64_t i, int64_t count) {
        const vfloat g = kWeight ? d * load(w + i, count, 0.f) : d;
        return g * vrstd + ((xv - vmu) * k1 + k0);
      };
      int64_t i = 0;
      for (; i + kPair <= cols; i += kPair) {
        if constexpr (kPrefetch) {
          // Into L2 only (prefetcht1): the block's x, dy and dx and the next block's x and dy
          // would fill ~40 of L1's 48 KiB (layer_norm bf16 4096 x 1024: ~950 -> ~900 us one
          // thread, ~590 -> ~555 two; [8192, 256] and [512, 768] unchanged within the noise).
          __builtin_prefetch(xr + ahead + i, 0, 2);
          __builtin_prefetch(dyr + ahead + i, 0, 2);
        }
        vfloat da, db, xa, xb;
        load_pair_any(dyr + i, da, db);
        load_pair_any(xr + i, xa, xb);
        store_pair_any(dxr + i, value(da, xa, wpair, i, kWidth), value(db, xb, wpair, i + kWidth, kWidth));
      }
      for (; i < cols; i += kWidth) {
        const int64_t count = std::min<int64_t>(kWidth, cols - i);
        store(dxr + i, value(load(dyr + i, count, 0.f), load(xr + i, count, 0.f), weight, i, count), count);
      }
    }
  }
}

template <typename T>
void norm_backward_impl(T* dx, float* dweight, float* dbias, const T* dy, const T* x, const float* mean,
                        const float* rstd, const float* weight, int64_t rows, int64_t cols) {
  const int threads = static_cast<int>(std::min<int64_t>(threads_for(rows * cols), std::max<int64_t>(rows, 1)));
  // Per-thread partial dw and db rows in one buffer aligned to a cache line, each row padded to
  // whole cache lines plus one (rows 4 KiB apart would alias in the load/store unit: 2x slower
  // with 1024 columns), so that no line is shared between threads: with a 16-byte aligned buffer
  // the last line of thread 0's db row was the first of thread 1's dw row, written by both on
  // every row (layer_norm backward f32 4096 x 1024, 2 threads: 1.16 -> ~0.9 ms).
  const int64_t padded = (cols + 15) / 16 * 16 + 16;
  const bool partials = dweight || dbias;
  std::vector<float> partial_buffer(partials ? static_cast<size_t>(threads * 2 * padded + 16) : 0, 0.f);
  float* partial = partial_buffer.data();
  if (partials) partial += (64 - reinterpret_cast<uintptr_t>(partial) % 64) % 64 / sizeof(float);
  std::vector<float> wpair(weight ? static_cast<size_t>(padded) : 0);
  for (int64_t c = 0; weight && c < cols; ++c) wpair[pair_column<T>(c, cols)] = weight[c];
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
    const int64_t begin = rows * t / threads, end = rows * (t + 1) / threads;
    float* pdw = dweight ? partial + 2 * t * padded : nullptr;
    float* pdb = dbias ? partial + (2 * t + 1) * padded : nullptr;
    if (mean && weight)
      norm_backward_rows_of<T, true, true>(dx, pdw, pdb, dy, x, mean, rstd, weight, wpair.data(), begin, end, cols);
    else if (mean)
      norm_backward_rows_of<T, true, false>(dx, pdw, pdb, dy, x, mean, rstd, weight, nullptr, begin, end, cols);
    else if (weight)
      norm_backward_rows_of<T, false, true>(dx, pdw, pdb, dy, x, mean, rstd, weight, wpair.data(), begin, end, cols);
    else
      norm_backward_rows_of<T, false, false>(dx, pdw, pdb, dy, x, mean, rstd, weight, nullptr, begin, end, cols);
  }
  if (!partials) return;
  for (int64_t c = 0; c < cols; ++c) {
    const int64_t at = pair_column<T>(c, cols);
    double dw = 0.0, db = 0.0;
    for (int t = 0; t < threads; ++t) {
      dw += partial[2 * t * padded + at];
      if (dbias) db += partial[(2 * t + 1) * padded + at];
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
