#pragma once
// How an op records itself on the tape (DESIGN.md §2: the vjp lives next to the forward).
//
//   Tensor exp(const Tensor& x) {
//     autograd::OpRecord record("exp", x);      // records only if grad mode is on and x requires grad
//     Tensor out = ...forward...;               // runs with grad mode off: no nested recording
//     if (record) record.finish({out}, /*saved=*/{out}, [](const autograd::VjpArgs& a) {
//       return autograd::TensorList{a.grad() * a.saved[0]};   // public ops: differentiable again
//     });
//     return out;
//   }
//
// In-place ops that must record (in_place_records) are computed out of place on a copy of self,
// and self then takes over the result's data and history (in_place_with_history).
#include <initializer_list>
#include <type_traits>

#include "keel/autograd/grad_mode.h"
#include "keel/autograd/node.h"
#include "keel/autograd/trace.h"

namespace keel::autograd {

inline bool requires_grad(const Tensor& t) {
  if (t.defined() && t.impl().view_base) [[unlikely]] refresh_view(t);
  const AutogradMeta* meta = autograd_meta_if(t);
  return meta && meta->requires_grad;
}
inline bool requires_grad(const TensorList& tensors) {
  for (const Tensor& t : tensors)
    if (requires_grad(t)) return true;
  return false;
}

class OpRecord {
 public:
  // inputs: Tensors (undefined ones allowed, e.g. an absent bias) or TensorLists (cat, stack),
  // in the order the vjp returns their gradients.
  template <class... Inputs>
  explicit OpRecord(const char* name, const Inputs&... inputs) : name_(name) {
    if (detail::TraceRecord* trace = detail::trace_begin()) [[unlikely]] {
      trace_ = trace;
      (trace_input(inputs), ...);
    }
    if (!GradMode::is_enabled() || !(requires_grad(inputs) || ...)) return;
    active_ = true;
    GradMode::set_enabled(false);
    edges_.reserve(sizeof...(inputs));
    input_meta_.reserve(sizeof...(inputs));
    (add_input(inputs), ...);
  }
  ~OpRecord() {
    if (active_) GradMode::set_enabled(true);
    if (trace_) [[unlikely]] detail::trace_end(trace_);
  }
  OpRecord(const OpRecord&) = delete;
  OpRecord& operator=(const OpRecord&) = delete;

  // True when the op must call finish(): it records for autograd, or it is being traced.
  explicit operator bool() const { return active_ || trace_; }
  // True only when it records for autograd (what view bookkeeping such as mark_view_recorded needs).
  bool records_grad() const { return active_; }
  // True when a tracer sees this op (for attributes that cost something to compute).
  bool traced() const { return trace_ != nullptr; }

  // An argument a tracer needs to rebuild the op (a dim, eps, stride, a non-differentiable tensor
  // such as indices). Does nothing unless the op is traced (autograd/trace.h).
  template <class T>
  void trace_attr(const char* name, const T& value) {
    if (trace_) [[unlikely]] trace_->attrs.set(name, value);
  }

  // Makes the floating tensors among `outputs` (fresh tensors the op returns) outputs of a new
  // node. `saved` reach the vjp as args.saved, version-checked; outputs may be among them.
  void finish(std::initializer_list<Tensor> outputs, std::initializer_list<Tensor> saved, VjpFn vjp) {
    finish(outputs.begin(), outputs.size(), saved.begin(), saved.size(), std::move(vjp));
  }
  void finish(const TensorList& outputs, const TensorList& saved, VjpFn vjp) {
    finish(outputs.data(), outputs.size(), saved.data(), saved.size(), std::move(vjp));
  }

 private:
  void add_input(const Tensor& input);
  void add_input(const TensorList& inputs);
  void trace_input(const Tensor& input) { detail::trace_add_input(*trace_, input); }
  void trace_input(const TensorList& inputs) {
    for (const Tensor& input : inputs) detail::trace_add_input(*trace_, input);
  }
  void finish(const Tensor* outputs, size_t num_outputs, const Tensor* saved, size_t num_saved, VjpFn vjp);

  const char* name_;
  bool active_ = false;
  detail::TraceRecord* trace_ = nullptr;  // only while traced
  std::vector<Edge> edges_;
  std::vector<TensorMeta> input_meta_;
};

// For an in-place op on self with the other operands: true when it must record (grad mode on
// and self or another operand requires grad). Throws for what autograd cannot do in place: a
// leaf that requires grad, or a view of one.
void check_in_place_allowed(const char* op, const Tensor& self);
// View ops call this on a view they recorded: its history is current at this version.
void mark_view_recorded(const Tensor& view);
template <class... Others>
bool in_place_records(const char* op, const Tensor& self, const Others&... others) {
  if (!GradMode::is_enabled() || !(requires_grad(self) || ... || requires_grad(others))) return false;
  check_in_place_allowed(op, self);
  return true;
}

// self = compute(copy of self), recorded: writes the result into self's memory and gives self the
// result's history. The copy keeps the old value safe for vjps that saved it. When self is a
// view, its base's history is rewritten too (PyTorch's CopySlices): the base's gradient flows to
// the result inside the view's region and to the base's old history outside it.
Tensor& in_place_with_history(const char* op, Tensor& self, const std::function<Tensor(const Tensor&)>& compute);
// Inside `compute`: another operand of the in-place op, safe to save although self's memory is
// about to be overwritten (self itself -> the copy `old`; another view of self's storage -> a copy).
inline Tensor operand_before_write(const Tensor& operand, const Tensor& self, const Tensor& old) {
  if (!operand.defined() || operand.storage() != self.storage()) return operand;
  return operand.is_same(self) ? old : operand.clone();
}

}  // namespace keel::autograd
