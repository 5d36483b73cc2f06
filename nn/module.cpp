#include "keel/nn/module.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <typeinfo>

#include "keel/autograd/grad_mode.h"
#include "keel/ops/factory.h"

namespace keel::nn {

namespace {

// While summary() runs: the output shape of each module's last call.
thread_local std::map<const Module*, Shape>* g_recorded_shapes = nullptr;

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

}  // namespace

Module::~Module() = default;

void Module::check_new_name(const std::string& name, const char* what) const {
  KEEL_CHECK(!name.empty(), "[nn.", type_name(), "] ", what, " name is empty: give it a name");
  KEEL_CHECK(name.find('.') == std::string::npos, "[nn.", type_name(), "] ", what, " name '", name,
             "' contains '.': dots separate submodule names, use '_' instead");
  auto taken = [&](const auto& list) {
    for (const auto& entry : list)
      if (entry->name == name) return true;
    return false;
  };
  bool module_taken = false;
  for (const NamedModule& entry : modules_) module_taken |= entry.name == name;
  KEEL_CHECK(!taken(parameters_) && !taken(buffers_) && !module_taken, "[nn.", type_name(), "] ", what, " name '",
             name, "' is already registered in this module: use another name");
}

Tensor& Module::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  check_new_name(name, "parameter");
  KEEL_CHECK(value.defined(), "[nn.", type_name(), "] parameter '", name, "' is an undefined tensor");
  KEEL_CHECK(!requires_grad || is_floating(value.dtype()), "[nn.", type_name(), "] parameter '", name,
             "' has dtype ", dtype_name(value.dtype()), ": only floating tensors can require grad");
  // A parameter is a leaf of its own, whatever history `value` had.
  Tensor leaf = value.detach();
  if (requires_grad) leaf.requires_grad_(true);
  parameters_.push_back(std::make_unique<NamedTensor>(NamedTensor{name, leaf, true}));
  return parameters_.back()->tensor;
}

Tensor& Module::register_buffer(const std::string& name, Tensor value, bool persistent) {
  check_new_name(name, "buffer");
  KEEL_CHECK(value.defined(), "[nn.", type_name(), "] buffer '", name, "' is an undefined tensor");
  buffers_.push_back(std::make_unique<NamedTensor>(NamedTensor{name, value.detach(), persistent}));
  return buffers_.back()->tensor;
}

void Module::add_module(const std::string& name, Module* module, std::shared_ptr<Module> owner) {
  check_new_name(name, "submodule");
  KEEL_CHECK(module != nullptr, "[nn.", type_name(), "] submodule '", name, "' is null");
  KEEL_CHECK(module != this, "[nn.", type_name(), "] submodule '", name, "' is the module itself");
  modules_.push_back(NamedModule{name, module, std::move(owner)});
}

void Module::collect(const std::string& prefix, bool params, bool buffers, bool recurse,
                     std::vector<std::pair<std::string, Tensor*>>& out, bool persistent_only) const {
  if (params)
    for (const auto& entry : parameters_) out.emplace_back(join(prefix, entry->name), &entry->tensor);
  if (buffers)
    for (const auto& entry : buffers_)
      if (entry->persistent || !persistent_only) out.emplace_back(join(prefix, entry->name), &entry->tensor);
  if (recurse)
    for (const NamedModule& child : modules_)
      child.module->collect(join(prefix, child.name), params, buffers, true, out, persistent_only);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters(bool recurse) const {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, false, recurse, slots, false);
  std::vector<std::pair<std::string, Tensor>> out;
  std::set<const TensorImpl*> seen;  // tied parameters once, under their first name
  for (auto& [name, slot] : slots)
    if (seen.insert(slot->impl_ptr().get()).second) out.emplace_back(name, *slot);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, tensor] : named_parameters(recurse)) out.push_back(tensor);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers(bool recurse) const {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", false, true, recurse, slots, false);
  std::vector<std::pair<std::string, Tensor>> out;
  std::set<const TensorImpl*> seen;
  for (auto& [name, slot] : slots)
    if (seen.insert(slot->impl_ptr().get()).second) out.emplace_back(name, *slot);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, Module*>> out;
  std::set<const Module*> seen;
  // Depth-first, each module once (as PyTorch), with the name of its first appearance.
  auto visit = [&](auto&& self, const std::string& prefix, const Module* module) -> void {
    if (!seen.insert(module).second) return;
    out.emplace_back(prefix, const_cast<Module*>(module));
    for (const NamedModule& child : module->modules_) self(self, join(prefix, child.name), child.module);
  };
  visit(visit, "", this);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_children() const {
  std::vector<std::pair<std::string, Module*>> out;
  for (const NamedModule& child : modules_) out.emplace_back(child.name, child.module);
  return out;
}

std::vector<Module*> Module::children() const {
  std::vector<Module*> out;
  for (const NamedModule& child : modules_) out.push_back(child.module);
  return out;
}

Tensor& Module::parameter(const std::string& name) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, false, true, slots, false);
  for (auto& [slot_name, slot] : slots)
    if (slot_name == name) return *slot;
  fail("[nn.", type_name(), "] no parameter named '", name, "': see named_parameters() for the names");
}

Tensor& Module::buffer(const std::string& name) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", false, true, true, slots, false);
  for (auto& [slot_name, slot] : slots)
    if (slot_name == name) return *slot;
  fail("[nn.", type_name(), "] no buffer named '", name, "': see named_buffers() for the names");
}

Module& Module::module(const std::string& name) {
  for (auto& [module_name, module] : named_modules())
    if (module_name == name) return *module;
  fail("[nn.", type_name(), "] no submodule named '", name, "': see named_modules() for the names");
}

void Module::train(bool on) {
  for (auto& [name, module] : named_modules()) module->training_ = on;
}

void Module::convert(std::optional<Device> device, std::optional<DType> dtype) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, true, true, slots, false);
  // Convert every tensor first (a failure changes nothing), each distinct tensor once, so that
  // slots that share a tensor (tied weights) share the converted one.
  std::map<const TensorImpl*, Tensor> converted;
  {
    NoGradGuard no_grad;
    for (auto& [name, slot] : slots) {
      const Tensor& old = *slot;
      if (converted.count(old.impl_ptr().get())) continue;
      const DType target = dtype && is_floating(old.dtype()) ? *dtype : old.dtype();
      const Device target_device = device ? *device : old.device();
      Tensor fresh = old.detach().to(target_device, target);
      if (fresh.storage() == old.storage()) {  // nothing to convert: keep the tensor itself
        converted.emplace(old.impl_ptr().get(), old);
        continue;
      }
      const Tensor grad = old.grad();
      if (old.requires_grad()) fresh.requires_grad_(true);
      if (grad.defined()) fresh.set_grad(grad.to(target_device, target));
      converted.emplace(old.impl_ptr().get(), fresh);
    }
  }
  for (auto& [name, slot] : slots) {
    const auto found = converted.find(slot->impl_ptr().get());
    if (found != converted.end()) *slot = found->second;
  }
}

void Module::to(Device device) { convert(device, std::nullopt); }
void Module::to(DType dtype) {
  KEEL_CHECK(is_floating(dtype), "[nn.Module.to] dtype ", dtype_name(dtype),
             " is not floating: modules convert to floating dtypes only (f32, f64, f16, bf16)");
  convert(std::nullopt, dtype);
}
void Module::to(Device device, DType dtype) {
  KEEL_CHECK(is_floating(dtype), "[nn.Module.to] dtype ", dtype_name(dtype),
             " is not floating: modules convert to floating dtypes only (f32, f64, f16, bf16)");
  convert(device, dtype);
}

void Module::zero_grad(bool set_to_none) {
  for (Tensor& parameter : parameters()) parameter.zero_grad(set_to_none);
}

StateDict Module::state_dict() const {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, true, true, slots, true);
  StateDict out;
  for (auto& [name, slot] : slots) out.emplace_back(name, slot->detach());
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  const char* op = "[nn.Module.load_state_dict]";
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect("", true, true, true, slots, true);
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, tensor] : state) {
    KEEL_CHECK(tensor.defined(), op, " entry '", name, "' is an undefined tensor");
    KEEL_CHECK(given.emplace(name, &tensor).second, op, " name '", name, "' appears twice in the state dict");
  }
  // Check everything before writing anything.
  std::set<std::string> own;
  std::vector<std::string> missing;
  for (auto& [name, slot] : slots) {
    own.insert(name);
    const auto found = given.find(name);
    if (found == given.end()) {
      missing.push_back(name);
      continue;
    }
    KEEL_CHECK(found->second->shape() == slot->shape(), op, " size mismatch for '", name, "': the state dict has ",
               found->second->shape(), ", the module has ", slot->shape(),
               ": the checkpoint was saved from a different architecture");
  }
  if (strict) {
    std::string unexpected;
    for (const auto& [name, tensor] : state)
      if (!own.count(name)) unexpected += (unexpected.empty() ? "'" : ", '") + name + "'";
    std::string absent;
    for (const std::string& name : missing) absent += (absent.empty() ? "'" : ", '") + name + "'";
    KEEL_CHECK(unexpected.empty() && absent.empty(), op, " the names do not match the module's",
               absent.empty() ? "" : "; missing keys: ", absent, unexpected.empty() ? "" : "; unexpected keys: ",
               unexpected, " (pass strict = false to load only the names both have)");
  }
  NoGradGuard no_grad;
  for (auto& [name, slot] : slots) {
    const auto found = given.find(name);
    if (found != given.end() && !found->second->is_same(*slot)) slot->copy_(*found->second);
  }
}

Tensor Module::forward(const Tensor& input) {
  fail("[nn.", type_name(), "] has no single-input forward: override forward(const Tensor&) or call the module's own forward");
}

Tensor Module::operator()(const Tensor& input) {
  Tensor output = forward(input);
  if (g_recorded_shapes != nullptr && output.defined()) (*g_recorded_shapes)[this] = output.shape();
  return output;
}

std::string Module::type_name() const {
  const char* mangled = typeid(*this).name();
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  std::string name = status == 0 && demangled ? demangled : mangled;
  std::free(demangled);
  const size_t template_start = name.find('<');
  const size_t colon = name.rfind("::", template_start);
  return colon == std::string::npos ? name : name.substr(colon + 2);
}

std::string Module::extra_repr() const { return ""; }

void Module::print(std::ostringstream& out, int indent) const {
  const std::string extra = extra_repr();
  if (modules_.empty()) {
    out << type_name() << "(" << extra << ")";
    return;
  }
  // With children, PyTorch puts the extra representation on a line of its own.
  out << type_name() << "(\n";
  if (!extra.empty()) out << std::string(indent + 2, ' ') << extra << "\n";
  for (const NamedModule& child : modules_) {
    out << std::string(indent + 2, ' ') << "(" << child.name << "): ";
    child.module->print(out, indent + 2);
    out << "\n";
  }
  out << std::string(indent, ' ') << ")";
}

std::string Module::str() const {
  std::ostringstream out;
  print(out, 0);
  return out.str();
}

std::string Module::summary(const Shape& input_shape) const {
  const std::vector<Tensor> params = parameters();
  TensorOptions options;
  if (!params.empty()) options = params.front().options();
  return summary(zeros(input_shape, options));
}

std::string Module::summary(const Tensor& example_input) const {
  Module& self = const_cast<Module&>(*this);
  const Shape input_shape = example_input.shape();
  std::map<const Module*, Shape> shapes;
  Shape output_shape;
  {
    // Evaluation mode: a batch of zeros would make BatchNorm's batch statistics degenerate, and
    // the running statistics must not move.
    const std::vector<std::pair<std::string, Module*>> modules = named_modules();
    std::vector<bool> modes;
    for (auto& [name, module] : modules) modes.push_back(module->training_);
    self.eval();
    NoGradGuard no_grad;
    g_recorded_shapes = &shapes;
    try {
      output_shape = self(example_input).shape();
    } catch (...) {
      g_recorded_shapes = nullptr;
      for (size_t i = 0; i < modules.size(); ++i) modules[i].second->training_ = modes[i];
      throw;
    }
    g_recorded_shapes = nullptr;
    for (size_t i = 0; i < modules.size(); ++i) modules[i].second->training_ = modes[i];
  }
  auto count = [](const Module& module, bool recurse, bool trainable_only) {
    int64_t total = 0;
    for (const Tensor& p : module.parameters(recurse))
      if (!trainable_only || p.requires_grad()) total += p.numel();
    return total;
  };
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line, "%-40s %-28s %12s\n", "Layer (type)", "Output shape", "Param #");
  out << line << std::string(82, '=') << "\n";
  std::snprintf(line, sizeof line, "%-40s %-28s %12s\n", "Input", to_string(input_shape).c_str(), "");
  out << line;
  for (auto& [name, module] : named_modules()) {
    if (name.empty()) continue;
    const int depth = static_cast<int>(std::count(name.begin(), name.end(), '.'));
    const std::string label = std::string(2 * depth, ' ') + name + " (" + module->type_name() + ")";
    const auto shape = shapes.find(module);
    std::snprintf(line, sizeof line, "%-40s %-28s %12lld\n", label.c_str(),
                  shape == shapes.end() ? "-" : to_string(shape->second).c_str(),
                  static_cast<long long>(count(*module, false, false)));
    out << line;
  }
  out << std::string(82, '=') << "\n";
  out << "Output shape: " << to_string(output_shape) << "\n";
  out << "Total params: " << count(*this, true, false) << "\n";
  out << "Trainable params: " << count(*this, true, true) << "\n";
  return out.str();
}

// ---- Sequential ---------------------------------------------------------------------------------

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const std::shared_ptr<Module>& module : modules) push_back(module);
}

Tensor Sequential::forward(const Tensor& input) {
  Tensor x = input;
  for (Module* module : items_) x = (*module)(x);
  return x;
}

Module& Sequential::operator[](size_t index) const {
  KEEL_CHECK(index < items_.size(), "[nn.Sequential] index ", index, " out of range for ", items_.size(), " modules");
  return *items_[index];
}

}  // namespace keel::nn
