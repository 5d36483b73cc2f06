#pragma once
// Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_ (1.13). Parameters
// without a grad are ignored.
#include <limits>
#include <vector>

#include "keel/core/tensor.h"

namespace keel::optim {

// Scales every grad in place by min(1, max_norm / (total_norm + 1e-6)), where total_norm is the
// norm_type-norm of all grads together (the norm of their norms; norm_type = inf: the largest
// |g|). Returns total_norm before clipping, a 0-D tensor in the grads' dtype (f32 0 when there
// is no grad). error_if_nonfinite: throw instead of clipping when total_norm is NaN or inf.
Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

// Clamps every grad in place to [-clip_value, clip_value].
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace keel::optim
