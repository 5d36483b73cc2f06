#pragma once
// nn::Module: the base of every layer and model (torch.nn.Module). A module owns a registry of
// named parameters, buffers and submodules; everything else (parameters(), state_dict(), train(),
// to(), printing) walks that registry, so a new layer only registers its members.
//
//   struct Net : nn::Module {
//     nn::Linear fc1{784, 256}, fc2{256, 10};
//     Net() { register_module("fc1", fc1); register_module("fc2", fc2); }
//     Tensor forward(const Tensor& x) override { return fc2(relu(fc1(x))); }
//   };
//
// Registered tensors live in the registry: register_parameter / register_buffer return a reference
// to the registry's slot, and layers keep that reference (`Tensor& weight`), so `to()` (which puts
// a converted tensor in each slot) and load_state_dict (which copies values into the slots) are
// seen by the layer. Two slots holding the same tensor (tied weights) stay tied through `to()`.
// Build optimizers AFTER `to()`: they hold the tensors that were in the slots when they were built.
//
// Names follow PyTorch's state_dict: "features.0.weight", "bn.running_mean", ...
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "keel/core/tensor.h"

namespace keel::nn {

using StateDict = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  // Registrations point at members (and submodules at member modules): a copy would point at the
  // original's members.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  virtual ~Module();

  // A parameter is a leaf; it requires grad unless requires_grad is false (then it is still
  // listed by parameters() and saved by state_dict, as a frozen parameter in PyTorch).
  // Names are non-empty, contain no '.', and are unique among this module's parameters, buffers
  // and submodules; otherwise keel::Error.
  Tensor& register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  // A buffer is state that is not trained (running statistics, masks). Non-persistent buffers are
  // left out of state_dict (PyTorch's persistent=False).
  Tensor& register_buffer(const std::string& name, Tensor value, bool persistent = true);
  // Non-owning: `member` must outlive this module (normally it is a member of it).
  template <class M> M& register_module(const std::string& name, M& member) {
    add_module(name, &member, nullptr);
    return member;
  }
  // Owning: the module keeps the shared_ptr.
  template <class M> std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_module(name, module.get(), module);
    return module;
  }

  // Each tensor once, even when tied under two names (as PyTorch).
  std::vector<Tensor> parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_parameters(bool recurse = true) const;
  std::vector<std::pair<std::string, Tensor>> named_buffers(bool recurse = true) const;
  // "" for the module itself first, then every submodule depth-first in registration order.
  std::vector<std::pair<std::string, Module*>> named_modules() const;
  std::vector<std::pair<std::string, Module*>> named_children() const;
  std::vector<Module*> children() const;
  // The registered parameter / buffer / submodule of that (dotted) name; keel::Error if none.
  Tensor& parameter(const std::string& name);
  Tensor& buffer(const std::string& name);
  Module& module(const std::string& name);

  // Training mode for this module and every submodule (Dropout and BatchNorm read it).
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves / converts every parameter and buffer (the dtype only of floating ones, as PyTorch);
  // gradients follow. Puts new tensors in the slots: build optimizers after calling it.
  void to(Device device);
  void to(DType dtype);
  void to(Device device, DType dtype);

  // Drops (set_to_none, PyTorch's default) or zeroes every parameter's gradient.
  void zero_grad(bool set_to_none = true);

  // Parameters and persistent buffers by name, detached, sharing storage with the module.
  // Tied tensors appear under each name (as PyTorch).
  StateDict state_dict() const;
  // Copies values into the module's tensors (converting dtype and device). Every name and shape is
  // checked first: a failed load throws keel::Error and changes nothing. strict: names in `state`
  // that the module lacks, and names of the module missing from `state`, are errors; non-strict
  // ignores both (shape mismatches are errors either way, as PyTorch).
  void load_state_dict(const StateDict& state, bool strict = true);

  // Single-input modules override it; the default throws keel::Error naming the module type.
  virtual Tensor forward(const Tensor& input);
  // Calls forward (and records the output shape while summary() runs).
  Tensor operator()(const Tensor& input);

  // "Linear", "Conv2d", ...; by default the class name without namespaces.
  virtual std::string type_name() const;
  // The arguments shown inside the parentheses by str(): "in_features=784, out_features=10, bias=True".
  virtual std::string extra_repr() const;
  // PyTorch's print(module):
  //   Net(
  //     (fc1): Linear(in_features=784, out_features=256, bias=True)
  //     ...
  //   )
  std::string str() const;
  // A table: every submodule (indented by depth) with its type, output shape of a no-grad
  // forward on zeros(input_shape) (on the device and dtype of the first parameter), and its own
  // parameter count; then the total and trainable counts. Restores the training mode.
  std::string summary(const Shape& input_shape) const;
  // The same with a given example input (for modules whose input is not floating zeros, e.g.
  // token indices).
  std::string summary(const Tensor& example_input) const;

 protected:
  bool training_ = true;

 private:
  struct NamedTensor {
    std::string name;
    Tensor tensor;
    bool persistent = true;
  };
  struct NamedModule {
    std::string name;
    Module* module;
    std::shared_ptr<Module> owner;  // null for members
  };
  void check_new_name(const std::string& name, const char* what) const;
  void add_module(const std::string& name, Module* module, std::shared_ptr<Module> owner);
  // Every slot (parameters then buffers, recursively) with its dotted name.
  void collect(const std::string& prefix, bool params, bool buffers, bool recurse,
               std::vector<std::pair<std::string, Tensor*>>& out, bool persistent_only) const;
  void convert(std::optional<Device> device, std::optional<DType> dtype);
  void print(std::ostringstream& out, int indent) const;

  // unique_ptr: slots keep their addresses while more are registered.
  std::vector<std::unique_ptr<NamedTensor>> parameters_;
  std::vector<std::unique_ptr<NamedTensor>> buffers_;
  std::vector<NamedModule> modules_;
};

// Modules in a chain: forward(x) = m_{n-1}(... m_1(m_0(x))). Children are named "0", "1", ...
// unless given names.
class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  template <class M> std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    return push_back(std::to_string(items_.size()), std::move(module));
  }
  template <class M> std::shared_ptr<M> push_back(const std::string& name, std::shared_ptr<M> module) {
    register_module(name, std::shared_ptr<Module>(module));
    items_.push_back(module.get());
    return module;
  }
  Tensor forward(const Tensor& input) override;
  Module& operator[](size_t index) const;
  size_t size() const { return items_.size(); }
  std::string type_name() const override { return "Sequential"; }

 private:
  std::vector<Module*> items_;
};

}  // namespace keel::nn
