// Matrix products: matmul and linear (with their vjps). Scaled dot-product attention moved to
// ops/attention.cpp.
//
//   matmul:  Y[z] = A[z] B[z]                   A: (Z..., M, K)  B: (Z..., K, N)  Y: (Z..., M, N)
//            dA = sum over A's broadcast batch dims of dY B^T
//            dB = sum over B's broadcast batch dims of A^T dY
//            1-D operands: A [K] is [1, K], B [K] is [K, 1]; the 1 is dropped from Y and dY is
//            viewed back with it. When B is one matrix and A a batch, dB = A'^T dY' with A', dY'
//            the batch folded into the rows (one product instead of Z products and a sum).
//   linear:  y = x W^T + b                      x: (..., in)  W: (out, in)  b: broadcast to y
//            dx = dy W,  dW = dy'^T x' (leading dims folded into the rows),  db = dy summed to b
//
// Saved for backward: matmul saves A and B, linear saves x and W (the bias gradient needs only
// shapes). The kernels: kernels/cpu/gemm.isa.cpp and kernels/cuda/gemm.cpp (cuBLAS).
#include "keel/ops/linalg.h"
#include "keel/ops/autocast.h"

#include <cmath>
#include <limits>
#include <optional>

#include "keel/autograd/grad_mode.h"
#include "keel/autograd/record.h"
#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/kernels/cuda/gemm.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
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

Shape drop_last(const Shape& shape, size_t count) { return Shape(shape.begin(), shape.end() - static_cast<long>(count)); }

Shape concat(Shape front, const Shape& back) {
  front.insert(front.end(), back.begin(), back.end());
  return front;
}

// The broadcast batch dims of two operands, or an error naming both full shapes.
Shape broadcast_batch(const char* op, const Shape& a_batch, const Shape& b_batch, const Tensor& a, const Tensor& b) {
  const size_t rank = std::max(a_batch.size(), b_batch.size());
  Shape batch(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t sa = i + a_batch.size() >= rank ? a_batch[i + a_batch.size() - rank] : 1;
    const int64_t sb = i + b_batch.size() >= rank ? b_batch[i + b_batch.size() - rank] : 1;
    KEEL_CHECK(sa == sb || sa == 1 || sb == 1, "[", op, "] batch dims ", a_batch, " and ", b_batch,
               " do not broadcast: got shapes ", a.shape(), " and ", b.shape());
    batch[i] = sa == 1 ? sb : sa;
  }
  return batch;
}

void launch_matmul(const Tensor& out, const Tensor& a, const Tensor& b) {
  if (out.is_cuda()) cuda::matmul(out, a, b);
  else cpu::matmul(out, a, b);
}

// out (contiguous, shape batch + [M, N], possibly viewed from the caller's result) = a2 @ b2,
// with a2 (..., M, K) and b2 (..., K, N) broadcast over batch. Records nothing.
void product_into(const Tensor& out, const Tensor& a2, const Tensor& b2, const Shape& batch) {
  if (out.numel() == 0) return;
  const int64_t m = a2.shape()[a2.dim() - 2], k = a2.shape()[a2.dim() - 1], n = b2.shape()[b2.dim() - 1];
  launch_matmul(out, a2.expand(concat(batch, {m, k})), b2.expand(concat(batch, {k, n})));
}

// The shapes of a matmul: operands as matrices (1-D promoted), batch, full and final result shapes.
struct MatmulPlan {
  Shape batch;        // broadcast batch dims
  Shape full_shape;   // batch + [M, N]
  Shape result_shape; // full_shape without the promoted dims
  int64_t m = 0, k = 0, n = 0;
};

MatmulPlan plan_matmul(const Tensor& a, const Tensor& b) {
  KEEL_CHECK(a.dim() >= 1 && b.dim() >= 1, "[matmul] both operands need at least 1 dim, got shapes ", a.shape(),
             " and ", b.shape());
  MatmulPlan plan;
  const Shape& as = a.shape();
  const Shape& bs = b.shape();
  if (a.dim() == 1 && b.dim() == 1)
    KEEL_CHECK(as[0] == bs[0], "[matmul] 1-D operands must have the same size for a dot product: got shapes ", as,
               " and ", bs);
  plan.m = a.dim() == 1 ? 1 : as[as.size() - 2];
  plan.k = as.back();
  const int64_t k_of_b = b.dim() == 1 ? bs[0] : bs[bs.size() - 2];
  plan.n = b.dim() == 1 ? 1 : bs.back();
  KEEL_CHECK(plan.k == k_of_b, "[matmul] shapes cannot be multiplied: got ", as, " and ", bs, " (", plan.k,
             " columns of the first against ", k_of_b, " rows of the second)");
  plan.batch = broadcast_batch("matmul", a.dim() > 2 ? drop_last(as, 2) : Shape{},
                               b.dim() > 2 ? drop_last(bs, 2) : Shape{}, a, b);
  plan.full_shape = concat(plan.batch, {plan.m, plan.n});
  plan.result_shape = plan.batch;
  if (a.dim() > 1) plan.result_shape.push_back(plan.m);
  if (b.dim() > 1) plan.result_shape.push_back(plan.n);
  return plan;
}

Tensor as_matrix_a(const Tensor& a) { return a.dim() == 1 ? a.unsqueeze(0) : a; }   // [K] -> [1, K]
Tensor as_matrix_b(const Tensor& b) { return b.dim() == 1 ? b.unsqueeze(1) : b; }   // [K] -> [K, 1]

Tensor matrix_transpose(const Tensor& x) { return x.transpose(-1, -2); }

}  // namespace

// ---- matmul ------------------------------------------------------------------------------------------
Tensor matmul(const Tensor& a, const Tensor& b) {
  if (autocast_applies(a, b)) return matmul(autocast(a), autocast(b));
  check_operands("matmul", a, b, "the first operand", "the second operand");
  const MatmulPlan plan = plan_matmul(a, b);
  OpRecord record("matmul", a, b);
  Tensor out = empty(plan.result_shape, a.options());
  product_into(out.view(plan.full_shape), as_matrix_a(a), as_matrix_b(b), plan.batch);
  if (record) {
    record.finish({out}, {a, b}, [plan](const VjpArgs& args) {
      const Tensor& a_saved = args.saved[0];
      const Tensor& b_saved = args.saved[1];
      const Tensor a2 = as_matrix_a(a_saved), b2 = as_matrix_b(b_saved);
      const Tensor g = args.grad().reshape(plan.full_shape);
      Tensor grad_a, grad_b;
      if (args.needs(0)) {
        grad_a = sum_to_size(matmul(g, matrix_transpose(b2)), a2.shape()).reshape(a_saved.shape());
      }
      if (args.needs(1)) {
        if (b2.dim() == 2 && a2.dim() > 2) {
          // One weight matrix against a batch: fold the batch into the rows, one product.
          const int64_t batch_rows = shape_numel(plan.batch) * plan.m;
          grad_b = matmul(a2.reshape({batch_rows, plan.k}).t(), g.reshape({batch_rows, plan.n}));
        } else {
          grad_b = sum_to_size(matmul(matrix_transpose(a2), g), b2.shape());
        }
        grad_b = grad_b.reshape(b_saved.shape());
      }
      return TensorList{grad_a, grad_b};
    });
  }
  return out;
}

// ---- linear ------------------------------------------------------------------------------------------
namespace {

// The checks and shapes of linear.
struct LinearPlan {
  Shape out_shape, bias_shape;
  int64_t rows = 0, in_features = 0, out_features = 0;
  bool fused_bias = false;  // bias is [out]: added in the GEMM's epilogue (CPU)
};

LinearPlan plan_linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_operands("linear", x, weight, "input", "weight");
  KEEL_CHECK(weight.dim() == 2, "[linear] weight must be 2-D [out_features, in_features], got shape ", weight.shape());
  KEEL_CHECK(x.dim() >= 1, "[linear] input must have at least 1 dim [..., in_features], got shape ", x.shape());
  LinearPlan plan;
  plan.in_features = weight.shape()[1];
  plan.out_features = weight.shape()[0];
  KEEL_CHECK(x.shape().back() == plan.in_features, "[linear] input of shape ", x.shape(),
             " does not match weight of shape ", weight.shape(),
             ": the input's last dim must be in_features = ", plan.in_features);
  const Shape leading = drop_last(x.shape(), 1);
  plan.out_shape = concat(leading, {plan.out_features});
  plan.rows = shape_numel(leading);
  if (bias.defined()) {
    check_operands("linear", x, bias, "input", "bias");
    bool fits = bias.dim() <= static_cast<int64_t>(plan.out_shape.size());
    for (int64_t d = 1; fits && d <= bias.dim(); ++d) {
      const int64_t size = bias.shape()[bias.dim() - d];
      fits = size == 1 || size == plan.out_shape[plan.out_shape.size() - d];
    }
    KEEL_CHECK(fits, "[linear] bias of shape ", bias.shape(), " does not broadcast to the output shape ",
               plan.out_shape, " (input ", x.shape(), ", weight ", weight.shape(), ")");
    plan.bias_shape = bias.shape();
    plan.fused_bias = !x.is_cuda() && bias.dim() == 1 && bias.shape()[0] == plan.out_features;
  }
  return plan;
}

std::optional<UnaryOp> unary_of(Activation activation) {
  switch (activation) {
    case Activation::none: return std::nullopt;
    case Activation::relu: return UnaryOp::relu;
    case Activation::gelu: return UnaryOp::gelu_erf;
    case Activation::gelu_tanh: return UnaryOp::gelu_tanh;
    case Activation::silu: return UnaryOp::silu;
  }
  return std::nullopt;
}

Tensor apply_activation(const Tensor& z, Activation activation) {
  switch (activation) {
    case Activation::none: return z;
    case Activation::relu: return relu(z);
    case Activation::gelu: return gelu(z, GeluApproximation::none);
    case Activation::gelu_tanh: return gelu(z, GeluApproximation::tanh);
    case Activation::silu: return silu(z);
  }
  return z;
}

// dz = dy * act'(z) (relu from its output y: [y > 0]), with public ops (as ops/elementwise.cpp's
// unary vjps): differentiable again.
Tensor activation_vjp(Activation activation, const Tensor& g, const Tensor& z, const Tensor& y) {
  switch (activation) {
    case Activation::none: return g;
    case Activation::relu: return where(gt(y, 0), g, 0);
    case Activation::silu: {
      const Tensor s = sigmoid(z);
      return g * (s * (1 + z * (1 - s)));
    }
    case Activation::gelu: return gelu_backward(g, z);
    case Activation::gelu_tanh: {
      constexpr double k = 0.79788456080286535588, c = 0.044715;  // sqrt(2 / pi)
      const Tensor t = tanh((z + z * z * z * c) * k);
      const Tensor inner_derivative = (z * z * (3 * c) + 1) * k;
      return g * ((t + 1) * 0.5 + z * 0.5 * (1 - t * t) * inner_derivative);
    }
  }
  return g;
}

// out (contiguous, plan.out_shape) = act(x W^T + b) with whatever the device fuses; records nothing.
void linear_forward(Tensor out, const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const LinearPlan& plan, Activation activation) {
  if (out.numel() == 0) return;
  // One GEMM over all rows: x' (rows, in) @ W^T (in, out), x' = x with its leading dims folded
  // (a copy only when x's layout does not allow the view).
  const Tensor out2 = out.view({plan.rows, plan.out_features});
  const Tensor x2 = x.reshape({plan.rows, plan.in_features});
  if (out.is_cuda()) {
    launch_matmul(out2, x2, weight.t());
    if (bias.defined()) add_(out, bias);
    KEEL_ASSERT(activation == Activation::none);
    return;
  }
  cpu::MatmulEpilogue epilogue;
  if (plan.fused_bias) epilogue.bias = bias;
  epilogue.activation = unary_of(activation);
  if (plan.in_features == 0) {
    // K = 0: the kernel writes the epilogue of zeros.
    launch_matmul(out2, x2, weight.t());
    if (bias.defined()) add_(out, bias);
    if (activation != Activation::none) {
      out.copy_(apply_activation(out, activation));
    }
    return;
  }
  cpu::matmul(out2, x2, weight.t(), epilogue);
  if (bias.defined() && !plan.fused_bias) {
    KEEL_ASSERT(activation == Activation::none);
    add_(out, bias);
  }
}

// The vjp of y = act(x W^T + b) from dz = dy * act'(z):
//   dx = dz W,  dW = dz'^T x' (leading dims folded into the rows),  db = dz summed to b's shape
TensorList linear_vjp(const VjpArgs& args, const Tensor& dz, const LinearPlan& plan) {
  const Tensor& x_saved = args.saved[0];
  const Tensor& w_saved = args.saved[1];
  Tensor grad_x, grad_w, grad_b;
  if (args.needs(0)) grad_x = matmul(dz, w_saved);
  if (args.needs(1))
    grad_w = matmul(dz.reshape({plan.rows, plan.out_features}).t(), x_saved.reshape({plan.rows, plan.in_features}));
  if (args.needs(2)) grad_b = sum_to_size(dz, plan.bias_shape);
  return TensorList{grad_x, grad_w, grad_b};
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  return linear(x, weight, bias, Activation::none);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias, Activation activation) {
  if (autocast_applies(x, weight, bias)) return linear(autocast(x), autocast(weight), autocast(bias), activation);
  const LinearPlan plan = plan_linear(x, weight, bias);
  if (activation != Activation::none && (x.is_cuda() || (bias.defined() && !plan.fused_bias)))
    return apply_activation(linear(x, weight, bias), activation);  // the composite
  OpRecord record("linear", x, weight, bias);
  record.trace_attr("activation", static_cast<int>(activation));
  Tensor out = empty(plan.out_shape, x.options());
  const bool keeps_z = record.records_grad() && activation != Activation::none && activation != Activation::relu;
  if (!keeps_z) {
    linear_forward(out, x, weight, bias, plan, activation);
    if (record) {
      // relu's derivative is read from its output; none needs no values.
      record.finish({out}, {x, weight, activation == Activation::relu ? out : Tensor()},
                    [plan, activation](const VjpArgs& args) {
                      const Tensor dz = activation_vjp(activation, args.grad(), Tensor(), args.saved[2]);
                      return linear_vjp(args, dz, plan);
                    });
    }
    return out;
  }
  // gelu / silu under autograd: keep z = x W^T + b (fused bias) for the derivative.
  Tensor z = empty(plan.out_shape, x.options());
  linear_forward(z, x, weight, bias, plan, Activation::none);
  out = apply_activation(z, activation);  // grad mode is off inside the record
  record.finish({out}, {x, weight, bias, z}, [plan, activation](const VjpArgs& args) {
    // For a graph of the backward (higher-order gradients), z is recomputed from the inputs so
    // that act'(z) is differentiable in them; otherwise the saved z is enough.
    const Tensor z_used = autograd::GradMode::is_enabled() ? linear(args.saved[0], args.saved[1], args.saved[2])
                                                           : args.saved[3];
    return linear_vjp(args, activation_vjp(activation, args.grad(), z_used, Tensor()), plan);
  });
  return out;
}

}  // namespace keel
