// Scaled dot-product attention: the flash kernel on the CPU, the composite everywhere else.
//
//   out = dropout(softmax(q k^T * scale + mask, dim = -1)) v
//   q: (..., H, L, E)  k: (..., Hkv, S, E)  v: (..., Hkv, S, Ev)  out: (..., H, L, Ev)
//
// Flash path (kernels/cpu/flash_attention.isa.cpp): one node, saving q, k, v, out and lse
// (B, H, L); its vjp is the op scaled_dot_product_attention_backward:
//   P = exp(S - lse)   dv = P^T g   dS = P (g v^T - rowsum(g . out))   dq = dS k scale   dk = dS^T q scale
// (for grouped-query heads dk, dv sum over the query heads that share a key head).
// Double backward: scaled_dot_product_attention_backward, when it has to record (create_graph),
// computes the same formula with public ops (recomputing P with the composite), which autograd
// differentiates again; so gradgradcheck runs through the composite while gradcheck (first order)
// runs the kernel, in float64 too (the kernel is generic over f32/bf16/f64 storage).
// A float attn_mask that requires grad takes the composite (the flash kernel has no dmask, which
// would need the full L x S matrix).
#include "keel/ops/attention.h"
#include "keel/ops/autocast.h"

#include <cmath>
#include <limits>

#include "keel/autograd/record.h"
#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
#include "keel/ops/linalg.h"
#include "keel/ops/nn_functional.h"
#include "keel/ops/operand_checks.h"
#include "keel/ops/reduce.h"
#include "keel/ops/shape.h"

namespace keel {

using autograd::OpRecord;
using autograd::TensorList;
using autograd::VjpArgs;

namespace {

using ops_detail::check_operands;

constexpr const char* kOp = "scaled_dot_product_attention";

Tensor matrix_transpose(const Tensor& x) { return x.transpose(-1, -2); }

// k [..., Hkv, S, E] -> [..., Hkv * groups, S, E], each head repeated `groups` times in a row
// (torch.repeat_interleave(k, groups, dim=-3)).
Tensor repeat_heads(const Tensor& x, int64_t groups) {
  if (groups == 1) return x;
  Shape expanded = x.shape();
  expanded.insert(expanded.end() - 2, groups);  // [..., Hkv, groups, S, E]
  Shape merged = x.shape();
  merged[merged.size() - 3] *= groups;
  return x.unsqueeze(-3).expand(expanded).reshape(merged);
}

// The inverse of repeat_heads for gradients: [..., Hkv * groups, S, E] summed per group.
Tensor sum_head_groups(const Tensor& x, int64_t groups) {
  if (groups == 1) return x;
  Shape split = x.shape();
  split[split.size() - 3] /= groups;
  split.insert(split.end() - 2, groups);
  return sum(x.reshape(split), {-3});
}

Shape broadcast_shapes(const Shape& a, const Shape& b, bool& ok) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  ok = true;
  for (size_t i = 0; i < rank; ++i) {
    const int64_t sa = i + a.size() >= rank ? a[i + a.size() - rank] : 1;
    const int64_t sb = i + b.size() >= rank ? b[i + b.size() - rank] : 1;
    if (sa != sb && sa != 1 && sb != 1) ok = false;
    out[i] = sa == 1 ? sb : sa;
  }
  return out;
}

// The scores q k^T * scale with the causal or explicit mask applied (keys already repeated per head).
Tensor masked_scores(const Tensor& q, const Tensor& keys, const Tensor& mask, bool is_causal, double scale) {
  Tensor scores = mul(matmul(q, matrix_transpose(keys)), Scalar(scale));  // [..., L, S]
  const double minus_inf = -std::numeric_limits<double>::infinity();
  if (is_causal) {
    const int64_t length = q.shape()[q.dim() - 2], positions = keys.shape()[keys.dim() - 2];
    const Tensor allowed = tril(ones({length, positions}, {DType::bool_, q.device()}));
    scores = masked_fill(scores, logical_not(allowed), minus_inf);
  } else if (mask.defined()) {
    scores = mask.dtype() == DType::bool_ ? masked_fill(scores, logical_not(mask), minus_inf) : add(scores, mask);
  }
  return scores;
}

// As 4-D (B, H, T, D): rank 2 and 3 get leading 1s.
Tensor as_4d(const Tensor& x) {
  Tensor y = x;
  while (y.dim() < 4) y = y.unsqueeze(0);
  return y;
}

// The kernel reads rows with a contiguous last dim.
Tensor rows_contiguous(const Tensor& x) { return x.stride(-1) == 1 || x.shape().back() <= 1 ? x : x.contiguous(); }

// The mask for the kernel: the compute dtype, viewed (B, H, L, S) through strides (no copy of a broadcast).
Tensor kernel_mask(const Tensor& mask, const Shape& scores4) {
  if (!mask.defined()) return {};
  Tensor m = mask;
  if (m.dtype() == DType::bf16) m = m.to(DType::f32);  // bf16 computes in f32
  return as_4d(m).expand(scores4);
}

bool flash_applies(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaOptions& options) {
  if (!q.is_cpu() || options.dropout_p != 0) return false;
  if (q.dtype() != DType::f32 && q.dtype() != DType::bf16 && q.dtype() != DType::f64) return false;
  if (q.dim() != k.dim() || q.dim() != v.dim() || q.dim() > 4) return false;
  const int64_t n = q.dim();
  for (int64_t d = 0; d + 3 < n; ++d)
    if (q.shape()[d] != k.shape()[d] || q.shape()[d] != v.shape()[d]) return false;
  if (n >= 3) {
    const int64_t heads = q.shape()[n - 3], key_heads = k.shape()[n - 3];
    if (v.shape()[n - 3] != key_heads || key_heads == 0 || heads % key_heads != 0) return false;
  }
  if (q.numel() == 0 || k.numel() == 0 || v.numel() == 0) return false;
  const Tensor& mask = options.attn_mask;
  if (mask.defined() && mask.dtype() != DType::bool_ && autograd::requires_grad(mask)) return false;
  return true;
}

Tensor flash_forward(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaOptions& options, double scale) {
  const Tensor q4 = rows_contiguous(as_4d(q)), k4 = rows_contiguous(as_4d(k)), v4 = rows_contiguous(as_4d(v));
  const int64_t batch = q4.shape()[0], heads = q4.shape()[1], length = q4.shape()[2];
  const int64_t positions = k4.shape()[2], value_dim = v4.shape()[3];
  const Tensor mask4 = kernel_mask(options.attn_mask, {batch, heads, length, positions});
  const DType compute = q.dtype() == DType::f64 ? DType::f64 : DType::f32;

  OpRecord record(kOp, q, k, v);
  record.trace_attr("is_causal", options.is_causal);
  record.trace_attr("scale", scale);
  record.trace_attr("attn_mask", options.attn_mask);
  Tensor out4 = empty({batch, heads, length, value_dim}, q.options());
  Tensor lse = empty({batch, heads, length}, {compute, q.device()});
  cpu::flash_attention_forward(out4, lse, q4, k4, v4, mask4, options.is_causal, scale);
  Shape out_shape = q.shape();
  out_shape.back() = value_dim;
  Tensor out = out4.view(out_shape);
  if (record) {
    SdpaOptions saved_options{.attn_mask = {}, .is_causal = options.is_causal, .scale = scale};
    record.finish({out}, {q4, k4, v4, out4, lse, mask4},
                  [saved_options, q_shape = q.shape(), k_shape = k.shape(), v_shape = v.shape()](const VjpArgs& args) {
                    SdpaOptions o = saved_options;
                    o.attn_mask = args.saved[5];
                    const Tensor& out_saved = args.saved[3];
                    const Tensor g = args.grad().reshape(out_saved.shape());
                    SdpaGrads grads = scaled_dot_product_attention_backward(g, args.saved[0], args.saved[1],
                                                                            args.saved[2], out_saved, args.saved[4], o);
                    return TensorList{grads.grad_q.reshape(q_shape), grads.grad_k.reshape(k_shape),
                                      grads.grad_v.reshape(v_shape)};
                  });
  }
  return out;
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaOptions& options) {
  if (autocast_applies(q, k, v, options.attn_mask)) {
    SdpaOptions cast_options = options;
    cast_options.attn_mask = autocast(options.attn_mask);  // a floating mask follows q's dtype
    return scaled_dot_product_attention(autocast(q), autocast(k), autocast(v), cast_options);
  }
  const char* op = kOp;
  check_operands(op, q, k, "query", "key");
  check_operands(op, q, v, "query", "value");
  KEEL_CHECK(q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2, "[", op,
             "] query, key and value need at least 2 dims ([..., L, E], [..., S, E], [..., S, Ev]), got shapes ",
             q.shape(), ", ", k.shape(), " and ", v.shape());
  KEEL_CHECK(k.shape().back() == q.shape().back(), "[", op, "] query and key must have the same last dim E: got shapes ",
             q.shape(), " and ", k.shape());
  KEEL_CHECK(v.shape()[v.dim() - 2] == k.shape()[k.dim() - 2], "[", op,
             "] key and value must have the same number of positions S (dim -2): got shapes ", k.shape(), " and ",
             v.shape());
  KEEL_CHECK(options.dropout_p >= 0 && options.dropout_p <= 1, "[", op, "] dropout_p must be in [0, 1], got ",
             options.dropout_p);
  KEEL_CHECK(!(options.is_causal && options.attn_mask.defined()), "[", op,
             "] is_causal cannot be combined with an explicit attn_mask (fold the causal mask into attn_mask)");
  const Tensor& mask = options.attn_mask;
  if (mask.defined()) {
    KEEL_CHECK(mask.device() == q.device(), "[", op, "] attn_mask is on ", mask.device().str(), " but query is on ",
               q.device().str());
    KEEL_CHECK(mask.dtype() == DType::bool_ || mask.dtype() == q.dtype(), "[", op,
               "] attn_mask must be bool or have the query's dtype ", dtype_name(q.dtype()), ", got ",
               dtype_name(mask.dtype()));
  }

  // Grouped-query attention: H query heads share Hkv key/value heads.
  Tensor keys = k, values = v;
  if (q.dim() >= 3 && k.dim() >= 3 && v.dim() >= 3) {
    const int64_t heads = q.shape()[q.dim() - 3];
    const int64_t key_heads = k.shape()[k.dim() - 3], value_heads = v.shape()[v.dim() - 3];
    if (key_heads != heads || value_heads != heads) {
      KEEL_CHECK(key_heads > 0 && value_heads > 0 && heads % key_heads == 0 && heads % value_heads == 0, "[", op,
                 "] the query's heads (dim -3) must be a multiple of the key's and the value's heads for grouped-query "
                 "attention: got shapes ",
                 q.shape(), ", ", k.shape(), " and ", v.shape());
      keys = repeat_heads(k, heads / key_heads);
      values = repeat_heads(v, heads / value_heads);
    }
  }
  // The scores' shape [..., L, S] (leading dims broadcast); the mask must broadcast to it.
  bool batch_ok = true;
  Shape scores_shape = broadcast_shapes(Shape(q.shape().begin(), q.shape().end() - 2),
                                        Shape(keys.shape().begin(), keys.shape().end() - 2), batch_ok);
  KEEL_CHECK(batch_ok, "[", op, "] the leading dims of query and key do not broadcast: got shapes ", q.shape(), ", ",
             k.shape(), " and ", v.shape());
  scores_shape.push_back(q.shape()[q.dim() - 2]);
  scores_shape.push_back(k.shape()[k.dim() - 2]);
  if (mask.defined()) {
    bool fits = mask.dim() <= static_cast<int64_t>(scores_shape.size());
    for (int64_t d = 1; fits && d <= mask.dim(); ++d) {
      const int64_t size = mask.shape()[mask.dim() - d];
      fits = size == 1 || size == scores_shape[scores_shape.size() - d];
    }
    KEEL_CHECK(fits, "[", op, "] attn_mask of shape ", mask.shape(), " does not broadcast to the scores' shape ",
               scores_shape, " (query ", q.shape(), ", key ", k.shape(), ")");
  }

  const int64_t embed = q.shape().back();
  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(embed)));
  if (flash_applies(q, k, v, options)) return flash_forward(q, k, v, options, scale);

  Tensor weights = softmax(masked_scores(q, keys, mask, options.is_causal, scale), -1);
  if (options.dropout_p > 0) weights = dropout(weights, options.dropout_p, true, options.generator);
  return matmul(weights, values);
}

SdpaGrads scaled_dot_product_attention_backward(const Tensor& grad_out, const Tensor& q, const Tensor& k,
                                                const Tensor& v, const Tensor& out, const Tensor& lse,
                                                const SdpaOptions& options) {
  const char* op = "scaled_dot_product_attention_backward";
  check_operands(op, q, k, "query", "key");
  check_operands(op, q, v, "query", "value");
  check_operands(op, q, grad_out, "query", "grad_out");
  KEEL_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && grad_out.dim() == 4, "[", op,
             "] expected 4-D query, key, value and grad_out (B, H, T, E), got shapes ", q.shape(), ", ", k.shape(),
             ", ", v.shape(), " and ", grad_out.shape());
  const int64_t batch = q.shape()[0], heads = q.shape()[1], length = q.shape()[2];
  const int64_t key_heads = k.shape()[1], positions = k.shape()[2];
  KEEL_CHECK(k.shape()[0] == batch && v.shape()[0] == batch && v.shape()[1] == key_heads && v.shape()[2] == positions &&
                 k.shape()[3] == q.shape()[3] && key_heads > 0 && heads % key_heads == 0,
             "[", op, "] query, key and value shapes do not match: got ", q.shape(), ", ", k.shape(), " and ",
             v.shape());
  const Shape out_shape{batch, heads, length, v.shape()[3]};
  KEEL_CHECK(grad_out.shape() == out_shape, "[", op, "] grad_out must have shape ", out_shape, ", got ",
             grad_out.shape());
  KEEL_CHECK(options.dropout_p == 0, "[", op, "] dropout is not supported (dropout_p = ", options.dropout_p, ")");
  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(q.shape()[3])));
  const int64_t groups = heads / key_heads;
  const Tensor& mask = options.attn_mask;

  const bool records = autograd::GradMode::is_enabled() && (autograd::requires_grad(grad_out) || autograd::requires_grad(q) ||
                                                  autograd::requires_grad(k) || autograd::requires_grad(v));
  if (records || !q.is_cpu()) {
    // The composite formula in public ops: differentiable again.
    const Tensor keys = repeat_heads(k, groups), values = repeat_heads(v, groups);
    Tensor scores = masked_scores(q, keys, mask, options.is_causal, scale);
    const Tensor probs = softmax(scores, -1);
    const Tensor grad_probs = matmul(grad_out, matrix_transpose(values));
    Tensor grad_scores = mul(probs, sub(grad_probs, sum(mul(grad_probs, probs), {-1}, true)));
    // masked_fill passes no gradient to masked scores (0 on fully masked rows, not NaN).
    if (options.is_causal) grad_scores = masked_fill(grad_scores, logical_not(tril(ones({length, positions},
                                                                       {DType::bool_, q.device()}))), 0.0);
    else if (mask.defined() && mask.dtype() == DType::bool_) grad_scores = masked_fill(grad_scores, logical_not(mask), 0.0);
    SdpaGrads grads;
    grads.grad_q = mul(matmul(grad_scores, keys), Scalar(scale));
    grads.grad_k = sum_head_groups(mul(matmul(matrix_transpose(grad_scores), q), Scalar(scale)), groups);
    grads.grad_v = sum_head_groups(matmul(matrix_transpose(probs), grad_out), groups);
    return grads;
  }

  KEEL_CHECK(out.defined() && lse.defined() && out.shape() == out_shape &&
                 lse.shape() == Shape({batch, heads, length}),
             "[", op, "] out must have shape ", out_shape, " and lse ", Shape({batch, heads, length}), ", got ",
             out.defined() ? out.shape() : Shape{}, " and ", lse.defined() ? lse.shape() : Shape{});
  const DType compute = q.dtype() == DType::f64 ? DType::f64 : DType::f32;
  KEEL_CHECK(q.dtype() == DType::f32 || q.dtype() == DType::bf16 || q.dtype() == DType::f64, "[", op,
             "] the CPU kernel takes float32, bfloat16 or float64, got ", dtype_name(q.dtype()));
  KEEL_CHECK(out.dtype() == q.dtype() && lse.dtype() == compute, "[", op, "] out must have the query's dtype and lse ",
             dtype_name(compute), ", got ", dtype_name(out.dtype()), " and ", dtype_name(lse.dtype()));
  SdpaGrads grads;
  grads.grad_q = empty(q.shape(), q.options());
  grads.grad_k = empty(k.shape(), k.options());
  grads.grad_v = empty(v.shape(), v.options());
  const Tensor mask4 = kernel_mask(mask, {batch, heads, length, positions});
  cpu::flash_attention_backward(grads.grad_q, grads.grad_k, grads.grad_v, rows_contiguous(grad_out),
                                rows_contiguous(q), rows_contiguous(k), rows_contiguous(v), out.contiguous(),
                                lse.contiguous(), mask4, options.is_causal, scale);
  return grads;
}

}  // namespace keel
