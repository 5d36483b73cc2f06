#pragma once
// Argument checks shared by the ops sources (internal: the .cpp files of ops/ include it).
#include "keel/core/error.h"
#include "keel/core/tensor.h"

namespace keel::ops_detail {

// Both operands defined, on one device, with one floating dtype (PyTorch refuses mixed dtypes in
// matmul, linear and attention, and Keel has no integer kernels for them).
inline void check_operands(const char* op, const Tensor& a, const Tensor& b, const char* name_a, const char* name_b) {
  KEEL_CHECK(a.defined(), "[", op, "] ", name_a, " is undefined");
  KEEL_CHECK(b.defined(), "[", op, "] ", name_b, " is undefined");
  KEEL_CHECK(a.device() == b.device(), "[", op, "] ", name_a, " is on ", a.device().str(), " but ", name_b, " is on ",
             b.device().str());
  KEEL_CHECK(a.dtype() == b.dtype(), "[", op, "] expected ", name_a, " and ", name_b, " to have the same dtype, got ",
             dtype_name(a.dtype()), " and ", dtype_name(b.dtype()), " (shapes ", a.shape(), " and ", b.shape(), ")");
  KEEL_CHECK(is_floating(a.dtype()), "[", op, "] expected floating operands (float32, float64, float16, bfloat16), got ",
             dtype_name(a.dtype()), "; convert them first, e.g. x.to(f32)");
}

}  // namespace keel::ops_detail
