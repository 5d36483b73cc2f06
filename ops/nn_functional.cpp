// torch.nn.functional ops, each one node with an explicit vjp written with public ops (so it is
// differentiable again). Reductions run over `dim` (softmax) or the trailing normalized dims R
// (norms, N = numel of normalized_shape); means are over R with keepdim.
//
//   softmax       y = exp(x - m) / sum exp(x - m), m = amax x   dx = y * (dy - sum(dy * y))
//   log_softmax   y = x - m - log sum exp(x - m)                dx = dy - exp(y) * sum(dy)
//     saved: y
//   layer_norm    mu = mean x, rstd = 1 / sqrt(mean (x - mu)^2 + eps), xhat = (x - mu) * rstd
//                 y = xhat * w + b
//                 g = dy * w:  dx = rstd * (g - mean g - xhat * mean(g * xhat))
//                 dw = sum_lead(dy * xhat), db = sum_lead(dy)      (sum_lead: over leading dims)
//     saved: x, w, mu, rstd
//   rms_norm      rstd = 1 / sqrt(mean x^2 + eps), xhat = x * rstd, y = xhat * w
//                 dx = rstd * (g - xhat * mean(g * xhat)), dw = sum_lead(dy * xhat)
//     saved: x, w, rstd
//   dropout       y = x * s, s = Bernoulli(1 - p) / (1 - p)          dx = dy * s     (saved: s)
//   embedding     y[i..., :] = W[idx[i...], :]                  dW = scatter_add of dy rows at idx,
//                                                                    row padding_idx zeroed
//     saved: idx
//
// f16/bf16 are computed in f32 (forward and vjp) and returned in the input dtype. The norms save
// mu/rstd for a plain backward; under create_graph the vjp recomputes them from x with recorded
// ops, so that the second derivative also sees their dependence on x.
//
// CPU tensors of f32/bf16/f16 run fused kernels (kernels/cpu/norms.isa.cpp) on rows with the
// reduced dim last (softmax moves it there; the norms' dims are trailing already): forward, and
// the backward ops softmax_backward / log_softmax_backward (with vjps of their own) and
// layer_norm_backward / rms_norm_backward (fused for a plain backward; composite when recording).
// The fused norms save mean/rstd in f32. f64 and CUDA run the composites below, which are the
// spec and the tests' oracle.
#include "keel/ops/nn_functional.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "keel/autograd/record.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
#include "keel/ops/reduce.h"
#include "keel/ops/shape.h"
#include "keel/kernels/cpu/fused_kernels.h"

namespace keel {

using autograd::OpRecord;
using autograd::TensorList;
using autograd::VjpArgs;

namespace {

// The dtype an op computes in: f32 for the 16-bit floats, the input's dtype otherwise.
DType compute_dtype(DType dtype) { return dtype == DType::f16 || dtype == DType::bf16 ? DType::f32 : dtype; }
Tensor upcast(const Tensor& t) { return t.defined() ? t.to(compute_dtype(t.dtype())) : t; }

void check_defined(const char* op, const Tensor& t, const char* what) {
  KEEL_CHECK(t.defined(), "[", op, "] ", what, " is an undefined tensor");
}

void check_floating(const char* op, const Tensor& t, const char* what) {
  KEEL_CHECK(is_floating(t.dtype()), "[", op, "] ", what, " must be floating (f32, f64, f16, bf16), got ",
             dtype_name(t.dtype()), " of shape ", t.shape());
}

// ---- softmax / log_softmax ------------------------------------------------------------------
// The fused CPU kernels (kernels/cpu/norms.isa.cpp) take contiguous rows of f32, bf16 or f16;
// everything else (f64, CUDA) runs the composite below, which is also their test oracle.
bool fused_cpu(const Tensor& x) {
  return x.is_cpu() && x.numel() > 0 &&
         (x.dtype() == DType::f32 || x.dtype() == DType::bf16 || x.dtype() == DType::f16);
}

// t with dim d moved last and made contiguous (a 0-D t becomes [1]); undo_last() reverses it.
Tensor dim_last(const Tensor& t, int64_t d) {
  if (t.dim() == 0) return t.reshape({1});
  return (d == t.dim() - 1 ? t : t.transpose(d, t.dim() - 1)).contiguous();
}
Tensor undo_last(const Tensor& t, int64_t d, const Tensor& like) {
  if (like.dim() == 0) return t.reshape({});
  return d == like.dim() - 1 ? t : t.transpose(d, like.dim() - 1).contiguous();
}

Tensor softmax_composite(const Tensor& x, int64_t d, bool is_log) {
  const Tensor xf = upcast(x.dim() == 0 ? x.unsqueeze(0) : x);
  const Tensor shifted = xf - amax(xf, {d}, true);
  Tensor y;
  if (is_log) {
    y = shifted - log(sum(exp(shifted), {d}, true));
  } else {
    const Tensor e = exp(shifted);
    y = e / sum(e, {d}, true);
  }
  if (x.dim() == 0) y = y.squeeze(0);
  return y.to(x.dtype());
}

Tensor softmax_forward(const Tensor& x, int64_t dim, bool is_log) {
  const char* op = is_log ? "log_softmax" : "softmax";
  check_defined(op, x, "input");
  check_floating(op, x, "input");
  // A 0-D tensor behaves as one element along dim 0 or -1 (PyTorch).
  const int64_t d = wrap_dim(dim, std::max<int64_t>(x.dim(), 1), op);
  OpRecord record(op, x);
  record.trace_attr("dim", d);
  Tensor out;
  if (x.numel() == 0) {
    out = empty(x.shape(), x.options());  // amax has no identity; there is nothing to compute
  } else if (fused_cpu(x)) {
    const Tensor rows = dim_last(x, d);
    Tensor y = empty(rows.shape(), rows.options());
    cpu::softmax_rows(y, rows, is_log);
    out = undo_last(y, d, x);
  } else {
    out = softmax_composite(x, d, is_log);
  }
  if (record) {
    record.finish({out}, {out}, [dim, is_log](const VjpArgs& a) {
      return TensorList{is_log ? log_softmax_backward(a.saved[0], a.grad(), dim)
                               : softmax_backward(a.saved[0], a.grad(), dim)};
    });
  }
  return out;
}

// dx of softmax (or log_softmax) from its output y and the gradient dy; an op of its own with a
// vjp, so that second derivatives go through it:
//   softmax      dx = y * (dy - s), s = sum(dy * y):  d/d dy = y * (u - sum(u * y)) (softmax_backward
//                again), d/dy = u * (dy - s) - sum(u * y) * dy
//   log_softmax  dx = dy - exp(y) * S, S = sum(dy):   d/d dy = u - sum(u * exp(y)), d/dy = -u * exp(y) * S
Tensor softmax_backward_op(const Tensor& y, const Tensor& dy, int64_t dim, bool is_log) {
  const char* op = is_log ? "log_softmax_backward" : "softmax_backward";
  check_defined(op, y, "output y");
  check_defined(op, dy, "gradient dy");
  check_floating(op, y, "output y");
  check_floating(op, dy, "gradient dy");
  KEEL_CHECK(y.shape() == dy.shape(), "[", op, "] y and dy must have one shape, got ", y.shape(), " and ",
             dy.shape());
  KEEL_CHECK(y.device() == dy.device(), "[", op, "] y is on ", y.device().str(), ", dy on ", dy.device().str());
  const int64_t d = wrap_dim(dim, std::max<int64_t>(y.dim(), 1), op);
  OpRecord record(op, y, dy);
  Tensor dx;
  if (y.numel() == 0) {
    dx = empty(y.shape(), y.options());
  } else if (fused_cpu(y) && dy.dtype() == y.dtype()) {
    const Tensor y_rows = dim_last(y, d);
    const Tensor dy_rows = dim_last(dy, d);
    Tensor dx_rows = empty(y_rows.shape(), y_rows.options());
    cpu::softmax_backward_rows(dx_rows, y_rows, dy_rows, is_log);
    dx = undo_last(dx_rows, d, y);
  } else {
    const bool is_0d = y.dim() == 0;
    const Tensor yf = upcast(is_0d ? y.unsqueeze(0) : y);
    const Tensor dyf = upcast(is_0d ? dy.unsqueeze(0) : dy);
    dx = is_log ? dyf - exp(yf) * sum(dyf, {d}, true) : yf * (dyf - sum(dyf * yf, {d}, true));
    if (is_0d) dx = dx.squeeze(0);
    dx = dx.to(promote_types(y.dtype(), dy.dtype()));
  }
  if (record) {
    const bool is_0d = y.dim() == 0;
    record.finish({dx}, {y, dy}, [d, dim, is_log, is_0d](const VjpArgs& a) {
      Tensor grad_y, grad_dy;
      if (is_log) {
        Tensor y = upcast(a.saved[0]), dy = upcast(a.saved[1]), u = upcast(a.grad());
        if (is_0d) y = y.unsqueeze(0), dy = dy.unsqueeze(0), u = u.unsqueeze(0);
        const Tensor e = exp(y);
        if (a.needs(1)) grad_dy = u - sum(u * e, {d}, true);
        if (a.needs(0)) grad_y = -(u * e) * sum(dy, {d}, true);
        if (is_0d) {
          if (grad_y.defined()) grad_y = grad_y.squeeze(0);
          if (grad_dy.defined()) grad_dy = grad_dy.squeeze(0);
        }
      } else {
        if (a.needs(1)) grad_dy = softmax_backward(a.saved[0], a.grad(), dim);
        if (a.needs(0)) {
          Tensor y = upcast(a.saved[0]), dy = upcast(a.saved[1]), u = upcast(a.grad());
          if (is_0d) y = y.unsqueeze(0), dy = dy.unsqueeze(0), u = u.unsqueeze(0);
          grad_y = u * (dy - sum(dy * y, {d}, true)) - sum(u * y, {d}, true) * dy;
          if (is_0d) grad_y = grad_y.squeeze(0);
        }
      }
      return TensorList{grad_y, grad_dy};
    });
  }
  return dx;
}

// ---- layer_norm / rms_norm ---------------------------------------------------------------------
// Checks x's trailing dims and the affine parameters against normalized_shape; returns the dims
// that are normalized.
Dims normalized_dims(const char* op, const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                     const Tensor& bias) {
  check_defined(op, x, "input");
  check_floating(op, x, "input");
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  KEEL_CHECK(k >= 1, "[", op, "] normalized_shape must have at least one dim, got ", normalized_shape,
             " for input of shape ", x.shape());
  const bool trailing_match =
      k <= x.dim() && Shape(x.shape().end() - k, x.shape().end()) == normalized_shape;
  KEEL_CHECK(trailing_match, "[", op, "] normalized_shape ", normalized_shape,
             " does not match the trailing dims of input of shape ", x.shape(), " (expected input of shape [*, ",
             to_string(normalized_shape).substr(1), ")");
  if (weight.defined()) {
    check_floating(op, weight, "weight");
    KEEL_CHECK(weight.shape() == normalized_shape, "[", op, "] weight of shape ", weight.shape(),
               " does not match normalized_shape ", normalized_shape);
    KEEL_CHECK(weight.device() == x.device(), "[", op, "] weight is on ", weight.device().str(), ", input on ",
               x.device().str());
  }
  if (bias.defined()) {
    check_floating(op, bias, "bias");
    KEEL_CHECK(bias.shape() == normalized_shape, "[", op, "] bias of shape ", bias.shape(),
               " does not match normalized_shape ", normalized_shape);
    KEEL_CHECK(bias.device() == x.device(), "[", op, "] bias is on ", bias.device().str(), ", input on ",
               x.device().str());
  }
  Dims dims;
  for (int64_t i = x.dim() - k; i < x.dim(); ++i) dims.push_back(i);
  return dims;
}

struct NormStats {
  Tensor mean;      // undefined for rms_norm
  Tensor rstd;
  Tensor centered;  // x - mean (layer_norm) or x (rms_norm)
};
// mu and rstd of xf (already in the compute dtype), keepdim over dims.
NormStats norm_stats(const Tensor& xf, const Dims& dims, double eps, bool centered) {
  if (centered) {
    const Tensor mu = mean(xf, dims, true);
    const Tensor centered_x = xf - mu;
    return {mu, rsqrt(mean(centered_x * centered_x, dims, true) + eps), centered_x};
  }
  return {Tensor(), rsqrt(mean(xf * xf, dims, true) + eps), xf};
}

// The shape of the per-row statistics: x's shape with the normalized dims of size 1.
Shape stats_shape(const Tensor& x, const Dims& dims) {
  Shape shape = x.shape();
  for (int64_t d : dims) shape[d] = 1;
  return shape;
}

// The first-order backward of layer_norm (centered) / rms_norm from saved statistics; see
// layer_norm_backward in the header. The fused CPU kernel runs when nothing must be recorded;
// otherwise these public ops (differentiable in all inputs, the statistics taken as inputs).
NormGrads norm_backward(const char* op, const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                        const Tensor& weight, const Shape& normalized_shape, bool need_dx, bool need_dweight,
                        bool need_dbias, bool centered) {
  check_defined(op, dy, "gradient dy");
  check_defined(op, rstd, "rstd");
  const Dims dims = normalized_dims(op, x, normalized_shape, weight, Tensor());
  check_floating(op, dy, "gradient dy");
  KEEL_CHECK(dy.shape() == x.shape(), "[", op, "] dy and x must have one shape, got ", dy.shape(), " and ",
             x.shape());
  KEEL_CHECK(dy.device() == x.device() && rstd.device() == x.device(), "[", op,
             "] dy, x and rstd must be on one device, got ", dy.device().str(), ", ", x.device().str(), " and ",
             rstd.device().str());
  const Shape stat_shape = stats_shape(x, dims);
  int64_t rows = 1;
  for (int64_t size : stat_shape) rows *= size;
  KEEL_CHECK(rstd.numel() == rows, "[", op, "] rstd must have one value per row (", rows, "), got shape ",
             rstd.shape(), " for x of shape ", x.shape());
  if (centered) {
    check_defined(op, mean, "mean");
    KEEL_CHECK(mean.numel() == rows && mean.device() == x.device(), "[", op,
               "] mean must have one value per row (", rows, ") on x's device, got shape ", mean.shape());
  }
  need_dweight = need_dweight && weight.defined();
  need_dbias = need_dbias && centered;
  NormGrads grads;
  const bool recording = autograd::GradMode::is_enabled() &&
                         (autograd::requires_grad(dy) || autograd::requires_grad(x) ||
                          autograd::requires_grad(mean) || autograd::requires_grad(rstd) ||
                          autograd::requires_grad(weight));
  const bool stats_f32 = rstd.dtype() == DType::f32 && (!centered || mean.dtype() == DType::f32);
  if (!recording && fused_cpu(x) && dy.dtype() == x.dtype() && stats_f32) {
    const Tensor f32_weight = weight.defined() ? weight.to(DType::f32).contiguous() : Tensor();
    if (need_dx) grads.dx = empty(x.shape(), x.options());
    const TensorOptions f32_options{DType::f32, x.device()};
    if (need_dweight) grads.dweight = empty(normalized_shape, f32_options);
    if (need_dbias) grads.dbias = empty(normalized_shape, f32_options);
    cpu::norm_backward_rows(grads.dx, grads.dweight, grads.dbias, dy.contiguous(), x.contiguous(),
                            centered ? mean.reshape({rows}).contiguous() : Tensor(), rstd.reshape({rows}).contiguous(),
                            f32_weight);
    return grads;
  }
  const Tensor dyf = upcast(dy);
  if (need_dbias) grads.dbias = sum_to_size(dyf, normalized_shape);
  if (!need_dx && !need_dweight) return grads;
  const Tensor xf = upcast(x);
  const Tensor rstd_k = upcast(rstd).reshape(stat_shape);
  const Tensor xhat = (centered ? xf - upcast(mean).reshape(stat_shape) : xf) * rstd_k;
  if (need_dx) {
    const Tensor g = weight.defined() ? dyf * upcast(weight) : dyf;
    Tensor inner = g - xhat * keel::mean(g * xhat, dims, true);
    if (centered) inner = inner - keel::mean(g, dims, true);
    grads.dx = rstd_k * inner;
  }
  if (need_dweight) grads.dweight = sum_to_size(dyf * xhat, normalized_shape);
  return grads;
}

Tensor norm_forward(const char* op, const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                    const Tensor& bias, double eps, bool centered) {
  const Dims dims = normalized_dims(op, x, normalized_shape, weight, bias);
  OpRecord record(op, x, weight, bias);
  record.trace_attr("normalized_shape", normalized_shape);
  record.trace_attr("eps", eps);
  Tensor out, saved_mean, saved_rstd;
  if (fused_cpu(x)) {
    const Shape stat_shape = stats_shape(x, dims);
    const TensorOptions f32_options{DType::f32, x.device()};
    out = empty(x.shape(), x.options());
    saved_rstd = empty(stat_shape, f32_options);
    if (centered) saved_mean = empty(stat_shape, f32_options);
    cpu::norm_forward_rows(out, saved_mean, saved_rstd, x.contiguous(),
                           weight.defined() ? weight.to(DType::f32).contiguous() : Tensor(),
                           bias.defined() ? bias.to(DType::f32).contiguous() : Tensor(), eps);
  } else {
    const Tensor xf = upcast(x);
    const DType dtype = xf.dtype();
    const NormStats stats = norm_stats(xf, dims, eps, centered);
    Tensor y = stats.centered * stats.rstd;
    if (weight.defined()) y = y * weight.to(dtype);
    if (bias.defined()) y = y + bias.to(dtype);
    out = y.to(x.dtype());
    saved_mean = stats.mean;
    saved_rstd = stats.rstd;
  }
  if (record) {
    record.finish({out}, {x, weight, saved_mean, saved_rstd},
                  [dims, eps, centered, normalized_shape](const VjpArgs& a) {
      if (!autograd::GradMode::is_enabled()) {
        // A plain backward: the saved statistics, through the fused kernel where it applies.
        NormGrads g = norm_backward(centered ? "layer_norm_backward" : "rms_norm_backward", a.grad(), a.saved[0],
                                    a.saved[2], a.saved[3], a.saved[1], normalized_shape, a.needs(0), a.needs(1),
                                    a.needs(2), centered);
        return TensorList{g.dx, g.dweight, g.dbias};
      }
      // Under create_graph the statistics must carry their dependence on x: recompute them.
      const Tensor dy = upcast(a.grad());
      Tensor dx, dw, db;
      if (a.needs(2)) db = sum_to_size(dy, normalized_shape);
      if (!a.needs(0) && !a.needs(1)) return TensorList{dx, dw, db};
      const Tensor xf = upcast(a.saved[0]);
      const NormStats stats = norm_stats(xf, dims, eps, centered);
      const Tensor xhat = stats.centered * stats.rstd;
      if (a.needs(0)) {
        const Tensor w = upcast(a.saved[1]);
        const Tensor g = w.defined() ? dy * w : dy;
        Tensor inner = g - xhat * mean(g * xhat, dims, true);
        if (centered) inner = inner - mean(g, dims, true);
        dx = stats.rstd * inner;
      }
      if (a.needs(1)) dw = sum_to_size(dy * xhat, normalized_shape);
      return TensorList{dx, dw, db};
    });
  }
  return out;
}

// Machine epsilon of a floating dtype (torch.finfo(dtype).eps).
double machine_epsilon(DType dtype) {
  switch (dtype) {
    case DType::f64: return std::numeric_limits<double>::epsilon();
    case DType::f16: return 0.0009765625;  // 2^-10
    case DType::bf16: return 0.0078125;    // 2^-7
    default: return std::numeric_limits<float>::epsilon();
  }
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_forward(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_forward(x, dim, true); }

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  return norm_forward("layer_norm", x, normalized_shape, weight, bias, eps, true);
}

Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, std::optional<double> eps) {
  check_defined("rms_norm", x, "input");
  check_floating("rms_norm", x, "input");
  return norm_forward("rms_norm", x, normalized_shape, weight, Tensor(), eps.value_or(machine_epsilon(x.dtype())),
                      false);
}

Tensor softmax_backward(const Tensor& y, const Tensor& dy, int64_t dim) {
  return softmax_backward_op(y, dy, dim, false);
}
Tensor log_softmax_backward(const Tensor& y, const Tensor& dy, int64_t dim) {
  return softmax_backward_op(y, dy, dim, true);
}

NormGrads layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                              const Tensor& weight, const Shape& normalized_shape, NormGradMask mask) {
  return norm_backward("layer_norm_backward", dy, x, mean, rstd, weight, normalized_shape, mask.input, mask.weight,
                       mask.bias, true);
}
NormGrads rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& rstd, const Tensor& weight,
                            const Shape& normalized_shape, NormGradMask mask) {
  return norm_backward("rms_norm_backward", dy, x, Tensor(), rstd, weight, normalized_shape, mask.input, mask.weight,
                       false, false);
}

// ---- dropout -------------------------------------------------------------------------------------
Tensor dropout(const Tensor& x, double p, bool training, Generator* generator) {
  check_defined("dropout", x, "input");
  KEEL_CHECK(p >= 0.0 && p <= 1.0, "[dropout] probability p must be in [0, 1], got ", p);
  if (!training || p == 0.0 || x.numel() == 0) return x;
  check_floating("dropout", x, "input");
  OpRecord record("dropout", x);
  // p = 1 drops everything without drawing; x * 0 keeps PyTorch's signed zeros and NaNs.
  const Tensor scaled_mask = p == 1.0 ? zeros(x.shape(), x.options())
                                      : bernoulli(x.shape(), 1.0 - p, x.options(), generator) * (1.0 / (1.0 - p));
  Tensor out = x * scaled_mask;
  if (record) {
    record.finish({out}, {scaled_mask}, [](const VjpArgs& a) { return TensorList{a.grad() * a.saved[0]}; });
  }
  return out;
}

// ---- embedding -----------------------------------------------------------------------------------
Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<int64_t> padding_idx) {
  check_defined("embedding", indices, "indices");
  check_defined("embedding", weight, "weight");
  KEEL_CHECK(indices.dtype() == DType::i32 || indices.dtype() == DType::i64,
             "[embedding] indices must be int32 or int64, got ", dtype_name(indices.dtype()), " of shape ",
             indices.shape(), " (the order is embedding(indices, weight), as torch.nn.functional.embedding)");
  KEEL_CHECK(weight.dim() == 2, "[embedding] weight must be 2-D [num_embeddings, embedding_dim], got shape ",
             weight.shape());
  KEEL_CHECK(indices.device() == weight.device(), "[embedding] indices are on ", indices.device().str(),
             ", weight on ", weight.device().str());
  const int64_t num_embeddings = weight.size(0);
  const int64_t embedding_dim = weight.size(1);
  std::optional<int64_t> padding_row;
  if (padding_idx) {
    KEEL_CHECK(*padding_idx >= -num_embeddings && *padding_idx < num_embeddings, "[embedding] padding_idx ",
               *padding_idx, " is out of range for a table of ", num_embeddings, " embeddings (weight ",
               weight.shape(), ")");
    padding_row = *padding_idx < 0 ? *padding_idx + num_embeddings : *padding_idx;
  }
  const int64_t count = indices.numel();
  if (count > 0) {
    // Name the offending index: the largest when it is too large, otherwise the smallest.
    const int64_t largest = amax(indices).item<int64_t>();
    const int64_t smallest = amin(indices).item<int64_t>();
    const int64_t bad = largest >= num_embeddings ? largest : smallest;
    KEEL_CHECK(smallest >= 0 && largest < num_embeddings, "[embedding] index ", bad,
               " is out of range for a table of ", num_embeddings, " embeddings (weight ", weight.shape(),
               "): indices must lie in [0, ", num_embeddings, ")");
  }
  OpRecord record("embedding", weight);
  record.trace_attr("indices", indices);
  const Tensor flat = indices.reshape({count});
  Shape out_shape = indices.shape();
  out_shape.push_back(embedding_dim);
  Tensor out = index_select(weight, 0, flat).reshape(out_shape);
  if (record) {
    record.finish({out}, {indices}, [num_embeddings, embedding_dim, padding_row](const VjpArgs& a) {
      const int64_t n = a.saved[0].numel();
      const Tensor rows = a.saved[0].reshape({n}).to(DType::i64).unsqueeze(1).expand({n, embedding_dim});
      const Tensor dy = a.grad().reshape({n, embedding_dim});
      Tensor dw = scatter_add(zeros({num_embeddings, embedding_dim}, dy.options()), 0, rows, dy);
      if (padding_row) {
        dw = slice_scatter(dw, zeros({1, embedding_dim}, dy.options()), 0, *padding_row, *padding_row + 1);
      }
      return TensorList{dw};
    });
  }
  return out;
}

}  // namespace keel
