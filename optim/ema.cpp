#include "keel/optim/ema.h"

#include "keel/autograd/grad_mode.h"
#include "keel/core/error.h"
#include "keel/ops/elementwise.h"

namespace keel::optim {

EMA::EMA(const std::vector<Tensor>& params, double decay) : params_(params), decay_(decay) {
  KEEL_CHECK(decay >= 0 && decay <= 1, "[EMA] decay must be in [0, 1], got ", decay, " (typical: 0.999)");
  KEEL_CHECK(!params.empty(), "[EMA] got an empty parameter list: pass the tensors to average");
  autograd::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    KEEL_CHECK(params[i].defined() && is_floating(params[i].dtype()), "[EMA] parameter ", i,
               " must be a defined floating tensor");
    shadow_.push_back(params[i].detach().clone());
  }
}

void EMA::update() {
  autograd::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    mul_(shadow_[i], decay_);
    add_(shadow_[i], params_[i].detach() * (1.0 - decay_));
  }
}

void EMA::check_like(const std::vector<Tensor>& params, const std::vector<Tensor>& ours, const char* what) const {
  KEEL_CHECK(params.size() == ours.size(), "[EMA] ", what, " got ", params.size(), " tensors but the EMA has ",
             ours.size(), ": pass the parameters it was built from");
  for (size_t i = 0; i < params.size(); ++i)
    KEEL_CHECK(params[i].defined() && params[i].shape() == ours[i].shape(), "[EMA] ", what, ": tensor ", i,
               " has shape ", params[i].defined() ? params[i].shape() : Shape{}, ", expected ", ours[i].shape());
}

void EMA::copy_to(const std::vector<Tensor>& params) const {
  check_like(params, shadow_, "copy_to");
  autograd::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor target = params[i];
    target.copy_(shadow_[i]);
  }
}

void EMA::store(const std::vector<Tensor>& params) {
  check_like(params, shadow_, "store");
  autograd::NoGradGuard no_grad;
  stored_.clear();
  for (const Tensor& p : params) stored_.push_back(p.detach().clone());
}

void EMA::restore(const std::vector<Tensor>& params) {
  KEEL_CHECK(!stored_.empty(), "[EMA] restore without store: call store(params) before copy_to(params)");
  check_like(params, stored_, "restore");
  autograd::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor target = params[i];
    target.copy_(stored_[i]);
  }
  stored_.clear();
}

}  // namespace keel::optim
