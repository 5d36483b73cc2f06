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
Tensor softmax_forward(const Tensor& x, int64_t dim, bool is_log) {
  const char* op = is_log ? "log_softmax" : "softmax";
  check_defined(op, x, "input");
  check_floating(op, x, "input");
  // A 0-D tensor behaves as one element along dim 0 or -1 (PyTorch).
  const int64_t d = wrap_dim(dim, std::max<int64_t>(x.dim(), 1), op);
  OpRecord record(op, x);
  Tensor out;
  if (x.numel() == 0) {
    out = empty(x.shape(), x.options());  // amax has no identity; there is nothing to compute
  } else {
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
    out = y.to(x.dtype());
  }
  if (record) {
    const bool is_0d = x.dim() == 0;
    record.finish({out}, {out}, [d, is_log, is_0d](const VjpArgs& a) {
      Tensor y = upcast(a.saved[0]);
      Tensor dy = upcast(a.grad());
      if (is_0d) {
        y = y.unsqueeze(0);
        dy = dy.unsqueeze(0);
      }
      Tensor dx = is_log ? dy - exp(y) * sum(dy, {d}, true) : y * (dy - sum(dy * y, {d}, true));
      if (is_0d) dx = dx.squeeze(0);
      return TensorList{dx};
    });
  }
  return out;
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

Tensor norm_forward(const char* op, const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                    const Tensor& bias, double eps, bool centered) {
  const Dims dims = normalized_dims(op, x, normalized_shape, weight, bias);
  OpRecord record(op, x, weight, bias);
  const Tensor xf = upcast(x);
  const DType dtype = xf.dtype();
  const NormStats stats = norm_stats(xf, dims, eps, centered);
  Tensor y = stats.centered * stats.rstd;
  if (weight.defined()) y = y * weight.to(dtype);
  if (bias.defined()) y = y + bias.to(dtype);
  Tensor out = y.to(x.dtype());
  if (record) {
    record.finish({out}, {x, weight, stats.mean, stats.rstd},
                  [dims, eps, centered, normalized_shape](const VjpArgs& a) {
      const Tensor dy = upcast(a.grad());
      Tensor dx, dw, db;
      if (a.needs(2)) db = sum_to_size(dy, normalized_shape);
      if (!a.needs(0) && !a.needs(1)) return TensorList{dx, dw, db};
      const Tensor xf = upcast(a.saved[0]);
      // Under create_graph the statistics must carry their dependence on x: recompute them.
      const NormStats stats =
          autograd::GradMode::is_enabled()
              ? norm_stats(xf, dims, eps, centered)
              : NormStats{a.saved[2], a.saved[3], centered ? xf - a.saved[2] : xf};
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
