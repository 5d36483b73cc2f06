// Fused optimizer steps (see optim_step.h). AdamW: the fused CPU kernel is
// kernels/cpu/adamw.isa.cpp; the composite below is its spec.
#include "keel/ops/optim_step.h"

#include <cmath>

#include "keel/autograd/grad_mode.h"
#include "keel/kernels/cpu/fused_kernels.h"
#include "keel/ops/elementwise.h"

namespace keel {

namespace {

void check_adamw(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                 const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                 const std::vector<Tensor>& max_exp_avg_sqs, int64_t step, const AdamWStepOptions& o) {
  const size_t n = params.size();
  KEEL_CHECK(grads.size() == n && exp_avgs.size() == n && exp_avg_sqs.size() == n, "[adamw_step_] ", n,
             " params need as many grads, exp_avgs and exp_avg_sqs, got ", grads.size(), ", ", exp_avgs.size(),
             " and ", exp_avg_sqs.size());
  KEEL_CHECK(o.amsgrad ? max_exp_avg_sqs.size() == n : max_exp_avg_sqs.empty(), "[adamw_step_] max_exp_avg_sqs must ",
             o.amsgrad ? "have one tensor per param" : "be empty without amsgrad", ", got ", max_exp_avg_sqs.size(),
             " for ", n, " params");
  KEEL_CHECK(step >= 1, "[adamw_step_] step counts from 1, got ", step);
  KEEL_CHECK(o.lr >= 0.0 && o.eps >= 0.0 && o.weight_decay >= 0.0, "[adamw_step_] lr, eps and weight_decay must be >= 0, got ",
             o.lr, ", ", o.eps, " and ", o.weight_decay);
  KEEL_CHECK(o.beta1 >= 0.0 && o.beta1 < 1.0 && o.beta2 >= 0.0 && o.beta2 < 1.0,
             "[adamw_step_] betas must be in [0, 1), got ", o.beta1, " and ", o.beta2);
  for (size_t k = 0; k < n; ++k) {
    const Tensor& p = params[k];
    KEEL_CHECK(p.defined() && grads[k].defined() && exp_avgs[k].defined() && exp_avg_sqs[k].defined() &&
                   (!o.amsgrad || max_exp_avg_sqs[k].defined()),
               "[adamw_step_] param ", k, ": an undefined tensor among param, grad and state");
    KEEL_CHECK(is_floating(p.dtype()), "[adamw_step_] param ", k, " must be floating, got ", dtype_name(p.dtype()));
    auto check_like = [&](const Tensor& t, const char* what) {
      KEEL_CHECK(t.shape() == p.shape() && t.device() == p.device(), "[adamw_step_] ", what, " ", k, " of shape ",
                 t.shape(), " on ", t.device().str(), " does not match its param of shape ", p.shape(), " on ",
                 p.device().str());
      KEEL_CHECK(is_floating(t.dtype()), "[adamw_step_] ", what, " ", k, " must be floating, got ",
                 dtype_name(t.dtype()));
    };
    check_like(grads[k], "grad");
    check_like(exp_avgs[k], "exp_avg");
    check_like(exp_avg_sqs[k], "exp_avg_sq");
    if (o.amsgrad) check_like(max_exp_avg_sqs[k], "max_exp_avg_sq");
  }
}

bool fused_adamw(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                 const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                 const std::vector<Tensor>& max_exp_avg_sqs, bool amsgrad) {
  for (size_t k = 0; k < params.size(); ++k) {
    const Tensor& p = params[k];
    if (!p.is_cpu() || !(p.dtype() == DType::f32 || p.dtype() == DType::bf16)) return false;
    if (grads[k].dtype() != p.dtype() || !p.is_contiguous() || !grads[k].is_contiguous()) return false;
    for (const Tensor* state : {&exp_avgs[k], &exp_avg_sqs[k], amsgrad ? &max_exp_avg_sqs[k] : nullptr}) {
      if (state && (state->dtype() != DType::f32 || !state->is_contiguous())) return false;
    }
  }
  return true;
}

}  // namespace

void adamw_step_composite_(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                           const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                           const std::vector<Tensor>& max_exp_avg_sqs, int64_t step, const AdamWStepOptions& o) {
  check_adamw(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, step, o);
  autograd::NoGradGuard no_grad;
  const double bias_correction1 = 1.0 - std::pow(o.beta1, static_cast<double>(step));
  const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(o.beta2, static_cast<double>(step)));
  const double step_size = o.lr / bias_correction1;
  for (size_t k = 0; k < params.size(); ++k) {
    Tensor p = params[k], m = exp_avgs[k], v = exp_avg_sqs[k];
    const Tensor g = o.maximize ? -grads[k] : grads[k];
    mul_(p, 1.0 - o.lr * o.weight_decay);
    add_(mul_(m, o.beta1), g * (1.0 - o.beta1));
    add_(mul_(v, o.beta2), g * g * (1.0 - o.beta2));
    Tensor second = v;
    if (o.amsgrad) {
      Tensor vmax = max_exp_avg_sqs[k];
      maximum_(vmax, v);
      second = vmax;
    }
    const Tensor denom = sqrt(second) / bias_correction2_sqrt + o.eps;
    sub_(p, m * step_size / denom);
  }
}

void adamw_step_(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                 const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                 const std::vector<Tensor>& max_exp_avg_sqs, int64_t step, const AdamWStepOptions& o) {
  check_adamw(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, step, o);
  if (!fused_adamw(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, o.amsgrad)) {
    adamw_step_composite_(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, step, o);
    return;
  }
  cpu::AdamWScalars scalars;
  scalars.decay = static_cast<float>(1.0 - o.lr * o.weight_decay);
  scalars.beta1 = static_cast<float>(o.beta1);
  scalars.beta2 = static_cast<float>(o.beta2);
  scalars.one_minus_beta1 = static_cast<float>(1.0 - o.beta1);
  scalars.one_minus_beta2 = static_cast<float>(1.0 - o.beta2);
  scalars.eps = static_cast<float>(o.eps);
  scalars.step_size = static_cast<float>(o.lr / (1.0 - std::pow(o.beta1, static_cast<double>(step))));
  scalars.bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(o.beta2, static_cast<double>(step))));
  scalars.amsgrad = o.amsgrad;
  scalars.maximize = o.maximize;
  cpu::adamw_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, scalars);
  for (size_t k = 0; k < params.size(); ++k) {
    params[k].bump_version();
    exp_avgs[k].bump_version();
    exp_avg_sqs[k].bump_version();
    if (o.amsgrad) max_exp_avg_sqs[k].bump_version();
  }
}

}  // namespace keel
