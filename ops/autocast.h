#pragma once
// Autocast (torch.autocast): inside an AutocastGuard's scope, on this thread, the ops that gain
// from lower precision (matmul, linear, conv2d, scaled_dot_product_attention) cast their floating
// inputs other than f64 to the guard's dtype (bf16 or f16) and compute in it, as torch.autocast
// does on CPU for bf16; every other op (softmax, log_softmax, layer_norm, the losses, ...) runs
// in the dtype it is given. The cast is Tensor::to, so gradients flow back to f32 parameters in
// f32. Each such op starts with
//   if (autocast_applies(a, b)) return op(autocast(a), autocast(b));
#include <optional>

#include "keel/core/tensor.h"

namespace keel {

class AutocastGuard {
 public:
  // dtype: bf16 or f16. enabled = false: a scope with autocast off (as torch.autocast(enabled=False)).
  explicit AutocastGuard(DType dtype, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  std::optional<DType> previous_;
};

// The active autocast dtype of this thread; nullopt when autocast is off.
std::optional<DType> autocast_dtype();

// Whether autocast is on and x would be cast: defined, floating, not f64, not already the dtype.
bool autocast_eligible(const Tensor& x);

template <typename... Tensors>
bool autocast_applies(const Tensors&... tensors) {
  return autocast_dtype().has_value() && (autocast_eligible(tensors) || ...);
}

// x cast to the autocast dtype when eligible (recorded on the tape), otherwise x itself.
Tensor autocast(const Tensor& x);

}  // namespace keel
