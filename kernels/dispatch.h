#pragma once
// Calls a C++20 template lambda with the C++ type of a runtime dtype:
//   dispatch_all(x.dtype(), "exp", [&]<typename T>() { ... T ... });
// dispatch_floating only accepts f32 f64 f16 bf16 and throws "[op] ... not supported" else.
#include "keel/core/dtype.h"
#include "keel/core/error.h"

namespace keel {

template <typename F> decltype(auto) dispatch_all(DType dtype, const char* op, F&& body) {
  switch (dtype) {
#define KEEL_DISPATCH_CASE(name, type, str, category) \
  case DType::name: return body.template operator()<type>();
    KEEL_FORALL_DTYPES(KEEL_DISPATCH_CASE)
#undef KEEL_DISPATCH_CASE
  }
  fail("[", op, "] unknown dtype");
}

template <typename F> decltype(auto) dispatch_floating(DType dtype, const char* op, F&& body) {
  switch (dtype) {
    case DType::f32: return body.template operator()<float>();
    case DType::f64: return body.template operator()<double>();
    case DType::f16: return body.template operator()<Half>();
    case DType::bf16: return body.template operator()<BFloat16>();
    default: fail("[", op, "] dtype ", dtype_name(dtype), " not supported (expected a floating dtype)");
  }
}

}  // namespace keel
