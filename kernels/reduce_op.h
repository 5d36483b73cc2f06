#pragma once
// The primitive reductions that kernels implement; the rest (mean, var, logsumexp, norm) are
// composites in ops/reduce.cpp.
//   sum:  identity 0, a + b      prod: identity 1, a * b
//   amax: identity -inf, max with NaN propagating      amin: +inf, min
//   all:  identity true, a && b   any: identity false, a || b
#include <cstdint>
#include <limits>
#include <type_traits>

#include "keel/core/macros.h"

namespace keel {
enum class ReduceOp : uint8_t { sum, prod, amax, amin, all, any };

// The value an empty reduction gives, in accumulator type A (shared by CPU and CUDA).
template <ReduceOp op, typename A> KEEL_HOST_DEVICE constexpr A reduce_identity() {
  if constexpr (op == ReduceOp::sum) return A(0);
  else if constexpr (op == ReduceOp::prod) return A(1);
  else if constexpr (op == ReduceOp::all) return true;
  else if constexpr (op == ReduceOp::any) return false;
  else if constexpr (op == ReduceOp::amax) {
    if constexpr (std::is_floating_point_v<A>) return -std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::lowest();
  } else {
    if constexpr (std::is_floating_point_v<A>) return std::numeric_limits<A>::infinity();
    else return std::numeric_limits<A>::max();
  }
}
}  // namespace keel
