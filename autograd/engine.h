#pragma once
// The backward pass: a dependency-counted reverse topological walk of the tape.
//
// From the roots, the engine counts for every reachable node how many edges lead into it; a
// node runs once all of them have delivered (gradients arriving on several edges are summed),
// so each node runs exactly once. Among ready nodes the most recently recorded runs first.
#include <optional>

#include "keel/autograd/node.h"

namespace keel::autograd {

// Accumulates d(sum_i <tensors[i], grad_tensors[i]>)/d(leaf) into every leaf's grad().
// grad_tensors may be empty, or hold undefined entries, for one-element tensors (gradient 1).
// retain_graph keeps saved tensors for another backward; create_graph records the backward
// itself, so that the gradients can be differentiated again.
void backward(const TensorList& tensors, const TensorList& grad_tensors = {},
              std::optional<bool> retain_graph = std::nullopt, bool create_graph = false);

struct GradOptions {
  std::optional<bool> retain_graph;  // defaults to create_graph, as in PyTorch
  bool create_graph = false;
  bool allow_unused = false;         // an input the outputs do not depend on gets an undefined gradient
};
// The gradients of the outputs with respect to the inputs, returned instead of accumulated into
// grad() (torch.autograd.grad).
TensorList grad(const TensorList& outputs, const TensorList& inputs, const TensorList& grad_outputs = {},
                GradOptions options = {});

}  // namespace keel::autograd
