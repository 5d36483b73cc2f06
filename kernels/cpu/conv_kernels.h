#pragma once
// CPU kernels of convolution, pooling and batch normalization (ops/conv.cpp, ops/pooling.cpp,
// ops/batch_norm.cpp call them). The ops have checked every argument and computed the output
// shapes; kernels only assert. Layout: every tensor here is contiguous NCHW (weights OIHW).
//
//   f32, bf16: oneDNN primitives (kernels/cpu/onednn/onednn.cpp, the one file with
//              #ifdef KEEL_WITH_ONEDNN; without oneDNN they throw "[op] needs oneDNN").
//   f64:       direct loops (kernels/cpu/conv_direct.cpp), the path gradcheck runs.
//   pooling:   direct loops for every floating dtype (kernels/cpu/pooling.cpp), written to
//              PyTorch's window rules (ceil_mode, count_include_pad, divisor_override), with
//              max-pooling indices for the backward.
#include <cstdint>
#include <vector>

#include "keel/core/tensor.h"

namespace keel::cpu {

struct Conv2dParams {
  int64_t stride[2] = {1, 1};
  int64_t padding[2] = {0, 0};  // both sides (PyTorch's symmetric padding)
  int64_t dilation[2] = {1, 1};
  int64_t groups = 1;
};

// ---- convolution ----------------------------------------------------------------------------
//   x (N, C, H, W), w (O, C/G, kH, kW), b (O), y (N, O, OH, OW), g = group of o:
//   y[n,o,i,j] = b[o] + sum_{c<C/G, p<kH, q<kW} x[n, g C/G + c, i sH - pH + p dH, j sW - pW + q dW]
//                                                 * w[o, c, p, q]     (out-of-range x read as 0)
//   backward_input:  dx = the adjoint of x -> y (a transposed convolution of dy with w)
//   backward_weight: dw[o,c,p,q] = sum_{n,i,j} dy[n,o,i,j] x[n, g C/G + c, ...];  db[o] = sum dy[n,o,:,:]
// `op` names the public op in errors. b / grad_bias may be undefined.
void conv2d_forward(const char* op, const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b,
                    const Conv2dParams& params);
void conv2d_backward_input(const char* op, const Tensor& grad_x, const Tensor& grad_y, const Tensor& w,
                           const Conv2dParams& params);
void conv2d_backward_weight(const char* op, const Tensor& grad_w, const Tensor& grad_bias, const Tensor& grad_y,
                            const Tensor& x, const Conv2dParams& params);

// ---- pooling (kernels/cpu/pooling.cpp) ------------------------------------------------------
// The windows of one spatial axis: output o reads input positions start[o] + k * dilation below
// end[o] (already clipped to the input); padded_size[o] is the window's size counting padding,
// the divisor of count_include_pad (PyTorch: min(start + kernel, in + pad) - start, unclipped).
struct PoolAxis {
  std::vector<int64_t> start, end, padded_size;
  int64_t dilation = 1;
  // Max pooling: outputs [interior_begin, interior_end) have unclipped windows, start[o] =
  // o * stride - padding, kernel taps apart by dilation (the vectorized inner loop).
  int64_t kernel = 1, stride = 1, padding = 0, interior_begin = 0, interior_end = 0;
};
// Windows of max/avg pooling (PyTorch's rules); out is the output size along the axis.
PoolAxis pool_axis(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation,
                   bool is_max);
// Windows of adaptive average pooling: [floor(o in / out), ceil((o + 1) in / out)).
PoolAxis adaptive_pool_axis(int64_t in, int64_t out);

// x (N, C, H, W) -> y, indices (N, C, OH, OW); indices (i64) are flat positions h W + w in the
// input plane (PyTorch's); the first maximum wins, NaN counts as the maximum.
void max_pool2d_forward(const Tensor& y, const Tensor& indices, const Tensor& x, const PoolAxis& rows,
                        const PoolAxis& cols);
// grad_x = 0, then grad_x[n, c, indices[n,c,i,j]] += grad_y[n,c,i,j].
void max_pool2d_backward(const Tensor& grad_x, const Tensor& grad_y, const Tensor& indices);
// y = sum of the window / divisor; divisor = divisor_override if > 0, else padded_size product
// (count_include_pad) or the clipped window's size. Empty windows give 0.
struct AvgDivisor {
  bool count_include_pad = true;
  int64_t divisor_override = 0;
};
void avg_pool2d_forward(const Tensor& y, const Tensor& x, const PoolAxis& rows, const PoolAxis& cols,
                        AvgDivisor divisor);
void avg_pool2d_backward(const Tensor& grad_x, const Tensor& grad_y, const PoolAxis& rows, const PoolAxis& cols,
                         AvgDivisor divisor);

// ---- batch normalization (oneDNN; f32 and bf16 data, f32 statistics and affine) ----------------
//   training: mean, var (biased) over (N, H, W) per channel are outputs
//   eval:     mean, var are the running statistics (inputs)
//   y = (x - mean) / sqrt(var + eps) * weight + bias   (weight / bias undefined: 1 / 0)
// x may be (N, C) or (N, C, L) viewed as (N, C, L, 1) by the op.
void batch_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& var, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, bool training, double eps);
//   training: dx = w rstd (dy - mean dy - xhat mean(dy xhat)),   eval: dx = w rstd dy
//   dweight = sum dy xhat, dbias = sum dy (either may be undefined: not computed)
void batch_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                         const Tensor& grad_y, const Tensor& x, const Tensor& mean, const Tensor& var,
                         const Tensor& weight, bool training, double eps);

// ---- the oneDNN binding (kernels/cpu/onednn/onednn.cpp) --------------------------------------
namespace onednn {
bool available();  // false in a build without oneDNN: the functions below throw
void conv2d_forward(const char* op, const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b,
                    const Conv2dParams& params);
void conv2d_backward_input(const char* op, const Tensor& grad_x, const Tensor& grad_y, const Tensor& w,
                           const Conv2dParams& params);
void conv2d_backward_weight(const char* op, const Tensor& grad_w, const Tensor& grad_bias, const Tensor& grad_y,
                            const Tensor& x, const Conv2dParams& params);
void batch_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& var, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, bool training, double eps);
void batch_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                         const Tensor& grad_y, const Tensor& x, const Tensor& mean, const Tensor& var,
                         const Tensor& weight, bool training, double eps);
// Number of primitives in the cache (tests check that repeated shapes reuse them).
size_t cached_primitives();
}  // namespace onednn

// ---- direct loops (kernels/cpu/conv_direct.cpp): the f64 path (also compiled for f32, unused) ----
namespace direct {
void conv2d_forward(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& params);
void conv2d_backward_input(const Tensor& grad_x, const Tensor& grad_y, const Tensor& w, const Conv2dParams& params);
void conv2d_backward_weight(const Tensor& grad_w, const Tensor& grad_bias, const Tensor& grad_y, const Tensor& x,
                            const Conv2dParams& params);
}  // namespace direct

}  // namespace keel::cpu
