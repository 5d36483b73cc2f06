#include "keel/optim/early_stopping.h"

#include <cmath>
#include <limits>

#include "keel/autograd/grad_mode.h"
#include "keel/core/error.h"

namespace keel::optim {

EarlyStopping::EarlyStopping(const EarlyStoppingOptions& o) : options_(o) {
  KEEL_CHECK(o.patience >= 0, "[EarlyStopping] patience must be >= 0, got ", o.patience);
  KEEL_CHECK(o.min_delta >= 0, "[EarlyStopping] min_delta must be >= 0, got ", o.min_delta);
  best_ = o.mode == PlateauMode::min ? std::numeric_limits<double>::infinity()
                                     : -std::numeric_limits<double>::infinity();
}

bool EarlyStopping::step(double metric, const std::vector<Tensor>& tensors) {
  const bool improved = options_.mode == PlateauMode::min ? metric < best_ - options_.min_delta
                                                          : metric > best_ + options_.min_delta;
  if (improved || (!has_best() && !std::isnan(metric))) {
    autograd::NoGradGuard no_grad;
    std::vector<Tensor> copies;
    for (const Tensor& t : tensors) copies.push_back(t.detach().clone());
    best_tensors_ = std::move(copies);
    best_ = metric;
    best_epoch_ = epoch_;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  ++epoch_;
  return should_stop();
}

void EarlyStopping::restore_best(const std::vector<Tensor>& tensors) const {
  KEEL_CHECK(has_best(), "[EarlyStopping] restore_best has no best tensors yet (no step() so far, or every metric "
             "was NaN): call step(metric, tensors) after each validation first");
  KEEL_CHECK(tensors.size() == best_tensors_.size(), "[EarlyStopping] restore_best got ", tensors.size(),
             " tensors but the best copy has ", best_tensors_.size(), ": pass the tensors given to step()");
  for (size_t i = 0; i < tensors.size(); ++i)
    KEEL_CHECK(tensors[i].defined() && tensors[i].shape() == best_tensors_[i].shape(), "[EarlyStopping] tensor ", i,
               " has shape ", tensors[i].defined() ? tensors[i].shape() : Shape{}, " but its best copy has ",
               best_tensors_[i].shape(), ": pass the tensors given to step(), in the same order");
  autograd::NoGradGuard no_grad;
  for (size_t i = 0; i < tensors.size(); ++i) {
    Tensor target = tensors[i];
    target.copy_(best_tensors_[i]);
  }
}

}  // namespace keel::optim
