#include "keel/optim/lr_scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "keel/core/error.h"

namespace keel::optim {

// ---- LRScheduler ------------------------------------------------------------------------------

LRScheduler::LRScheduler(Optimizer& optimizer, std::string name) : optimizer_(optimizer), name_(std::move(name)) {
  for (size_t g = 0; g < optimizer_.num_param_groups(); ++g) base_lrs_.push_back(optimizer_.lr(g));
}

void LRScheduler::initialize() { step(); }

void LRScheduler::step() {
  check_epoch(last_epoch_ + 1);
  ++last_epoch_;
  const std::vector<double> lrs = compute_lr();
  for (size_t g = 0; g < lrs.size(); ++g) optimizer_.set_lr(lrs[g], g);
  last_lr_ = lrs;
}

std::map<std::string, double> LRScheduler::state_dict() const {
  std::map<std::string, double> out{{"last_epoch", static_cast<double>(last_epoch_)}};
  for (size_t g = 0; g < base_lrs_.size(); ++g) out["base_lr." + std::to_string(g)] = base_lrs_[g];
  return out;
}

void LRScheduler::load_state_dict(const std::map<std::string, double>& state) {
  KEEL_CHECK(state.count("last_epoch"), "[", name_, ".load_state_dict] missing 'last_epoch'");
  std::vector<double> base_lrs;
  for (size_t g = 0; g < base_lrs_.size(); ++g) {
    auto it = state.find("base_lr." + std::to_string(g));
    KEEL_CHECK(it != state.end(), "[", name_, ".load_state_dict] missing 'base_lr.", g, "': the schedule has ",
               base_lrs_.size(), " parameter groups");
    base_lrs.push_back(it->second);
  }
  KEEL_CHECK(state.size() == base_lrs_.size() + 1, "[", name_, ".load_state_dict] expected ", base_lrs_.size() + 1,
             " entries (last_epoch and one base_lr per group), got ", state.size());
  base_lrs_ = base_lrs;
  last_epoch_ = static_cast<int64_t>(state.at("last_epoch"));
  last_lr_.clear();
  for (size_t g = 0; g < optimizer_.num_param_groups(); ++g) last_lr_.push_back(optimizer_.lr(g));
}

// ---- WarmupCosine -----------------------------------------------------------------------------

WarmupCosine::WarmupCosine(Optimizer& optimizer, const WarmupCosineOptions& o)
    : LRScheduler(optimizer, "WarmupCosine"), options_(o) {
  KEEL_CHECK(o.total_steps > 0, "[WarmupCosine] total_steps must be > 0, got ", o.total_steps,
             ": set it to the number of optimizer steps of the whole run");
  KEEL_CHECK(o.warmup_steps >= 0 && o.warmup_steps <= o.total_steps, "[WarmupCosine] warmup_steps (",
             o.warmup_steps, ") must be in [0, total_steps = ", o.total_steps,
             "]: shorten the warmup or lengthen the run");
  KEEL_CHECK(o.start_factor >= 0 && o.start_factor <= 1, "[WarmupCosine] start_factor must be in [0, 1], got ",
             o.start_factor);
  KEEL_CHECK(o.min_lr >= 0, "[WarmupCosine] min_lr must be >= 0, got ", o.min_lr);
  for (size_t g = 0; g < base_lrs_.size(); ++g)
    KEEL_CHECK(o.min_lr <= base_lrs_[g], "[WarmupCosine] min_lr (", o.min_lr, ") is above group ", g,
               "'s lr (", base_lrs_[g], "): the decay would rise; lower min_lr");
  initialize();
}

std::vector<double> WarmupCosine::compute_lr() {
  const WarmupCosineOptions& o = options_;
  const double s = static_cast<double>(last_epoch_);
  std::vector<double> lrs;
  for (double base : base_lrs_) {
    if (last_epoch_ < o.warmup_steps) {
      lrs.push_back(base * (o.start_factor + (1.0 - o.start_factor) * s / static_cast<double>(o.warmup_steps)));
    } else if (last_epoch_ < o.total_steps) {
      const double progress = (s - static_cast<double>(o.warmup_steps)) /
                              static_cast<double>(o.total_steps - o.warmup_steps);
      lrs.push_back(o.min_lr + (base - o.min_lr) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
    } else {
      lrs.push_back(o.min_lr);
    }
  }
  return lrs;
}

// ---- StepLR, ExponentialLR --------------------------------------------------------------------
// torch's chainable forms: they multiply the groups' current lrs, so an lr changed by hand (or
// by another schedule) carries on from where it is.

StepLR::StepLR(Optimizer& optimizer, const StepLROptions& o) : LRScheduler(optimizer, "StepLR"), options_(o) {
  KEEL_CHECK(o.step_size > 0, "[StepLR] step_size must be > 0, got ", o.step_size);
  KEEL_CHECK(o.gamma >= 0, "[StepLR] gamma must be >= 0, got ", o.gamma);
  initialize();
}

std::vector<double> StepLR::compute_lr() {
  std::vector<double> lrs;
  const bool decay = last_epoch_ != 0 && last_epoch_ % options_.step_size == 0;
  for (size_t g = 0; g < optimizer_.num_param_groups(); ++g)
    lrs.push_back(decay ? optimizer_.lr(g) * options_.gamma : optimizer_.lr(g));
  return lrs;
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, const ExponentialLROptions& o)
    : LRScheduler(optimizer, "ExponentialLR"), options_(o) {
  KEEL_CHECK(o.gamma >= 0, "[ExponentialLR] gamma must be >= 0, got ", o.gamma);
  initialize();
}

std::vector<double> ExponentialLR::compute_lr() {
  std::vector<double> lrs;
  for (size_t g = 0; g < optimizer_.num_param_groups(); ++g)
    lrs.push_back(last_epoch_ == 0 ? optimizer_.lr(g) : optimizer_.lr(g) * options_.gamma);
  return lrs;
}

// ---- OneCycleLR -------------------------------------------------------------------------------

OneCycleLR::OneCycleLR(Optimizer& optimizer, const OneCycleLROptions& o)
    : LRScheduler(optimizer, "OneCycleLR"), options_(o) {
  const size_t groups = optimizer_.num_param_groups();
  KEEL_CHECK(o.total_steps > 0, "[OneCycleLR] total_steps must be > 0, got ", o.total_steps);
  KEEL_CHECK(o.pct_start >= 0 && o.pct_start <= 1, "[OneCycleLR] pct_start must be in [0, 1], got ", o.pct_start);
  KEEL_CHECK(o.div_factor > 0 && o.final_div_factor > 0, "[OneCycleLR] div_factor and final_div_factor must be > 0, got ",
             o.div_factor, " and ", o.final_div_factor);
  KEEL_CHECK(o.max_lrs.empty() || o.max_lrs.size() == groups, "[OneCycleLR] max_lrs has ", o.max_lrs.size(),
             " values but the optimizer has ", groups, " parameter groups: give one per group, or set max_lr");
  max_lrs_ = o.max_lrs.empty() ? std::vector<double>(groups, o.max_lr) : o.max_lrs;
  for (double m : max_lrs_) KEEL_CHECK(m > 0, "[OneCycleLR] max_lr must be > 0, got ", m);
  if (o.cycle_momentum)
    KEEL_CHECK(optimizer_.momentum(0).has_value(), "[OneCycleLR] cycle_momentum needs an optimizer with a momentum "
               "(SGD) or betas (Adam, AdamW): set cycle_momentum = false");
  const double total = static_cast<double>(o.total_steps);
  if (o.three_phase) {
    phases_ = {{o.pct_start * total - 1, 0, 1, true, false},
               {2 * o.pct_start * total - 2, 1, 0, false, true},
               {total - 1, 0, 2, true, true}};
  } else {
    phases_ = {{o.pct_start * total - 1, 0, 1, true, false}, {total - 1, 1, 2, false, true}};
  }
  for (size_t g = 0; g < groups; ++g) {
    initial_lrs_.push_back(max_lrs_[g] / o.div_factor);
    min_lrs_.push_back(initial_lrs_[g] / o.final_div_factor);
  }
  if (o.cycle_momentum)
    for (size_t g = 0; g < groups; ++g) optimizer_.set_momentum(o.max_momentum, g);
  initialize();
}

void OneCycleLR::check_epoch(int64_t epoch) const {
  KEEL_CHECK(epoch <= options_.total_steps, "[OneCycleLR] stepped ", epoch + 1, " times but total_steps is ",
             options_.total_steps, ": raise total_steps to the number of optimizer steps");
}

std::vector<double> OneCycleLR::compute_lr() {
  const OneCycleLROptions& o = options_;
  auto anneal = [&](double start, double end, double pct) {
    if (o.anneal_strategy == AnnealStrategy::linear) return (end - start) * pct + start;
    return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1);
  };
  const double step_num = static_cast<double>(last_epoch_);
  std::vector<double> lrs;
  for (size_t g = 0; g < optimizer_.num_param_groups(); ++g) {
    const double lr_of[3] = {initial_lrs_[g], max_lrs_[g], min_lrs_[g]};
    double start_step = 0, lr = 0, momentum = 0;
    for (size_t i = 0; i < phases_.size(); ++i) {
      const Phase& phase = phases_[i];
      if (step_num <= phase.end_step || i == phases_.size() - 1) {
        const double pct = (step_num - start_step) / (phase.end_step - start_step);
        lr = anneal(lr_of[phase.start_lr], lr_of[phase.end_lr], pct);
        momentum = anneal(phase.start_momentum_max ? o.max_momentum : o.base_momentum,
                          phase.end_momentum_max ? o.max_momentum : o.base_momentum, pct);
        break;
      }
      start_step = phase.end_step;
    }
    lrs.push_back(lr);
    if (o.cycle_momentum) optimizer_.set_momentum(momentum, g);
  }
  return lrs;
}

// ---- ReduceLROnPlateau ------------------------------------------------------------------------

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, const ReduceLROnPlateauOptions& o)
    : optimizer_(optimizer), options_(o) {
  const size_t groups = optimizer_.num_param_groups();
  KEEL_CHECK(o.factor < 1.0 && o.factor >= 0, "[ReduceLROnPlateau] factor must be in [0, 1), got ", o.factor);
  KEEL_CHECK(o.patience >= 0 && o.cooldown >= 0, "[ReduceLROnPlateau] patience and cooldown must be >= 0, got ",
             o.patience, " and ", o.cooldown);
  KEEL_CHECK(o.threshold >= 0 && o.eps >= 0, "[ReduceLROnPlateau] threshold and eps must be >= 0, got ", o.threshold,
             " and ", o.eps);
  KEEL_CHECK(o.min_lrs.empty() || o.min_lrs.size() == groups, "[ReduceLROnPlateau] min_lrs has ", o.min_lrs.size(),
             " values but the optimizer has ", groups, " parameter groups: give one per group, or set min_lr");
  min_lrs_ = o.min_lrs.empty() ? std::vector<double>(groups, o.min_lr) : o.min_lrs;
  for (double m : min_lrs_) KEEL_CHECK(m >= 0, "[ReduceLROnPlateau] min_lr must be >= 0, got ", m);
  best_ = o.mode == PlateauMode::min ? std::numeric_limits<double>::infinity()
                                     : -std::numeric_limits<double>::infinity();
  for (size_t g = 0; g < groups; ++g) last_lr_.push_back(optimizer_.lr(g));
}

bool ReduceLROnPlateau::is_better(double a, double best) const {
  const ReduceLROnPlateauOptions& o = options_;
  if (o.mode == PlateauMode::min)
    return o.threshold_mode == ThresholdMode::rel ? a < best * (1.0 - o.threshold) : a < best - o.threshold;
  return o.threshold_mode == ThresholdMode::rel ? a > best * (o.threshold + 1.0) : a > best + o.threshold;
}

void ReduceLROnPlateau::step(double metric) {
  ++last_epoch_;
  if (is_better(metric, best_)) {
    best_ = metric;
    num_bad_epochs_ = 0;
  } else {
    ++num_bad_epochs_;
  }
  if (in_cooldown()) {
    --cooldown_counter_;
    num_bad_epochs_ = 0;  // bad epochs in cooldown do not count
  }
  if (num_bad_epochs_ > options_.patience) {
    for (size_t g = 0; g < optimizer_.num_param_groups(); ++g) {
      const double old_lr = optimizer_.lr(g);
      const double new_lr = std::max(old_lr * options_.factor, min_lrs_[g]);
      if (old_lr - new_lr > options_.eps) optimizer_.set_lr(new_lr, g);
    }
    cooldown_counter_ = options_.cooldown;
    num_bad_epochs_ = 0;
  }
  last_lr_.clear();
  for (size_t g = 0; g < optimizer_.num_param_groups(); ++g) last_lr_.push_back(optimizer_.lr(g));
}

std::map<std::string, double> ReduceLROnPlateau::state_dict() const {
  return {{"last_epoch", static_cast<double>(last_epoch_)},
          {"best", best_},
          {"num_bad_epochs", static_cast<double>(num_bad_epochs_)},
          {"cooldown_counter", static_cast<double>(cooldown_counter_)}};
}

void ReduceLROnPlateau::load_state_dict(const std::map<std::string, double>& state) {
  for (const char* key : {"last_epoch", "best", "num_bad_epochs", "cooldown_counter"})
    KEEL_CHECK(state.count(key), "[ReduceLROnPlateau.load_state_dict] missing '", key, "'");
  KEEL_CHECK(state.size() == 4, "[ReduceLROnPlateau.load_state_dict] expected 4 entries, got ", state.size());
  last_epoch_ = static_cast<int64_t>(state.at("last_epoch"));
  best_ = state.at("best");
  num_bad_epochs_ = static_cast<int64_t>(state.at("num_bad_epochs"));
  cooldown_counter_ = static_cast<int64_t>(state.at("cooldown_counter"));
}

}  // namespace keel::optim
