#include "keel/optim/adam.h"

#include <cmath>

#include "keel/autograd/grad_mode.h"
#include "keel/core/error.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
#include "keel/ops/optim_step.h"

namespace keel::optim {

namespace {

template <typename Options>
void validate_adam(const char* name, const Options& o) {
  KEEL_CHECK(o.lr >= 0, "[", name, "] lr must be >= 0, got ", o.lr);
  KEEL_CHECK(o.eps >= 0, "[", name, "] eps must be >= 0, got ", o.eps);
  KEEL_CHECK(o.beta1 >= 0 && o.beta1 < 1, "[", name, "] beta1 must be in [0, 1), got ", o.beta1);
  KEEL_CHECK(o.beta2 >= 0 && o.beta2 < 1, "[", name, "] beta2 must be in [0, 1), got ", o.beta2);
  KEEL_CHECK(o.weight_decay >= 0, "[", name, "] weight_decay must be >= 0, got ", o.weight_decay);
}

std::vector<std::string> adam_state_names(bool amsgrad) {
  if (amsgrad) return {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  return {"exp_avg", "exp_avg_sq"};
}

// Creates the moments on a parameter's first update (zeros, as torch).
void init_adam_state(ParamState& s, const Tensor& p, DType dtype, bool amsgrad) {
  if (!s.tensors.empty()) return;
  const TensorOptions options{.dtype = dtype, .device = p.device()};
  s.tensors["exp_avg"] = zeros(p.shape(), options);
  s.tensors["exp_avg_sq"] = zeros(p.shape(), options);
  if (amsgrad) s.tensors["max_exp_avg_sq"] = zeros(p.shape(), options);
}

}  // namespace

// ---- Adam -------------------------------------------------------------------------------------

Adam::Adam(const std::vector<Tensor>& params, const AdamOptions& options) : OptimizerWithOptions("Adam") {
  add_param_group({params, options});
}

Adam::Adam(const std::vector<ParamGroup<AdamOptions>>& groups) : OptimizerWithOptions("Adam") {
  KEEL_CHECK(!groups.empty(), "[Adam] got no parameter groups: pass at least one");
  for (const auto& group : groups) add_param_group(group);
}

void Adam::validate(const AdamOptions& o) const { validate_adam("Adam", o); }

void Adam::set_momentum(double beta1, size_t group) {
  AdamOptions changed = options(group);
  changed.beta1 = beta1;
  validate(changed);
  mutable_options(group) = changed;
}

std::vector<std::string> Adam::state_names(size_t group) const { return adam_state_names(options(group).amsgrad); }

void Adam::step() {
  autograd::NoGradGuard no_grad;
  for (size_t g = 0; g < num_param_groups(); ++g) {
    const AdamOptions& o = options(g);
    const std::vector<Tensor>& ps = params(g);
    for (size_t i = 0; i < ps.size(); ++i) {
      Tensor p = ps[i];
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;
      ParamState& s = mutable_state(g, i);
      init_adam_state(s, p, p.dtype(), o.amsgrad);
      const int64_t t = ++s.step;
      Tensor d = o.maximize ? -grad : grad;
      if (o.weight_decay != 0) d = d + p * o.weight_decay;
      Tensor& m = s.tensors["exp_avg"];
      Tensor& v = s.tensors["exp_avg_sq"];
      add_(mul_(m, o.beta1), d * (1.0 - o.beta1));
      add_(mul_(v, o.beta2), d * d * (1.0 - o.beta2));
      const double bias_correction1 = 1.0 - std::pow(o.beta1, static_cast<double>(t));
      const double bias_correction2_sqrt = std::sqrt(1.0 - std::pow(o.beta2, static_cast<double>(t)));
      const double step_size = o.lr / bias_correction1;
      Tensor second = v;
      if (o.amsgrad) {
        Tensor& v_max = s.tensors["max_exp_avg_sq"];
        maximum_(v_max, v);
        second = v_max;
      }
      const Tensor denom = sqrt(second) / bias_correction2_sqrt + o.eps;
      sub_(p, m / denom * step_size);
    }
  }
}

// ---- AdamW ------------------------------------------------------------------------------------

AdamW::AdamW(const std::vector<Tensor>& params, const AdamWOptions& options) : OptimizerWithOptions("AdamW") {
  add_param_group({params, options});
}

AdamW::AdamW(const std::vector<ParamGroup<AdamWOptions>>& groups) : OptimizerWithOptions("AdamW") {
  KEEL_CHECK(!groups.empty(), "[AdamW] got no parameter groups: pass at least one");
  for (const auto& group : groups) add_param_group(group);
}

void AdamW::validate(const AdamWOptions& o) const { validate_adam("AdamW", o); }

void AdamW::set_momentum(double beta1, size_t group) {
  AdamWOptions changed = options(group);
  changed.beta1 = beta1;
  validate(changed);
  mutable_options(group) = changed;
}

std::vector<std::string> AdamW::state_names(size_t group) const { return adam_state_names(options(group).amsgrad); }

DType AdamW::state_dtype(const Tensor& param) const {
  return param.dtype() == DType::bf16 ? DType::f32 : param.dtype();
}

void AdamW::step() {
  autograd::NoGradGuard no_grad;
  for (size_t g = 0; g < num_param_groups(); ++g) {
    const AdamWOptions& o = options(g);
    const std::vector<Tensor>& ps = params(g);
    // The fused kernel takes one step count per call; parameters skipped on earlier steps (no
    // grad) can lag behind, so the group is split by step count: one call in the usual case.
    std::map<int64_t, std::vector<size_t>> by_step;
    for (size_t i = 0; i < ps.size(); ++i) {
      if (!ps[i].grad().defined()) continue;
      ParamState& s = mutable_state(g, i);
      init_adam_state(s, ps[i], state_dtype(ps[i]), o.amsgrad);
      by_step[s.step + 1].push_back(i);
    }
    const AdamWStepOptions step_options{.lr = o.lr, .beta1 = o.beta1, .beta2 = o.beta2, .eps = o.eps,
                                        .weight_decay = o.weight_decay, .amsgrad = o.amsgrad,
                                        .maximize = o.maximize};
    for (const auto& [t, indices] : by_step) {
      std::vector<Tensor> p, grad, m, v, v_max;
      for (size_t i : indices) {
        ParamState& s = mutable_state(g, i);
        p.push_back(ps[i]);
        grad.push_back(ps[i].grad());
        m.push_back(s.tensors.at("exp_avg"));
        v.push_back(s.tensors.at("exp_avg_sq"));
        if (o.amsgrad) v_max.push_back(s.tensors.at("max_exp_avg_sq"));
      }
      adamw_step_(p, grad, m, v, v_max, t, step_options);
      for (size_t i : indices) mutable_state(g, i).step = t;
    }
  }
}

}  // namespace keel::optim
