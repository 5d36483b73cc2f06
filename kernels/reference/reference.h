#pragma once
// The test oracle: plain float64 loops, written for clarity, sharing no code with the real
// kernels (they read tensors through shape, strides and offset on their own, and compute in
// double with the C library). Tests compare every op against these.
#include <cstdint>
#include <functional>
#include <vector>

#include "keel/core/tensor.h"
#include "keel/kernels/op_math.h"
#include "keel/kernels/reduce_op.h"

namespace keel::reference {

// A dense row-major array of doubles with a shape.
struct RefTensor {
  Shape shape;
  std::vector<double> values;
  int64_t numel() const { return static_cast<int64_t>(values.size()); }
};

// Reads any CPU tensor (any dtype, any strides) into doubles, element by element.
RefTensor from_tensor(const Tensor& tensor);
// Row-major linear index <-> coordinates of `shape`.
std::vector<int64_t> unravel(int64_t linear, const Shape& shape);
int64_t ravel(const std::vector<int64_t>& coordinates, const Shape& shape);
// Row-major index of the element of `shape` that broadcast index `index` (of `out_shape`) reads.
int64_t broadcast_source(const Shape& shape, const Shape& out_shape, int64_t index);

// Rounds a double as storing it in dtype would (f16/bf16/f32 rounding, integer wrapping).
double round_to(DType dtype, double value);

RefTensor map(const RefTensor& x, const std::function<double(double)>& f);
RefTensor zip(const RefTensor& a, const RefTensor& b, const std::function<double(double, double)>& f);
RefTensor unary(UnaryOp op, const RefTensor& x);
RefTensor binary(BinaryOp op, const RefTensor& a, const RefTensor& b);
double unary_value(UnaryOp op, double x);
double binary_value(BinaryOp op, double a, double b);

// Reduction over `dims` (empty = all) with keepdim; identity for empty reductions.
RefTensor reduce(ReduceOp op, const RefTensor& x, const std::vector<int64_t>& dims, bool keepdim);
// var with correction over dims.
RefTensor variance(const RefTensor& x, const std::vector<int64_t>& dims, double correction, bool keepdim);
// Any reduction: f gets the values reduced into each output element, in row-major order.
RefTensor reduce_with(const RefTensor& x, const std::vector<int64_t>& dims, bool keepdim,
                      const std::function<double(const std::vector<double>&)>& f);
// max/min along one dim (size > 0): the first extreme wins, a NaN counts as the extreme (PyTorch).
struct RefValuesIndices {
  RefTensor values, indices;
};
RefValuesIndices arg_reduce(bool is_max, const RefTensor& x, int64_t dim, bool keepdim);

// ---- shape and indexing ops (kernels/reference/shape.cpp); dims are already wrapped ----------
// Concatenation along dim (inputs of one rank, equal sizes elsewhere).
RefTensor cat(const std::vector<RefTensor>& xs, int64_t dim);
// out[p] = x[p with coordinate dim replaced by index[p]]; out has index's shape.
RefTensor gather(const RefTensor& x, int64_t dim, const RefTensor& index);
// self with self[p with coordinate dim replaced by index[p]] = source[p] (or +=), p over index's
// shape in row-major order (so later duplicates win); each store is rounded to `dtype`.
RefTensor scatter(const RefTensor& self, int64_t dim, const RefTensor& index, const RefTensor& source,
                  bool accumulate, DType dtype);
// out[..., j, ...] = x[..., index[j], ...] for a 1-D index.
RefTensor index_select(const RefTensor& x, int64_t dim, const RefTensor& index);
// Keeps x[..., i, j] where j - i <= diagonal (lower) or j - i >= diagonal (upper); zero elsewhere.
RefTensor triangle(const RefTensor& x, int64_t diagonal, bool lower);

}  // namespace keel::reference
