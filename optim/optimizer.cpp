#include "keel/optim/optimizer.h"

#include <set>

#include "keel/autograd/grad_mode.h"
#include "keel/core/error.h"

namespace keel::optim {

void Optimizer::zero_grad(bool set_to_none) {
  for (const auto& group : params_)
    for (const Tensor& p : group) p.zero_grad(set_to_none);
}

const std::vector<Tensor>& Optimizer::params(size_t group) const {
  KEEL_CHECK(group < params_.size(), "[", name_, "] no parameter group ", group, ": the optimizer has ",
             params_.size());
  return params_[group];
}

void Optimizer::set_lr_all(double lr) {
  for (size_t g = 0; g < num_param_groups(); ++g) set_lr(lr, g);
}

const ParamState& Optimizer::state(size_t group, size_t index) const {
  KEEL_CHECK(group < state_.size() && index < state_[group].size(), "[", name_, "] no parameter ", index,
             " in group ", group);
  return state_[group][index];
}

void Optimizer::add_params(const std::vector<Tensor>& params) {
  KEEL_CHECK(!params.empty(), "[", name_, "] got an empty parameter list: pass the tensors to optimize, e.g. "
             "net.parameters()");
  std::set<const TensorImpl*> seen;
  for (const auto& group : params_)
    for (const Tensor& p : group) seen.insert(&p.impl());
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    KEEL_CHECK(p.defined(), "[", name_, "] parameter ", i, " is an undefined tensor");
    KEEL_CHECK(is_floating(p.dtype()), "[", name_, "] parameter ", i, " has dtype ", dtype_name(p.dtype()),
               ": only floating tensors can be optimized");
    KEEL_CHECK(p.is_leaf(), "[", name_, "] parameter ", i, " is not a leaf (it was computed from other tensors): "
               "optimize the leaf, or detach() it and call requires_grad_()");
    KEEL_CHECK(seen.insert(&p.impl()).second, "[", name_, "] parameter ", i,
               " appears twice (or is already in another parameter group): give each parameter once");
  }
  params_.push_back(params);
  state_.emplace_back(params.size());
}

namespace {
std::string state_key(size_t index, const std::string& name) {
  return "state." + std::to_string(index) + "." + name;
}
std::string group_key(size_t group, const std::string& name) {
  return "param_groups." + std::to_string(group) + "." + name;
}
}  // namespace

OptimizerState Optimizer::state_dict() const {
  OptimizerState out;
  size_t index = 0;
  for (size_t g = 0; g < params_.size(); ++g) {
    out.groups[group_key(g, "lr")] = lr(g);
    if (auto m = momentum(g)) out.groups[group_key(g, "momentum")] = *m;
    for (const auto& [name, value] : group_options(g)) out.groups[group_key(g, name)] = value;
    for (size_t i = 0; i < params_[g].size(); ++i, ++index) {
      const ParamState& s = state_[g][i];
      if (s.step == 0 && s.tensors.empty()) continue;
      out.steps[state_key(index, "step")] = s.step;
      // Clones: the checkpoint must not change when the optimizer steps on.
      for (const auto& [name, t] : s.tensors) out.tensors[state_key(index, name)] = t.clone();
    }
  }
  return out;
}

void Optimizer::load_state_dict(const OptimizerState& in) {
  autograd::NoGradGuard no_grad;
  // Everything is checked and built into new_state before anything here changes.
  std::vector<std::vector<ParamState>> new_state;
  std::map<std::string, double> group_values;
  std::vector<std::map<std::string, double>> new_options;  // per group
  std::set<std::string> used_tensors, used_steps;
  size_t index = 0;
  for (size_t g = 0; g < params_.size(); ++g) {
    const std::string lr_key = group_key(g, "lr");
    KEEL_CHECK(in.groups.count(lr_key), "[", name_, ".load_state_dict] missing '", lr_key, "': the state has ",
               in.groups.size(), " group entries but this optimizer has ", params_.size(),
               " parameter groups; load a state saved from the same parameter groups");
    const std::vector<std::string> names = state_names(g);
    new_state.emplace_back();
    for (size_t i = 0; i < params_[g].size(); ++i, ++index) {
      const Tensor& p = params_[g][i];
      ParamState s;
      const std::string step_key = state_key(index, "step");
      const bool has_step = in.steps.count(step_key) > 0;
      if (has_step) {
        s.step = in.steps.at(step_key);
        KEEL_CHECK(s.step >= 0, "[", name_, ".load_state_dict] '", step_key, "' is negative (", s.step, ")");
        used_steps.insert(step_key);
      }
      for (const std::string& name : names) {
        const std::string key = state_key(index, name);
        auto it = in.tensors.find(key);
        if (it == in.tensors.end()) continue;
        const Tensor& t = it->second;
        KEEL_CHECK(t.defined() && t.shape() == p.shape(), "[", name_, ".load_state_dict] '", key, "' has shape ",
                   t.defined() ? t.shape() : Shape{}, " but parameter ", index, " has shape ", p.shape(),
                   ": load a state saved from the same parameters");
        s.tensors[name] = t.to(p.device(), state_dtype(p)).clone();
        used_tensors.insert(key);
      }
      KEEL_CHECK(s.tensors.empty() || has_step, "[", name_, ".load_state_dict] parameter ", index,
                 " has state tensors but no '", step_key, "'");
      new_state.back().push_back(std::move(s));
    }
    group_values[lr_key] = in.groups.at(lr_key);
    const std::string momentum_key = group_key(g, "momentum");
    if (momentum(g) && in.groups.count(momentum_key)) group_values[momentum_key] = in.groups.at(momentum_key);
    // The other options the state has (a state saved before they were part of it has none).
    std::map<std::string, double> options;
    for (const auto& [name, value] : group_options(g)) {
      auto it = in.groups.find(group_key(g, name));
      if (it != in.groups.end()) options[name] = it->second;
    }
    new_options.push_back(std::move(options));
  }
  for (const auto& [key, t] : in.tensors)
    KEEL_CHECK(used_tensors.count(key), "[", name_, ".load_state_dict] unexpected entry '", key,
               "': it names no parameter or buffer of this optimizer (", index, " parameters)");
  for (const auto& [key, step] : in.steps)
    KEEL_CHECK(used_steps.count(key), "[", name_, ".load_state_dict] unexpected entry '", key,
               "': this optimizer has ", index, " parameters");
  for (const auto& [key, value] : group_values)
    KEEL_CHECK(value >= 0, "[", name_, ".load_state_dict] '", key, "' is negative (", value, ")");
  // The group values go through set_lr / set_momentum (their option checks); if one refuses, the
  // old values are put back before rethrowing.
  std::vector<double> old_lrs;
  std::vector<std::optional<double>> old_momenta;
  std::vector<std::map<std::string, double>> old_options;
  for (size_t g = 0; g < params_.size(); ++g) {
    old_lrs.push_back(lr(g));
    old_momenta.push_back(momentum(g));
    old_options.push_back(group_options(g));
  }
  try {
    for (size_t g = 0; g < params_.size(); ++g) {
      // All options at once: nesterov, say, is only valid together with its momentum.
      set_group_options(new_options[g], g);
      set_lr(group_values.at(group_key(g, "lr")), g);
      auto it = group_values.find(group_key(g, "momentum"));
      if (it != group_values.end()) set_momentum(it->second, g);
    }
  } catch (...) {
    for (size_t g = 0; g < params_.size(); ++g) {
      set_group_options(old_options[g], g);
      set_lr(old_lrs[g], g);
      if (old_momenta[g]) set_momentum(*old_momenta[g], g);
    }
    throw;
  }
  state_ = std::move(new_state);
}

}  // namespace keel::optim
