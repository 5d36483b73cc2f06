// Reference shape and indexing ops: plain loops over multi-indices, no shared code with the
// kernels in kernels/cpu/index.cpp or ops/shape.cpp.
#include "keel/kernels/reference/reference.h"

namespace keel::reference {

namespace {


RefTensor zeros_of(const Shape& shape) {
  return {shape, std::vector<double>(static_cast<size_t>(shape_numel(shape)), 0.0)};
}

}  // namespace

RefTensor cat(const std::vector<RefTensor>& xs, int64_t dim) {
  Shape shape = xs.at(0).shape;
  shape[dim] = 0;
  for (const RefTensor& x : xs) shape[dim] += x.shape[dim];
  RefTensor out = zeros_of(shape);
  int64_t start = 0;
  for (const RefTensor& x : xs) {
    for (int64_t i = 0; i < x.numel(); ++i) {
      std::vector<int64_t> coordinates = unravel(i, x.shape);
      coordinates[dim] += start;
      out.values[ravel(coordinates, shape)] = x.values[i];
    }
    start += x.shape[dim];
  }
  return out;
}

RefTensor gather(const RefTensor& x, int64_t dim, const RefTensor& index) {
  RefTensor out = zeros_of(index.shape);
  for (int64_t i = 0; i < index.numel(); ++i) {
    std::vector<int64_t> coordinates = unravel(i, index.shape);
    coordinates[dim] = static_cast<int64_t>(index.values[i]);
    out.values[i] = x.values[ravel(coordinates, x.shape)];
  }
  return out;
}

RefTensor scatter(const RefTensor& self, int64_t dim, const RefTensor& index, const RefTensor& source,
                  bool accumulate, DType dtype) {
  RefTensor out = self;
  for (int64_t i = 0; i < index.numel(); ++i) {
    std::vector<int64_t> coordinates = unravel(i, index.shape);
    const double value = source.values[ravel(coordinates, source.shape)];
    coordinates[dim] = static_cast<int64_t>(index.values[i]);
    double& target = out.values[ravel(coordinates, self.shape)];
    target = round_to(dtype, accumulate ? target + value : value);
  }
  return out;
}

RefTensor index_select(const RefTensor& x, int64_t dim, const RefTensor& index) {
  Shape shape = x.shape;
  shape[dim] = index.numel();
  RefTensor out = zeros_of(shape);
  for (int64_t i = 0; i < out.numel(); ++i) {
    std::vector<int64_t> coordinates = unravel(i, shape);
    coordinates[dim] = static_cast<int64_t>(index.values[coordinates[dim]]);
    out.values[i] = x.values[ravel(coordinates, x.shape)];
  }
  return out;
}

RefTensor triangle(const RefTensor& x, int64_t diagonal, bool lower) {
  RefTensor out = x;
  const size_t ndim = x.shape.size();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const std::vector<int64_t> coordinates = unravel(i, x.shape);
    const int64_t offset = coordinates[ndim - 1] - coordinates[ndim - 2];
    const bool keep = lower ? offset <= diagonal : offset >= diagonal;
    if (!keep) out.values[i] = 0;
  }
  return out;
}

}  // namespace keel::reference
