#pragma once
// Helpers of the optim tests: f64 parameters from plain vectors, reading values back, and the
// optimizers' formulas (torch 1.13's single-tensor ones) written again on plain doubles.
#include <algorithm>
#include <cmath>
#include <vector>

#include "test_util.h"

namespace keel::optim_test {

inline Tensor param_of(const std::vector<double>& values) {
  Tensor t = zeros({static_cast<int64_t>(values.size())}, {.dtype = DType::f64});
  for (size_t i = 0; i < values.size(); ++i) t.data_ptr<double>()[i] = values[i];
  t.requires_grad_();
  return t;
}

inline Tensor f64_of(const std::vector<double>& values) {
  Tensor t = zeros({static_cast<int64_t>(values.size())}, {.dtype = DType::f64});
  for (size_t i = 0; i < values.size(); ++i) t.data_ptr<double>()[i] = values[i];
  return t;
}

inline std::vector<double> values_of(const Tensor& t) {
  const Tensor flat = t.detach().to(DType::f64).contiguous().reshape({-1});
  const double* data = flat.data_ptr<double>();
  return std::vector<double>(data, data + flat.numel());
}

inline void check_close(const std::vector<double>& actual, const std::vector<double>& expected, double rtol = 1e-12) {
  REQUIRE(actual.size() == expected.size());
  for (size_t i = 0; i < actual.size(); ++i) {
    INFO("element " << i << ": " << actual[i] << " vs " << expected[i]);
    CHECK(std::abs(actual[i] - expected[i]) <= rtol * std::max(1.0, std::abs(expected[i])));
  }
}

}  // namespace keel::optim_test
