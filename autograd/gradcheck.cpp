#include "keel/autograd/gradcheck.h"

#include <cmath>

#include "keel/autograd/engine.h"
#include "keel/autograd/grad_mode.h"
#include "keel/core/rng.h"
#include "keel/ops/factory.h"

namespace keel::autograd {

namespace {

// Address of the element with row-major linear index `index` of a strided tensor.
double* element(const Tensor& t, int64_t index) {
  int64_t position = 0;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    const int64_t size = t.shape()[d];
    position += (index % size) * t.strides()[d];
    index /= size;
  }
  return t.data_ptr<double>() + position;
}

// The floating outputs as flat float64 host vectors (values only).
std::vector<std::vector<double>> flatten_values(const TensorList& outputs) {
  std::vector<std::vector<double>> values;
  for (const Tensor& output : outputs) {
    Tensor flat = output.detach().to(Device::cpu(), DType::f64).contiguous();
    const double* data = flat.data_ptr<double>();
    values.emplace_back(data, data + flat.numel());
  }
  return values;
}

TensorList differentiable_outputs(const TensorList& outputs) {
  TensorList kept;
  for (const Tensor& output : outputs)
    if (output.defined() && is_floating(output.dtype())) kept.push_back(output);
  return kept;
}

void check_inputs(const TensorList& inputs) {
  bool any = false;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& input = inputs[i];
    if (!input.defined() || !input.requires_grad()) continue;
    any = true;
    KEEL_CHECK(input.dtype() == DType::f64 && input.is_cpu(), "[gradcheck] input ", i,
               " must be a float64 CPU tensor (central differences need the precision), got ",
               dtype_name(input.dtype()), " on ", input.device().str());
    for (int64_t d = 0; d < input.dim(); ++d)
      KEEL_CHECK(input.shape()[d] <= 1 || input.strides()[d] != 0, "[gradcheck] input ", i, " of shape ", input.shape(),
                 " is an expanded view (its elements share memory); pass a contiguous copy");
  }
  KEEL_CHECK(any, "[gradcheck] no input requires grad");
}

}  // namespace

bool gradcheck(const MultiOutputFn& fn, const TensorList& inputs, const GradcheckOptions& options) {
  check_inputs(inputs);
  const TensorList outputs = differentiable_outputs(fn(inputs));
  const std::vector<std::vector<double>> base = flatten_values(outputs);

  // Numerical Jacobian, one column per input element: numerical[i][j] = d(all outputs)/d x_i[j].
  std::vector<std::vector<std::vector<double>>> numerical(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& input = inputs[i];
    if (!input.defined() || !input.requires_grad()) continue;
    for (int64_t j = 0; j < input.numel(); ++j) {
      double* x = element(input, j);
      const double original = *x;
      *x = original + options.eps;
      const auto plus = flatten_values(differentiable_outputs(fn(inputs)));
      *x = original - options.eps;
      const auto minus = flatten_values(differentiable_outputs(fn(inputs)));
      *x = original;
      std::vector<double> column;
      for (size_t k = 0; k < plus.size(); ++k)
        for (size_t m = 0; m < plus[k].size(); ++m) column.push_back((plus[k][m] - minus[k][m]) / (2 * options.eps));
      numerical[i].push_back(std::move(column));
    }
  }

  // Analytical Jacobian, one backward pass per output element.
  TensorList wrt;
  std::vector<size_t> wrt_index;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad()) {
      wrt.push_back(inputs[i]);
      wrt_index.push_back(i);
    }
  size_t row = 0;
  for (size_t k = 0; k < outputs.size(); ++k) {
    const Tensor& output = outputs[k];
    for (int64_t m = 0; m < output.numel(); ++m, ++row) {
      TensorList analytical(wrt.size());
      if (output.requires_grad()) {
        Tensor seed = zeros(output.shape(), output.options());
        {
          NoGradGuard no_grad;
          seed.reshape({-1}).narrow(0, m, 1).fill_(1);
        }
        analytical = grad({output}, wrt, {seed}, {.retain_graph = true, .allow_unused = true});
      }
      for (size_t w = 0; w < wrt.size(); ++w) {
        const size_t i = wrt_index[w];
        Tensor row_grad = analytical[w].defined() ? analytical[w].detach().to(DType::f64).contiguous() : Tensor();
        for (int64_t j = 0; j < inputs[i].numel(); ++j) {
          const double expected = numerical[i][j][row];
          const double got = row_grad.defined() ? row_grad.data_ptr<double>()[j] : 0.0;
          KEEL_CHECK(std::abs(got - expected) <= options.atol + options.rtol * std::abs(expected),
                     "[gradcheck] Jacobian mismatch for output ", k, " (shape ", output.shape(), ") element ", m,
                     " with respect to input ", i, " (shape ", inputs[i].shape(), ") element ", j, ": numerical ",
                     expected, ", analytical ", got, (output.requires_grad() ? "" : " (the output does not require grad)"));
        }
      }
    }
  }
  return true;
}

bool gradcheck(const SingleOutputFn& fn, const TensorList& inputs, const GradcheckOptions& options) {
  return gradcheck(MultiOutputFn([&](const TensorList& x) { return TensorList{fn(x)}; }), inputs, options);
}

bool gradgradcheck(const MultiOutputFn& fn, const TensorList& inputs, const GradcheckOptions& options) {
  check_inputs(inputs);
  const TensorList outputs = differentiable_outputs(fn(inputs));
  // Random output gradients v, themselves inputs of the checked function.
  Generator generator(options.seed);
  TensorList all = inputs;
  for (const Tensor& output : outputs) {
    Tensor v = randn(output.shape(), {DType::f64, Device::cpu()}, &generator);
    all.push_back(v.requires_grad_());
  }
  const size_t num_inputs = inputs.size();
  MultiOutputFn first_order = [&](const TensorList& values) {
    TensorList x(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(num_inputs));
    TensorList v(values.begin() + static_cast<std::ptrdiff_t>(num_inputs), values.end());
    TensorList y = differentiable_outputs(fn(x));
    TensorList wrt;
    for (const Tensor& input : x)
      if (input.defined() && input.requires_grad()) wrt.push_back(input);
    TensorList used_y, used_v;
    for (size_t k = 0; k < y.size(); ++k)
      if (y[k].requires_grad()) {
        used_y.push_back(y[k]);
        used_v.push_back(v[k]);
      }
    if (used_y.empty()) return TensorList{};
    TensorList grads = grad(used_y, wrt, used_v, {.create_graph = true, .allow_unused = true});
    for (size_t w = 0; w < grads.size(); ++w)
      if (!grads[w].defined()) grads[w] = zeros(wrt[w].shape(), wrt[w].options());
    return grads;
  };
  return gradcheck(first_order, all, options);
}

bool gradgradcheck(const SingleOutputFn& fn, const TensorList& inputs, const GradcheckOptions& options) {
  return gradgradcheck(MultiOutputFn([&](const TensorList& x) { return TensorList{fn(x)}; }), inputs, options);
}

}  // namespace keel::autograd
