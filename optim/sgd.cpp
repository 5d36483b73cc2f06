#include "keel/optim/sgd.h"

#include "keel/autograd/grad_mode.h"
#include "keel/core/error.h"
#include "keel/ops/elementwise.h"

namespace keel::optim {

SGD::SGD(const std::vector<Tensor>& params, const SGDOptions& options) : OptimizerWithOptions("SGD") {
  add_param_group({params, options});
}

SGD::SGD(const std::vector<ParamGroup<SGDOptions>>& groups) : OptimizerWithOptions("SGD") {
  KEEL_CHECK(!groups.empty(), "[SGD] got no parameter groups: pass at least one");
  for (const auto& group : groups) add_param_group(group);
}

void SGD::validate(const SGDOptions& o) const {
  KEEL_CHECK(o.lr >= 0, "[SGD] lr must be >= 0, got ", o.lr);
  KEEL_CHECK(o.momentum >= 0, "[SGD] momentum must be >= 0, got ", o.momentum);
  KEEL_CHECK(o.weight_decay >= 0, "[SGD] weight_decay must be >= 0, got ", o.weight_decay);
  KEEL_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
             "[SGD] nesterov needs momentum > 0 and dampening = 0, got momentum ", o.momentum, " and dampening ",
             o.dampening, ": set a momentum (e.g. 0.9) or turn nesterov off");
}

void SGD::set_momentum(double momentum, size_t group) {
  SGDOptions changed = options(group);
  changed.momentum = momentum;
  validate(changed);
  mutable_options(group) = changed;
}

std::vector<std::string> SGD::state_names(size_t group) const {
  if (options(group).momentum == 0) return {};
  return {"momentum_buffer"};
}

void SGD::step() {
  autograd::NoGradGuard no_grad;
  for (size_t g = 0; g < num_param_groups(); ++g) {
    const SGDOptions& o = options(g);
    const std::vector<Tensor>& ps = params(g);
    for (size_t i = 0; i < ps.size(); ++i) {
      Tensor p = ps[i];
      const Tensor grad = p.grad();
      if (!grad.defined()) continue;
      Tensor d = o.maximize ? -grad : grad;
      if (o.weight_decay != 0) d = d + p * o.weight_decay;
      ParamState& s = mutable_state(g, i);
      if (o.momentum != 0) {
        auto it = s.tensors.find("momentum_buffer");
        if (it == s.tensors.end()) {
          it = s.tensors.emplace("momentum_buffer", d.clone()).first;
        } else {
          add_(mul_(it->second, o.momentum), d * (1.0 - o.dampening));
        }
        d = o.nesterov ? d + it->second * o.momentum : it->second;
      }
      sub_(p, d * o.lr);
      ++s.step;
    }
  }
}

}  // namespace keel::optim
