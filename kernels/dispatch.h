#pragma once
// Calls a C++20 template lambda with the C++ type of a runtime dtype:
//   dispatch_all(x.dtype(), "exp", [&]<typename T>() { ... T ... });
// dispatch_floating only accepts f32 f64 f16 bf16 and throws "[op] ... not supported" else;
// dispatch_index accepts the index dtypes i64 and i32.
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

// Index tensors: i64 or i32.
template <typename F> decltype(auto) dispatch_index(DType dtype, const char* op, F&& body) {
  switch (dtype) {
    case DType::i64: return body.template operator()<int64_t>();
    case DType::i32: return body.template operator()<int32_t>();
    default: fail("[", op, "] index must be int64 or int32, got ", dtype_name(dtype));
  }
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
