// Deterministic factories against PyTorch: every expected value below is what Debian's PyTorch
// returned for the torch expression in the comment above it (floats pasted as exact hex).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <keel/keel.h>

#include "test_util.h"

using namespace keel;

namespace {
const double kInf = std::numeric_limits<double>::infinity();

struct FactoryCase {
  Tensor actual;
  DType dtype;
  Shape shape;
  std::vector<double> floats;  // expected values of a floating tensor
  std::vector<int64_t> ints;   // expected values of an integer or bool tensor (bool as 0 / 1)
  // Allowed |got - expected| / |expected|: 0 (bit-exact) except where PyTorch accumulates in
  // the 16-bit type (see the f16 / bf16 arange cases).
  double relative_tolerance = 0.0;
};

std::vector<double> float_values(const Tensor& t) {
  const Tensor host = t.cpu().to(f64).contiguous();
  return std::vector<double>(host.data_ptr<double>(), host.data_ptr<double>() + host.numel());
}
std::vector<int64_t> int_values(const Tensor& t) {
  const Tensor host = t.cpu().to(i64).contiguous();
  return std::vector<int64_t>(host.data_ptr<int64_t>(), host.data_ptr<int64_t>() + host.numel());
}

void check_case(const FactoryCase& c) {
  REQUIRE(c.actual.dtype() == c.dtype);
  REQUIRE(c.actual.shape() == c.shape);
  REQUIRE(c.actual.is_cpu());
  REQUIRE(c.actual.is_contiguous());
  if (is_floating(c.dtype)) {
    const std::vector<double> got = float_values(c.actual);
    REQUIRE(got.size() == c.floats.size());
    for (size_t i = 0; i < got.size(); ++i) {
      INFO("element " << i);
      if (c.relative_tolerance == 0.0) CHECK(got[i] == c.floats[i]);  // bit-exact with PyTorch
      else CHECK(std::fabs(got[i] - c.floats[i]) <= c.relative_tolerance * std::fabs(c.floats[i]));
    }
  } else {
    CHECK(int_values(c.actual) == c.ints);
  }
}
}  // namespace

TEST_CASE("factories match PyTorch values and dtypes", "[factory]") {
  const std::vector<FactoryCase> cases = {
      // torch.arange(5)
      {arange(5), i64, {5}, {}, {0, 1, 2, 3, 4}},
      // torch.arange(-5, 5, 3)
      {arange(-5, 5, 3), i64, {4}, {}, {-5, -2, 1, 4}},
      // torch.arange(10, 0, -3)
      {arange(10, 0, -3), i64, {4}, {}, {10, 7, 4, 1}},
      // torch.arange(0, 1, 0.1)
      {arange(0, 1, 0.1), f32, {10}, {0x0.0p+0, 0x1.99999a0000000p-4, 0x1.99999a0000000p-3, 0x1.3333340000000p-2, 0x1.99999a0000000p-2, 0x1.0000000000000p-1, 0x1.3333340000000p-1, 0x1.6666660000000p-1, 0x1.99999a0000000p-1, 0x1.cccccc0000000p-1}, {}},
      // torch.arange(1, 1.3, 0.1)
      {arange(1, 1.3, 0.1), f32, {4}, {0x1.0000000000000p+0, 0x1.19999a0000000p+0, 0x1.3333340000000p+0, 0x1.4ccccc0000000p+0}, {}},
      // torch.arange(0, 0.3, 0.1)
      {arange(0, 0.3, 0.1), f32, {3}, {0x0.0p+0, 0x1.99999a0000000p-4, 0x1.99999a0000000p-3}, {}},
      // torch.arange(1, 4, 0.5)
      {arange(1, 4, 0.5), f32, {6}, {0x1.0000000000000p+0, 0x1.8000000000000p+0, 0x1.0000000000000p+1, 0x1.4000000000000p+1, 0x1.8000000000000p+1, 0x1.c000000000000p+1}, {}},
      // torch.arange(-2.5, 3.1, 0.7, dtype=torch.float64)
      {arange(-2.5, 3.1, 0.7, {.dtype = f64}), f64, {8}, {-0x1.4000000000000p+1, -0x1.ccccccccccccdp+0, -0x1.199999999999ap+0, -0x1.999999999999cp-2, 0x1.3333333333330p-2, 0x1.ffffffffffffep-1, 0x1.b333333333332p+0, 0x1.3333333333332p+1}, {}},
      // torch.arange(0, 33, dtype=torch.float16)
      {arange(0, 33, 1, {.dtype = f16}), f16, {33}, {0x0.0p+0, 0x1.0000000000000p+0, 0x1.0000000000000p+1, 0x1.8000000000000p+1, 0x1.0000000000000p+2, 0x1.4000000000000p+2, 0x1.8000000000000p+2, 0x1.c000000000000p+2, 0x1.0000000000000p+3, 0x1.2000000000000p+3, 0x1.4000000000000p+3, 0x1.6000000000000p+3, 0x1.8000000000000p+3, 0x1.a000000000000p+3, 0x1.c000000000000p+3, 0x1.e000000000000p+3, 0x1.0000000000000p+4, 0x1.1000000000000p+4, 0x1.2000000000000p+4, 0x1.3000000000000p+4, 0x1.4000000000000p+4, 0x1.5000000000000p+4, 0x1.6000000000000p+4, 0x1.7000000000000p+4, 0x1.8000000000000p+4, 0x1.9000000000000p+4, 0x1.a000000000000p+4, 0x1.b000000000000p+4, 0x1.c000000000000p+4, 0x1.d000000000000p+4, 0x1.e000000000000p+4, 0x1.f000000000000p+4, 0x1.0000000000000p+5}, {}},
      // torch.arange(0.5, 10, 0.3, dtype=torch.float16)
      // PyTorch adds the step in f16 lanes (Vectorized<Half>::arange), one f16 ulp (2^-10
      // relative) off the correctly rounded start + step * i that Keel returns (checked below).
      {arange(0.5, 10, 0.3, {.dtype = f16}), f16, {32}, {0x1.0000000000000p-1, 0x1.9980000000000p-1, 0x1.1980000000000p+0, 0x1.6680000000000p+0, 0x1.b340000000000p+0, 0x1.0000000000000p+1, 0x1.2680000000000p+1, 0x1.4cc0000000000p+1, 0x1.7340000000000p+1, 0x1.9980000000000p+1, 0x1.c000000000000p+1, 0x1.e680000000000p+1, 0x1.0680000000000p+2, 0x1.1980000000000p+2, 0x1.2cc0000000000p+2, 0x1.4000000000000p+2, 0x1.5340000000000p+2, 0x1.6680000000000p+2, 0x1.79c0000000000p+2, 0x1.8cc0000000000p+2, 0x1.a000000000000p+2, 0x1.b340000000000p+2, 0x1.c680000000000p+2, 0x1.d9c0000000000p+2, 0x1.ecc0000000000p+2, 0x1.0000000000000p+3, 0x1.0980000000000p+3, 0x1.1340000000000p+3, 0x1.1cc0000000000p+3, 0x1.2680000000000p+3, 0x1.3000000000000p+3, 0x1.3980000000000p+3}, {}, 0x1p-10},
      // torch.arange(0.5, 10, 0.3, dtype=torch.bfloat16)  (one bf16 ulp, 2^-7 relative, as for f16)
      {arange(0.5, 10, 0.3, {.dtype = bf16}), bf16, {32}, {0x1.0000000000000p-1, 0x1.9a00000000000p-1, 0x1.1a00000000000p+0, 0x1.6600000000000p+0, 0x1.b400000000000p+0, 0x1.0000000000000p+1, 0x1.2600000000000p+1, 0x1.4c00000000000p+1, 0x1.7400000000000p+1, 0x1.9a00000000000p+1, 0x1.c000000000000p+1, 0x1.e600000000000p+1, 0x1.0600000000000p+2, 0x1.1a00000000000p+2, 0x1.2c00000000000p+2, 0x1.4000000000000p+2, 0x1.5400000000000p+2, 0x1.6800000000000p+2, 0x1.7a00000000000p+2, 0x1.8e00000000000p+2, 0x1.a000000000000p+2, 0x1.b400000000000p+2, 0x1.c800000000000p+2, 0x1.da00000000000p+2, 0x1.ee00000000000p+2, 0x1.0000000000000p+3, 0x1.0a00000000000p+3, 0x1.1400000000000p+3, 0x1.1e00000000000p+3, 0x1.2600000000000p+3, 0x1.3000000000000p+3, 0x1.3a00000000000p+3}, {}, 0x1p-7},
      // torch.arange(-3.7, 2, 1.1, dtype=torch.int64)
      {arange(-3.7, 2, 1.1, {.dtype = i64}), i64, {5}, {}, {-3, -2, -1, 0, 1}},
      // torch.arange(-3.7, 2, 1.1, dtype=torch.int32)
      {arange(-3.7, 2, 1.1, {.dtype = i32}), i32, {6}, {}, {-3, -2, -1, 0, 1, 2}},
      // torch.arange(0.5, 5, dtype=torch.int64)
      {arange(0.5, 5, 1, {.dtype = i64}), i64, {5}, {}, {0, 1, 2, 3, 4}},
      // torch.arange(10, -11, -4, dtype=torch.int8)
      {arange(10, -11, -4, {.dtype = i8}), i8, {6}, {}, {10, 6, 2, -2, -6, -10}},
      // torch.arange(0, 7, 2, dtype=torch.uint8)
      {arange(0, 7, 2, {.dtype = u8}), u8, {4}, {}, {0, 2, 4, 6}},
      // torch.arange(0, 0)
      {arange(0, 0), i64, {0}, {}, {}},
      // torch.arange(31, dtype=torch.float32)
      {arange(0, 31, 1, {.dtype = f32}), f32, {31}, {0x0.0p+0, 0x1.0000000000000p+0, 0x1.0000000000000p+1, 0x1.8000000000000p+1, 0x1.0000000000000p+2, 0x1.4000000000000p+2, 0x1.8000000000000p+2, 0x1.c000000000000p+2, 0x1.0000000000000p+3, 0x1.2000000000000p+3, 0x1.4000000000000p+3, 0x1.6000000000000p+3, 0x1.8000000000000p+3, 0x1.a000000000000p+3, 0x1.c000000000000p+3, 0x1.e000000000000p+3, 0x1.0000000000000p+4, 0x1.1000000000000p+4, 0x1.2000000000000p+4, 0x1.3000000000000p+4, 0x1.4000000000000p+4, 0x1.5000000000000p+4, 0x1.6000000000000p+4, 0x1.7000000000000p+4, 0x1.8000000000000p+4, 0x1.9000000000000p+4, 0x1.a000000000000p+4, 0x1.b000000000000p+4, 0x1.c000000000000p+4, 0x1.d000000000000p+4, 0x1.e000000000000p+4}, {}},
      // torch.linspace(0, 1, 5)
      {linspace(0, 1, 5), f32, {5}, {0x0.0p+0, 0x1.0000000000000p-2, 0x1.0000000000000p-1, 0x1.8000000000000p-1, 0x1.0000000000000p+0}, {}},
      // torch.linspace(0, 1, 1)
      {linspace(0, 1, 1), f32, {1}, {0x0.0p+0}, {}},
      // torch.linspace(2.5, -1, 1, dtype=torch.int32)
      {linspace(2.5, -1, 1, {.dtype = i32}), i32, {1}, {}, {2}},
      // torch.linspace(0, 1, 0)
      {linspace(0, 1, 0), f32, {0}, {}, {}},
      // torch.linspace(-1.3, 2.9, 7)
      {linspace(-1.3, 2.9, 7), f32, {7}, {-0x1.4ccccc0000000p+0, -0x1.3333320000000p-1, 0x1.9999a00000000p-4, 0x1.99999e0000000p-1, 0x1.8000020000000p+0, 0x1.19999a0000000p+1, 0x1.7333340000000p+1}, {}},
      // torch.linspace(-1.3, 2.9, 7, dtype=torch.float64)
      {linspace(-1.3, 2.9, 7, {.dtype = f64}), f64, {7}, {-0x1.4cccccccccccdp+0, -0x1.3333333333333p-1, 0x1.99999999999a0p-4, 0x1.9999999999997p-1, 0x1.7ffffffffffffp+0, 0x1.1999999999999p+1, 0x1.7333333333333p+1}, {}},
      // torch.linspace(-1, 1, 7, dtype=torch.float64)
      {linspace(-1, 1, 7, {.dtype = f64}), f64, {7}, {-0x1.0000000000000p+0, -0x1.5555555555556p-1, -0x1.5555555555556p-2, 0x1.0000000000000p-54, 0x1.5555555555556p-2, 0x1.5555555555556p-1, 0x1.0000000000000p+0}, {}},
      // torch.linspace(3, -3, 4)
      {linspace(3, -3, 4), f32, {4}, {0x1.8000000000000p+1, 0x1.0000000000000p+0, -0x1.0000000000000p+0, -0x1.8000000000000p+1}, {}},
      // torch.linspace(5, 5, 3)
      {linspace(5, 5, 3), f32, {3}, {0x1.4000000000000p+2, 0x1.4000000000000p+2, 0x1.4000000000000p+2}, {}},
      // torch.linspace(0, 10, 4, dtype=torch.int64)
      {linspace(0, 10, 4, {.dtype = i64}), i64, {4}, {}, {0, 3, 6, 10}},
      // torch.linspace(-7.9, 7.9, 5, dtype=torch.int32)
      {linspace(-7.9, 7.9, 5, {.dtype = i32}), i32, {5}, {}, {-7, -3, 0, 3, 7}},
      // torch.linspace(0, 1, 5, dtype=torch.float16)
      {linspace(0, 1, 5, {.dtype = f16}), f16, {5}, {0x0.0p+0, 0x1.0000000000000p-2, 0x1.0000000000000p-1, 0x1.8000000000000p-1, 0x1.0000000000000p+0}, {}},
      // torch.linspace(0, 1, 5, dtype=torch.bfloat16)
      {linspace(0, 1, 5, {.dtype = bf16}), bf16, {5}, {0x0.0p+0, 0x1.0000000000000p-2, 0x1.0000000000000p-1, 0x1.8000000000000p-1, 0x1.0000000000000p+0}, {}},
      // torch.linspace(0, 255, 6, dtype=torch.uint8)
      {linspace(0, 255, 6, {.dtype = u8}), u8, {6}, {}, {0, 51, 102, 153, 204, 255}},
      // torch.eye(3)
      {eye(3), f32, {3, 3}, {0x1.0000000000000p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x1.0000000000000p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x1.0000000000000p+0}, {}},
      // torch.eye(2, 4, dtype=torch.int32)
      {eye(2, 4, {.dtype = i32}), i32, {2, 4}, {}, {1, 0, 0, 0, 0, 1, 0, 0}},
      // torch.eye(3, 2, dtype=torch.float64)
      {eye(3, 2, {.dtype = f64}), f64, {3, 2}, {0x1.0000000000000p+0, 0x0.0p+0, 0x0.0p+0, 0x1.0000000000000p+0, 0x0.0p+0, 0x0.0p+0}, {}},
      // torch.eye(2, 3, dtype=torch.bool)
      {eye(2, 3, {.dtype = bool_}), bool_, {2, 3}, {}, {1, 0, 0, 0, 1, 0}},
      // torch.eye(3, 0)
      {eye(3, 0), f32, {3, 0}, {}, {}},
      // torch.eye(0)
      {eye(0), f32, {0, 0}, {}, {}},
      // torch.eye(1, dtype=torch.float16)
      {eye(1, -1, {.dtype = f16}), f16, {1, 1}, {0x1.0000000000000p+0}, {}},
      // torch.full((2, 3), 2.5)
      {full({2, 3}, 2.5), f32, {2, 3}, {0x1.4000000000000p+1, 0x1.4000000000000p+1, 0x1.4000000000000p+1, 0x1.4000000000000p+1, 0x1.4000000000000p+1, 0x1.4000000000000p+1}, {}},
      // torch.full((3,), 7, dtype=torch.int32)
      {full({3}, 7, {.dtype = i32}), i32, {3}, {}, {7, 7, 7}},
      // torch.full((2,), -1.75, dtype=torch.bfloat16)
      {full({2}, -1.75, {.dtype = bf16}), bf16, {2}, {-0x1.c000000000000p+0, -0x1.c000000000000p+0}, {}},
      // torch.full((2, 1), True)
      {full({2, 1}, true, {.dtype = bool_}), bool_, {2, 1}, {}, {1, 1}},
      // torch.zeros(2, 3)
      {zeros({2, 3}), f32, {2, 3}, {0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0, 0x0.0p+0}, {}},
      // torch.zeros(0, 3, dtype=torch.int64)
      {zeros({0, 3}, {.dtype = i64}), i64, {0, 3}, {}, {}},
      // torch.ones(3, dtype=torch.uint8)
      {ones({3}, {.dtype = u8}), u8, {3}, {}, {1, 1, 1}},
      // torch.ones((), dtype=torch.float16)
      {ones({}, {.dtype = f16}), f16, {}, {0x1.0000000000000p+0}, {}},
      // torch.tensor([1, 2, 3])
      {tensor({1, 2, 3}), i64, {3}, {}, {1, 2, 3}},
      // torch.tensor([1.5, 2])
      {tensor({1.5, 2}), f32, {2}, {0x1.8000000000000p+0, 0x1.0000000000000p+1}, {}},
      // torch.tensor([True, False])
      {tensor({true, false}), bool_, {2}, {}, {1, 0}},
      // torch.tensor([True, 2])
      {tensor({true, 2}), i64, {2}, {}, {1, 2}},
      // torch.tensor([True, 2.5])
      {tensor({true, 2.5}), f32, {2}, {0x1.0000000000000p+0, 0x1.4000000000000p+1}, {}},
      // torch.tensor([[1, 2, 3], [4, 5, 6]])
      {tensor({{1, 2, 3}, {4, 5, 6}}), i64, {2, 3}, {}, {1, 2, 3, 4, 5, 6}},
      // torch.tensor([[[1.], [2.]], [[3.], [4.]]])
      {tensor({{{1.}, {2.}}, {{3.}, {4.}}}), f32, {2, 2, 1}, {0x1.0000000000000p+0, 0x1.0000000000000p+1, 0x1.8000000000000p+1, 0x1.0000000000000p+2}, {}},
      // torch.tensor([])
      {tensor({}), f32, {0}, {}, {}},
      // torch.tensor([[], []])
      {tensor({{}, {}}), f32, {2, 0}, {}, {}},
      // torch.tensor(3)
      {tensor(3), i64, {}, {}, {3}},
      // torch.tensor(2.5)
      {tensor(2.5), f32, {}, {0x1.4000000000000p+1}, {}},
      // torch.tensor(False)
      {tensor(false), bool_, {}, {}, {0}},
      // torch.tensor([-1.7, 2.9], dtype=torch.int32)
      {tensor({-1.7, 2.9}, i32), i32, {2}, {}, {-1, 2}},
      // torch.tensor([-1, 255], dtype=torch.uint8)
      {tensor({-1, 255}, u8), u8, {2}, {}, {255, 255}},
      // torch.tensor([1e5, 0.1], dtype=torch.float16)
      {tensor({1e5, 0.1}, f16), f16, {2}, {kInf, 0x1.9980000000000p-4}, {}},
      // torch.tensor([0.1, 1e39], dtype=torch.float32)
      {tensor({0.1, 1e39}, f32), f32, {2}, {0x1.99999a0000000p-4, kInf}, {}},
      // torch.tensor([2.5, 0.0, True], dtype=torch.bool)
      {tensor({2.5, 0.0, true}, bool_), bool_, {3}, {}, {1, 0, 1}},
      // torch.tensor([1, 2], dtype=torch.float64)
      {tensor({1, 2}, f64), f64, {2}, {0x1.0000000000000p+0, 0x1.0000000000000p+1}, {}},
      // torch.tensor([9007199254740993, -9223372036854775807])
      {tensor({9007199254740993LL, -9223372036854775807LL}), i64, {2}, {}, {9007199254740993LL, -9223372036854775807LL}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i << ": " << cases[i].actual.str());
    check_case(cases[i]);
  }
}

TEST_CASE("arange on the standard sizes and every numeric dtype", "[factory]") {
  for (int64_t size : test::kSizes) {
    for (DType dtype : test::kAllDTypes) {
      if (dtype == bool_) continue;
      if (dtype == i8 && size > 127) continue;  // values past the dtype's range
      if (dtype == u8 && size > 255) continue;
      INFO(dtype_name(dtype) << " size " << size);
      const Tensor x = arange(0, size, 1, {.dtype = dtype});
      REQUIRE(x.dtype() == dtype);
      REQUIRE(x.shape() == Shape{size});
      const std::vector<double> got = float_values(x);
      for (int64_t i = 0; i < size; ++i) REQUIRE(got[static_cast<size_t>(i)] == static_cast<double>(i));
    }
    // Negative fractional steps: x[i] = start + step * i in double for f64, count ceil(...).
    const Tensor y = arange(3.0, 3.0 - 0.25 * static_cast<double>(size), -0.25, {.dtype = f64});
    REQUIRE(y.numel() == size);
    const std::vector<double> got = float_values(y);
    for (int64_t i = 0; i < size; ++i) REQUIRE(got[static_cast<size_t>(i)] == 3.0 - 0.25 * static_cast<double>(i));
  }
  // Dtype inference: any floating bound gives the default float dtype, otherwise i64.
  CHECK(arange(3).dtype() == i64);
  CHECK(arange(3.0).dtype() == f32);
  CHECK(arange(0, 3, 1.0).dtype() == f32);
  CHECK(arange(0.0, 3).dtype() == f32);
  CHECK(arange(true).dtype() == i64);  // torch.arange(True) -> tensor([0])
  // Exact integer counting for i64, no double rounding: 2^60 .. 2^60 + 6 by 3.
  const int64_t big = int64_t{1} << 60;
  CHECK(int_values(arange(big, big + 7, 3)) == std::vector<int64_t>{big, big + 3, big + 6});
}

TEST_CASE("16-bit arange is the correctly rounded start + step * i", "[factory]") {
  for (DType dtype : {f16, bf16}) {
    INFO(dtype_name(dtype));
    const std::vector<double> got = float_values(arange(0.5, 10, 0.3, {.dtype = dtype}));
    REQUIRE(got.size() == 32);
    for (size_t i = 0; i < got.size(); ++i) {
      // f32 accumulation (PyTorch's acc type for 16-bit floats) rounded once to the dtype.
      const float exact = std::fma(0.3f, static_cast<float>(i), 0.5f);
      REQUIRE(got[i] == float_values(full({1}, exact, {.dtype = dtype}))[0]);
    }
  }
}

TEST_CASE("arange rejects bad steps and bounds", "[factory]") {
  // torch.arange(0, 10, 0): step must be nonzero
  CHECK_THROWS_AS(arange(0, 10, 0), keel::Error);
  CHECK_THROWS_AS(arange(0.0, 1.0, 0.0), keel::Error);
  // torch.arange(0, 10, 0.5, dtype=torch.int64): the step truncates to 0
  CHECK_THROWS_AS(arange(0, 10, 0.5, {.dtype = i64}), keel::Error);
  CHECK_THROWS_AS(arange(0, 10, 0.5, {.dtype = i32}), keel::Error);
  // torch.arange(0, -5, 1) and torch.arange(0, 5, -1): inconsistent with the step sign
  CHECK_THROWS_AS(arange(0, -5, 1), keel::Error);
  CHECK_THROWS_AS(arange(0, 5, -1), keel::Error);
  CHECK_THROWS_AS(arange(0.0, -0.5, 0.1), keel::Error);
  CHECK_THROWS_AS(arange(0.0, std::numeric_limits<double>::infinity(), 1.0), keel::Error);
  CHECK_THROWS_AS(arange(std::numeric_limits<double>::quiet_NaN(), 1.0, 1.0), keel::Error);
  CHECK_THROWS_AS(arange(0, 3, 1, {.dtype = bool_}), keel::Error);
  try {
    arange(0, 10, 0);
    FAIL("no error");
  } catch (const keel::Error& error) {
    CHECK(std::string(error.what()).rfind("[arange]", 0) == 0);
  }
}

TEST_CASE("linspace has exact endpoints and the symmetric spacing", "[factory]") {
  for (int64_t steps : test::kSizes) {
    for (DType dtype : test::kFloatDTypes) {
      INFO(dtype_name(dtype) << " steps " << steps);
      const Tensor x = linspace(-1.3, 2.9, steps, {.dtype = dtype});
      REQUIRE(x.dtype() == dtype);
      REQUIRE(x.shape() == Shape{steps});
      if (steps == 0) continue;
      const std::vector<double> got = float_values(x);
      const double start = float_values(full({1}, -1.3, {.dtype = dtype}))[0];  // -1.3 in the dtype
      const double end = float_values(full({1}, 2.9, {.dtype = dtype}))[0];
      CHECK(got.front() == start);
      if (steps > 1) CHECK(got.back() == end);
      // Against the float64 formula with the dtype's tolerance; monotone increasing.
      const test::Tolerance tolerance = test::tolerance_for(dtype);
      for (int64_t i = 0; i < steps; ++i) {
        const double expected = steps == 1 ? -1.3 : -1.3 + 4.2 * static_cast<double>(i) / static_cast<double>(steps - 1);
        REQUIRE(test::close(got[static_cast<size_t>(i)], expected, {tolerance.atol * 4, tolerance.rtol * 4}));
        if (i > 0 && dtype != f16 && dtype != bf16) REQUIRE(got[static_cast<size_t>(i)] > got[static_cast<size_t>(i - 1)]);
      }
      // Symmetric: the second half counts back from the end, x[n-1-i] = end - step * i, with
      // one rounding per element (fused multiply-add).
      if (dtype == f64 && steps > 1) {
        const double step = (2.9 - -1.3) / static_cast<double>(steps - 1);
        for (int64_t i = 0; i < steps - steps / 2; ++i)
          REQUIRE(got[static_cast<size_t>(steps - 1 - i)] == std::fma(-step, static_cast<double>(i), 2.9));
        for (int64_t i = 0; i < steps / 2; ++i)
          REQUIRE(got[static_cast<size_t>(i)] == std::fma(step, static_cast<double>(i), -1.3));
      }
    }
  }
  // torch.linspace(0, 1, -1): number of steps must be non-negative
  CHECK_THROWS_AS(linspace(0, 1, -1), keel::Error);
}

TEST_CASE("eye on odd sizes", "[factory]") {
  for (int64_t n : {1, 31, 33}) {
    for (int64_t m : {-1, 1, 32}) {
      for (DType dtype : {f32, i64, bool_, bf16}) {
        const Tensor x = eye(n, m, {.dtype = dtype});
        const int64_t columns = m < 0 ? n : m;
        REQUIRE(x.shape() == Shape{n, columns});
        REQUIRE(x.dtype() == dtype);
        const std::vector<int64_t> got = int_values(x);
        for (int64_t i = 0; i < n; ++i)
          for (int64_t j = 0; j < columns; ++j) REQUIRE(got[static_cast<size_t>(i * columns + j)] == (i == j ? 1 : 0));
      }
    }
  }
  // torch.eye(-1): n must be greater or equal to 0, got -1
  CHECK_THROWS_AS(eye(-1), keel::Error);
}

TEST_CASE("full, zeros, ones and *_like on the standard sizes", "[factory]") {
  for (int64_t size : test::kSizes) {
    for (DType dtype : test::kAllDTypes) {
      INFO(dtype_name(dtype) << " size " << size);
      const Tensor z = zeros({size, 3}, {.dtype = dtype});
      const Tensor o = ones({3, size}, {.dtype = dtype});
      const Tensor f = full({size}, dtype == bool_ ? Scalar(true) : Scalar(5), {.dtype = dtype});
      REQUIRE(z.dtype() == dtype);
      REQUIRE(z.shape() == Shape{size, 3});
      REQUIRE(o.shape() == Shape{3, size});
      for (int64_t v : int_values(z)) REQUIRE(v == 0);
      for (int64_t v : int_values(o)) REQUIRE(v == 1);
      for (int64_t v : int_values(f)) REQUIRE(v == (dtype == bool_ ? 1 : 5));
      const Tensor like = full_like(o, 1);
      CHECK(like.options().dtype == dtype);
      CHECK(like.shape() == o.shape());
      CHECK(zeros_like(o).shape() == o.shape());
      CHECK(ones_like(z).dtype() == dtype);
      CHECK(empty_like(z).shape() == z.shape());
    }
  }
  CHECK(zeros({2}).dtype() == f32);  // default dtype
  CHECK_THROWS_AS(zeros({-1, 2}), keel::Error);
  CHECK_THROWS_AS(full({2, -3}, 1.0), keel::Error);
}

TEST_CASE("tensor({...}) infers dtypes like torch.tensor and rejects ragged lists", "[factory]") {
  CHECK(tensor({1, 2}).dtype() == i64);
  CHECK(tensor({1L, 2LL}).dtype() == i64);
  CHECK(tensor({1.0f, 2}).dtype() == f32);
  CHECK(tensor({{true}, {false}}).dtype() == bool_);
  CHECK(tensor({{true}, {1}}).dtype() == i64);
  CHECK(tensor({{1}, {2.0}}).dtype() == f32);
  CHECK(tensor({1, 2}, f16).dtype() == f16);
  CHECK(tensor(1.5).dim() == 0);
  // torch.tensor([[1], [2, 3]]): expected sequence of length 1 at dim 1 (got 2)
  CHECK_THROWS_WITH(tensor({{1}, {2, 3}}), Catch::Contains("depth 1"));
  // torch.tensor([[[1, 2]], [[3]]]): expected sequence of length 2 at dim 2 (got 1)
  CHECK_THROWS_WITH(tensor({{{1, 2}}, {{3}}}), Catch::Contains("depth 2"));
  CHECK_THROWS_AS(tensor({{1}, 2}), keel::Error);    // torch: not a sequence
  CHECK_THROWS_AS(tensor({1, {2}}), keel::Error);    // torch: a list where a number belongs
  CHECK_THROWS_AS(tensor({{}, {1}}), keel::Error);
  // torch.tensor([300], dtype=torch.uint8) and friends: value cannot be converted without overflow
  CHECK_THROWS_AS(tensor({300}, u8), keel::Error);
  CHECK_THROWS_AS(tensor({-256}, u8), keel::Error);
  CHECK_THROWS_AS(tensor({128}, i8), keel::Error);
  CHECK_THROWS_AS(tensor({-129.7}, i8), keel::Error);
  CHECK_THROWS_AS(tensor({255.9}, u8), keel::Error);
  CHECK_THROWS_AS(tensor({1e19}, i64), keel::Error);
  CHECK_THROWS_AS(tensor({std::numeric_limits<double>::quiet_NaN()}, i32), keel::Error);
  CHECK_THROWS_AS(tensor({-128.5}, i8), keel::Error);  // torch: below -128 before truncation
  CHECK_THROWS_AS(tensor({-0.5}, u8), keel::Error);
  CHECK_THROWS_AS(tensor({std::numeric_limits<double>::infinity()}, i32), keel::Error);
  // torch.tensor([-255, -1], dtype=torch.uint8) -> tensor([1, 255], dtype=torch.uint8): negative
  // integers down to -255 wrap
  CHECK(int_values(tensor({-255, -1}, u8)) == std::vector<int64_t>{1, 255});
  // torch.tensor([-128.0, 127.0], dtype=torch.int8) -> tensor([-128,  127], dtype=torch.int8)
  CHECK(int_values(tensor({-128.0, 127.0}, i8)) == std::vector<int64_t>{-128, 127});
}

TEST_CASE("NestedList::scalar keeps the kind and the exact value", "[factory]") {
  CHECK(NestedList(3).scalar().is_integral());
  CHECK(NestedList(3).scalar().to_int64() == 3);
  CHECK(NestedList(-7).scalar().to_int64() == -7);
  CHECK(NestedList(9007199254740993LL).scalar().to_int64() == 9007199254740993LL);
  CHECK(NestedList(2.5).scalar().is_floating());
  CHECK(NestedList(2.5).scalar().to_double() == 2.5);
  CHECK(NestedList(0.1f).scalar().to_double() == static_cast<double>(0.1f));
  CHECK(NestedList(true).scalar().is_bool());
  CHECK(NestedList(true).scalar().to<bool>());
  CHECK_THROWS_AS(NestedList({1, 2}).scalar(), keel::Error);
}

TEST_CASE("factories place results on the requested device", "[factory][cuda]") {
  if (!cuda::is_available()) {
    WARN("skipped: no CUDA device");
    return;
  }
  const Device gpu = Device::cuda(0);
  CHECK(arange(0, 33, 1, {.dtype = f32, .device = gpu}).is_cuda());
  CHECK(float_values(arange(0, 33, 1, {.dtype = f32, .device = gpu})) == float_values(arange(0, 33, 1, {.dtype = f32})));
  CHECK(float_values(linspace(-1, 1, 257, {.dtype = bf16, .device = gpu})) == float_values(linspace(-1, 1, 257, {.dtype = bf16})));
  CHECK(int_values(eye(31, 33, {.dtype = i32, .device = gpu})) == int_values(eye(31, 33, {.dtype = i32})));
  CHECK(int_values(tensor({{1, 2}, {3, 4}}, std::nullopt, gpu)) == std::vector<int64_t>{1, 2, 3, 4});
  CHECK(float_values(full({31}, 2.5, {.dtype = f16, .device = gpu})) == std::vector<double>(31, 2.5));
}
