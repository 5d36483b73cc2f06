#include "keel/autograd/record.h"

#include "keel/ops/factory.h"

namespace keel::autograd {

void OpRecord::add_input(const Tensor& input) {
  edges_.push_back(requires_grad(input) ? gradient_edge(input) : Edge{});
  input_meta_.push_back(meta_of(input));
}

void OpRecord::add_input(const TensorList& inputs) {
  for (const Tensor& input : inputs) add_input(input);
}

void OpRecord::finish(const Tensor* outputs, size_t num_outputs, const Tensor* saved, size_t num_saved, VjpFn vjp) {
  KEEL_ASSERT(active_);
  std::vector<SavedTensor> saved_tensors;
  saved_tensors.reserve(num_saved);
  for (size_t s = 0; s < num_saved; ++s) {
    const Tensor& tensor = saved[s];
    uint32_t output_nr = 0;
    while (output_nr < num_outputs && !(tensor.defined() && tensor.is_same(outputs[output_nr]))) ++output_nr;
    const bool is_output = output_nr < num_outputs;
    saved_tensors.emplace_back(tensor, is_output, is_output ? output_nr : 0);
  }
  auto node = std::make_shared<FunctionNode>(name_, std::move(saved_tensors), std::move(vjp));
  node->next_edges = std::move(edges_);
  node->input_meta = std::move(input_meta_);
  node->output_meta.reserve(num_outputs);
  for (uint32_t i = 0; i < num_outputs; ++i) {
    const Tensor& output = outputs[i];
    node->output_meta.push_back(meta_of(output));
    if (!output.defined() || !is_floating(output.dtype())) continue;
    AutogradMeta& meta = autograd_meta(output);
    meta.requires_grad = true;
    meta.grad_fn = node;
    meta.output_nr = i;
  }
}

void check_in_place_allowed(const char* op, const Tensor& self) {
  const AutogradMeta* meta = autograd_meta_if(self);
  KEEL_CHECK(!(meta && meta->requires_grad && !meta->grad_fn), "[", op, "] a leaf tensor that requires grad (shape ",
             self.shape(), ") cannot be modified in place while grad mode is on: backward needs its value. "
             "Use the out-of-place op, or modify it inside a NoGradGuard (as optimizers do)");
  // A view whose base is gone (a reshape of a temporary) is a tensor like any other.
  const bool shares_storage = self.storage().use_count() > 1;
  KEEL_CHECK(!(self.impl().is_view && shares_storage), "[", op, "] in-place op on a view (shape ", self.shape(),
             ") while recording autograd is not supported: the history of the tensor it views would have to "
             "change too. Use the out-of-place op (e.g. where, cat or slice_scatter), or clone() the view first");
  const int64_t views = self.storage()->autograd_views().load(std::memory_order_relaxed) -
                        (meta && meta->counted_view_of ? 1 : 0);
  KEEL_CHECK(views <= 0, "[", op, "] cannot modify a tensor (shape ", self.shape(), ") in place while ", views,
             " view(s) of its memory with autograd history are alive (e.g. made by slice, view or transpose, or "
             "saved for backward): their gradients would be wrong. Use the out-of-place op, or drop the views first");
}

void count_autograd_view(const Tensor& view) {
  AutogradMeta& meta = autograd_meta(view);
  if (meta.counted_view_of) return;
  meta.counted_view_of = view.storage().get();
  meta.counted_view_of->autograd_views().fetch_add(1, std::memory_order_relaxed);
}

Tensor& in_place_with_history(const char* op, Tensor& self, const std::function<Tensor(const Tensor&)>& compute) {
  const Tensor old = self.clone();
  Tensor result = compute(old);
  // A leaf (e.g. copy_ from a parameter) has no node to hand over: give it one.
  if (result.requires_grad() && !result.grad_fn()) result = result.alias();
  // A constant written over a tensor that requires grad (fill_, copy_ of a constant, eq_): self
  // keeps requiring grad, with a zero gradient for its old value (as PyTorch).
  if (!result.requires_grad() && old.requires_grad()) {
    OpRecord record(op, old);
    Tensor constant = result.alias();
    record.finish({constant}, {}, [](const VjpArgs& a) { return TensorList{zeros_like(a.grad())}; });
    result = constant;
  }
  KEEL_CHECK(result.shape() == self.shape(), "[", op, "] in-place output of shape ", self.shape(),
             " does not match the broadcast shape ", result.shape());
  KEEL_CHECK(is_floating(self.dtype()) || !is_floating(result.dtype()), "[", op, "] result type ",
             dtype_name(result.dtype()), " can't be cast to the in-place output type ", dtype_name(self.dtype()));
  if (result.dtype() != self.dtype()) result = result.to(self.dtype());
  {
    NoGradGuard no_grad;
    self.copy_(result);
  }
  AutogradMeta& meta = autograd_meta(self);
  const AutogradMeta* result_meta = autograd_meta_if(result);
  meta.requires_grad = result_meta && result_meta->requires_grad;
  meta.grad_fn = result_meta ? result_meta->grad_fn : nullptr;
  meta.output_nr = result_meta ? result_meta->output_nr : 0;
  if (meta.retains_grad) {  // the retained gradient now comes from the new node
    meta.retains_grad = false;
    if (meta.grad_fn) self.retain_grad();
  }
  return self;
}

}  // namespace keel::autograd
