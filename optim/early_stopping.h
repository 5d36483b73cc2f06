#pragma once
// Early stopping on a validation metric: remembers the best metric and a copy of the tensors
// (weights) at that point, and says when `patience` epochs in a row did not improve on it.
// Improvement: mode min: metric < best - min_delta; mode max: metric > best + min_delta (a NaN
// metric never improves).
#include <cstdint>
#include <vector>

#include "keel/core/tensor.h"
#include "keel/optim/lr_scheduler.h"  // PlateauMode

namespace keel::optim {

struct EarlyStoppingOptions {
  int64_t patience = 10;
  double min_delta = 0;
  PlateauMode mode = PlateauMode::min;
};

class EarlyStopping {
 public:
  explicit EarlyStopping(const EarlyStoppingOptions& options = {});

  // Records one epoch's metric; on improvement keeps a copy of `tensors`. Returns should_stop().
  bool step(double metric, const std::vector<Tensor>& tensors);
  // True once the last `patience` epochs (at least the last one) did not improve (Keras' rule: with
  // patience 0, the first epoch without improvement stops). NaN metrics count as bad epochs.
  bool should_stop() const { return num_bad_epochs_ > 0 && num_bad_epochs_ >= options_.patience; }
  // Copies the best tensors back into `tensors` (same count and shapes as given to step()).
  void restore_best(const std::vector<Tensor>& tensors) const;

  bool has_best() const { return best_epoch_ >= 0; }
  double best_metric() const { return best_; }
  int64_t best_epoch() const { return best_epoch_; }  // 0-based index of the step() call; -1: none
  int64_t num_bad_epochs() const { return num_bad_epochs_; }
  int64_t epoch() const { return epoch_; }            // step() calls so far
  const std::vector<Tensor>& best_tensors() const { return best_tensors_; }

 private:
  EarlyStoppingOptions options_;
  double best_;
  int64_t best_epoch_ = -1;
  int64_t num_bad_epochs_ = 0;
  int64_t epoch_ = 0;
  std::vector<Tensor> best_tensors_;
};

}  // namespace keel::optim
