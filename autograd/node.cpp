#include "keel/autograd/node.h"

#include <algorithm>
#include <atomic>

#include "keel/autograd/grad_mode.h"
#include "keel/ops/elementwise.h"

namespace keel::autograd {

namespace {
std::atomic<uint64_t> next_sequence_nr{0};
}

TensorMeta meta_of(const Tensor& t) {
  if (!t.defined()) return {};
  return {t.shape(), t.dtype(), t.device(), true};
}

Node::Node(std::string name)
    : sequence_nr(next_sequence_nr.fetch_add(1, std::memory_order_relaxed)), name_(std::move(name)) {}

void Node::add_output_hook(uint32_t output_nr, GradHook hook) {
  if (output_hooks.size() <= output_nr) output_hooks.resize(std::max<size_t>(output_nr + 1, output_meta.size()));
  output_hooks[output_nr].push_back(std::move(hook));
}

// ---- saved tensors ------------------------------------------------------------------------------
SavedTensor::SavedTensor(const Tensor& tensor, bool is_output, uint32_t output_nr)
    : is_output_(is_output), output_nr_(output_nr) {
  if (!tensor.defined()) return;
  version_ = tensor.version();
  data_ = is_output ? tensor.detach() : tensor;
}

Tensor SavedTensor::unpack(const std::shared_ptr<Node>& owner, const std::string& op) const {
  if (!data_.defined()) return data_;
  KEEL_CHECK(data_.version() == version_, "[backward] a tensor that '", op, "' saved for its gradient (shape ",
             data_.shape(), ") was modified by an in-place op after it was saved (version ", version_, " -> ",
             data_.version(), "): its gradient would be wrong. Use the out-of-place op, or clone() the tensor "
             "before modifying it");
  if (!is_output_ || !is_floating(data_.dtype())) return data_;
  // A saved output comes back with this node as its history, so that a vjp using it is
  // differentiable again (create_graph).
  Tensor output = data_.detach();
  AutogradMeta& meta = autograd_meta(output);
  meta.requires_grad = true;
  meta.grad_fn = owner;
  meta.output_nr = output_nr_;
  return output;
}

// ---- function nodes -----------------------------------------------------------------------------
FunctionNode::FunctionNode(std::string name, std::vector<SavedTensor> saved, VjpFn vjp)
    : Node(std::move(name)), saved_(std::move(saved)), vjp_(std::move(vjp)) {}

TensorList FunctionNode::apply(TensorList&& grads) {
  // As PyTorch: only a node whose saved tensors were freed cannot run again.
  KEEL_CHECK(!released_, "[backward] trying to backward through the graph a second time (through '", name(),
             "'): the first backward freed its saved tensors. Pass retain_graph=true to the first backward "
             "if you need to call backward twice, or recompute the forward");
  TensorList saved;
  saved.reserve(saved_.size());
  const std::shared_ptr<Node> self = shared_from_this();
  for (const SavedTensor& tensor : saved_) saved.push_back(tensor.unpack(self, name()));
  return vjp_(VjpArgs{grads, saved, next_edges, input_meta});
}

void FunctionNode::release() {
  bool holds_tensors = false;
  for (const SavedTensor& tensor : saved_) holds_tensors = holds_tensors || tensor.defined();
  if (!holds_tensors) return;
  released_ = true;
  saved_.clear();
}

// ---- leaves -------------------------------------------------------------------------------------
AccumulateGrad::AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf) : Node("AccumulateGrad"), leaf_(leaf) {
  output_meta.push_back(meta_of(Tensor(leaf)));
}

TensorList AccumulateGrad::apply(TensorList&& grads) {
  std::shared_ptr<TensorImpl> impl = leaf_.lock();
  if (!impl || !grads[0].defined()) return {};
  std::lock_guard<std::mutex> lock(mutex_);
  Tensor leaf(impl);
  AutogradMeta& meta = *impl->autograd;
  Tensor incoming = std::move(grads[0]);
  if (!meta.grad.defined()) {
    if (GradMode::is_enabled()) {
      // create_graph: the gradient keeps its history, in a buffer of its own (the incoming one
      // may be an expanded view, or shared with another leaf or with the caller).
      meta.grad = incoming.clone();
    } else {
      // Take the buffer when nobody else can see it; otherwise copy, so that a later in-place
      // accumulation cannot write into another tensor (add's vjp hands one tensor to both inputs).
      const bool owned = incoming.impl_ptr().use_count() == 1 && incoming.storage().use_count() == 1;
      meta.grad = owned && incoming.is_contiguous() ? incoming.detach() : incoming.clone().detach();
    }
  } else if (GradMode::is_enabled()) {
    meta.grad = meta.grad + incoming;
  } else {
    meta.grad += incoming;
  }
  for (const PostAccumulateHook& hook : meta.post_accumulate_hooks) hook(leaf);
  return {};
}

// ---- metadata -----------------------------------------------------------------------------------
AutogradMeta& autograd_meta(const Tensor& t) {
  TensorImpl& impl = t.impl();
  if (!impl.autograd) impl.autograd = std::make_shared<AutogradMeta>();
  return *impl.autograd;
}

Edge gradient_edge(const Tensor& t) {
  if (t.defined() && t.impl().view_base) refresh_view(t);
  AutogradMeta* meta = autograd_meta_if(t);
  if (!meta) return {};
  if (meta->grad_fn) return {meta->grad_fn, meta->output_nr};
  if (!meta->requires_grad) return {};
  // Threads recording on one leaf (a shared parameter) must agree on a single accumulator.
  static std::mutex accumulator_mutex;
  std::lock_guard<std::mutex> lock(accumulator_mutex);
  if (!meta->grad_accumulator) meta->grad_accumulator = std::make_shared<AccumulateGrad>(t.impl_ptr());
  return {meta->grad_accumulator, 0};
}

}  // namespace keel::autograd
