#pragma once
// Learning-rate schedules, as torch.optim.lr_scheduler (1.13). A schedule drives the lr of every
// parameter group of its optimizer from the group's lr at construction (its base lr). Like
// torch's, constructing one already sets epoch 0's lr (last_epoch() == 0); call step() after
// each optimizer.step(). ReduceLROnPlateau instead steps on a metric.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "keel/optim/optimizer.h"

namespace keel::optim {

class LRScheduler {
 public:
  virtual ~LRScheduler() = default;
  LRScheduler(const LRScheduler&) = delete;
  LRScheduler& operator=(const LRScheduler&) = delete;

  // Advances one epoch (or step) and sets every group's lr.
  void step();
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  const std::vector<double>& base_lrs() const { return base_lrs_; }
  int64_t last_epoch() const { return last_epoch_; }

  // {"last_epoch", "base_lr.<group>"}: with the optimizer's state_dict, resumes the schedule.
  std::map<std::string, double> state_dict() const;
  void load_state_dict(const std::map<std::string, double>& state);

 protected:
  LRScheduler(Optimizer& optimizer, std::string name);
  // Sets epoch 0's lrs; derived constructors call it last (torch's _LRScheduler.__init__ step).
  void initialize();
  // The lrs for last_epoch_, per group (may read the groups' current lrs: torch's chainable form).
  virtual std::vector<double> compute_lr() = 0;
  // Checked before last_epoch_ advances to `epoch` (throws to refuse it).
  virtual void check_epoch(int64_t epoch) const { (void)epoch; }

  Optimizer& optimizer_;
  std::string name_;
  std::vector<double> base_lrs_;
  int64_t last_epoch_ = -1;
  std::vector<double> last_lr_;
};

// Linear warmup, then cosine decay to min_lr (not in torch; torch users write it as a LambdaLR).
// With s = last_epoch, W = warmup_steps, T = total_steps, base = the group's base lr:
//   s < W:       base * (start_factor + (1 - start_factor) * s / W)
//   W <= s < T:  min_lr + (base - min_lr) * (1 + cos(pi * (s - W) / (T - W))) / 2
//   s >= T:      min_lr
struct WarmupCosineOptions {
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;
  double min_lr = 0;
  double start_factor = 0;  // warmup starts at start_factor * base
};
class WarmupCosine : public LRScheduler {
 public:
  WarmupCosine(Optimizer& optimizer, const WarmupCosineOptions& options);

 protected:
  std::vector<double> compute_lr() override;

 private:
  WarmupCosineOptions options_;
};

using CosineSchedule = WarmupCosine;  // the name DESIGN.md's sketch uses

// Multiplies the lr by gamma every step_size epochs (torch.optim.lr_scheduler.StepLR).
struct StepLROptions {
  int64_t step_size = 1;
  double gamma = 0.1;
};
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, const StepLROptions& options);

 protected:
  std::vector<double> compute_lr() override;

 private:
  StepLROptions options_;
};

// Multiplies the lr by gamma every epoch (torch.optim.lr_scheduler.ExponentialLR).
struct ExponentialLROptions {
  double gamma = 0.9;
};
class ExponentialLR : public LRScheduler {
 public:
  ExponentialLR(Optimizer& optimizer, const ExponentialLROptions& options);

 protected:
  std::vector<double> compute_lr() override;

 private:
  ExponentialLROptions options_;
};

// The 1cycle policy (torch.optim.lr_scheduler.OneCycleLR): from max_lr / div_factor up to max_lr
// over pct_start of total_steps, then down to that start / final_div_factor; with cycle_momentum
// the optimizer's momentum (SGD) or beta1 (Adam, AdamW) moves the opposite way between
// max_momentum and base_momentum. Each phase anneals by cosine (or linearly):
//   cos: end + (start - end) / 2 * (1 + cos(pi * pct)),   linear: start + (end - start) * pct
// Stepping past total_steps is an error, as in torch.
enum class AnnealStrategy { cos, linear };
struct OneCycleLROptions {
  double max_lr = 0;             // every group; max_lrs (one per group) wins when not empty
  std::vector<double> max_lrs;
  int64_t total_steps = 0;
  double pct_start = 0.3;
  AnnealStrategy anneal_strategy = AnnealStrategy::cos;
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  bool three_phase = false;
};
class OneCycleLR : public LRScheduler {
 public:
  OneCycleLR(Optimizer& optimizer, const OneCycleLROptions& options);

 protected:
  std::vector<double> compute_lr() override;
  void check_epoch(int64_t epoch) const override;

 private:
  struct Phase {
    double end_step;
    int start_lr, end_lr;              // 0: initial_lr, 1: max_lr, 2: min_lr
    bool start_momentum_max, end_momentum_max;
  };
  OneCycleLROptions options_;
  std::vector<Phase> phases_;
  std::vector<double> initial_lrs_, max_lrs_, min_lrs_;
};

// Reduces the lr by `factor` when a metric stopped improving for `patience` epochs
// (torch.optim.lr_scheduler.ReduceLROnPlateau). Improvement: mode min, rel: a < best * (1 - threshold);
// min, abs: a < best - threshold; max, rel: a > best * (1 + threshold); max, abs: a > best + threshold.
// After a reduction, `cooldown` epochs pass without counting bad epochs. A reduction smaller than
// eps is not made; the lr never goes below min_lr (min_lrs: one per group, wins when not empty).
enum class PlateauMode { min, max };
enum class ThresholdMode { rel, abs };
struct ReduceLROnPlateauOptions {
  PlateauMode mode = PlateauMode::min;
  double factor = 0.1;
  int64_t patience = 10;
  double threshold = 1e-4;
  ThresholdMode threshold_mode = ThresholdMode::rel;
  int64_t cooldown = 0;
  double min_lr = 0;
  std::vector<double> min_lrs;
  double eps = 1e-8;
};
class ReduceLROnPlateau {
 public:
  ReduceLROnPlateau(Optimizer& optimizer, const ReduceLROnPlateauOptions& options = {});
  void step(double metric);
  const std::vector<double>& get_last_lr() const { return last_lr_; }
  int64_t last_epoch() const { return last_epoch_; }
  double best() const { return best_; }
  int64_t num_bad_epochs() const { return num_bad_epochs_; }
  bool in_cooldown() const { return cooldown_counter_ > 0; }

  // {"last_epoch", "best", "num_bad_epochs", "cooldown_counter"}
  std::map<std::string, double> state_dict() const;
  void load_state_dict(const std::map<std::string, double>& state);

 private:
  bool is_better(double a, double best) const;
  Optimizer& optimizer_;
  ReduceLROnPlateauOptions options_;
  std::vector<double> min_lrs_;
  double best_;
  int64_t num_bad_epochs_ = 0;
  int64_t cooldown_counter_ = 0;
  int64_t last_epoch_ = 0;
  std::vector<double> last_lr_;
};

}  // namespace keel::optim
