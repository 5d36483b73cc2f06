// Deterministic factories: zeros, ones, full, arange, linspace, eye, tensor({...}), *_like.
// Random factories are in ops/random.cpp.
#include "keel/ops/factory.h"

#include <cmath>

#include "keel/kernels/cpu/cpu_kernels.h"

namespace keel {

Tensor zeros(Shape shape, TensorOptions options) { return full(std::move(shape), 0, options); }
Tensor ones(Shape shape, TensorOptions options) { return full(std::move(shape), 1, options); }
Tensor full(Shape shape, const Scalar& value, TensorOptions options) {
  Tensor out = empty(std::move(shape), options);
  out.fill_(value);
  return out;
}

Tensor empty_like(const Tensor& x) { return empty(x.shape(), x.options()); }
Tensor zeros_like(const Tensor& x) { return zeros(x.shape(), x.options()); }
Tensor ones_like(const Tensor& x) { return ones(x.shape(), x.options()); }
Tensor full_like(const Tensor& x, const Scalar& value) { return full(x.shape(), value, x.options()); }

Tensor scalar_tensor(const Scalar& value, std::optional<DType> dtype, Device device) {
  Tensor out = empty({}, {dtype.value_or(value.natural_dtype()), Device::cpu()});
  cpu::fill(out, value);
  return device.is_cpu() ? out : out.to(device);
}

}  // namespace keel
