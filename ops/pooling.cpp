// max_pool2d, avg_pool2d, adaptive_avg_pool2d and their backward ops (kernels/cpu/pooling.cpp).
//
//   max:  y = max over each window, indices = its flat position h W + w (saved for the backward)
//         dx = max_pool2d_backward(dy, indices): dy added at the indices into zeros
//         max_pool2d_backward is linear in dy: its vjp is gather(ggx, indices)
//   avg:  y = A x (A: window sums / divisors, a linear map); dx = A^T dy = avg_pool2d_backward(dy)
//         avg_pool2d_backward's vjp is A ggx = avg_pool2d(ggx) (the same for adaptive pooling)
// So every pooling gradient is differentiable again (gradgradcheck passes through them); the
// second derivative of max pooling holds the indices fixed, as PyTorch's does.
// Output sizes (PyTorch's pooling_output_shape), per axis with e = dilation (kernel - 1) + 1:
//   out = floor or ceil((in + 2 padding - e) / stride) + 1, and with ceil_mode one less when the
//   last window would start at or after in + padding.
// 16-bit inputs: forward in their dtype (sums in f32), backward computed in f32.
#include <cmath>

#include "keel/autograd/record.h"
#include "keel/kernels/cpu/conv_kernels.h"
#include "keel/ops/conv.h"
#include "keel/ops/factory.h"
#include "keel/ops/shape.h"

namespace keel {

using autograd::OpRecord;
using autograd::TensorList;
using autograd::VjpArgs;

namespace {

Shape size2_shape(Size2 s) { return {s[0], s[1]}; }

void check_input(const char* op, const Tensor& x) {
  KEEL_CHECK(x.defined(), "[", op, "] input is undefined");
  KEEL_CHECK(is_floating(x.dtype()), "[", op, "] input must be floating (f32, f64, f16, bf16), got ",
             dtype_name(x.dtype()), " of shape ", x.shape());
  KEEL_CHECK(x.is_cpu(), "[", op, "] no CUDA kernel in this build yet: input is on ", x.device().str());
  KEEL_CHECK(x.dim() == 3 || x.dim() == 4, "[", op, "] expected a 4-D input (N, C, H, W) or 3-D (C, H, W), got shape ",
             x.shape());
  KEEL_CHECK(x.shape()[x.dim() - 1] > 0 && x.shape()[x.dim() - 2] > 0 && (x.dim() == 3 || x.shape()[1] > 0), "[",
             op, "] expected non-zero channel and spatial sizes (only the batch may be empty), got shape ", x.shape());
}

// PyTorch's pooling_output_shape plus its checks (pool2d_shape_check).
int64_t pool_out_size(const char* op, const Shape& x_shape, int64_t in, int64_t kernel, int64_t stride,
                      int64_t padding, int64_t dilation, bool ceil_mode) {
  const int64_t numerator = in + 2 * padding - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  int64_t out = (numerator >= 0 ? numerator / stride : -((-numerator + stride - 1) / stride)) + 1;  // floor
  if (ceil_mode && (out - 1) * stride >= in + padding) --out;
  KEEL_CHECK(out >= 1, "[", op, "] the output would be empty: input ", x_shape, " with kernel ", kernel, ", stride ",
             stride, ", padding ", padding, ", dilation ", dilation, " gives ", out, " positions along an axis");
  return out;
}

void check_pool_options(const char* op, Size2 kernel, Size2 stride, Size2 padding, Size2 dilation) {
  KEEL_CHECK(kernel[0] > 0 && kernel[1] > 0, "[", op, "] kernel_size must be positive, got ", size2_shape(kernel));
  KEEL_CHECK(stride[0] > 0 && stride[1] > 0, "[", op, "] stride must be positive, got ", size2_shape(stride));
  KEEL_CHECK(dilation[0] > 0 && dilation[1] > 0, "[", op, "] dilation must be positive, got ", size2_shape(dilation));
  KEEL_CHECK(padding[0] >= 0 && padding[1] >= 0 && padding[0] <= kernel[0] / 2 && padding[1] <= kernel[1] / 2, "[",
             op, "] padding must be non-negative and at most half the kernel size: got padding ", size2_shape(padding),
             " for kernel_size ", size2_shape(kernel));
}

Shape batched_shape(const Shape& s) {
  if (s.size() == 3) return {1, s[0], s[1], s[2]};
  return s;
}

// 16-bit gradients accumulate in f32.
DType grad_dtype(DType dtype) { return dtype == DType::f64 ? DType::f64 : DType::f32; }

// ---- average pooling: plain and adaptive share the kernel; a spec rebuilds either ---------------
struct AvgSpec {
  bool adaptive = false;
  AvgPool2dOptions options;
  Size2 output_size = {1, 1};
};

struct AvgWindows {
  cpu::PoolAxis rows, cols;
  cpu::AvgDivisor divisor;
  Shape out_shape;  // batched
};

AvgWindows avg_windows(const char* op, const Shape& x, const AvgSpec& spec) {
  AvgWindows w;
  const int64_t h = x[2], wd = x[3];
  if (spec.adaptive) {
    w.rows = cpu::adaptive_pool_axis(h, spec.output_size[0]);
    w.cols = cpu::adaptive_pool_axis(wd, spec.output_size[1]);
    w.out_shape = {x[0], x[1], spec.output_size[0], spec.output_size[1]};
    return w;
  }
  const AvgPool2dOptions& o = spec.options;
  const Size2 stride = o.stride.value_or(o.kernel_size);
  check_pool_options(op, o.kernel_size, stride, o.padding, {1, 1});
  KEEL_CHECK(!o.divisor_override || *o.divisor_override != 0, "[", op, "] divisor_override must be non-zero");
  const int64_t oh = pool_out_size(op, x, h, o.kernel_size[0], stride[0], o.padding[0], 1, o.ceil_mode);
  const int64_t ow = pool_out_size(op, x, wd, o.kernel_size[1], stride[1], o.padding[1], 1, o.ceil_mode);
  w.rows = cpu::pool_axis(h, oh, o.kernel_size[0], stride[0], o.padding[0], 1, false);
  w.cols = cpu::pool_axis(wd, ow, o.kernel_size[1], stride[1], o.padding[1], 1, false);
  w.divisor.count_include_pad = o.count_include_pad;
  w.divisor.divisor_override = o.divisor_override.value_or(0);
  w.out_shape = {x[0], x[1], oh, ow};
  return w;
}

AvgSpec adaptive_spec(Size2 output_size) {
  AvgSpec spec;
  spec.adaptive = true;
  spec.output_size = output_size;
  return spec;
}

Tensor avg_forward(const char* op, const Tensor& input, const AvgSpec& spec);
Tensor avg_backward(const char* op, const Tensor& grad_output, const Shape& input_shape, const AvgSpec& spec);

Tensor avg_apply(const Tensor& x, const AvgSpec& spec) {
  return spec.adaptive ? adaptive_avg_pool2d(x, spec.output_size) : avg_pool2d(x, spec.options);
}
Tensor avg_apply_backward(const Tensor& grad_output, const Shape& input_shape, const AvgSpec& spec) {
  return spec.adaptive ? adaptive_avg_pool2d_backward(grad_output, input_shape)
                       : avg_pool2d_backward(grad_output, input_shape, spec.options);
}

Tensor avg_forward(const char* op, const Tensor& input, const AvgSpec& spec) {
  check_input(op, input);
  if (input.dim() == 3) return avg_apply(input.unsqueeze(0), spec).squeeze(0);
  const AvgWindows w = avg_windows(op, input.shape(), spec);
  OpRecord record(op, input);
  record.trace_attr("kernel_size", spec.options.kernel_size);
  record.trace_attr("stride", spec.options.stride.value_or(spec.options.kernel_size));
  record.trace_attr("padding", spec.options.padding);
  record.trace_attr("ceil_mode", spec.options.ceil_mode);
  record.trace_attr("count_include_pad", spec.options.count_include_pad);
  if (spec.options.divisor_override) record.trace_attr("divisor_override", *spec.options.divisor_override);
  Tensor y = empty(w.out_shape, input.options());
  if (y.numel() > 0) cpu::avg_pool2d_forward(y, input.contiguous(), w.rows, w.cols, w.divisor);
  if (record) {
    record.finish({y}, {}, [spec, input_shape = input.shape()](const VjpArgs& a) {
      return TensorList{avg_apply_backward(a.grad(), input_shape, spec)};
    });
  }
  return y;
}

Tensor avg_backward(const char* op, const Tensor& grad_output, const Shape& input_shape, const AvgSpec& spec) {
  KEEL_CHECK(grad_output.defined() && is_floating(grad_output.dtype()) && grad_output.is_cpu(), "[", op,
             "] grad_output must be a floating CPU tensor");
  KEEL_CHECK(input_shape.size() == 3 || input_shape.size() == 4, "[", op,
             "] input_shape must be (N, C, H, W) or (C, H, W), got ", input_shape);
  if (input_shape.size() == 3)
    return avg_apply_backward(grad_output.unsqueeze(0), batched_shape(input_shape), spec).squeeze(0);
  const AvgWindows w = avg_windows(op, input_shape, spec);
  KEEL_CHECK(grad_output.shape() == w.out_shape, "[", op, "] grad_output has shape ", grad_output.shape(),
             " but pooling input ", input_shape, " gives ", w.out_shape);
  OpRecord record(op, grad_output);
  Tensor dx = empty(input_shape, {grad_dtype(grad_output.dtype()), grad_output.device()});
  if (dx.numel() > 0)
    cpu::avg_pool2d_backward(dx, grad_output.to(dx.dtype()).contiguous(), w.rows, w.cols, w.divisor);
  dx = dx.to(grad_output.dtype());
  if (record) {
    record.finish({dx}, {}, [spec](const VjpArgs& a) { return TensorList{avg_apply(a.grad(), spec)}; });
  }
  return dx;
}

}  // namespace

// ---- max_pool2d --------------------------------------------------------------------------------
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, const MaxPool2dOptions& options) {
  const char* op = "max_pool2d";
  check_input(op, x);
  if (x.dim() == 3) {
    auto [values, indices] = max_pool2d_with_indices(x.unsqueeze(0), options);
    return {values.squeeze(0), indices.squeeze(0)};
  }
  const Size2 stride = options.stride.value_or(options.kernel_size);
  check_pool_options(op, options.kernel_size, stride, options.padding, options.dilation);
  const Shape& s = x.shape();
  const int64_t oh = pool_out_size(op, s, s[2], options.kernel_size[0], stride[0], options.padding[0],
                                   options.dilation[0], options.ceil_mode);
  const int64_t ow = pool_out_size(op, s, s[3], options.kernel_size[1], stride[1], options.padding[1],
                                   options.dilation[1], options.ceil_mode);
  const cpu::PoolAxis rows =
      cpu::pool_axis(s[2], oh, options.kernel_size[0], stride[0], options.padding[0], options.dilation[0], true);
  const cpu::PoolAxis cols =
      cpu::pool_axis(s[3], ow, options.kernel_size[1], stride[1], options.padding[1], options.dilation[1], true);
  OpRecord record(op, x);
  record.trace_attr("kernel_size", options.kernel_size);
  record.trace_attr("stride", stride);
  record.trace_attr("padding", options.padding);
  record.trace_attr("dilation", options.dilation);
  record.trace_attr("ceil_mode", options.ceil_mode);
  Tensor values = empty({s[0], s[1], oh, ow}, x.options());
  Tensor indices = empty({s[0], s[1], oh, ow}, {.dtype = DType::i64});
  if (values.numel() > 0) cpu::max_pool2d_forward(values, indices, x.contiguous(), rows, cols);
  if (record) {
    record.finish({values}, {indices}, [input_shape = s](const VjpArgs& a) {
      return TensorList{max_pool2d_backward(a.grad(), a.saved[0], input_shape)};
    });
  }
  return {values, indices};
}

Tensor max_pool2d(const Tensor& x, const MaxPool2dOptions& options) {
  return max_pool2d_with_indices(x, options).first;
}

Tensor max_pool2d_backward(const Tensor& grad_output, const Tensor& indices, const Shape& input_shape) {
  const char* op = "max_pool2d_backward";
  KEEL_CHECK(grad_output.defined() && is_floating(grad_output.dtype()) && grad_output.is_cpu(), "[", op,
             "] grad_output must be a floating CPU tensor");
  KEEL_CHECK(indices.defined() && indices.dtype() == DType::i64 && indices.shape() == grad_output.shape(), "[", op,
             "] indices must be i64 with grad_output's shape ", grad_output.shape());
  KEEL_CHECK(input_shape.size() == 4 && grad_output.dim() == 4 && input_shape[0] == grad_output.shape()[0] &&
                 input_shape[1] == grad_output.shape()[1],
             "[", op, "] input_shape ", input_shape, " does not match grad_output ", grad_output.shape());
  OpRecord record(op, grad_output);
  Tensor dx = empty(input_shape, {grad_dtype(grad_output.dtype()), grad_output.device()});
  if (dx.numel() > 0) cpu::max_pool2d_backward(dx, grad_output.to(dx.dtype()).contiguous(), indices.contiguous());
  dx = dx.to(grad_output.dtype());
  if (record) {
    record.finish({dx}, {indices}, [](const VjpArgs& a) {
      const Tensor& ggx = a.grad();
      const Tensor& idx = a.saved[0];
      return TensorList{gather(ggx.flatten(2), 2, idx.flatten(2)).view(idx.shape())};
    });
  }
  return dx;
}

// ---- avg_pool2d / adaptive_avg_pool2d -------------------------------------------------------------
Tensor avg_pool2d(const Tensor& x, const AvgPool2dOptions& options) {
  return avg_forward("avg_pool2d", x, {.adaptive = false, .options = options});
}
Tensor avg_pool2d_backward(const Tensor& grad_output, const Shape& input_shape, const AvgPool2dOptions& options) {
  return avg_backward("avg_pool2d_backward", grad_output, input_shape, {.adaptive = false, .options = options});
}
Tensor adaptive_avg_pool2d(const Tensor& x, Size2 output_size) {
  KEEL_CHECK(output_size[0] > 0 && output_size[1] > 0, "[adaptive_avg_pool2d] output_size must be positive, got ",
             size2_shape(output_size));
  return avg_forward("adaptive_avg_pool2d", x, adaptive_spec(output_size));
}
Tensor adaptive_avg_pool2d_backward(const Tensor& grad_output, const Shape& input_shape) {
  KEEL_CHECK(grad_output.defined() && grad_output.dim() >= 2, "[adaptive_avg_pool2d_backward] grad_output must have ",
             "at least 2 dims");
  const Size2 output_size = {grad_output.shape()[grad_output.dim() - 2], grad_output.shape()[grad_output.dim() - 1]};
  return avg_backward("adaptive_avg_pool2d_backward", grad_output, input_shape,
                      adaptive_spec(output_size));
}

}  // namespace keel
