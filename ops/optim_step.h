#pragma once
// Fused optimizer steps: one call updates every parameter of a list in place. The optimizers of
// optim/ build on these; each has a plain composite of public ops (the spec, the fallback for
// f64 and CUDA, and the tests' oracle).
#include <vector>

#include "keel/core/tensor.h"

namespace keel {

struct AdamWStepOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;
  bool amsgrad = false;
  bool maximize = false;
};

// One step of torch.optim.AdamW (its single-tensor formula) on every parameter, in place:
//   g = maximize ? -grad : grad
//   param *= 1 - lr * weight_decay                          (decoupled weight decay)
//   exp_avg = beta1 * exp_avg + (1 - beta1) * g
//   exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g * g
//   amsgrad: max_exp_avg_sq = max(max_exp_avg_sq, exp_avg_sq), used below instead of exp_avg_sq
//   param -= lr / (1 - beta1^step) * exp_avg / (sqrt(exp_avg_sq) / sqrt(1 - beta2^step) + eps)
// step counts from 1 (the step being taken). The lists have one entry per parameter with the
// parameter's shape; max_exp_avg_sqs is empty unless amsgrad. Grads have their parameter's dtype;
// the state tensors are f32 for f32 and bf16 parameters (bf16 parameters keep f32 moments, a
// deliberate difference from PyTorch, whose state follows the parameter dtype), otherwise the
// parameter's dtype. CPU lists of contiguous f32/bf16 tensors run one fused, threaded pass over
// all parameters; everything else runs adamw_step_composite_. Runs without recording; bumps the
// version of every tensor it writes.
void adamw_step_(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                 const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                 const std::vector<Tensor>& max_exp_avg_sqs, int64_t step, const AdamWStepOptions& options);

// The same step made of public in-place ops, one parameter at a time.
void adamw_step_composite_(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                           const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                           const std::vector<Tensor>& max_exp_avg_sqs, int64_t step,
                           const AdamWStepOptions& options);

}  // namespace keel
