#include "keel/optim/grad_scaler.h"

#include <cmath>

#include "keel/autograd/grad_mode.h"
#include "keel/core/error.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/reduce.h"

namespace keel::optim {

GradScaler::GradScaler(const GradScalerOptions& o) : options_(o), scale_(static_cast<float>(o.init_scale)) {
  KEEL_CHECK(o.init_scale > 0 && std::isfinite(static_cast<float>(o.init_scale)),
             "[GradScaler] init_scale must be a positive f32 value, got ", o.init_scale);
  KEEL_CHECK(o.growth_factor > 1.0, "[GradScaler] growth_factor must be > 1, got ", o.growth_factor);
  KEEL_CHECK(o.backoff_factor > 0 && o.backoff_factor < 1.0, "[GradScaler] backoff_factor must be in (0, 1), got ",
             o.backoff_factor);
  KEEL_CHECK(o.growth_interval > 0, "[GradScaler] growth_interval must be > 0, got ", o.growth_interval);
}

Tensor GradScaler::scale(const Tensor& loss) const {
  if (!options_.enabled) return loss;
  KEEL_CHECK(loss.defined() && is_floating(loss.dtype()), "[GradScaler] scale needs a floating loss tensor");
  return loss * static_cast<double>(scale_);
}

void GradScaler::unscale_(Optimizer& optimizer) {
  if (!options_.enabled) return;
  OptimizerRecord& record = records_[&optimizer];
  KEEL_CHECK(!record.unscaled, "[GradScaler] unscale_() has already been called on this optimizer since the last "
             "update(): call it at most once per step");
  KEEL_CHECK(!record.stepped, "[GradScaler] unscale_() is being called after step(): call it before step()");
  autograd::NoGradGuard no_grad;
  // torch: inv_scale = scale.double().reciprocal().float()
  const double inv_scale = static_cast<double>(static_cast<float>(1.0 / static_cast<double>(scale_)));
  bool found_inf = false;
  for (size_t g = 0; g < optimizer.num_param_groups(); ++g) {
    for (const Tensor& p : optimizer.params(g)) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      if (!found_inf && any(logical_or(isnan(grad), isinf(grad))).item<bool>()) found_inf = true;
      mul_(grad, inv_scale);
    }
  }
  record.unscaled = true;
  record.found_inf = found_inf;
}

bool GradScaler::step(Optimizer& optimizer) {
  if (!options_.enabled) {
    optimizer.step();
    return true;
  }
  KEEL_CHECK(!records_[&optimizer].stepped, "[GradScaler] step() has already been called on this optimizer since "
             "the last update(): call update() after each step()");
  if (!records_[&optimizer].unscaled) unscale_(optimizer);
  OptimizerRecord& record = records_[&optimizer];
  record.stepped = true;
  if (record.found_inf) return false;
  optimizer.step();
  return true;
}

void GradScaler::update() {
  if (!options_.enabled) return;
  bool any_check = false, found_inf = false;
  for (const auto& [optimizer, record] : records_) {
    if (!record.unscaled) continue;
    any_check = true;
    found_inf = found_inf || record.found_inf;
  }
  KEEL_CHECK(any_check, "[GradScaler] update() without any inf check since the last update(): call step(optimizer) "
             "(or unscale_) first");
  // torch's _amp_update_scale_, in f32.
  if (found_inf) {
    scale_ = scale_ * static_cast<float>(options_.backoff_factor);
    growth_tracker_ = 0;
  } else if (growth_tracker_ + 1 == options_.growth_interval) {
    const float grown = scale_ * static_cast<float>(options_.growth_factor);
    if (std::isfinite(grown)) scale_ = grown;
    growth_tracker_ = 0;
  } else {
    ++growth_tracker_;
  }
  records_.clear();
}

void GradScaler::update(double new_scale) {
  if (!options_.enabled) return;
  KEEL_CHECK(new_scale > 0 && std::isfinite(static_cast<float>(new_scale)),
             "[GradScaler] update(new_scale) needs a positive f32 value, got ", new_scale);
  scale_ = static_cast<float>(new_scale);
  records_.clear();
}

std::map<std::string, double> GradScaler::state_dict() const {
  return {{"scale", static_cast<double>(scale_)}, {"growth_tracker", static_cast<double>(growth_tracker_)}};
}

void GradScaler::load_state_dict(const std::map<std::string, double>& state) {
  KEEL_CHECK(state.count("scale") && state.count("growth_tracker") && state.size() == 2,
             "[GradScaler.load_state_dict] expected the entries 'scale' and 'growth_tracker'");
  const double scale = state.at("scale");
  KEEL_CHECK(scale > 0 && std::isfinite(static_cast<float>(scale)), "[GradScaler.load_state_dict] scale must be a "
             "positive f32 value, got ", scale);
  scale_ = static_cast<float>(scale);
  growth_tracker_ = static_cast<int64_t>(state.at("growth_tracker"));
  records_.clear();
}

}  // namespace keel::optim
