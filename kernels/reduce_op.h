#pragma once
// The primitive reductions that kernels implement; the rest (mean, var, logsumexp, norm) are
// composites in ops/reduce.cpp.
//   sum:  identity 0, a + b      prod: identity 1, a * b
//   amax: identity -inf, max with NaN propagating      amin: +inf, min
//   all:  identity true, a && b   any: identity false, a || b
#include <cstdint>

namespace keel {
enum class ReduceOp : uint8_t { sum, prod, amax, amin, all, any };
}  // namespace keel
