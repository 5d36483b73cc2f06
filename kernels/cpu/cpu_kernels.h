#pragma once
// The CPU kernels that ops call. Ops have already checked arguments, broadcast inputs to the
// output's shape (as stride-0 views) and converted them to the compute dtype; kernels only
// assert. Kernels marked [isa] are compiled once per instruction set and picked at run time
// (kernels/cpu/dispatch.cpp from cpu_features.h); KEEL_CPU_ISA=baseline|avx2|avx512|amx and
// KEEL_CPU_DISABLE=avx512_bf16,... force lower paths.
#include <optional>
#include <string_view>
#include <vector>

#include "keel/core/rng.h"
#include "keel/core/tensor.h"
#include "keel/kernels/cpu/cpu_features.h"
#include "keel/kernels/op_math.h"
#include "keel/kernels/reduce_op.h"

namespace keel::cpu {

// ---- [isa] elementwise: out, x, a, b all have out's shape -------------------------------------
// out = op(x); out's dtype is x's, or bool for predicates.
void unary(UnaryOp op, const Tensor& out, const Tensor& x);
// out = g * (Phi(x) + x phi(x)), exact gelu's derivative times g in one pass (the composite of
// ops/elementwise.cpp's gelu_backward fused); out, g, x share out's shape and a floating dtype.
void gelu_erf_backward(const Tensor& out, const Tensor& g, const Tensor& x);
// out = op(a, b); a and b share a dtype; out has it too, or bool for comparisons/logical ops.
void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b);
// out = condition ? a : b; condition is bool; out, a, b share a dtype.
void where(const Tensor& out, const Tensor& condition, const Tensor& a, const Tensor& b);
// out = clamp(x, low, high); low/high are tensors of x's dtype (may be 0-D broadcasts) or
// undefined when the bound is absent.
void clamp(const Tensor& out, const Tensor& x, const Tensor& low, const Tensor& high);
// dst = src converted to dst's dtype; src has dst's shape (may be a broadcast view).
void copy(const Tensor& dst, const Tensor& src);
void fill(const Tensor& dst, const Scalar& value);

// ---- [isa] reductions -----------------------------------------------------------------------
// out has x's rank with size 1 in the reduced dims (keepdim shape); dtypes: out's dtype is the
// accumulation/result dtype (x is converted while read).
void reduce(ReduceOp op, const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims);
// values/indices have x's rank with size 1 at dim; the first extreme (or NaN) wins.
void arg_reduce(bool is_max, const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim);

// ---- [isa] matrix product (kernels/cpu/gemm.isa.cpp) ------------------------------------------------
// The fused tail of linear: out = activation(a @ b + bias), applied on each output tile while it
// is in cache. bias: undefined, or 1-D with out's last-dim size N and out's dtype (any stride);
// activation: none, relu, gelu_erf, gelu_tanh or silu. Needs a contiguous out for f64.
struct MatmulEpilogue {
  Tensor bias;
  std::optional<UnaryOp> activation;
};
// out[..., M, N] = a[..., M, K] @ b[..., K, N]: one rank >= 2 for all three, a and b broadcast to
// out's batch dims (stride-0 views allowed), any strides; out must not overlap a or b. One dtype
// for all three (f32, f64, f16, bf16; 16-bit accumulates in f32 and is rounded once). K = 0
// writes zeros (then the epilogue).
void matmul(const Tensor& out, const Tensor& a, const Tensor& b, const MatmulEpilogue& epilogue = {});
// bf16 GEMMs where AVX512-BF16 is usable: false (the default) converts bf16 to f32 panels while
// packing and runs the f32 FMA kernel; true runs the vdpbf16ps kernel (operands packed in pairs
// along K). On the Xeon this was tuned on, vdpbf16ps retires at half the rate of the f32 FMA
// (105 against 213 GFLOP/s per core), so the FMA path is the faster default there; the dot
// kernel is kept for CPUs where it runs at the FMA rate (twice the flops per instruction).
void set_gemm_bf16_dot(bool enabled);
bool gemm_bf16_dot();

// ---- [isa] flash attention (kernels/cpu/flash_attention.isa.cpp) --------------------------------
// q (B, Hq, Tq, D), k (B, Hkv, Tk, D), v (B, Hkv, Tk, Dv): any strides with a contiguous last dim,
// Hq % Hkv == 0, one dtype (f32, bf16: computed in f32; f64: in f64). mask: undefined, or bool
// (true = attend) or additive in the compute dtype (f32 for f32/bf16, f64 for f64), viewed as
// (B, Hq, Tq, Tk) with any strides (stride-0 broadcasts); causal is top-left aligned (key j <= query
// i) and never comes with a mask. out (B, Hq, Tq, Dv) contiguous in q's dtype; lse (B, Hq, Tq)
// contiguous in the compute dtype: logsumexp of the scaled, masked scores (-inf for fully masked rows).
void flash_attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                             const Tensor& mask, bool causal, double scale);
// grad_q, grad_k, grad_v contiguous with q's, k's, v's shapes and q's dtype; grad_out (B, Hq, Tq, Dv)
// with a contiguous last dim; out and lse as flash_attention_forward wrote them.
void flash_attention_backward(const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v, const Tensor& grad_out,
                              const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                              const Tensor& mask, bool causal, double scale);

// ---- indexing (kernels/cpu/index.cpp, not per-ISA) -------------------------------------------
// All tensors have one rank >= 1 (ops view 0-D tensors as [1]); dim is already wrapped. Index
// tensors are i64 or i32; every index is checked against [0, size) before anything is written
// (keel::Error "[op] index 7 is out of bounds for dim 0 with size 5").
// out[p] = x[p with coordinate dim replaced by index[p]]; out has index's shape, x's dtype, and
// index.size(d) <= x.size(d) for d != dim.
void gather(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index);
// self[p with coordinate dim replaced by index[p]] = source[p] (accumulate: +=) for p over
// index's shape; source has self's dtype and at least index's sizes (may be a stride-0 view).
void scatter(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source, bool accumulate);
// out[..., j, ...] = x[..., index[j], ...]; index is 1-D; out is x's shape with index.numel() at dim.
void index_select(const Tensor& out, const Tensor& x, int64_t dim, const Tensor& index);

// ---- random draws (not per-ISA) ------------------------------------------------------------
// Fills a contiguous tensor with the Philox draws of kernels/random_draw.h; kind is a
// RandomKind (uniform [a, b) of a dtype's width, normal (mean a, std b), integers in [a, b)).
void random_fill(const Tensor& out, int kind, double a, double b, PhiloxState state);


}  // namespace keel::cpu
