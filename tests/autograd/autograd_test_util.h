#pragma once
// Helpers of the autograd tests: float64 leaves from values, and value checks.
#include <cstring>
#include <vector>

#include "test_util.h"

namespace keel::autograd_test {

// A float64 1-D leaf that requires grad.
inline Tensor leaf(const std::vector<double>& values) {
  Tensor t = empty({static_cast<int64_t>(values.size())}, {DType::f64});
  if (!values.empty()) std::memcpy(t.data_ptr<double>(), values.data(), values.size() * sizeof(double));
  return t.requires_grad_();
}

inline std::vector<double> values_of(const Tensor& t) {
  Tensor flat = t.detach().to(DType::f64).contiguous();
  return std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
}

inline void check_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-12) {
  REQUIRE(t.defined());
  const std::vector<double> got = values_of(t);
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    CHECK(got[i] == Approx(expected[i]).margin(tol));
  }
}

}  // namespace keel::autograd_test
