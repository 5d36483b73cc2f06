#pragma once
// The tape: nodes, edges, saved tensors and the per-tensor autograd metadata.
//
// An op whose inputs require grad records a Node. The node holds its vjp (vector-Jacobian
// product), the tensors the vjp needs (saved, with their version), and one Edge per input: the
// node that made that input, or the grad accumulator of a leaf. The graph points from outputs
// to inputs only, so dropping the outputs frees it.
//
//   y = f(x1, x2)        node(f).next_edges = {edge(x1), edge(x2)}
//   backward:            [dx1, dx2] = node(f).apply([dy])
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "keel/core/tensor.h"

namespace keel::autograd {

using TensorList = std::vector<Tensor>;
using GradHook = std::function<Tensor(const Tensor&)>;
using PostAccumulateHook = std::function<void(const Tensor&)>;

class Node;

// Where a gradient goes: gradient slot `input_nr` of `node` (that is, the node's forward output
// number input_nr). A null node means the input takes no gradient.
struct Edge {
  std::shared_ptr<Node> node;
  uint32_t input_nr = 0;
  bool valid() const { return node != nullptr; }
};

// What backward needs to know about a forward input or output without keeping it alive.
struct TensorMeta {
  Shape shape;
  DType dtype = DType::f32;
  Device device = Device::cpu();
  bool defined = false;
};
TensorMeta meta_of(const Tensor& t);

class Node : public std::enable_shared_from_this<Node> {
 public:
  explicit Node(std::string name);
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // The forward op that recorded this node ("mul", "softmax", ...).
  const std::string& name() const { return name_; }
  // grads: one per forward output (the engine passes zeros for an output that got none).
  // Returns one gradient per next edge; an undefined tensor means "no gradient".
  virtual TensorList apply(TensorList&& grads) = 0;
  // Frees what the vjp saved; called after a backward without retain_graph.
  virtual void release() {}

  std::vector<Edge> next_edges;           // one per forward input
  std::vector<TensorMeta> input_meta;     // the forward inputs: gradients are checked against them
  std::vector<TensorMeta> output_meta;    // the forward outputs: zeros are made from them
  // Hooks of the tensors this node made, by output number (empty until a hook is registered).
  std::vector<std::vector<GradHook>> output_hooks;
  void add_output_hook(uint32_t output_nr, GradHook hook);
  uint64_t sequence_nr;                   // creation order: backward runs later nodes first

 private:
  std::string name_;
};

// A saved tensor remembers its version: if the tensor is modified in place before backward
// uses it, unpacking throws (the gradient would silently be wrong). A saved output is kept
// without its autograd metadata, so that the node does not keep itself alive through it.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& tensor, bool is_output, uint32_t output_nr = 0);
  // The tensor again; a saved output gets `owner` back as its grad_fn (for double backward).
  Tensor unpack(const std::shared_ptr<Node>& owner, const std::string& op) const;
  bool defined() const { return data_.defined(); }

 private:
  Tensor data_;
  uint64_t version_ = 0;
  bool is_output_ = false;
  uint32_t output_nr_ = 0;
};

// What a vjp receives.
struct VjpArgs {
  const TensorList& grads;               // one per forward output
  const TensorList& saved;               // as passed to OpRecord::finish, unpacked
  const std::vector<Edge>& edges;        // per forward input
  const std::vector<TensorMeta>& inputs; // per forward input: shape, dtype, device
  const Tensor& grad() const { return grads[0]; }
  // Whether forward input i takes a gradient: false lets the vjp skip work.
  bool needs(size_t input) const { return edges[input].valid(); }
  const Shape& input_shape(size_t input) const { return inputs[input].shape; }
};
using VjpFn = std::function<TensorList(const VjpArgs&)>;

// The node every op records: a vjp written with public ops (so it is differentiable itself).
class FunctionNode : public Node {
 public:
  FunctionNode(std::string name, std::vector<SavedTensor> saved, VjpFn vjp);
  TensorList apply(TensorList&& grads) override;
  void release() override;

 private:
  std::vector<SavedTensor> saved_;
  VjpFn vjp_;
  bool released_ = false;
};

// The sink of a leaf: adds incoming gradients into the leaf's grad(). Owned by the leaf's
// metadata (it also holds the leaf's hooks); it points back weakly, so a leaf that is gone just
// drops its gradient.
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf);
  TensorList apply(TensorList&& grads) override;

 private:
  std::weak_ptr<TensorImpl> leaf_;
  std::mutex mutex_;  // backward passes on several threads may share a leaf (a parameter)
};

struct AutogradMeta {
  bool requires_grad = false;
  Tensor grad;
  std::shared_ptr<Node> grad_fn;      // null for leaves
  uint32_t output_nr = 0;             // which output of grad_fn this tensor is
  std::shared_ptr<AccumulateGrad> grad_accumulator;  // leaves that require grad, made on demand
  bool retains_grad = false;
  std::vector<PostAccumulateHook> post_accumulate_hooks;
  // Views: the storage version at which grad_fn was last derived from the base. A later
  // in-place write (through the base or another view) makes it stale: see refresh_view.
  uint64_t view_version = 0;
};

// The metadata of t, created if absent.
AutogradMeta& autograd_meta(const Tensor& t);
// Null when t has none.
inline AutogradMeta* autograd_meta_if(const Tensor& t) { return t.defined() ? t.impl().autograd.get() : nullptr; }
// A view whose base was written in place since its history was recorded (or whose base has
// started to require grad since) takes its history from the base again, as
// as_strided(base, the view's geometry), as PyTorch does. Defined in record.cpp.
void refresh_view(const Tensor& view);
// Where t's gradient must go: its grad_fn, or its grad accumulator (leaves that require grad).
Edge gradient_edge(const Tensor& t);

}  // namespace keel::autograd
