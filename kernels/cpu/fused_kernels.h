#pragma once
// Fused CPU kernels of the nn functions and the optimizer step: softmax, log_softmax, layer_norm,
// rms_norm (forward and backward; kernels/cpu/norms.isa.cpp) and the AdamW step
// (kernels/cpu/adamw.isa.cpp). Each is compiled per instruction set and picked at every call from
// cpu_features() (kernels/cpu/fused_dispatch.cpp), so the caps of cpu_features.h reach them too.
// The ops (ops/nn_functional.cpp, ops/optim_step.cpp) check arguments and pass contiguous tensors;
// the kernels only assert.
#include <vector>

#include "keel/core/tensor.h"

namespace keel::cpu {

// The scalars of one AdamW step (PyTorch's torch.optim.AdamW, single-tensor form), in f32 as
// PyTorch applies them to f32 tensors:
//   g = maximize ? -grad : grad;  p *= decay;  m = beta1 * m + (1 - beta1) * g;
//   v = beta2 * v + (1 - beta2) * g * g;  vmax = max(vmax, v) (amsgrad, then used for v)
//   p += -step_size * m / (sqrt(v) / bias_correction2_sqrt + eps)
// with decay = 1 - lr * weight_decay, one_minus_beta1/2 = 1 - beta1/2 (rounded from double), step_size = lr / (1 - beta1^step),
// bias_correction2_sqrt = sqrt(1 - beta2^step).
struct AdamWScalars {
  float decay, beta1, beta2, one_minus_beta1, one_minus_beta2, eps, step_size, bias_correction2_sqrt;
  bool amsgrad, maximize;
};

#define KEEL_DECLARE_FUSED_KERNELS                                                                          \
  /* x, y: contiguous, one dtype (f32, bf16, f16), rows = numel / last dim; y = softmax(x) over the  */   \
  /* last dim (log_softmax when is_log).                                                             */   \
  void softmax_rows(const Tensor& y, const Tensor& x, bool is_log);                                         \
  /* dx from y (the forward's output) and dy; all contiguous of one dtype.                           */   \
  void softmax_backward_rows(const Tensor& dx, const Tensor& y, const Tensor& dy, bool is_log);             \
  /* x, y: contiguous [rows * cols] of one dtype; rstd (and mean for layer_norm; undefined for     */   \
  /* rms_norm): f32 [rows], written; weight, bias: f32 [cols] or undefined.                          */   \
  void norm_forward_rows(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,          \
                         const Tensor& weight, const Tensor& bias, double eps);                             \
  /* dx (x's dtype), dweight, dbias (f32 [cols]): each may be undefined (not computed).              */   \
  void norm_backward_rows(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dy,   \
                          const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight);   \
  /* One AdamW step over every tensor of the lists, in place: params and grads contiguous f32, or */   \
  /* bf16 (state stays f32); exp_avgs, exp_avg_sqs, max_exp_avg_sqs (empty unless amsgrad) f32.     */   \
  void adamw_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,                     \
                  const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,              \
                  const std::vector<Tensor>& max_exp_avg_sqs, const AdamWScalars& scalars);

KEEL_DECLARE_FUSED_KERNELS
namespace baseline { KEEL_DECLARE_FUSED_KERNELS }
namespace avx2 { KEEL_DECLARE_FUSED_KERNELS }
namespace avx512 { KEEL_DECLARE_FUSED_KERNELS }

}  // namespace keel::cpu
