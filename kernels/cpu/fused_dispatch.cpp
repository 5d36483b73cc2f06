// Picks the instruction-set variant of the fused kernels (fused_kernels.h) at each call.
#include "keel/kernels/cpu/cpu_features.h"
#include "keel/kernels/cpu/fused_kernels.h"

namespace keel::cpu {

#define KEEL_FUSED_DISPATCH(name, ...)             \
  const CpuFeatures features = cpu_features();     \
  if (features.avx512) return avx512::name(__VA_ARGS__); \
  if (features.avx2) return avx2::name(__VA_ARGS__);     \
  return baseline::name(__VA_ARGS__);

void softmax_rows(const Tensor& y, const Tensor& x, bool is_log) { KEEL_FUSED_DISPATCH(softmax_rows, y, x, is_log) }

void softmax_backward_rows(const Tensor& dx, const Tensor& y, const Tensor& dy, bool is_log) {
  KEEL_FUSED_DISPATCH(softmax_backward_rows, dx, y, dy, is_log)
}

void norm_forward_rows(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                       const Tensor& bias, double eps) {
  KEEL_FUSED_DISPATCH(norm_forward_rows, y, mean, rstd, x, weight, bias, eps)
}

void norm_backward_rows(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dy,
                        const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight) {
  KEEL_FUSED_DISPATCH(norm_backward_rows, dx, dweight, dbias, dy, x, mean, rstd, weight)
}

void adamw_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                const std::vector<Tensor>& max_exp_avg_sqs, const AdamWScalars& scalars) {
  KEEL_FUSED_DISPATCH(adamw_step, params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, scalars)
}

#undef KEEL_FUSED_DISPATCH

}  // namespace keel::cpu
