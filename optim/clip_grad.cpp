#include "keel/optim/clip_grad.h"

#include <cmath>

#include "keel/autograd/grad_mode.h"
#include "keel/core/error.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
#include "keel/ops/reduce.h"
#include "keel/ops/shape.h"

namespace keel::optim {

namespace {
std::vector<Tensor> defined_grads(const std::vector<Tensor>& params) {
  std::vector<Tensor> grads;
  for (const Tensor& p : params)
    if (p.defined() && p.grad().defined()) grads.push_back(p.grad());
  return grads;
}
}  // namespace

Tensor clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  KEEL_CHECK(max_norm >= 0, "[clip_grad_norm_] max_norm must be >= 0, got ", max_norm);
  KEEL_CHECK(norm_type > 0, "[clip_grad_norm_] norm_type must be > 0 (2, 1, inf, ...), got ", norm_type);
  autograd::NoGradGuard no_grad;
  std::vector<Tensor> grads = defined_grads(params);
  if (grads.empty()) return zeros({});
  const DType dtype = grads[0].dtype();
  std::vector<Tensor> norms;
  for (const Tensor& g : grads) {
    const Tensor n = std::isinf(norm_type) ? amax(abs(g)) : norm(g, norm_type);
    norms.push_back(n.to(dtype));
  }
  Tensor total = norms.size() == 1 ? norms[0]
                 : std::isinf(norm_type) ? amax(stack(norms)) : norm(stack(norms), norm_type);
  if (error_if_nonfinite) {
    const double value = total.item<double>();
    KEEL_CHECK(std::isfinite(value), "[clip_grad_norm_] the total norm of order ", norm_type,
               " of the gradients is ", value, ", so it cannot be clipped: find where the loss overflows, or pass "
               "error_if_nonfinite = false to scale by it anyway");
  }
  // torch's coefficient, as a tensor so that it rounds in the grads' dtype as torch's does.
  const Tensor coef = clamp_max(max_norm / (total + 1e-6), 1.0);
  for (Tensor& g : grads) mul_(g, coef.to(g.dtype()));
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  KEEL_CHECK(clip_value >= 0, "[clip_grad_value_] clip_value must be >= 0, got ", clip_value);
  autograd::NoGradGuard no_grad;
  for (Tensor& g : defined_grads(params)) clamp_(g, -clip_value, clip_value);
}

}  // namespace keel::optim
