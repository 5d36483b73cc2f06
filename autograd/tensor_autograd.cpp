// The autograd methods of Tensor (declared in core/tensor.h).
#include "keel/autograd/engine.h"
#include "keel/autograd/grad_mode.h"
#include "keel/autograd/node.h"
#include "keel/autograd/record.h"
#include "keel/ops/elementwise.h"

namespace keel {

using autograd::autograd_meta;
using autograd::autograd_meta_if;

bool Tensor::requires_grad() const { return autograd::requires_grad(*this); }

Tensor& Tensor::requires_grad_(bool requires_grad) {
  autograd::AutogradMeta* meta = autograd_meta_if(*this);
  if (!requires_grad && !meta) return *this;
  KEEL_CHECK(!(meta && meta->grad_fn), "[requires_grad_] can only change requires_grad of a leaf tensor; this "
             "tensor (shape ", shape(), ") was computed by '", meta->grad_fn->name(), "'. Use detach() for a new leaf");
  KEEL_CHECK(!requires_grad || is_floating(dtype()), "[requires_grad_] only floating-point tensors can require "
             "gradients, got dtype ", dtype_name(dtype()));
  autograd_meta(*this).requires_grad = requires_grad;
  return *this;
}

bool Tensor::is_leaf() const {
  if (defined() && impl().view_base) autograd::refresh_view(*this);
  const autograd::AutogradMeta* meta = autograd_meta_if(*this);
  return !meta || !meta->grad_fn;
}

Tensor Tensor::grad() const {
  const autograd::AutogradMeta* meta = autograd_meta_if(*this);
  return meta ? meta->grad : Tensor();
}

void Tensor::set_grad(const Tensor& grad) const {
  if (grad.defined()) {
    KEEL_CHECK(grad.shape() == shape(), "[set_grad] gradient of shape ", grad.shape(), " for a tensor of shape ", shape());
    KEEL_CHECK(grad.dtype() == dtype() && grad.device() == device(), "[set_grad] gradient of dtype ",
               dtype_name(grad.dtype()), " on ", grad.device().str(), " for a tensor of dtype ", dtype_name(dtype()),
               " on ", device().str());
  }
  autograd_meta(*this).grad = grad;
}

void Tensor::zero_grad(bool set_to_none) const {
  autograd::AutogradMeta* meta = autograd_meta_if(*this);
  if (!meta || !meta->grad.defined()) return;
  if (set_to_none) {
    meta->grad = Tensor();
    return;
  }
  autograd::NoGradGuard no_grad;
  meta->grad = meta->grad.detach();  // a gradient made with create_graph drops its history
  meta->grad.zero_();
}

const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<autograd::Node> none;
  if (defined() && impl().view_base) autograd::refresh_view(*this);
  const autograd::AutogradMeta* meta = autograd_meta_if(*this);
  return meta ? meta->grad_fn : none;
}

uint32_t Tensor::output_nr() const {
  const autograd::AutogradMeta* meta = autograd_meta_if(*this);
  return meta ? meta->output_nr : 0;
}

Tensor Tensor::detach() const {
  auto detached = std::make_shared<TensorImpl>();
  detached->storage = impl().storage;
  detached->shape = shape();
  detached->strides = strides();
  detached->offset = offset();
  detached->dtype = dtype();
  return Tensor(std::move(detached));
}

Tensor& Tensor::detach_() {
  autograd::AutogradMeta* meta = autograd_meta_if(*this);
  if (meta) {
    meta->grad_fn = nullptr;
    meta->output_nr = 0;
    meta->requires_grad = false;
  }
  return *this;
}

void Tensor::retain_grad() const {
  KEEL_CHECK(requires_grad(), "[retain_grad] the tensor (shape ", shape(), ") does not require grad");
  autograd::AutogradMeta& meta = autograd_meta(*this);
  if (!meta.grad_fn || meta.retains_grad) return;  // leaves keep their gradient anyway
  meta.retains_grad = true;
  // The hook lives on grad_fn, which must not own this tensor: it holds it weakly. It stores only
  // while the tensor still comes from that node (an in-place op moves it to a new one).
  std::weak_ptr<TensorImpl> weak = impl_ptr();
  const autograd::Node* node = meta.grad_fn.get();
  meta.grad_fn->add_output_hook(meta.output_nr, [weak, node](const Tensor& grad) {
    std::shared_ptr<TensorImpl> impl = weak.lock();
    if (!impl || !impl->autograd || impl->autograd->grad_fn.get() != node) return Tensor();
    autograd::AutogradMeta& owner = *impl->autograd;
    // Under create_graph the retained gradient keeps its history, as PyTorch.
    const Tensor value = autograd::GradMode::is_enabled() ? grad : grad.detach();
    if (owner.grad.defined()) owner.grad = owner.grad + value;
    else owner.grad = value.clone();
    return Tensor();
  });
}

bool Tensor::retains_grad() const {
  const autograd::AutogradMeta* meta = autograd_meta_if(*this);
  return meta && meta->retains_grad;
}

void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  autograd::backward({*this}, {gradient}, retain_graph || create_graph, create_graph);
}

void Tensor::register_hook(std::function<Tensor(const Tensor&)> hook) const {
  KEEL_CHECK(requires_grad(), "[register_hook] cannot register a hook on a tensor (shape ", shape(),
             ") that does not require grad");
  autograd::Edge edge = autograd::gradient_edge(*this);
  edge.node->add_output_hook(edge.input_nr, std::move(hook));
}

void Tensor::register_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const {
  KEEL_CHECK(requires_grad() && is_leaf(), "[register_post_accumulate_grad_hook] only leaf tensors that require grad "
             "accumulate gradients; this one (shape ", shape(), ") ", requires_grad() ? "is not a leaf" : "does not require grad");
  autograd_meta(*this).post_accumulate_hooks.push_back(std::move(hook));
}

}  // namespace keel
