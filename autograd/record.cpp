#include "keel/autograd/record.h"

#include "keel/ops/elementwise.h"
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
  if (trace_) [[unlikely]] detail::trace_finish(name_, *trace_, outputs, num_outputs);
  if (!active_) return;  // traced only
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
  const std::shared_ptr<TensorImpl>& base = self.impl().view_base;
  if (!base) return;
  const AutogradMeta* base_meta = base->autograd.get();
  KEEL_CHECK(!(base_meta && base_meta->requires_grad && !base_meta->grad_fn), "[", op, "] a view (shape ",
             self.shape(), ") of a leaf tensor that requires grad (shape ", base->shape,
             ") cannot be modified in place while grad mode is on. Use the out-of-place op, or modify it inside a "
             "NoGradGuard");
  KEEL_CHECK(Tensor(base).is_contiguous(), "[", op, "] in-place op on a view (shape ", self.shape(),
             ") of a non-contiguous tensor (shape ", base->shape, ", strides ", base->strides,
             ") while recording autograd is not supported. Use the out-of-place op, or clone() first");
}

void mark_view_recorded(const Tensor& view) { autograd_meta(view).view_version = view.version(); }

void refresh_view(const Tensor& view) {
  TensorImpl& impl = view.impl();
  const AutogradMeta* base_meta = impl.view_base->autograd.get();
  if (!base_meta || !base_meta->requires_grad) return;
  const AutogradMeta* meta = impl.autograd.get();
  const uint64_t version = view.version();
  if (meta && meta->requires_grad && (!meta->grad_fn || meta->view_version == version)) return;  // a leaf, or current
  EnableGradGuard enable;
  const Tensor fresh = Tensor(impl.view_base).as_strided(view.shape(), view.strides(), view.offset());
  const AutogradMeta& fresh_meta = *fresh.impl().autograd;
  AutogradMeta& own = autograd_meta(view);
  own.requires_grad = true;
  own.grad_fn = fresh_meta.grad_fn;
  own.output_nr = fresh_meta.output_nr;
  own.view_version = version;
}

namespace {
// After an in-place op wrote `result` through `view`: the view's base takes a new node (PyTorch's
// CopySlices). Its vjp sends the base's gradient inside the view's region to `result`, and the
// rest to the base's previous history; the view then takes its history from the base again.
void rewrite_base_history(const char* op, const Tensor& view, const Tensor& result) {
  const Tensor base(view.impl().view_base);
  const Shape shape = view.shape(), strides = view.strides();
  const int64_t relative_offset = view.offset() - base.offset();  // the base is contiguous
  Tensor covered;
  {
    NoGradGuard no_grad;
    covered = zeros(base.shape(), {DType::bool_, base.device()});
    covered.as_strided(shape, strides, covered.offset() + relative_offset).fill_(true);
  }
  OpRecord record(op, base, result);
  if (!record) return;
  record.finish({base}, {covered}, [shape, strides, relative_offset](const VjpArgs& a) {
    const Tensor& g = a.grad();
    const Tensor dense = g.contiguous();
    return TensorList{a.needs(0) ? where(a.saved[0], 0, g) : Tensor(),
                      a.needs(1) ? dense.as_strided(shape, strides, dense.offset() + relative_offset) : Tensor()};
  });
  refresh_view(view);
}
}  // namespace

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
  if (self.impl().view_base) {
    rewrite_base_history(op, self, result);
    return self;
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
