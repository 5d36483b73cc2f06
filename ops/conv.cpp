// conv2d and its two backward ops, each recorded with a vjp written with these public ops.
//
//   y  = conv(x, w) + b                      x: (N, C, H, W)  w: (O, C/G, kH, kW)  y: (N, O, OH, OW)
//   dx = conv2d_backward_input(dy, w)        = A_w^T dy   (A_w: the linear map x -> conv(x, w))
//   dw = conv2d_backward_weight(dy, x)       = the adjoint of w -> conv(x, w), applied to dy
//   db = sum over (N, OH, OW) of dy
// Both backward ops are bilinear, so their vjps are convolutions again: for an upstream ggx of
// x's shape and ggw of w's shape,
//   backward_input(dy, w):   d dy = conv2d(ggx, w),            d w = conv2d_backward_weight(dy, ggx)
//   backward_weight(dy, x):  d dy = conv2d(x, ggw),            d x = conv2d_backward_input(dy, ggw)
// FLOPs: 2 N O OH OW (C/G) kH kW for each of the three. Saved: conv2d saves x and w.
// Kernels: kernels/cpu/conv_kernels.h (oneDNN for f32/bf16, direct loops for f64).
#include "keel/ops/conv.h"
#include "keel/ops/autocast.h"

#include "keel/autograd/record.h"
#include "keel/kernels/cpu/conv_kernels.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
#include "keel/ops/reduce.h"

namespace keel {

using autograd::OpRecord;
using autograd::TensorList;
using autograd::VjpArgs;

namespace {

cpu::Conv2dParams to_params(const Conv2dOptions& o) {
  cpu::Conv2dParams p;
  for (int a = 0; a < 2; ++a) {
    p.stride[a] = o.stride[a];
    p.padding[a] = o.padding[a];
    p.dilation[a] = o.dilation[a];
  }
  p.groups = o.groups;
  return p;
}

Shape size2_shape(Size2 s) { return {s[0], s[1]}; }

void check_tensor(const char* op, const Tensor& t, const char* what) {
  KEEL_CHECK(t.defined(), "[", op, "] ", what, " is undefined");
  KEEL_CHECK(is_floating(t.dtype()), "[", op, "] ", what, " must be floating (f32, f64, f16, bf16), got ",
             dtype_name(t.dtype()), " of shape ", t.shape());
  KEEL_CHECK(t.is_cpu(), "[", op, "] no CUDA kernel in this build yet (cuDNN comes later): ", what, " is on ",
             t.device().str());
}

void check_same(const char* op, const Tensor& a, const Tensor& b, const char* name_a, const char* name_b) {
  KEEL_CHECK(a.dtype() == b.dtype(), "[", op, "] ", name_a, " and ", name_b, " must have one dtype, got ",
             dtype_name(a.dtype()), " and ", dtype_name(b.dtype()));
}

void check_options(const char* op, const Conv2dOptions& o) {
  KEEL_CHECK(o.stride[0] > 0 && o.stride[1] > 0, "[", op, "] stride must be positive, got ", size2_shape(o.stride));
  KEEL_CHECK(o.padding[0] >= 0 && o.padding[1] >= 0, "[", op, "] padding must be non-negative, got ",
             size2_shape(o.padding));
  KEEL_CHECK(o.dilation[0] > 0 && o.dilation[1] > 0, "[", op, "] dilation must be positive, got ",
             size2_shape(o.dilation));
  KEEL_CHECK(o.groups > 0, "[", op, "] groups must be positive, got ", o.groups);
}

// Output spatial size of one axis; throws when the dilated kernel exceeds the padded input.
int64_t conv_out_size(const char* op, int64_t in, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
                      const Shape& x_shape, const Shape& w_shape) {
  const int64_t padded = in + 2 * padding, extent = dilation * (kernel - 1) + 1;
  KEEL_CHECK(extent <= padded, "[", op, "] the kernel (dilated size ", extent,
             ") is larger than the padded input (size ", padded, "): input ", x_shape, ", weight ", w_shape);
  return (padded - extent) / stride + 1;
}

// Checks x (N, C, H, W) against w (O, C/G, kH, kW) and returns y's shape.
Shape conv_output_shape(const char* op, const Shape& x, const Shape& w, const Conv2dOptions& o) {
  KEEL_CHECK(x.size() == 4, "[", op, "] expected a 4-D input (N, C, H, W) or 3-D (C, H, W), got shape ", x);
  KEEL_CHECK(w.size() == 4, "[", op, "] expected a 4-D weight (O, C/groups, kH, kW), got shape ", w);
  check_options(op, o);
  KEEL_CHECK(x[1] % o.groups == 0, "[", op, "] groups = ", o.groups, " does not divide the input's ", x[1],
             " channels (input ", x, ")");
  KEEL_CHECK(w[0] % o.groups == 0, "[", op, "] groups = ", o.groups, " does not divide the weight's ", w[0],
             " output channels (weight ", w, ")");
  KEEL_CHECK(x[1] == w[1] * o.groups, "[", op, "] input ", x, " has ", x[1], " channels, but weight ", w,
             " with groups = ", o.groups, " expects ", w[1] * o.groups);
  return {x[0], w[0], conv_out_size(op, x[2], w[2], o.stride[0], o.padding[0], o.dilation[0], x, w),
          conv_out_size(op, x[3], w[3], o.stride[1], o.padding[1], o.dilation[1], x, w)};
}

// The dtype the kernels see: oneDNN takes f32/bf16, the loops f64; f16 runs in f32.
DType kernel_dtype(DType dtype) { return dtype == DType::f16 ? DType::f32 : dtype; }
Tensor kernel_input(const Tensor& t) { return t.to(kernel_dtype(t.dtype())).contiguous(); }

}  // namespace

// ---- conv2d ------------------------------------------------------------------------------------
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& options) {
  if (autocast_applies(x, weight, bias)) return conv2d(autocast(x), autocast(weight), autocast(bias), options);
  const char* op = "conv2d";
  check_tensor(op, x, "input");
  check_tensor(op, weight, "weight");
  check_same(op, x, weight, "input", "weight");
  if (x.dim() == 3) return conv2d(x.unsqueeze(0), weight, bias, options).squeeze(0);
  const Shape y_shape = conv_output_shape(op, x.shape(), weight.shape(), options);
  if (bias.defined()) {
    check_tensor(op, bias, "bias");
    check_same(op, x, bias, "input", "bias");
    KEEL_CHECK(bias.dim() == 1 && bias.shape()[0] == weight.shape()[0], "[", op, "] bias must have shape [",
               weight.shape()[0], "] (the weight's output channels), got ", bias.shape());
  }
  OpRecord record(op, x, weight, bias);
  record.trace_attr("stride", options.stride);
  record.trace_attr("padding", options.padding);
  record.trace_attr("dilation", options.dilation);
  record.trace_attr("groups", options.groups);
  Tensor y;
  if (x.numel() == 0 || weight.numel() == 0 || shape_numel(y_shape) == 0) {
    y = zeros(y_shape, x.options());
    if (bias.defined() && y.numel() > 0) y = y + bias.view({1, bias.numel(), 1, 1});
  } else {
    const DType dtype = kernel_dtype(x.dtype());
    y = empty(y_shape, {dtype, x.device()});
    cpu::conv2d_forward(op, y, kernel_input(x), kernel_input(weight), bias.defined() ? kernel_input(bias) : Tensor(),
                        to_params(options));
    y = y.to(x.dtype());
  }
  if (record) {
    record.finish({y}, {x, weight}, [options, has_bias = bias.defined()](const VjpArgs& a) {
      const Tensor& g = a.grad();
      const Tensor& x_saved = a.saved[0];
      const Tensor& w_saved = a.saved[1];
      Tensor dx, dw, db;
      if (a.needs(0)) dx = conv2d_backward_input(g, w_saved, x_saved.shape(), options);
      if (a.needs(1)) dw = conv2d_backward_weight(g, x_saved, w_saved.shape(), options);
      if (has_bias && a.needs(2)) db = sum(g, {0, 2, 3});
      return TensorList{dx, dw, db};
    });
  }
  return y;
}

// ---- conv2d_backward_input -----------------------------------------------------------------------
Tensor conv2d_backward_input(const Tensor& grad_output, const Tensor& weight, const Shape& input_shape,
                             const Conv2dOptions& options) {
  const char* op = "conv2d_backward_input";
  check_tensor(op, grad_output, "grad_output");
  check_tensor(op, weight, "weight");
  check_same(op, grad_output, weight, "grad_output", "weight");
  const Shape y_shape = conv_output_shape(op, input_shape, weight.shape(), options);
  KEEL_CHECK(grad_output.shape() == y_shape, "[", op, "] grad_output has shape ", grad_output.shape(),
             " but the convolution of input ", input_shape, " with weight ", weight.shape(), " gives ", y_shape);
  OpRecord record(op, grad_output, weight);
  Tensor dx;
  if (grad_output.numel() == 0 || weight.numel() == 0 || shape_numel(input_shape) == 0) {
    dx = zeros(input_shape, grad_output.options());
  } else {
    dx = empty(input_shape, {kernel_dtype(grad_output.dtype()), grad_output.device()});
    cpu::conv2d_backward_input(op, dx, kernel_input(grad_output), kernel_input(weight), to_params(options));
    dx = dx.to(grad_output.dtype());
  }
  if (record) {
    record.finish({dx}, {grad_output, weight}, [options](const VjpArgs& a) {
      const Tensor& ggx = a.grad();
      Tensor d_grad_output, d_weight;
      if (a.needs(0)) d_grad_output = conv2d(ggx, a.saved[1], {}, options);
      if (a.needs(1)) d_weight = conv2d_backward_weight(a.saved[0], ggx, a.saved[1].shape(), options);
      return TensorList{d_grad_output, d_weight};
    });
  }
  return dx;
}

// ---- conv2d_backward_weight ----------------------------------------------------------------------
Tensor conv2d_backward_weight(const Tensor& grad_output, const Tensor& x, const Shape& weight_shape,
                              const Conv2dOptions& options) {
  const char* op = "conv2d_backward_weight";
  check_tensor(op, grad_output, "grad_output");
  check_tensor(op, x, "input");
  check_same(op, grad_output, x, "grad_output", "input");
  const Shape y_shape = conv_output_shape(op, x.shape(), weight_shape, options);
  KEEL_CHECK(grad_output.shape() == y_shape, "[", op, "] grad_output has shape ", grad_output.shape(),
             " but the convolution of input ", x.shape(), " with weight ", weight_shape, " gives ", y_shape);
  OpRecord record(op, grad_output, x);
  Tensor dw;
  if (grad_output.numel() == 0 || x.numel() == 0 || shape_numel(weight_shape) == 0) {
    dw = zeros(weight_shape, x.options());
  } else {
    dw = empty(weight_shape, {kernel_dtype(x.dtype()), x.device()});
    cpu::conv2d_backward_weight(op, dw, Tensor(), kernel_input(grad_output), kernel_input(x), to_params(options));
    dw = dw.to(x.dtype());
  }
  if (record) {
    record.finish({dw}, {grad_output, x}, [options](const VjpArgs& a) {
      const Tensor& ggw = a.grad();
      Tensor d_grad_output, d_x;
      if (a.needs(0)) d_grad_output = conv2d(a.saved[1], ggw, {}, options);
      if (a.needs(1)) d_x = conv2d_backward_input(a.saved[0], ggw, a.saved[1].shape(), options);
      return TensorList{d_grad_output, d_x};
    });
  }
  return dw;
}

}  // namespace keel
