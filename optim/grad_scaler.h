#pragma once
// Dynamic loss scaling for mixed precision, as torch.cuda.amp.GradScaler (1.13):
//   scaler.scale(loss).backward();      // grads come out multiplied by scale
//   scaler.unscale_(opt);               // optional: grads / scale, e.g. before clip_grad_norm_
//   scaler.step(opt);                   // unscales if not done yet; skips opt.step() when any
//                                       // grad is inf or NaN
//   scaler.update();                    // inf found: scale *= backoff_factor; else after
//                                       // growth_interval clean steps in a row: scale *= growth_factor
// The scale is an f32 value, as torch's; the grads are multiplied by f32(1 / scale).
#include <cstdint>
#include <map>
#include <string>

#include "keel/core/tensor.h"
#include "keel/optim/optimizer.h"

namespace keel::optim {

struct GradScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  bool enabled = true;  // false: scale() returns the loss, step() just steps, update() does nothing
};

class GradScaler {
 public:
  explicit GradScaler(const GradScalerOptions& options = {});

  Tensor scale(const Tensor& loss) const;
  void unscale_(Optimizer& optimizer);
  // Returns whether the optimizer stepped (false: inf/NaN grads, step skipped).
  bool step(Optimizer& optimizer);
  void update();
  // Sets the scale by hand (torch's update(new_scale)).
  void update(double new_scale);

  double get_scale() const { return options_.enabled ? static_cast<double>(scale_) : 1.0; }
  int64_t growth_tracker() const { return growth_tracker_; }
  bool is_enabled() const { return options_.enabled; }

  std::map<std::string, double> state_dict() const;  // {"scale", "growth_tracker"}
  void load_state_dict(const std::map<std::string, double>& state);

 private:
  struct OptimizerRecord {
    bool unscaled = false;
    bool stepped = false;
    bool found_inf = false;
  };
  GradScalerOptions options_;
  float scale_;
  int64_t growth_tracker_ = 0;
  std::map<const Optimizer*, OptimizerRecord> records_;  // since the last update()
};

}  // namespace keel::optim
