// Batched matrix product on the CPU, compiled once per instruction set (an entry of the kernel
// table, isa_table.h, picked by dispatch.cpp with the other kernels).
//
//   out[z, i, j] = sum_p a[z, i, p] * b[z, p, j]        a: (Z..., M, K)  b: (Z..., K, N)  out: (Z..., M, N)
//   FLOPs: 2 * Z * M * N * K;  bytes: itemsize * Z * (M*K + K*N + M*N) at best (each operand read once)
//   reference: a float64 triple loop (tests/ops/test_linalg.cpp)
//
// The loop nest is GotoBLAS's, kept simple (the fast AVX-512 kernel is a later version):
//   tiles of out (one batch entry, MC rows, NC columns) are shared out over OpenMP threads;
//   per tile, for each KC-deep slice of K: pack B's KC x NC panel into NR-wide column strips and
//   A's MC x KC block into MR-high row strips (both in the compute type, zero-padded to full
//   strips, which is where any strides and the 16-bit -> f32 conversion are handled), then an
//   MR x NR micro-kernel adds strip products into a compute-type tile buffer in registers.
//   The tile is stored to out (converted to its dtype) once, after all of K: f16/bf16 products
//   are accumulated in f32 and rounded once, and K = 0 writes zeros.
// Batch dims that B broadcasts over (stride 0) and that A walks with one uniform row stride are
// folded into M (x[B, T, C] @ w[C, D] is one GEMM with B*T rows). A product with fewer than NR
// columns and more rows than columns is computed transposed (out^T = b^T a^T), so that the small
// side pays the smaller padding (MR, not NR): matrix-vector products waste 6x work, not 32x (a
// dedicated matrix-vector path is left to the fast kernel).
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>

#include "keel/kernels/convert.h"
#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/kernels/cpu/strided_loop.h"

// The micro-kernel's a * b + c must compile to FMA where the ISA has it; -std=c++20 (not gnu++20)
// turns GCC's contraction off by default.
#pragma GCC optimize("fp-contract=fast")

namespace keel::cpu::KEEL_CPU_ISA {

namespace {

// One vector register of this instruction set.
#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif
typedef float float_vector __attribute__((vector_size(kVectorBytes)));
typedef double double_vector __attribute__((vector_size(kVectorBytes)));
template <typename C> using vector_t = std::conditional_t<std::is_same_v<C, float>, float_vector, double_vector>;

// Micro-tile MR x NR = 6 rows x 2 vectors: 12 accumulators + 2 B vectors + 1 broadcast fit the 16
// vector registers of SSE/AVX2 (AVX-512 has 32; the later kernel uses them).
constexpr int64_t kMR = 6;
constexpr int64_t kVectorsPerRow = 2;
template <typename C> constexpr int64_t kLanes = kVectorBytes / static_cast<int64_t>(sizeof(C));
template <typename C> constexpr int64_t kNR = kVectorsPerRow * kLanes<C>;
// Cache blocking: a packed A block (MC x KC) stays in L2, a packed B strip (KC x NR) in L1.
constexpr int64_t kMC = 96;   // a multiple of kMR
constexpr int64_t kKC = 256;
constexpr int64_t kNC = 256;  // a multiple of every kNR
constexpr int64_t kGrain = int64_t{1} << 17;  // multiply-adds below which one thread is faster

inline int64_t round_up(int64_t value, int64_t step) { return (value + step - 1) / step * step; }

template <typename V, typename C> inline V load_vector(const C* p) {
  V v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <typename V, typename C> inline void store_vector(C* p, V v) { std::memcpy(p, &v, sizeof v); }

// c[MR x NR] (row stride ldc) += a_strip^T b_strip, where a_strip is kc x MR (one MR-row strip of
// packed A, p-major) and b_strip is kc x NR (one NR-column strip of packed B, p-major).
template <typename C>
inline void micro_kernel(int64_t kc, const C* __restrict a, const C* __restrict b, C* __restrict c, int64_t ldc) {
  using V = vector_t<C>;
  constexpr int64_t lanes = kLanes<C>, nr = kNR<C>;
  V acc[kMR][kVectorsPerRow];
#pragma GCC unroll 6
  for (int64_t i = 0; i < kMR; ++i)
#pragma GCC unroll 2
    for (int64_t v = 0; v < kVectorsPerRow; ++v) acc[i][v] = load_vector<V>(c + i * ldc + v * lanes);
  for (int64_t p = 0; p < kc; ++p) {
    V b_row[kVectorsPerRow];
#pragma GCC unroll 2
    for (int64_t v = 0; v < kVectorsPerRow; ++v) b_row[v] = load_vector<V>(b + p * nr + v * lanes);
#pragma GCC unroll 6
    for (int64_t i = 0; i < kMR; ++i) {
      const V a_value = V{} + a[p * kMR + i];  // broadcast
#pragma GCC unroll 2
      for (int64_t v = 0; v < kVectorsPerRow; ++v) acc[i][v] += a_value * b_row[v];
    }
  }
#pragma GCC unroll 6
  for (int64_t i = 0; i < kMR; ++i)
#pragma GCC unroll 2
    for (int64_t v = 0; v < kVectorsPerRow; ++v) store_vector(c + i * ldc + v * lanes, acc[i][v]);
}

// One operand matrix: element (r, c) at data[r * row_stride + c * col_stride].
template <typename T> struct MatrixView {
  const T* data;
  int64_t row_stride, col_stride;
};

// Packs rows [0, rows) x depth [0, kc) of A into MR-row strips, p-major, zero-padded to full strips.
template <typename C, typename T> void pack_a(MatrixView<T> a, int64_t rows, int64_t kc, C* __restrict dst) {
  for (int64_t r0 = 0; r0 < rows; r0 += kMR) {
    const int64_t height = std::min(kMR, rows - r0);
    for (int64_t i = 0; i < kMR; ++i) {
      if (i < height) {
        const T* src = a.data + (r0 + i) * a.row_stride;
        for (int64_t p = 0; p < kc; ++p) dst[p * kMR + i] = static_cast<C>(src[p * a.col_stride]);
      } else {
        for (int64_t p = 0; p < kc; ++p) dst[p * kMR + i] = C(0);
      }
    }
    dst += kc * kMR;
  }
}

// Packs depth [0, kc) x columns [0, cols) of B into NR-column strips, p-major, zero-padded.
template <typename C, typename T> void pack_b(MatrixView<T> b, int64_t kc, int64_t cols, C* __restrict dst) {
  constexpr int64_t nr = kNR<C>;
  for (int64_t c0 = 0; c0 < cols; c0 += nr) {
    const int64_t width = std::min(nr, cols - c0);
    for (int64_t p = 0; p < kc; ++p) {
      const T* src = b.data + p * b.row_stride + c0 * b.col_stride;
      C* row = dst + p * nr;
      if (b.col_stride == 1) {
        for (int64_t j = 0; j < width; ++j) row[j] = static_cast<C>(src[j]);
      } else {
        for (int64_t j = 0; j < width; ++j) row[j] = static_cast<C>(src[j * b.col_stride]);
      }
      for (int64_t j = width; j < nr; ++j) row[j] = C(0);
    }
    dst += kc * nr;
  }
}

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

template <typename T> void run(const Problem& p, T* out, const T* a, const T* b) {
  using C = compute_t<T>;
  constexpr int64_t nr = kNR<C>;
  const int64_t batch = shape_numel(p.batch_shape);
  const int64_t row_blocks = (p.m + kMC - 1) / kMC, col_blocks = (p.n + kNC - 1) / kNC;
  const int64_t tiles = batch * row_blocks * col_blocks;
  if (tiles == 0) return;
  const int64_t multiply_adds = batch * p.m * p.n * std::max<int64_t>(p.k, 1);
  const int threads = static_cast<int>(std::min<int64_t>(threads_for(multiply_adds, kGrain), tiles));
  const int64_t ldc = std::min(round_up(p.n, nr), kNC);
  const int64_t a_block_size = std::min(round_up(p.m, kMR), kMC) * std::min(p.k, kKC);
  const int64_t b_block_size = std::min(p.k, kKC) * ldc;
  const int64_t c_block_size = std::min(round_up(p.m, kMR), kMC) * ldc;
  const size_t batch_dims = p.batch_shape.size();

#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    std::unique_ptr<C[]> a_pack(new C[static_cast<size_t>(std::max<int64_t>(a_block_size, 1))]);
    std::unique_ptr<C[]> b_pack(new C[static_cast<size_t>(std::max<int64_t>(b_block_size, 1))]);
    std::unique_ptr<C[]> c_tile(new C[static_cast<size_t>(c_block_size)]);
#pragma omp for schedule(dynamic)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t z = tile / (row_blocks * col_blocks);
      const int64_t i0 = tile / col_blocks % row_blocks * kMC, j0 = tile % col_blocks * kNC;
      const int64_t mc = std::min(kMC, p.m - i0), nc = std::min(kNC, p.n - j0);
      const int64_t mc_padded = round_up(mc, kMR), nc_padded = round_up(nc, nr);
      // Offsets of batch entry z (row-major over batch_shape).
      int64_t a_offset = 0, b_offset = 0, out_offset = 0;
      for (size_t d = batch_dims, rest = static_cast<size_t>(z); d-- > 0;) {
        const int64_t coordinate = static_cast<int64_t>(rest) % p.batch_shape[d];
        rest /= static_cast<size_t>(p.batch_shape[d]);
        a_offset += coordinate * p.a_batch_strides[d];
        b_offset += coordinate * p.b_batch_strides[d];
        out_offset += coordinate * p.out_batch_strides[d];
      }
      std::fill(c_tile.get(), c_tile.get() + mc_padded * ldc, C(0));
      for (int64_t p0 = 0; p0 < p.k; p0 += kKC) {
        const int64_t kc = std::min(kKC, p.k - p0);
        pack_b<C>(MatrixView<T>{b + b_offset + p0 * p.b_k + j0 * p.b_n, p.b_k, p.b_n}, kc, nc, b_pack.get());
        pack_a<C>(MatrixView<T>{a + a_offset + i0 * p.a_m + p0 * p.a_k, p.a_m, p.a_k}, mc, kc, a_pack.get());
        for (int64_t jr = 0; jr < nc_padded; jr += nr)
          for (int64_t ir = 0; ir < mc_padded; ir += kMR)
            micro_kernel<C>(kc, a_pack.get() + ir * kc, b_pack.get() + jr * kc, c_tile.get() + ir * ldc + jr, ldc);
      }
      T* out_tile = out + out_offset + i0 * p.out_m + j0 * p.out_n;
      for (int64_t i = 0; i < mc; ++i)
        for (int64_t j = 0; j < nc; ++j)
          out_tile[i * p.out_m + j * p.out_n] = convert<T>(c_tile[i * ldc + j]);
    }
  }
}

}  // namespace

void matmul(const Tensor& out, const Tensor& a, const Tensor& b) {
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
  if (p.n < p.m && p.n < kNR<float>) transpose_problem(p);
  const Tensor& first = p.transposed ? b : a;
  const Tensor& second = p.transposed ? a : b;
  switch (out.dtype()) {
    case DType::f32: run(p, out.data_ptr<float>(), first.data_ptr<float>(), second.data_ptr<float>()); break;
    case DType::f64: run(p, out.data_ptr<double>(), first.data_ptr<double>(), second.data_ptr<double>()); break;
    case DType::f16: run(p, out.data_ptr<Half>(), first.data_ptr<Half>(), second.data_ptr<Half>()); break;
    case DType::bf16:
      run(p, out.data_ptr<BFloat16>(), first.data_ptr<BFloat16>(), second.data_ptr<BFloat16>());
      break;
    default: fail("[matmul] no CPU kernel for dtype ", dtype_name(out.dtype()));
  }
}

}  // namespace keel::cpu::KEEL_CPU_ISA
