#pragma once
// The optimizer base: parameter groups with their own options, per-parameter state, zero_grad,
// the group learning rates that schedules drive, and a state_dict that resumes bit for bit.
// Parameters come as std::vector<Tensor> (what nn::Module::parameters() returns), so this layer
// needs nothing from nn. Semantics follow torch.optim (1.13): a parameter whose grad is undefined
// is skipped by step() and gets no state; state is created lazily on its first update.
#include <cstdint>
#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "keel/core/error.h"
#include "keel/core/tensor.h"

namespace keel::optim {

// One parameter's state: its named buffers (exp_avg, momentum_buffer, ...) and how many updates
// it has received (torch's state['step']; Adam's bias corrections use it).
struct ParamState {
  int64_t step = 0;
  std::map<std::string, Tensor> tensors;
};

// The optimizer state as named tensors and numbers, ready for a checkpoint. Parameters are
// numbered over all groups in order (as torch's state_dict numbers them):
//   tensors: "state.<index>.<name>"  e.g. "state.3.exp_avg"
//   steps:   "state.<index>.step"    for every parameter that has state
//   groups:  "param_groups.<group>.lr" and, where the optimizer has one, ".momentum"
//            (SGD's momentum, Adam's beta1: what OneCycleLR cycles), and every other option
//            (group_options: ".weight_decay", ".beta2", ".eps", ".nesterov" as 0 / 1, ...)
struct OptimizerState {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, int64_t> steps;
  std::map<std::string, double> groups;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a grad, without recording on the tape.
  virtual void step() = 0;
  // Clears every parameter's grad: undefined (set_to_none, PyTorch's default) or zero-filled.
  void zero_grad(bool set_to_none = true);

  size_t num_param_groups() const { return params_.size(); }
  const std::vector<Tensor>& params(size_t group) const;
  virtual double lr(size_t group = 0) const = 0;
  virtual void set_lr(double lr, size_t group = 0) = 0;
  void set_lr_all(double lr);  // every group
  // SGD's momentum or Adam's beta1, for schedules that cycle it; nullopt where there is none.
  virtual std::optional<double> momentum(size_t group) const { (void)group; return std::nullopt; }
  virtual void set_momentum(double momentum, size_t group) { (void)momentum; (void)group; }
  // The group's options other than lr, as numbers (momentum, weight_decay, betas, eps; flags such
  // as nesterov or amsgrad as 0 / 1): state_dict saves them and load_state_dict restores them, as
  // torch's param_groups do, so a resumed run keeps the settings it was saved with.
  virtual std::map<std::string, double> group_options(size_t group) const { (void)group; return {}; }
  // Sets some of them by name; throws, changing nothing, on an unknown name or invalid options.
  virtual void set_group_options(const std::map<std::string, double>& values, size_t group) { (void)values; (void)group; }

  // State of the parameter at `index` in `group` (empty until its first update).
  const ParamState& state(size_t group, size_t index) const;

  OptimizerState state_dict() const;
  // Checks everything first (group and parameter counts, names, shapes); on any error throws and
  // leaves the optimizer unchanged. Tensors are copied into the parameters' device and state dtype.
  void load_state_dict(const OptimizerState& state);

 protected:
  explicit Optimizer(std::string name) : name_(std::move(name)) {}
  // Validates and appends a group's parameters (non-empty, floating leaves, none already here).
  void add_params(const std::vector<Tensor>& params);
  ParamState& mutable_state(size_t group, size_t index) { return state_[group][index]; }
  // The buffer names a parameter of `group` has once updated, and their dtype.
  virtual std::vector<std::string> state_names(size_t group) const = 0;
  virtual DType state_dtype(const Tensor& param) const { return param.dtype(); }

  std::string name_;  // "SGD", "Adam", "AdamW": prefixes errors

 private:
  std::vector<std::vector<Tensor>> params_;
  std::vector<std::vector<ParamState>> state_;
};

// One option of an Options struct other than lr, by name: a number or a flag.
template <typename Options>
struct OptionField {
  const char* name;
  double Options::*number = nullptr;
  bool Options::*flag = nullptr;
};

// A group of parameters and its options (each optimizer's own Options struct).
template <typename Options>
struct ParamGroup {
  std::vector<Tensor> params;
  Options options;
};

// Stores the typed groups; derived optimizers implement step() and validate(Options).
template <typename Options>
class OptimizerWithOptions : public Optimizer {
 public:
  const std::vector<ParamGroup<Options>>& param_groups() const { return groups_; }
  const Options& options(size_t group = 0) const {
    KEEL_CHECK(group < groups_.size(), "[", name_, "] no parameter group ", group, ": the optimizer has ",
               groups_.size());
    return groups_[group].options;
  }

  // Adds a group with its own options (torch's add_param_group). Throws, changing nothing, on
  // invalid options, an empty list or a parameter that is already in a group.
  void add_param_group(const ParamGroup<Options>& group) {
    validate(group.options);
    add_params(group.params);
    groups_.push_back(group);
  }

  std::map<std::string, double> group_options(size_t group) const override {
    std::map<std::string, double> out;
    const Options& o = options(group);
    for (const OptionField<Options>& field : option_fields())
      out[field.name] = field.number ? o.*field.number : (o.*field.flag ? 1.0 : 0.0);
    return out;
  }
  void set_group_options(const std::map<std::string, double>& values, size_t group) override {
    Options changed = options(group);
    const std::vector<OptionField<Options>> fields = option_fields();
    for (const auto& entry : values) {
      const std::string& name = entry.first;  // (clang 14 cannot capture a structured binding)
      const double value = entry.second;
      auto field = std::find_if(fields.begin(), fields.end(), [&](const auto& f) { return name == f.name; });
      KEEL_CHECK(field != fields.end(), "[", name_, "] no option named '", name, "'");
      if (field->number) {
        changed.*field->number = value;
      } else {
        KEEL_CHECK(value == 0 || value == 1, "[", name_, "] option '", name, "' is a flag (0 or 1), got ", value);
        changed.*field->flag = value != 0;
      }
    }
    validate(changed);
    groups_[group].options = changed;
  }

  double lr(size_t group = 0) const override { return options(group).lr; }
  void set_lr(double lr, size_t group = 0) override {
    Options changed = options(group);
    changed.lr = lr;
    validate(changed);
    groups_[group].options = changed;
  }

 protected:
  OptimizerWithOptions(std::string name) : Optimizer(std::move(name)) {}
  virtual void validate(const Options& options) const = 0;
  // The options group_options reports: all but lr.
  virtual std::vector<OptionField<Options>> option_fields() const = 0;
  Options& mutable_options(size_t group) {
    (void)options(group);  // the group check
    return groups_[group].options;
  }

 private:
  std::vector<ParamGroup<Options>> groups_;
};

}  // namespace keel::optim
