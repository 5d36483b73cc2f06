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

}  // namespace keel::reference
