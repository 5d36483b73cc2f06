#pragma once
// Convolution, pooling and batch normalization (torch.nn.functional.conv2d, max_pool2d,
// avg_pool2d, adaptive_avg_pool2d, batch_norm), with PyTorch's semantics. Inputs are (N, C, H, W)
// or unbatched (C, H, W); any strides (a channels-last view is copied to NCHW first).
//
// Backends (kernels/cpu/conv_kernels.h): f32 and bf16 run oneDNN primitives (convolution, batch
// normalization); f64 runs direct loops (convolution) or a composite of public ops (batch_norm),
// the path gradcheck takes; f16 is computed in f32. Pooling is Keel's own loops for every
// floating dtype. A build without oneDNN throws "[conv2d] needs oneDNN (build with KEEL_ONEDNN=ON)"
// for f32/bf16 convolution and batch_norm; CUDA tensors throw (no CUDA kernel yet).
//
// The backward ops are public ops of their own, each with a vjp, so that gradients of gradients
// work: conv2d's (through conv2d_backward_input / conv2d_backward_weight), the poolings' (linear
// maps, whose adjoints are the forward ops or a gather), and batch_norm's (under create_graph its
// vjp is written with public ops).
#include <array>
#include <optional>
#include <utility>

#include "keel/core/tensor.h"

namespace keel {

using Size2 = std::array<int64_t, 2>;  // (height, width)

struct Conv2dOptions {
  Size2 stride = {1, 1};
  Size2 padding = {0, 0};  // zeros on both sides
  Size2 dilation = {1, 1};
  int64_t groups = 1;
};

// y[n, o] = bias[o] + sum over the C/groups input channels of o's group of the cross-correlation
// of x[n, c] with weight[o, c]; x (N, C, H, W), weight (O, C/groups, kH, kW), bias (O) or undefined
// -> y (N, O, OH, OW), OH = (H + 2 padding - dilation (kH - 1) - 1) / stride + 1 (floor).
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, const Conv2dOptions& options = {});
// The gradient of conv2d with respect to its input (a transposed convolution of grad_output with
// weight), for an input of shape input_shape (N, C, H, W).
Tensor conv2d_backward_input(const Tensor& grad_output, const Tensor& weight, const Shape& input_shape,
                             const Conv2dOptions& options = {});
// The gradient of conv2d with respect to its weight, of shape weight_shape (O, C/groups, kH, kW).
Tensor conv2d_backward_weight(const Tensor& grad_output, const Tensor& x, const Shape& weight_shape,
                              const Conv2dOptions& options = {});

struct MaxPool2dOptions {
  Size2 kernel_size = {1, 1};
  std::optional<Size2> stride;  // default: kernel_size
  Size2 padding = {0, 0};       // implicit -inf, at most kernel_size / 2
  Size2 dilation = {1, 1};
  bool ceil_mode = false;       // ceil instead of floor for the output size (windows start inside)
};
// The maximum of each window. Output size per axis: floor or ceil of
// (in + 2 padding - dilation (kernel - 1) - 1) / stride + 1, minus one when ceil_mode would start
// the last window in the right padding (PyTorch's rule).
Tensor max_pool2d(const Tensor& x, const MaxPool2dOptions& options);
// The values and the i64 indices of each window's maximum: the flat position h W + w in the
// input plane (torch.nn.functional.max_pool2d(..., return_indices=True)).
std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, const MaxPool2dOptions& options);
// The gradient of max_pool2d: grad_output scattered (added) at `indices` into zeros of input_shape.
Tensor max_pool2d_backward(const Tensor& grad_output, const Tensor& indices, const Shape& input_shape);

struct AvgPool2dOptions {
  Size2 kernel_size = {1, 1};
  std::optional<Size2> stride;  // default: kernel_size
  Size2 padding = {0, 0};       // implicit zeros, at most kernel_size / 2
  bool ceil_mode = false;
  bool count_include_pad = true;  // the divisor counts the zero padding (not ceil_mode's overhang)
  std::optional<int64_t> divisor_override;  // nonzero: the divisor of every window
};
// The mean of each window (output size as max_pool2d with dilation 1).
Tensor avg_pool2d(const Tensor& x, const AvgPool2dOptions& options);
Tensor avg_pool2d_backward(const Tensor& grad_output, const Shape& input_shape, const AvgPool2dOptions& options);

// The mean over windows [floor(i H / OH), ceil((i + 1) H / OH)) x (the same for W).
Tensor adaptive_avg_pool2d(const Tensor& x, Size2 output_size);
Tensor adaptive_avg_pool2d_backward(const Tensor& grad_output, const Shape& input_shape);

// torch.nn.functional.batch_norm over x (N, C, *): per channel c,
//   y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c
// training: mean_c and var_c (biased) of the batch over N and *; running_mean / running_var
//   (when defined) are updated in place: r = (1 - momentum) r + momentum s, with the unbiased
//   variance for running_var. Needs more than one value per channel.
// eval: mean_c, var_c are running_mean, running_var (both required).
// weight, bias: (C) or undefined (1 and 0).
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight = {},
                  const Tensor& bias = {}, bool training = false, double momentum = 0.1, double eps = 1e-5);

}  // namespace keel
