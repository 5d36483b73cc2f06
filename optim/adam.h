#pragma once
// Adam and AdamW, as torch.optim.Adam / AdamW (1.13, the single-tensor formulas). With t the
// parameter's step count (from 1) and g = maximize ? -grad : grad:
//   Adam:  g = g + weight_decay * param                       (L2 penalty folded into the grad)
//   AdamW: param = param * (1 - lr * weight_decay)            (decoupled weight decay)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g * g
//   amsgrad: v_max = max(v_max, v), used below in place of v
//   param = param - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// AdamW runs the fused kernel adamw_step_ (ops/optim_step.h): one call per group over all its
// parameters (one call per distinct step count, when some parameters were skipped earlier).
#include "keel/optim/optimizer.h"

namespace keel::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool amsgrad = false;
  bool maximize = false;
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 1e-2;  // torch's AdamW default
  bool amsgrad = false;
  bool maximize = false;
};

// Adam's and AdamW's options by name (their structs have the same fields).
template <typename Options>
std::vector<OptionField<Options>> adam_option_fields() {
  return {{"beta1", &Options::beta1}, {"beta2", &Options::beta2}, {"eps", &Options::eps},
          {"weight_decay", &Options::weight_decay}, {"amsgrad", nullptr, &Options::amsgrad},
          {"maximize", nullptr, &Options::maximize}};
}

class Adam : public OptimizerWithOptions<AdamOptions> {
 public:
  using Options = AdamOptions;
  explicit Adam(const std::vector<Tensor>& params, const AdamOptions& options = {});
  explicit Adam(const std::vector<ParamGroup<AdamOptions>>& groups);

  void step() override;
  std::optional<double> momentum(size_t group) const override { return options(group).beta1; }
  void set_momentum(double beta1, size_t group) override;

 protected:
  void validate(const AdamOptions& options) const override;
  std::vector<OptionField<AdamOptions>> option_fields() const override { return adam_option_fields<AdamOptions>(); }
  std::vector<std::string> state_names(size_t group) const override;
};

class AdamW : public OptimizerWithOptions<AdamWOptions> {
 public:
  using Options = AdamWOptions;
  explicit AdamW(const std::vector<Tensor>& params, const AdamWOptions& options = {});
  explicit AdamW(const std::vector<ParamGroup<AdamWOptions>>& groups);

  void step() override;
  std::optional<double> momentum(size_t group) const override { return options(group).beta1; }
  void set_momentum(double beta1, size_t group) override;

 protected:
  void validate(const AdamWOptions& options) const override;
  std::vector<OptionField<AdamWOptions>> option_fields() const override { return adam_option_fields<AdamWOptions>(); }
  std::vector<std::string> state_names(size_t group) const override;
  // adamw_step_'s rule: f32 moments for f32 and bf16 parameters, else the parameter's dtype.
  DType state_dtype(const Tensor& param) const override;
};

}  // namespace keel::optim
