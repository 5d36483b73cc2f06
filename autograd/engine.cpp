#include "keel/autograd/engine.h"

#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "keel/autograd/grad_mode.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
#include "keel/ops/reduce.h"

namespace keel::autograd {

namespace {

struct NodeState {
  TensorList grads;         // gradients arrived so far, one slot per forward output
  int dependencies = 0;     // edges from running nodes not yet delivered
  bool needed = true;       // lies on a path to something the caller asked for
  bool runs = true;         // apply() is called (grad(): not for nodes only captured)
};

struct ReadyOrder {  // the most recently recorded node first, as PyTorch
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr < b->sequence_nr; }
};

void accumulate(TensorList& slots, uint32_t slot, Tensor grad) {
  if (slots.size() <= slot) slots.resize(slot + 1);
  slots[slot] = slots[slot].defined() ? slots[slot] + grad : std::move(grad);
}

// A vjp's gradient for input `index` of `node`, checked against that input and converted to its
// dtype and device (an f16 input of an f32 op gets an f16 gradient, as in PyTorch).
Tensor check_input_grad(const Node& node, size_t index, Tensor grad) {
  const TensorMeta& meta = node.input_meta[index];
  KEEL_CHECK(grad.shape() == meta.shape, "[backward] the vjp of '", node.name(), "' returned a gradient of shape ",
             grad.shape(), " for its input ", index, " of shape ", meta.shape);
  if (grad.dtype() != meta.dtype || grad.device() != meta.device) grad = grad.to(meta.device, meta.dtype);
  if (AnomalyMode::is_enabled() && is_floating(grad.dtype())) {
    const bool finite = !any(logical_or(isnan(grad), isinf(grad))).item<bool>();
    KEEL_CHECK(finite, "[backward] anomaly: the gradient that '", node.name(), "' computed for its input ", index,
               " (shape ", grad.shape(), ") contains NaN or Inf; the forward op '", node.name(),
               "' made the value this gradient flows back through");
  }
  return grad;
}

struct Capture {  // grad(): slot `input_nr` of a node is the gradient of inputs[index]
  uint32_t input_nr;
  size_t index;
};

TensorList run_backward(const TensorList& roots, const TensorList& root_grads, bool keep_graph, bool create_graph,
                        const TensorList* inputs, bool allow_unused, const char* api) {
  // ---- roots and their gradients
  KEEL_CHECK(root_grads.empty() || root_grads.size() == roots.size(), "[", api, "] got ", roots.size(),
             " tensors but ", root_grads.size(), " gradients");
  std::vector<Edge> root_edges;
  TensorList seeds;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& root = roots[i];
    KEEL_CHECK(root.defined(), "[", api, "] tensor ", i, " is undefined");
    KEEL_CHECK(root.requires_grad(), "[", api, "] tensor ", i, " (shape ", root.shape(),
               ") does not require grad and has no grad_fn: nothing recorded how it was computed. Call "
               "requires_grad_() on the leaves before the forward, and make sure it does not run under a NoGradGuard");
    Tensor seed = root_grads.empty() ? Tensor() : root_grads[i];
    if (!seed.defined()) {
      KEEL_CHECK(root.numel() == 1, "[", api, "] a gradient can be implied only for a one-element tensor, got shape ",
                 root.shape(), ". Pass a gradient of that shape (e.g. ones_like(y)), or reduce to a scalar first (y.sum())");
      seed = ones_like(root);
    } else {
      KEEL_CHECK(seed.shape() == root.shape(), "[", api, "] gradient of shape ", seed.shape(),
                 " does not match tensor ", i, " of shape ", root.shape());
      if (seed.dtype() != root.dtype() || seed.device() != root.device()) seed = seed.to(root.device(), root.dtype());
    }
    root_edges.push_back(gradient_edge(root));
    seeds.push_back(std::move(seed));
  }

  // ---- what grad() captures
  std::unordered_map<const Node*, std::vector<Capture>> captures;
  if (inputs) {
    for (size_t i = 0; i < inputs->size(); ++i) {
      const Tensor& input = (*inputs)[i];
      KEEL_CHECK(input.defined() && input.requires_grad(), "[", api, "] input ", i,
                 " does not require grad: call requires_grad_() on it before the forward");
      Edge edge = gradient_edge(input);
      captures[edge.node.get()].push_back({edge.input_nr, i});
    }
  }

  // ---- discovery: depth-first from the roots, children finish before parents
  std::unordered_map<const Node*, NodeState> state;
  state.reserve(256);
  std::vector<std::pair<Node*, size_t>> stack;
  for (const Edge& edge : root_edges) {
    if (state.emplace(edge.node.get(), NodeState{}).second) stack.push_back({edge.node.get(), 0});
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < node->next_edges.size()) {
        Node* child = node->next_edges[next++].node.get();
        if (child && state.emplace(child, NodeState{}).second) stack.push_back({child, 0});
        continue;
      }
      if (inputs) {  // grad(): needed if captured or above something needed; runs if above something needed
        NodeState& own = state[node];
        own.runs = false;
        for (const Edge& child : node->next_edges) own.runs = own.runs || (child.valid() && state[child.node.get()].needed);
        own.needed = own.runs || captures.count(node);
      }
      stack.pop_back();
    }
  }
  for (auto& [node, own] : state) {
    if (!own.runs) continue;
    for (const Edge& child : node->next_edges)
      if (child.valid() && state[child.node.get()].needed) ++state[child.node.get()].dependencies;
  }

  // ---- execution
  GradMode::set_enabled(create_graph);
  std::priority_queue<Node*, std::vector<Node*>, ReadyOrder> ready;
  for (size_t i = 0; i < root_edges.size(); ++i) {
    NodeState& own = state[root_edges[i].node.get()];
    if (!own.needed) continue;
    accumulate(own.grads, root_edges[i].input_nr, seeds[i]);
  }
  std::unordered_set<const Node*> queued;
  for (const Edge& edge : root_edges) {
    NodeState& own = state[edge.node.get()];
    if (own.needed && own.dependencies == 0 && queued.insert(edge.node.get()).second) ready.push(edge.node.get());
  }

  TensorList results(inputs ? inputs->size() : 0);
  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    NodeState& own = state[node];
    TensorList grads = std::move(own.grads);
    grads.resize(node->output_meta.size());
    for (size_t k = 0; k < grads.size(); ++k) {
      const TensorMeta& meta = node->output_meta[k];
      if (!grads[k].defined() && meta.defined && is_floating(meta.dtype)) grads[k] = zeros(meta.shape, {meta.dtype, meta.device});
      if (k >= node->output_hooks.size()) continue;
      for (const GradHook& hook : node->output_hooks[k]) {
        Tensor replaced = hook(grads[k]);
        if (!replaced.defined()) continue;
        KEEL_CHECK(replaced.shape() == grads[k].shape(), "[backward] a hook on a tensor made by '", node->name(),
                   "' returned a gradient of shape ", replaced.shape(), " for a gradient of shape ", grads[k].shape(),
                   ": hooks may change the values of a gradient, not its shape");
        if (replaced.dtype() != grads[k].dtype() || replaced.device() != grads[k].device())
          replaced = replaced.to(grads[k].device(), grads[k].dtype());
        grads[k] = std::move(replaced);
      }
    }
    if (auto found = captures.find(node); found != captures.end())
      for (const Capture& capture : found->second) results[capture.index] = grads[capture.input_nr];
    if (!own.runs) continue;

    TensorList input_grads = node->apply(std::move(grads));
    if (!keep_graph) node->release();
    KEEL_CHECK(input_grads.empty() || input_grads.size() == node->next_edges.size(), "[backward] the vjp of '",
               node->name(), "' returned ", input_grads.size(), " gradients for ", node->next_edges.size(), " inputs");
    for (size_t i = 0; i < node->next_edges.size(); ++i) {
      const Edge& edge = node->next_edges[i];
      if (!edge.valid()) continue;
      NodeState& child = state[edge.node.get()];
      if (!child.needed) continue;
      if (i < input_grads.size() && input_grads[i].defined())
        accumulate(child.grads, edge.input_nr, check_input_grad(*node, i, std::move(input_grads[i])));
      if (--child.dependencies == 0) ready.push(edge.node.get());
    }
  }

  if (inputs && !allow_unused) {
    for (size_t i = 0; i < results.size(); ++i)
      KEEL_CHECK(results[i].defined(), "[", api, "] input ", i, " (shape ", (*inputs)[i].shape(),
                 ") was not used to compute the outputs; pass allow_unused=true if that is expected");
  }
  return results;
}

// Restores grad mode however run_backward leaves.
struct GradModeRestore {
  bool previous = GradMode::is_enabled();
  ~GradModeRestore() { GradMode::set_enabled(previous); }
};

}  // namespace

void backward(const TensorList& tensors, const TensorList& grad_tensors, std::optional<bool> retain_graph,
              bool create_graph) {
  GradModeRestore restore;
  run_backward(tensors, grad_tensors, retain_graph.value_or(create_graph), create_graph, nullptr, false, "backward");
}

TensorList grad(const TensorList& outputs, const TensorList& inputs, const TensorList& grad_outputs,
                GradOptions options) {
  GradModeRestore restore;
  return run_backward(outputs, grad_outputs, options.retain_graph.value_or(options.create_graph),
                      options.create_graph, &inputs, options.allow_unused, "grad");
}

}  // namespace keel::autograd
