#pragma once
#include <cstring>
// Helpers shared by the tests: comparison against the float64 reference with a tolerance per
// dtype, the standard odd sizes, and builders of non-contiguous and broadcast inputs.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "keel/kernels/cpu/cpu_features.h"
#include "keel/kernels/reference/reference.h"
#include <keel/keel.h>

namespace keel::test {

using reference::RefTensor;

inline const std::vector<int64_t> kSizes = {0, 1, 31, 32, 33, 257};
inline const std::vector<DType> kAllDTypes = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8,
                                              DType::u8, DType::i32, DType::i64, DType::bool_};
inline const std::vector<DType> kFloatDTypes = {DType::f32, DType::f64, DType::f16, DType::bf16};

struct Tolerance {
  double atol, rtol;
};
// Tolerances relative to the dtype's precision (f16: 2^-11, bf16: 2^-8, f32: 2^-24).
inline Tolerance tolerance_for(DType dtype) {
  switch (dtype) {
    case DType::f64: return {1e-12, 1e-10};
    case DType::f32: return {1e-5, 1e-5};
    case DType::f16: return {1e-3, 2e-3};
    case DType::bf16: return {1e-2, 1.6e-2};
    default: return {0, 0};
  }
}

inline bool close(double actual, double expected, Tolerance tol) {
  if (std::isnan(expected)) return std::isnan(actual);
  if (std::isinf(expected)) return actual == expected;
  return std::fabs(actual - expected) <= tol.atol + tol.rtol * std::fabs(expected);
}

// Checks shape and every value; reports the first mismatch with its index.
inline void check_matches(const Tensor& actual, const RefTensor& expected, Tolerance tol,
                          const std::string& what = "") {
  INFO(what);
  REQUIRE(actual.shape() == expected.shape);
  const RefTensor got = reference::from_tensor(actual.is_cpu() ? actual : actual.cpu());
  for (int64_t i = 0; i < got.numel(); ++i) {
    if (!close(got.values[i], expected.values[i], tol)) {
      FAIL_CHECK("element " << i << ": got " << got.values[i] << ", expected " << expected.values[i]
                            << " (atol " << tol.atol << ", rtol " << tol.rtol << ")");
      return;
    }
  }
  SUCCEED();
}
inline void check_matches(const Tensor& actual, const RefTensor& expected, const std::string& what = "") {
  check_matches(actual, expected, tolerance_for(actual.dtype()), what);
}

// Runs f and checks that it throws keel::Error whose message contains every part.
// The largest |a - b| over all elements, in float64 (shapes must match).
// True when a and b have the same dtype, shape and bytes (any strides).
inline bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return a.nbytes() == 0 || std::memcmp(ca.raw_data(), cb.raw_data(), a.nbytes()) == 0;
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  return max(abs(a.to(DType::f64) - b.to(DType::f64))).item<double>();
}

inline void check_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const Error& error) {
    const std::string message = error.what();
    INFO("message: " << message);
    for (const std::string& part : parts) CHECK(message.find(part) != std::string::npos);
    return;
  }
  FAIL_CHECK("expected a keel::Error containing " << (parts.empty() ? std::string() : parts[0]));
}

// Random values of a dtype in a range that suits it (integers small, bool 0/1).
inline Tensor random_tensor(const Shape& shape, DType dtype, double low = -2.0, double high = 2.0) {
  Tensor values = rand(shape, {.dtype = DType::f64}) * (high - low) + low;
  if (dtype == DType::bool_) return values > (low + high) / 2;
  if (is_integral(dtype)) {
    if (dtype == DType::u8) values = abs(values);
    return (values * 10).to(dtype);
  }
  return values.to(dtype);
}

// The same values as `x` laid out non-contiguously: a transposed (2-D+) or strided view.
inline Tensor non_contiguous(const Tensor& x) {
  if (x.dim() >= 2) {
    Shape perm_shape = x.shape();
    std::swap(perm_shape[x.dim() - 1], perm_shape[x.dim() - 2]);
    Tensor wide = empty(perm_shape, x.options()).transpose(-1, -2);
    wide.copy_(x);
    return wide;
  }
  Shape doubled = x.shape();
  if (doubled.empty()) return x;
  doubled[0] *= 2;
  Tensor wide = empty(doubled, x.options()).slice(0, 0, doubled[0], 2);
  wide.copy_(x);
  return wide;
}

// The CPU kernel paths this machine runs, highest first: "avx512", "avx512 no bf16" (the AVX-512
// kernels without AVX512-BF16's instructions), "avx2", "baseline". A test loops over them with a
// CpuPathGuard, which applies one through the caps of kernels/cpu/cpu_features.h and lifts the
// caps again at scope exit.
inline std::vector<std::string> cpu_paths() {
  const cpu::CpuFeatures f = cpu::detected_cpu_features();
  std::vector<std::string> paths;
  if (f.avx512) paths.push_back("avx512");
  if (f.avx512_bf16) paths.push_back("avx512 no bf16");
  if (f.avx2) paths.push_back("avx2");
  paths.push_back("baseline");
  return paths;
}
struct CpuPathGuard {
  explicit CpuPathGuard(const std::string& path) {
    const bool no_bf16 = path == "avx512 no bf16";
    const std::string level = no_bf16 ? "avx512" : path;
    cpu::set_cpu_isa(level);
    cpu::set_cpu_disabled(no_bf16 ? "avx512_bf16" : "");
    REQUIRE(cpu::active_isa() == level);
    REQUIRE(cpu::cpu_features().avx512_bf16 ==
            (level == "avx512" && !no_bf16 && cpu::detected_cpu_features().avx512_bf16));
  }
  ~CpuPathGuard() {
    cpu::set_cpu_isa("amx");
    cpu::set_cpu_disabled("");
  }
  CpuPathGuard(const CpuPathGuard&) = delete;
  CpuPathGuard& operator=(const CpuPathGuard&) = delete;
};

}  // namespace keel::test
