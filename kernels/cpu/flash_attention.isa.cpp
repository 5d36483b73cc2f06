// Flash attention on the CPU (FlashAttention-2's tiling), forward and backward, compiled once per
// instruction set (entries flash_attention_forward / flash_attention_backward of isa_table.h).
//
//   q: (B, Hq, Tq, D)   k: (B, Hkv, Tk, D)   v: (B, Hkv, Tk, Dv)   Hq % Hkv == 0: query head h
//   reads key/value head h / (Hq / Hkv) (grouped-query attention, PyTorch's enable_gqa).
//   S = q k^T * scale + mask          (B, Hq, Tq, Tk), never stored beyond one Br x Bc tile
//       mask: causal (key j > query i -> -inf, top-left aligned as torch's is_causal), bool
//       (false -> -inf) or additive float, broadcast to (B, Hq, Tq, Tk) through strides
//   P = softmax(S, -1)   out = P v    (B, Hq, Tq, Dv)
//   lse = logsumexp(S, -1)            (B, Hq, Tq): saved for backward (out is saved too)
//
// Forward, per (b, h, query block of Br = 64 rows): for each key block of Bc = 64 keys the
// transposed tile S^T = K Q^T (K read in place, Q^T packed once per task), online softmax with a
// running max m and sum l per query (m' = max(m, rowmax S), l' = l e^(m-m') + rowsum e^(S-m'),
// O' = O e^(m-m') + e^(S-m') V), vectorised over queries; at the end out = O / l, lse = m + log l.
// Causal tiles wholly above the diagonal are skipped (forward and backward).
// Backward, per (b, kv head, key block): dK, dV of the block accumulate in float buffers over the
// group's query heads and all query blocks that see the block (K, K^T, V^T packed once per task):
//   Delta_i = rowsum(dO * O)                (a pre-pass)
//   P = exp(S - lse_i)   dV += P^T dO   dP = dO V^T   dS = P * (dP - Delta_i)
//   dK += dS^T Q * scale   dQ += dS K * scale
// dQ rows get contributions from every key block. A task (b, kv head, segment of key blocks) sums
// its dQ in a buffer of its own; with one segment per head (B Hkv >= 4 threads) it writes grad_q
// directly, else it adds into a shared float dQ under a per-head lock (no races, no atomics).
// Memory beyond inputs and outputs: O(Br Bc + (Br + Bc) D + group Tq D) per thread, plus lse and
// Delta (B Hq Tq) and, when heads are split into segments, one float dQ (B Hq Tq D).
//
// Scale is folded into the packed Q (Qs = scale q): S = Qs K^T, dK = dS^T Qs, dQ = scale dS K.
// Rows whose every key is masked give out = NaN, as the composite (softmax of all -inf is NaN in
// Keel and PyTorch): l = 0, out = 0/0, lse = -inf; in backward P = exp(-inf - (-inf)) = NaN, so
// dV is NaN as PyTorch's composite gives. dS (hence dQ, dK) follows the composite too: 0 on such a
// row under a bool mask (masked_fill's backward drops masked scores' gradient), NaN under an
// additive -inf mask (add's backward passes it).
//
// FLOPs: forward 4 B Hq Tq Tk D (about half that when causal), backward 2.5x the forward (five
// products instead of two). Compute is in float for f32/bf16 storage, in double for f64 storage
// (the same tiling with plain loops, so float64 gradcheck runs this driver). The reference it
// must match: the composite scaled_dot_product_attention (matmul, masked_fill, softmax, matmul).
//
// Products are small GEMMs on zero-padded float tiles (row lengths rounded up to kPad; f32 K and V
// rows are read in place when their length allows): one register-tiled micro-kernel C (+)= A B
// with A read through (row, column) strides (so P^T, dS^T need no transpose) and B row-major,
// vectorised over B's columns: AVX-512 6 x 64 (24 zmm accumulators), AVX2 and SSE 6 x 16. exp is
// simd.h's (max error ~2 ulp; results below 2^-125 flush to 0).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

// GCC 12 reports its own AVX-512 intrinsics' undefined-vector idiom (_mm512_undefined_ps) as
// "(may be) used uninitialized" once they are inlined here.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "keel/kernels/convert.h"
#include "keel/kernels/cpu/isa_table.h"
#include "keel/kernels/cpu/simd.h"
#include "keel/kernels/cpu/strided_loop.h"

namespace keel::cpu::KEEL_CPU_ISA {

namespace {

constexpr int64_t kBlockQ = 64;  // Br: query rows per tile
constexpr int64_t kBlockK = 64;  // Bc: keys per tile
constexpr int64_t kPad = 16;     // padded row lengths are multiples of this (any vector width)
constexpr int kMR = 6;           // micro-kernel rows

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// ---- float vectors of this ISA ---------------------------------------------------------------
#if defined(__AVX512F__)
struct Vec {
  using V = __m512;
  static constexpr int W = 16;
  static constexpr int NV = 4;  // vectors per micro-kernel row: 6 x 4 accumulators of 32 registers
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V x) { _mm512_storeu_ps(p, x); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V max(V a, V b) { return _mm512_max_ps(a, b); }
  static float reduce_max(V x) { return _mm512_reduce_max_ps(x); }
  static float reduce_add(V x) { return _mm512_reduce_add_ps(x); }
};
#elif defined(__AVX2__)
struct Vec {
  using V = __m256;
  static constexpr int W = 8;
  static constexpr int NV = 2;  // 6 x 2 accumulators of 16 registers
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V x) { _mm256_storeu_ps(p, x); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V sub(V a, V b) { return _mm256_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V max(V a, V b) { return _mm256_max_ps(a, b); }
  static float reduce_max(V x) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
  }
  static float reduce_add(V x) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};
#else  // x86-64-v2: SSE4.2, no FMA
struct Vec {
  using V = __m128;
  static constexpr int W = 4;
  static constexpr int NV = 2;
  static V zero() { return _mm_setzero_ps(); }
  static V set1(float x) { return _mm_set1_ps(x); }
  static V load(const float* p) { return _mm_loadu_ps(p); }
  static void store(float* p, V x) { _mm_storeu_ps(p, x); }
  static V add(V a, V b) { return _mm_add_ps(a, b); }
  static V sub(V a, V b) { return _mm_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm_mul_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
  static V max(V a, V b) { return _mm_max_ps(a, b); }
  static float reduce_max(V x) {
    V m = _mm_max_ps(x, _mm_movehl_ps(x, x));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
  }
  static float reduce_add(V x) {
    V s = _mm_add_ps(x, _mm_movehl_ps(x, x));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};
#endif

using V = Vec::V;
constexpr int kW = Vec::W;
static_assert(kPad % kW == 0 && kBlockK % kPad == 0);

// e^x: simd.h's exp (one implementation for every kernel; -inf gives 0, NaN stays NaN). Vec::V
// and simd::vfloat are the same register (this ISA's widest float vector), so a cast is free.
static_assert(sizeof(V) == sizeof(simd::vfloat));
inline V vexp(V x) { return reinterpret_cast<V>(simd::exp(reinterpret_cast<simd::vfloat>(x))); }

// ---- row operations (n is a multiple of kPad) ------------------------------------------------
// x = e^(x - shift); returns the sum of the new x.
inline float exp_shifted(float* x, int64_t n, float shift) {
  const V s = Vec::set1(shift);
  V sum = Vec::zero();
  for (int64_t j = 0; j < n; j += kW) {
    const V e = vexp(Vec::sub(Vec::load(x + j), s));
    Vec::store(x + j, e);
    sum = Vec::add(sum, e);
  }
  return Vec::reduce_add(sum);
}
inline double exp_shifted(double* x, int64_t n, double shift) {
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += (x[j] = std::exp(x[j] - shift));
  return sum;
}

// ---- the micro-kernel: C[i][n] (+)= sum_k A[i ars + k acs] B[k ldb + n] ------------------------
// i < M, n < N (a multiple of kPad), k < K; B and C rows hold N valid floats.
template <int MR, int NV, bool accumulate>
inline void tile(int64_t K, const float* A, int64_t ars, int64_t acs, const float* B, int64_t ldb, float* C,
                 int64_t ldc) {
  V c[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) c[r][v] = accumulate ? Vec::load(C + r * ldc + v * kW) : Vec::zero();
  for (int64_t k = 0; k < K; ++k) {
    V b[NV];
    for (int v = 0; v < NV; ++v) b[v] = Vec::load(B + k * ldb + v * kW);
    for (int r = 0; r < MR; ++r) {
      const V a = Vec::set1(A[r * ars + k * acs]);
      for (int v = 0; v < NV; ++v) c[r][v] = Vec::fma(a, b[v], c[r][v]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) Vec::store(C + r * ldc + v * kW, c[r][v]);
}

template <int NV, bool accumulate>
inline void row_strips(int64_t M, int64_t K, const float* A, int64_t ars, int64_t acs, const float* B, int64_t ldb,
                       float* C, int64_t ldc) {
  int64_t i = 0;
  for (; i + kMR <= M; i += kMR) tile<kMR, NV, accumulate>(K, A + i * ars, ars, acs, B, ldb, C + i * ldc, ldc);
  const float* a = A + i * ars;
  float* c = C + i * ldc;
  switch (M - i) {
    case 1: tile<1, NV, accumulate>(K, a, ars, acs, B, ldb, c, ldc); break;
    case 2: tile<2, NV, accumulate>(K, a, ars, acs, B, ldb, c, ldc); break;
    case 3: tile<3, NV, accumulate>(K, a, ars, acs, B, ldb, c, ldc); break;
    case 4: tile<4, NV, accumulate>(K, a, ars, acs, B, ldb, c, ldc); break;
    case 5: tile<5, NV, accumulate>(K, a, ars, acs, B, ldb, c, ldc); break;
    default: break;
  }
}

template <bool accumulate>
inline void gemm_columns(int64_t M, int64_t N, int64_t K, const float* A, int64_t ars, int64_t acs, const float* B,
                         int64_t ldb, float* C, int64_t ldc) {
  for (int64_t n0 = 0; n0 < N; n0 += Vec::NV * kW) {
    const int64_t vectors = std::min<int64_t>(Vec::NV, (N - n0) / kW);
    const float* b = B + n0;
    float* c = C + n0;
    switch (vectors) {
      case 1: row_strips<1, accumulate>(M, K, A, ars, acs, b, ldb, c, ldc); break;
      case 2: row_strips<2, accumulate>(M, K, A, ars, acs, b, ldb, c, ldc); break;
#if defined(__AVX512F__)
      case 3: row_strips<3, accumulate>(M, K, A, ars, acs, b, ldb, c, ldc); break;
      case 4: row_strips<4, accumulate>(M, K, A, ars, acs, b, ldb, c, ldc); break;
#endif
      default: break;
    }
  }
}

inline void gemm(int64_t M, int64_t N, int64_t K, const float* A, int64_t ars, int64_t acs, const float* B,
                 int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  if (accumulate) gemm_columns<true>(M, N, K, A, ars, acs, B, ldb, C, ldc);
  else gemm_columns<false>(M, N, K, A, ars, acs, B, ldb, C, ldc);
}

// double (f64 storage): the same contract with plain loops.
inline void gemm(int64_t M, int64_t N, int64_t K, const double* A, int64_t ars, int64_t acs, const double* B,
                 int64_t ldb, double* C, int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < M; ++i) {
    double* c = C + i * ldc;
    if (!accumulate) std::fill(c, c + N, 0.0);
    for (int64_t k = 0; k < K; ++k) {
      const double a = A[i * ars + k * acs];
      const double* b = B + k * ldb;
      for (int64_t n = 0; n < N; ++n) c[n] += a * b[n];
    }
  }
}

// ---- operands --------------------------------------------------------------------------------
// A (batch, head, position, feature) view with a contiguous last dim.
template <typename T> struct View4 {
  const T* data;
  int64_t batch, head, position;  // strides in elements
  const T* row(int64_t b, int64_t h, int64_t t) const { return data + b * batch + h * head + t * position; }
};
template <typename T> View4<T> view4(const Tensor& x) {
  return {x.data_ptr<T>(), x.stride(0), x.stride(1), x.stride(2)};
}

enum class MaskKind { none, boolean, additive };

template <typename C> struct Problem {
  int64_t batch, heads, kv_heads, q_len, k_len, dim, v_dim;
  int64_t dim_padded, v_dim_padded;
  bool causal;
  C scale;
  // mask (B, Hq, Tq, Tk) through strides; bool or C
  const void* mask = nullptr;
  int64_t mask_strides[4] = {0, 0, 0, 0};
  int64_t group() const { return heads / kv_heads; }
};

template <typename C> Problem<C> make_problem(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask,
                                              bool causal, double scale) {
  Problem<C> p;
  p.batch = q.shape()[0];
  p.heads = q.shape()[1];
  p.kv_heads = k.shape()[1];
  p.q_len = q.shape()[2];
  p.k_len = k.shape()[2];
  p.dim = q.shape()[3];
  p.v_dim = v.shape()[3];
  p.dim_padded = round_up(p.dim, kPad);
  p.v_dim_padded = round_up(p.v_dim, kPad);
  p.causal = causal;
  p.scale = static_cast<C>(scale);
  if (mask.defined()) {
    p.mask = mask.raw_data();
    for (int d = 0; d < 4; ++d) p.mask_strides[d] = mask.stride(d);
  }
  return p;
}

template <typename C, typename T> inline C load_c(T x) { return convert<C>(x); }

// dst (rows x padded) = factor * src rows [t0, t0 + rows) of (b, h), zero beyond `cols` and `rows`.
template <typename C, typename T>
void pack_rows(C* dst, int64_t padded, const View4<T>& src, int64_t b, int64_t h, int64_t t0, int64_t rows,
               int64_t total_rows, int64_t cols, C factor) {
  for (int64_t r = 0; r < total_rows; ++r) {
    C* d = dst + r * padded;
    if (r < rows) {
      const T* s = src.row(b, h, t0 + r);
      for (int64_t c = 0; c < cols; ++c) d[c] = factor * load_c<C>(s[c]);
      std::fill(d + cols, d + padded, C(0));
    } else {
      std::fill(d, d + padded, C(0));
    }
  }
}

// dst (padded x 64) = factor * transpose of rows [t0, t0 + rows) of (b, h), zero beyond.
template <typename C, typename T>
void pack_transposed(C* dst, int64_t padded, const View4<T>& src, int64_t b, int64_t h, int64_t t0, int64_t rows,
                     int64_t cols, C factor = C(1)) {
  static_assert(kBlockK == kBlockQ);
  std::fill(dst, dst + padded * kBlockK, C(0));
  for (int64_t r = 0; r < rows; ++r) {
    const T* s = src.row(b, h, t0 + r);
    for (int64_t c = 0; c < cols; ++c) dst[c * kBlockK + r] = factor * load_c<C>(s[c]);
  }
}

// The masks on a transposed score tile ST (keys x kBlockQ: ST[j][i] = score of query i0 + i and
// key j0 + j), keys j < cols, queries i < rows.
template <typename C, MaskKind kind>
void mask_tile_transposed(C* ST, const Problem<C>& p, int64_t b, int64_t h, int64_t i0, int64_t rows, int64_t j0,
                          int64_t cols) {
  constexpr C minus_inf = -std::numeric_limits<C>::infinity();
  const bool causal_cut = p.causal && j0 + cols - 1 > i0;
  if (kind == MaskKind::none && !causal_cut) return;
  const int64_t* ms = p.mask_strides;
  for (int64_t j = 0; j < cols; ++j) {
    C* s = ST + j * kBlockQ;
    const int64_t key = j0 + j;
    if constexpr (kind == MaskKind::boolean) {
      const bool* m = static_cast<const bool*>(p.mask) + b * ms[0] + h * ms[1] + i0 * ms[2] + key * ms[3];
      for (int64_t i = 0; i < rows; ++i)
        if (!m[i * ms[2]]) s[i] = minus_inf;
    } else if constexpr (kind == MaskKind::additive) {
      const C* m = static_cast<const C*>(p.mask) + b * ms[0] + h * ms[1] + i0 * ms[2] + key * ms[3];
      for (int64_t i = 0; i < rows; ++i) s[i] += m[i * ms[2]];
    }
    if (p.causal) {  // query i sees key j when i0 + i >= key
      const int64_t hidden = std::clamp<int64_t>(key - i0, 0, kBlockQ);
      std::fill(s, s + hidden, minus_inf);
    }
  }
}

// Online softmax over the columns of a transposed score tile ST (cols x kBlockQ), per query i:
//   m' = max(m, max_j ST[j][i]);  alpha = e^(m - m');  ST = e^(ST - m');  l = l alpha + sum_j ST
// The shift is max(m', -FLT_MAX): while every key so far is masked (m' = -inf) it gives alpha = 0
// and P = 0 instead of NaN.
inline void online_softmax_columns(float* ST, int64_t cols, float* m, float* l, float* alpha) {
  const V lowest = Vec::set1(std::numeric_limits<float>::lowest());
  for (int64_t i = 0; i < kBlockQ; i += kW) {
    const V m_old = Vec::load(m + i);
    V m_new = m_old;
    for (int64_t j = 0; j < cols; ++j) m_new = Vec::max(m_new, Vec::load(ST + j * kBlockQ + i));
    const V shift = Vec::max(m_new, lowest);
    const V a = vexp(Vec::sub(m_old, shift));
    V sum = Vec::zero();
    for (int64_t j = 0; j < cols; ++j) {
      const V e = vexp(Vec::sub(Vec::load(ST + j * kBlockQ + i), shift));
      Vec::store(ST + j * kBlockQ + i, e);
      sum = Vec::add(sum, e);
    }
    Vec::store(l + i, Vec::fma(Vec::load(l + i), a, sum));
    Vec::store(m + i, m_new);
    Vec::store(alpha + i, a);
  }
}
inline void online_softmax_columns(double* ST, int64_t cols, double* m, double* l, double* alpha) {
  for (int64_t i = 0; i < kBlockQ; ++i) {
    double m_new = m[i];
    for (int64_t j = 0; j < cols; ++j) m_new = std::max(m_new, ST[j * kBlockQ + i]);
    const double shift = std::max(m_new, std::numeric_limits<double>::lowest());
    const double a = std::exp(m[i] - shift);
    double sum = 0;
    for (int64_t j = 0; j < cols; ++j) sum += (ST[j * kBlockQ + i] = std::exp(ST[j * kBlockQ + i] - shift));
    l[i] = l[i] * a + sum;
    m[i] = m_new;
    alpha[i] = a;
  }
}

// The masks on a score tile S (rows x kBlockK, query rows from i0, keys from j0, `cols` valid).
template <typename C, MaskKind kind>
void mask_tile(C* S, const Problem<C>& p, int64_t b, int64_t h, int64_t i0, int64_t rows, int64_t j0, int64_t cols) {
  constexpr C minus_inf = -std::numeric_limits<C>::infinity();
  const bool causal_cut = p.causal && j0 + kBlockK - 1 > i0;
  if (kind == MaskKind::none && !causal_cut && cols == kBlockK) return;
  const int64_t* ms = p.mask_strides;
  for (int64_t r = 0; r < rows; ++r) {
    C* s = S + r * kBlockK;
    const int64_t i = i0 + r;
    if constexpr (kind == MaskKind::boolean) {
      const bool* m = static_cast<const bool*>(p.mask) + b * ms[0] + h * ms[1] + i * ms[2] + j0 * ms[3];
      for (int64_t c = 0; c < cols; ++c)
        if (!m[c * ms[3]]) s[c] = minus_inf;
    } else if constexpr (kind == MaskKind::additive) {
      const C* m = static_cast<const C*>(p.mask) + b * ms[0] + h * ms[1] + i * ms[2] + j0 * ms[3];
      for (int64_t c = 0; c < cols; ++c) s[c] += m[c * ms[3]];
    }
    const int64_t visible = p.causal ? std::clamp<int64_t>(i - j0 + 1, 0, cols) : cols;
    for (int64_t c = visible; c < kBlockK; ++c) s[c] = minus_inf;
  }
}

template <typename C> struct Buffer {
  std::unique_ptr<C[]> data;
  explicit Buffer(int64_t n) : data(new C[static_cast<size_t>(std::max<int64_t>(n, 1))]()) {}
  C* get() const { return data.get(); }
  C& operator[](int64_t i) const { return data[static_cast<size_t>(i)]; }
};

int thread_count(int64_t tasks, int64_t work) {
  return static_cast<int>(std::min<int64_t>(threads_for(work, int64_t{1} << 16), tasks));
}

// ---- forward ---------------------------------------------------------------------------------
// Per task the scaled Q block is packed transposed once (Qt: dp x Br); each key block gives the
// transposed scores ST = K Qt (keys x queries), so K is read as it is (f32 rows straight from
// memory) and the softmax statistics run down columns, vectorised over queries.
template <typename T, typename C, MaskKind kind>
void forward(const Problem<C>& p, T* out, C* lse, const View4<T>& q, const View4<T>& k, const View4<T>& v) {
  constexpr C minus_inf = -std::numeric_limits<C>::infinity();
  constexpr bool direct = std::is_same_v<T, C>;  // rows used in place, no conversion needed
  const int64_t q_blocks = (p.q_len + kBlockQ - 1) / kBlockQ;
  const int64_t tasks = p.batch * p.heads * q_blocks;
  const int64_t dp = p.dim_padded, vp = p.v_dim_padded;
  const bool v_direct = direct && p.v_dim == vp;
  const int threads = thread_count(tasks, p.batch * p.heads * p.q_len * p.k_len * (p.dim + p.v_dim));
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    Buffer<C> q_pack(dp * kBlockQ), k_pack(kBlockK * dp), v_pack(kBlockK * vp), scores(kBlockK * kBlockQ),
        acc(kBlockQ * vp), row_m(kBlockQ), row_l(kBlockQ), row_alpha(kBlockQ);
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; ++task) {
      // Last query blocks first: under a causal mask they have the most keys.
      const int64_t qb = q_blocks - 1 - task / (p.batch * p.heads);
      const int64_t bh = task % (p.batch * p.heads);
      const int64_t b = bh / p.heads, h = bh % p.heads, hk = h / p.group();
      const int64_t i0 = qb * kBlockQ, rows = std::min(kBlockQ, p.q_len - i0);
      pack_transposed<C>(q_pack.get(), dp, q, b, h, i0, rows, p.dim, p.scale);
      std::fill(acc.get(), acc.get() + kBlockQ * vp, C(0));
      std::fill(row_m.get(), row_m.get() + kBlockQ, minus_inf);
      std::fill(row_l.get(), row_l.get() + kBlockQ, C(0));
      const int64_t key_end = p.causal ? std::min(p.k_len, i0 + rows) : p.k_len;
      C* ST = scores.get();
      for (int64_t j0 = 0; j0 < key_end; j0 += kBlockK) {
        const int64_t cols = std::min(kBlockK, p.k_len - j0);
        const C* k_rows;
        int64_t k_ld;
        if constexpr (direct) {
          k_rows = reinterpret_cast<const C*>(k.row(b, hk, j0));
          k_ld = k.position;
        } else {
          pack_rows<C>(k_pack.get(), dp, k, b, hk, j0, cols, cols, p.dim, C(1));
          k_rows = k_pack.get();
          k_ld = dp;
        }
        gemm(cols, kBlockQ, p.dim, k_rows, k_ld, 1, q_pack.get(), kBlockQ, ST, kBlockQ, false);
        mask_tile_transposed<C, kind>(ST, p, b, h, i0, rows, j0, cols);
        online_softmax_columns(ST, cols, row_m.get(), row_l.get(), row_alpha.get());
        for (int64_t r = 0; r < rows; ++r) {
          const C alpha = row_alpha[r];
          if (alpha == C(1)) continue;
          C* o = acc.get() + r * vp;
          for (int64_t e = 0; e < vp; ++e) o[e] *= alpha;
        }
        const C* v_rows;
        int64_t v_ld;
        if (v_direct) {
          v_rows = reinterpret_cast<const C*>(v.row(b, hk, j0));
          v_ld = v.position;
        } else {
          pack_rows<C>(v_pack.get(), vp, v, b, hk, j0, cols, cols, p.v_dim, C(1));
          v_rows = v_pack.get();
          v_ld = vp;
        }
        gemm(rows, vp, cols, ST, 1, kBlockQ, v_rows, v_ld, acc.get(), vp, true);  // O += P V
      }
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t row = (b * p.heads + h) * p.q_len + i0 + r;
        const C inverse = C(1) / row_l[r];  // l = 0 (all keys masked): 0 * inf = NaN, as the composite
        const C* o = acc.get() + r * vp;
        T* dst = out + row * p.v_dim;
        for (int64_t e = 0; e < p.v_dim; ++e) dst[e] = convert<T>(o[e] * inverse);
        lse[row] = row_m[r] + std::log(row_l[r]);
      }
    }
  }
}

// ---- backward --------------------------------------------------------------------------------
template <typename T, typename C, MaskKind kind>
void backward(const Problem<C>& p, T* grad_q, T* grad_k, T* grad_v, const View4<T>& grad_out, const View4<T>& q,
              const View4<T>& k, const View4<T>& v, const T* out, const C* lse) {
  const int64_t dp = p.dim_padded, vp = p.v_dim_padded;
  const int64_t rows_total = p.batch * p.heads * p.q_len;
  const int64_t work = rows_total * p.k_len * (p.dim + p.v_dim);

  // Delta_i = rowsum(dO * O)
  std::vector<C> delta(static_cast<size_t>(rows_total));
  {
    const int threads = thread_count(rows_total, rows_total * p.v_dim);
#pragma omp parallel for num_threads(threads) if (threads > 1)
    for (int64_t row = 0; row < rows_total; ++row) {
      const int64_t b = row / (p.heads * p.q_len), h = row / p.q_len % p.heads, i = row % p.q_len;
      const T* g = grad_out.row(b, h, i);
      const T* o = out + row * p.v_dim;
      C sum = 0;
      for (int64_t e = 0; e < p.v_dim; ++e) sum += load_c<C>(g[e]) * load_c<C>(o[e]);
      delta[static_cast<size_t>(row)] = sum;
    }
  }

  // Tasks: (b, kv head, segment of key blocks). A task adds the dQ of its head group into a
  // buffer of its own (group x Tq x dp floats, reused per thread); with one segment per head
  // (enough heads to keep every thread busy) it writes grad_q itself, otherwise it adds the buffer
  // into a shared float accumulator under its head's lock and a last pass converts. Segments split
  // the key blocks into equal work (under a causal mask early key blocks see more queries).
  const int64_t k_blocks = (p.k_len + kBlockK - 1) / kBlockK;
  const int64_t heads_kv = p.batch * p.kv_heads;
  const int max_threads = thread_count(heads_kv * k_blocks, work);
  const int64_t segments =
      heads_kv >= 4 * max_threads ? 1 : std::min<int64_t>(k_blocks, (4 * max_threads + heads_kv - 1) / heads_kv);
  std::vector<int64_t> segment_start(static_cast<size_t>(segments) + 1, k_blocks);
  {
    auto block_work = [&](int64_t kb) {
      return p.causal ? std::max<int64_t>(1, p.q_len - std::min(p.q_len, kb * kBlockK / kBlockQ * kBlockQ)) : p.q_len;
    };
    int64_t total = 0;
    for (int64_t kb = 0; kb < k_blocks; ++kb) total += block_work(kb);
    segment_start[0] = 0;
    int64_t kb = 0, prefix = 0;
    for (int64_t seg = 1; seg < segments; ++seg) {
      const int64_t target = total * seg / segments;
      while (kb < k_blocks && prefix < target) prefix += block_work(kb++);
      const int64_t start = std::clamp<int64_t>(kb, segment_start[static_cast<size_t>(seg) - 1] + 1,
                                                k_blocks - (segments - seg));
      segment_start[static_cast<size_t>(seg)] = start;
    }
  }
  const int64_t tasks = heads_kv * segments;
  const int threads = static_cast<int>(std::min<int64_t>(max_threads, tasks));
  const int64_t group_rows = p.group() * p.q_len;  // dQ rows of one kv head's query heads
  std::unique_ptr<Buffer<C>> shared_grad_q;
  std::unique_ptr<std::mutex[]> head_locks;
  if (segments > 1) {
    shared_grad_q = std::make_unique<Buffer<C>>(rows_total * dp);  // zeroed
    head_locks.reset(new std::mutex[static_cast<size_t>(heads_kv)]);
  }

#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    Buffer<C> k_rows(kBlockK * dp), k_cols(dp * kBlockK), v_cols(vp * kBlockK), q_pack(kBlockQ * dp),
        g_pack(kBlockQ * vp), probs(kBlockQ * kBlockK), grad_scores(kBlockQ * kBlockK), dk(kBlockK * dp),
        dv(kBlockK * vp), dq_task(group_rows * dp);
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t bh = task / segments, segment = task % segments;
      const int64_t b = bh / p.kv_heads, hk = bh % p.kv_heads;
      const int64_t kb_begin = segment_start[static_cast<size_t>(segment)];
      const int64_t kb_end = segment_start[static_cast<size_t>(segment) + 1];
      // Query rows this segment can reach (queries i >= j0 see key j0 under a causal mask).
      const int64_t first_row = p.causal ? std::min(p.q_len, kb_begin * kBlockK / kBlockQ * kBlockQ) : 0;
      for (int64_t g = 0; g < p.group(); ++g)
        std::fill(dq_task.get() + (g * p.q_len + first_row) * dp, dq_task.get() + (g + 1) * p.q_len * dp, C(0));
      for (int64_t kb = kb_begin; kb < kb_end; ++kb) {
        const int64_t j0 = kb * kBlockK, cols = std::min(kBlockK, p.k_len - j0);
        pack_rows<C>(k_rows.get(), dp, k, b, hk, j0, cols, kBlockK, p.dim, C(1));
        pack_transposed<C>(k_cols.get(), dp, k, b, hk, j0, cols, p.dim);
        pack_transposed<C>(v_cols.get(), vp, v, b, hk, j0, cols, p.v_dim);
        std::fill(dk.get(), dk.get() + kBlockK * dp, C(0));
        std::fill(dv.get(), dv.get() + kBlockK * vp, C(0));
        for (int64_t g = 0; g < p.group(); ++g) {
          const int64_t h = hk * p.group() + g;
          const int64_t first = p.causal ? j0 / kBlockQ * kBlockQ : 0;  // queries i >= j0 see key j0
          for (int64_t i0 = first; i0 < p.q_len; i0 += kBlockQ) {
            const int64_t rows = std::min(kBlockQ, p.q_len - i0);
            const int64_t row0 = (b * p.heads + h) * p.q_len + i0;
            pack_rows<C>(q_pack.get(), dp, q, b, h, i0, rows, rows, p.dim, p.scale);
            pack_rows<C>(g_pack.get(), vp, grad_out, b, h, i0, rows, rows, p.v_dim, C(1));
            C* P = probs.get();
            C* dS = grad_scores.get();
            gemm(rows, kBlockK, p.dim, q_pack.get(), dp, 1, k_cols.get(), kBlockK, P, kBlockK, false);
            mask_tile<C, kind>(P, p, b, h, i0, rows, j0, cols);
            for (int64_t r = 0; r < rows; ++r) {
              C* s = P + r * kBlockK;
              exp_shifted(s, kBlockK, lse[row0 + r]);
              std::fill(s + cols, s + kBlockK, C(0));  // padding keys (NaN for fully masked rows otherwise)
            }
            gemm(cols, vp, rows, P, 1, kBlockK, g_pack.get(), vp, dv.get(), vp, true);  // dV += P^T dO
            gemm(rows, kBlockK, p.v_dim, g_pack.get(), vp, 1, v_cols.get(), kBlockK, dS, kBlockK, false);  // dP
            for (int64_t r = 0; r < rows; ++r) {
              const C d = delta[static_cast<size_t>(row0 + r)];
              C* ds = dS + r * kBlockK;
              const C* pr = P + r * kBlockK;
              for (int64_t c = 0; c < kBlockK; ++c) ds[c] = pr[c] * (ds[c] - d);
              // A bool-masked row with no key left: the composite's masked_fill passes no gradient
              // to masked scores, so dS = 0 there (dV still gets the NaN weights, as PyTorch).
              if (kind == MaskKind::boolean && lse[row0 + r] == -std::numeric_limits<C>::infinity())
                std::fill(ds, ds + kBlockK, C(0));
            }
            gemm(cols, dp, rows, dS, 1, kBlockK, q_pack.get(), dp, dk.get(), dp, true);  // dK += dS^T Qs
            gemm(rows, dp, cols, dS, kBlockK, 1, k_rows.get(), dp, dq_task.get() + (g * p.q_len + i0) * dp, dp,
                 true);  // dQ / scale += dS K
          }
        }
        for (int64_t c = 0; c < cols; ++c) {
          T* gk = grad_k + ((b * p.kv_heads + hk) * p.k_len + j0 + c) * p.dim;
          T* gv = grad_v + ((b * p.kv_heads + hk) * p.k_len + j0 + c) * p.v_dim;
          for (int64_t e = 0; e < p.dim; ++e) gk[e] = convert<T>(dk[c * dp + e]);
          for (int64_t e = 0; e < p.v_dim; ++e) gv[e] = convert<T>(dv[c * vp + e]);
        }
      }
      const int64_t base_row = (b * p.heads + hk * p.group()) * p.q_len;  // the group's rows are contiguous
      if (segments == 1) {
        for (int64_t row = 0; row < group_rows; ++row) {
          T* dst = grad_q + (base_row + row) * p.dim;
          const C* src = dq_task.get() + row * dp;
          for (int64_t e = 0; e < p.dim; ++e) dst[e] = convert<T>(p.scale * src[e]);
        }
      } else {
        std::lock_guard<std::mutex> lock(head_locks[static_cast<size_t>(bh)]);
        C* dst = shared_grad_q->get() + base_row * dp;
        for (int64_t g = 0; g < p.group(); ++g)
          for (int64_t i = (g * p.q_len + first_row) * dp; i < (g + 1) * p.q_len * dp; ++i) dst[i] += dq_task[i];
      }
    }
  }

  if (segments > 1) {
    const int sum_threads = thread_count(rows_total, rows_total * p.dim);
#pragma omp parallel for num_threads(sum_threads) if (sum_threads > 1)
    for (int64_t row = 0; row < rows_total; ++row) {
      T* dst = grad_q + row * p.dim;
      const C* src = shared_grad_q->get() + row * dp;
      for (int64_t e = 0; e < p.dim; ++e) dst[e] = convert<T>(p.scale * src[e]);
    }
  }
}

template <typename T, typename F> void with_mask_kind(const Tensor& mask, F&& body) {
  if (!mask.defined()) body(std::integral_constant<MaskKind, MaskKind::none>{});
  else if (mask.dtype() == DType::bool_) body(std::integral_constant<MaskKind, MaskKind::boolean>{});
  else body(std::integral_constant<MaskKind, MaskKind::additive>{});
}

template <typename T, typename F> void with_storage(DType dtype, F&& body) {
  switch (dtype) {
    case DType::f32: body(float{}); break;
    case DType::bf16: body(BFloat16{}); break;
    case DType::f64: body(double{}); break;
    default: KEEL_ASSERT(false);
  }
}

}  // namespace

void flash_attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                             const Tensor& mask, bool causal, double scale) {
  with_storage<void>(q.dtype(), [&](auto storage) {
    using T = decltype(storage);
    using C = compute_t<T>;
    const Problem<C> p = make_problem<C>(q, k, v, mask, causal, scale);
    if (p.batch * p.heads * p.q_len == 0) return;
    with_mask_kind<T>(mask, [&](auto kind) {
      forward<T, C, decltype(kind)::value>(p, out.data_ptr<T>(), lse.data_ptr<C>(), view4<T>(q), view4<T>(k),
                                           view4<T>(v));
    });
  });
}

void flash_attention_backward(const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v,
                              const Tensor& grad_out, const Tensor& q, const Tensor& k, const Tensor& v,
                              const Tensor& out, const Tensor& lse, const Tensor& mask, bool causal, double scale) {
  with_storage<void>(q.dtype(), [&](auto storage) {
    using T = decltype(storage);
    using C = compute_t<T>;
    const Problem<C> p = make_problem<C>(q, k, v, mask, causal, scale);
    with_mask_kind<T>(mask, [&](auto kind) {
      backward<T, C, decltype(kind)::value>(p, grad_q.data_ptr<T>(), grad_k.data_ptr<T>(), grad_v.data_ptr<T>(),
                                            view4<T>(grad_out), view4<T>(q), view4<T>(k), view4<T>(v),
                                            out.data_ptr<T>(), lse.data_ptr<C>());
    });
  });
}

}  // namespace keel::cpu::KEEL_CPU_ISA
