#pragma once
// gradcheck: compares every vjp with central differences, in float64.
//
//   J_num[m, j] = (f(x + eps e_j)[m] - f(x - eps e_j)[m]) / (2 eps)
//   J_ana[m, :] = vjp(e_m)         (one backward pass per output element)
//   pass when |J_ana - J_num| <= atol + rtol |J_num| everywhere
//
// gradgradcheck does the same for the function (x, v) -> vjp(v) built with create_graph, so that
// the vjps themselves are checked as differentiable functions (second order).
#include <functional>

#include "keel/autograd/node.h"

namespace keel::autograd {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  uint64_t seed = 0;  // gradgradcheck's random output gradients
};

using MultiOutputFn = std::function<TensorList(const TensorList&)>;
using SingleOutputFn = std::function<Tensor(const TensorList&)>;

// Inputs that require grad must be float64 CPU tensors without overlapping elements; the others
// (indices, masks, ...) are passed through unchanged. Returns true, or throws keel::Error naming the
// output, the input and the element where the Jacobians differ.
bool gradcheck(const MultiOutputFn& fn, const TensorList& inputs, const GradcheckOptions& options = {});
bool gradcheck(const SingleOutputFn& fn, const TensorList& inputs, const GradcheckOptions& options = {});
bool gradgradcheck(const MultiOutputFn& fn, const TensorList& inputs, const GradcheckOptions& options = {});
bool gradgradcheck(const SingleOutputFn& fn, const TensorList& inputs, const GradcheckOptions& options = {});

}  // namespace keel::autograd
