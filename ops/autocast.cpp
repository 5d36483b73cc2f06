#include "keel/ops/autocast.h"

#include "keel/core/error.h"

namespace keel {

namespace {
thread_local std::optional<DType> current_dtype;
}

AutocastGuard::AutocastGuard(DType dtype, bool enabled) : previous_(current_dtype) {
  KEEL_CHECK(dtype == DType::bf16 || dtype == DType::f16, "[AutocastGuard] autocast computes in bf16 or f16, got ",
             dtype_name(dtype), ": pass DType::bf16 (or DType::f16)");
  current_dtype = enabled ? std::optional<DType>(dtype) : std::nullopt;
}

AutocastGuard::~AutocastGuard() { current_dtype = previous_; }

std::optional<DType> autocast_dtype() { return current_dtype; }

bool autocast_eligible(const Tensor& x) {
  return current_dtype && x.defined() && is_floating(x.dtype()) && x.dtype() != DType::f64 &&
         x.dtype() != *current_dtype;
}

Tensor autocast(const Tensor& x) { return autocast_eligible(x) ? x.to(*current_dtype) : x; }

}  // namespace keel
