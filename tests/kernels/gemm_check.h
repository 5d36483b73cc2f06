// The float64 check of a GEMM result shared by the GEMM tests (test_gemm.cpp, test_gemm_amx.cpp).
#pragma once

#include <cmath>
#include <string>

#include "test_util.h"

namespace keel::test {

inline double activate(Activation activation, double z) {
  switch (activation) {
    case Activation::none: return z;
    case Activation::relu: return z > 0 ? z : 0;
    case Activation::gelu: return 0.5 * z * (1 + std::erf(z / std::sqrt(2.0)));
    case Activation::gelu_tanh:
      return 0.5 * z * (1 + std::tanh(std::sqrt(2 / M_PI) * (z + 0.044715 * z * z * z)));
    case Activation::silu: return z / (1 + std::exp(-z));
  }
  return z;
}

// got = act(a @ b + bias) for a [Z, M, K], b [Z, K, N] (already expanded to one batch shape),
// bias [N] or undefined. The bound: a K-term f32 sum is within 2 K 2^-24 sum|terms| of the exact
// one (16-bit operands multiply exactly in f32), the activation's slope is at most 1.13, and the
// result is rounded once to its dtype (plus the f32 activation's own few ulps).
// rounding_terms: the roundings a kernel may add to the K of the sum (1: the bias; AMX's
// pairwise tile sums take 2).
inline void check_product(const Tensor& got, const Tensor& a, const Tensor& b, const Tensor& bias,
                          Activation activation, const std::string& what, int64_t rounding_terms = 1) {
  INFO(what);
  const reference::RefTensor ra = reference::from_tensor(a), rb = reference::from_tensor(b);
  const reference::RefTensor rg = reference::from_tensor(got);
  const reference::RefTensor rbias = bias.defined() ? reference::from_tensor(bias) : reference::RefTensor{};
  const int64_t dims = a.dim(), m = a.shape()[dims - 2], k = a.shape()[dims - 1], n = b.shape()[dims - 1];
  const int64_t batch = m * k == 0 ? shape_numel(got.shape()) / std::max<int64_t>(m * n, 1) : ra.numel() / (m * k);
  REQUIRE(rg.numel() == batch * m * n);
  const double out_rounding = got.dtype() == DType::bf16 ? 0x1p-8 : got.dtype() == DType::f16 ? 0x1p-11 : 0x1p-22;
  for (int64_t z = 0; z < batch; ++z)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double sum = 0, magnitude = 0;
        for (int64_t p = 0; p < k; ++p) {
          const double term = ra.values[(z * m + i) * k + p] * rb.values[(z * k + p) * n + j];
          sum += term;
          magnitude += std::fabs(term);
        }
        if (bias.defined()) {
          sum += rbias.values[j];
          magnitude += std::fabs(rbias.values[j]);
        }
        const double expected = activate(activation, sum);
        const double bound = 1.2 * 2.0 * static_cast<double>(k + rounding_terms) * 0x1p-24 * magnitude +
                             out_rounding * std::fabs(expected) + 1e-6;
        const double value = rg.values[(z * m + i) * n + j];
        if (!(std::fabs(value - expected) <= bound)) {
          FAIL_CHECK("[" << z << ", " << i << ", " << j << "]: got " << value << ", expected " << expected
                         << " (bound " << bound << ")");
          return;
        }
      }
  SUCCEED();
}

}  // namespace keel::test
