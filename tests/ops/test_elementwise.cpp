// Elementwise ops against the float64 reference: every op x dtype it takes, the standard odd
// sizes, non-contiguous and broadcast inputs, scalar operands, in-place forms, promotion, errors.
#include "test_util.h"

using namespace keel;
using namespace keel::test;
using reference::RefTensor;

namespace {

struct UnaryCase {
  const char* name;
  UnaryOp op;
  Tensor (*fn)(const Tensor&);
  double low, high;  // input range where the op is defined and well conditioned
};

Tensor gelu_erf(const Tensor& x) { return gelu(x); }
Tensor gelu_tanh(const Tensor& x) { return gelu(x, GeluApproximation::tanh); }

const std::vector<UnaryCase> kUnaryCases = {
    {"neg", UnaryOp::neg, &neg, -3, 3},       {"abs", UnaryOp::abs, &abs, -3, 3},
    {"exp", UnaryOp::exp, &exp, -3, 3},       {"log", UnaryOp::log, &log, 0.1, 5},
    {"log1p", UnaryOp::log1p, &log1p, -0.5, 3}, {"expm1", UnaryOp::expm1, &expm1, -2, 2},
    {"sqrt", UnaryOp::sqrt, &sqrt, 0, 5},     {"rsqrt", UnaryOp::rsqrt, &rsqrt, 0.2, 5},
    {"sin", UnaryOp::sin, &sin, -3, 3},       {"cos", UnaryOp::cos, &cos, -3, 3},
    {"tanh", UnaryOp::tanh, &tanh, -3, 3},    {"sigmoid", UnaryOp::sigmoid, &sigmoid, -5, 5},
    {"relu", UnaryOp::relu, &relu, -3, 3},    {"gelu", UnaryOp::gelu_erf, &gelu_erf, -3, 3},
    {"gelu_tanh", UnaryOp::gelu_tanh, &gelu_tanh, -3, 3}, {"silu", UnaryOp::silu, &silu, -4, 4},
    {"erf", UnaryOp::erf, &erf, -3, 3},
};

// Reference result of a floating op on x (rounded inputs) in the output dtype's precision.
RefTensor expected_unary(UnaryOp op, const Tensor& x) { return reference::unary(op, reference::from_tensor(x)); }

// Tolerance for a result computed in dtype from inputs already in dtype (transcendental ops add
// a few ulps in f32).
Tolerance op_tolerance(DType dtype) {
  Tolerance tol = tolerance_for(dtype);
  if (dtype == DType::f32) tol = {2e-6, 4e-6};
  return tol;
}

std::vector<Shape> shapes_for(int64_t size) {
  return {{size}, {3, size}, {size, 2, 3}};
}

}  // namespace

TEST_CASE("unary floating ops match the float64 reference", "[elementwise]") {
  for (const UnaryCase& c : kUnaryCases) {
    for (DType dtype : kFloatDTypes) {
      for (int64_t size : kSizes) {
        for (const Shape& shape : shapes_for(size)) {
          const Tensor x = random_tensor(shape, dtype, c.low, c.high);
          const std::string what = std::string(c.name) + " " + std::string(dtype_name(dtype)) + " " + to_string(shape);
          const Tensor y = c.fn(x);
          CHECK(y.dtype() == dtype);
          check_matches(y, expected_unary(c.op, x), op_tolerance(dtype), what);
          check_matches(c.fn(non_contiguous(x)), expected_unary(c.op, x), op_tolerance(dtype), what + " non-contiguous");
        }
      }
    }
  }
}

TEST_CASE("unary ops on integer inputs promote like PyTorch", "[elementwise]") {
  const Tensor ints = tensor({-3, -1, 0, 2, 7}).to(DType::i32);
  CHECK(exp(ints).dtype() == DType::f32);
  CHECK(sqrt(ints.to(DType::u8)).dtype() == DType::f32);
  CHECK(abs(ints).dtype() == DType::i32);
  CHECK(neg(ints).dtype() == DType::i32);
  CHECK(relu(ints).dtype() == DType::i32);
  check_matches(exp(ints), reference::unary(UnaryOp::exp, reference::from_tensor(ints)), op_tolerance(DType::f32));
  check_matches(abs(ints), reference::unary(UnaryOp::abs, reference::from_tensor(ints)));
  check_matches(relu(ints), reference::unary(UnaryOp::relu, reference::from_tensor(ints)));
  // Wrapping (not undefined behaviour) at the edge of the type, like PyTorch.
  const Tensor edge = full({2}, std::numeric_limits<int32_t>::min(), {.dtype = DType::i32});
  CHECK(neg(edge).select(0, 0).item<int64_t>() == std::numeric_limits<int32_t>::min());
  CHECK(abs(edge).select(0, 0).item<int64_t>() == std::numeric_limits<int32_t>::min());
}

TEST_CASE("predicates give bool", "[elementwise]") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  for (DType dtype : kFloatDTypes) {
    const Tensor x = tensor({1.0, -inf, inf, nan, 0.0, -2.5}).to(dtype);
    const Tensor n = isnan(x), i = isinf(x), z = logical_not(x);
    CHECK(n.dtype() == DType::bool_);
    check_matches(n, reference::unary(UnaryOp::isnan, reference::from_tensor(x)));
    check_matches(i, reference::unary(UnaryOp::isinf, reference::from_tensor(x)));
    check_matches(z, reference::unary(UnaryOp::logical_not, reference::from_tensor(x)));
  }
  for (DType dtype : {DType::i8, DType::u8, DType::i32, DType::i64, DType::bool_}) {
    const Tensor x = random_tensor({33}, dtype);
    check_matches(isnan(x), reference::unary(UnaryOp::isnan, reference::from_tensor(x)));
    check_matches(logical_not(x), reference::unary(UnaryOp::logical_not, reference::from_tensor(x)));
  }
}

TEST_CASE("in-place unary ops write through views and bump the version", "[elementwise]") {
  Tensor base = random_tensor({4, 33}, DType::f32);
  const RefTensor before = reference::from_tensor(base);
  Tensor view = base.slice(1, 1, 33, 2);
  const RefTensor view_before = reference::from_tensor(view);
  const uint64_t version = base.storage()->version();
  exp_(view);
  CHECK(base.storage()->version() > version);
  check_matches(view, reference::unary(UnaryOp::exp, view_before), op_tolerance(DType::f32));
  // Untouched columns keep their values.
  check_matches(base.slice(1, 0, 33, 2), reference::from_tensor(base.slice(1, 0, 33, 2)));
  const RefTensor after = reference::from_tensor(base);
  for (int64_t row = 0; row < 4; ++row)
    for (int64_t col = 0; col < 33; col += 2) CHECK(after.values[row * 33 + col] == before.values[row * 33 + col]);
  Tensor ints = tensor({1, 2, 3});
  REQUIRE_THROWS_AS(exp_(ints), Error);  // float result into an i64 tensor
}

namespace {
struct BinaryCase {
  const char* name;
  BinaryOp op;
  Tensor (*fn)(const Tensor&, const Tensor&);
};
const std::vector<BinaryCase> kArithmetic = {
    {"add", BinaryOp::add, &add}, {"sub", BinaryOp::sub, &sub}, {"mul", BinaryOp::mul, &mul},
    {"div", BinaryOp::div, &div}, {"maximum", BinaryOp::maximum, &maximum},
    {"minimum", BinaryOp::minimum, &minimum}, {"pow", BinaryOp::pow, &pow},
};
const std::vector<BinaryCase> kPredicates = {
    {"eq", BinaryOp::eq, &eq}, {"ne", BinaryOp::ne, &ne}, {"lt", BinaryOp::lt, &lt},
    {"le", BinaryOp::le, &le}, {"gt", BinaryOp::gt, &gt}, {"ge", BinaryOp::ge, &ge},
    {"logical_and", BinaryOp::logical_and, &logical_and}, {"logical_or", BinaryOp::logical_or, &logical_or},
    {"logical_xor", BinaryOp::logical_xor, &logical_xor},
};

// The reference of a binary op computed in `compute` dtype: inputs and result rounded to it.
RefTensor expected_binary(BinaryOp op, const Tensor& a, const Tensor& b, DType compute) {
  RefTensor ra = reference::from_tensor(a), rb = reference::from_tensor(b);
  RefTensor out = reference::zip(ra, rb, [&](double x, double y) {
    double value = reference::binary_value(op, reference::round_to(compute, x), reference::round_to(compute, y));
    if (!binary_gives_bool(op) && compute == DType::bool_) value = value != 0;
    if (!binary_gives_bool(op) && is_integral(compute)) {
      // Integer arithmetic wraps modulo 2^bits, as the kernels do.
      const int bits = static_cast<int>(dtype_size(compute)) * 8;
      const double modulus = std::ldexp(1.0, bits);
      if (bits < 64) {
        value = std::fmod(value, modulus);
        if (value < 0) value += modulus;
        if (compute != DType::u8 && value >= modulus / 2) value -= modulus;
      }
    }
    return value;
  });
  return out;
}
}  // namespace

TEST_CASE("binary arithmetic matches the reference for every dtype", "[elementwise]") {
  for (const BinaryCase& c : kArithmetic) {
    for (DType dtype : kAllDTypes) {
      if (dtype == DType::bool_ && (c.op == BinaryOp::sub)) continue;  // rejected, tested below
      for (int64_t size : kSizes) {
        for (const Shape& shape : shapes_for(size)) {
          Tensor a = random_tensor(shape, dtype, -3, 3);
          Tensor b = random_tensor(shape, dtype, -3, 3);
          if (c.op == BinaryOp::pow) {  // keep powers in a well-conditioned range
            a = is_floating(dtype) ? random_tensor(shape, dtype, 0.5, 2) : a;
            b = is_floating(dtype) ? random_tensor(shape, dtype, -2, 2) : random_tensor(shape, dtype, 0, 0.4);
          }
          if (c.op == BinaryOp::div && !is_floating(dtype)) b = where(eq(b, 0), ones_like(b), b);
          const std::string what = std::string(c.name) + " " + std::string(dtype_name(dtype)) + " " + to_string(shape);
          const Tensor y = c.fn(a, b);
          const DType compute = c.op == BinaryOp::div && !is_floating(dtype) ? DType::f32 : dtype;
          REQUIRE(y.dtype() == compute);
          const Tolerance tol = c.op == BinaryOp::pow ? op_tolerance(compute) : tolerance_for(compute);
          check_matches(y, expected_binary(c.op, a, b, compute), tol, what);
          check_matches(c.fn(non_contiguous(a), non_contiguous(b)), expected_binary(c.op, a, b, compute), tol,
                        what + " non-contiguous");
        }
      }
    }
  }
}

TEST_CASE("comparisons and logical ops give bool for every dtype", "[elementwise]") {
  for (const BinaryCase& c : kPredicates) {
    for (DType dtype : kAllDTypes) {
      for (int64_t size : kSizes) {
        const Tensor a = random_tensor({size, 3}, dtype, -2, 2);
        Tensor b = random_tensor({size, 3}, dtype, -2, 2);
        if (size > 2) b.narrow(0, 0, 2).copy_(a.narrow(0, 0, 2));  // some equal pairs
        const Tensor y = c.fn(a, b);
        REQUIRE(y.dtype() == DType::bool_);
        check_matches(y, expected_binary(c.op, a, b, dtype), std::string(c.name) + " " + std::string(dtype_name(dtype)));
      }
    }
  }
}

TEST_CASE("broadcasting follows NumPy rules", "[elementwise]") {
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {{3, 1}, {1, 4}}, {{5, 4}, {4}}, {{1}, {2, 3, 4}}, {{2, 1, 33}, {7, 1}}, {{0, 3}, {1, 3}}, {{}, {31}}, {{257, 1}, {1, 1}}};
  for (const auto& [shape_a, shape_b] : pairs) {
    for (DType dtype : {DType::f32, DType::bf16, DType::i64}) {
      const Tensor a = random_tensor(shape_a, dtype), b = random_tensor(shape_b, dtype);
      for (const BinaryCase& c : {kArithmetic[0], kArithmetic[2], kArithmetic[4]}) {
        const Tensor y = c.fn(a, b);
        check_matches(y, expected_binary(c.op, a, b, dtype), to_string(shape_a) + " with " + to_string(shape_b));
        check_matches(c.fn(b, a), expected_binary(c.op, b, a, dtype));
      }
    }
  }
  // An expanded (stride-0) operand.
  const Tensor row = random_tensor({1, 33}, DType::f32);
  const Tensor expanded = row.expand({31, 33});
  const Tensor other = random_tensor({31, 33}, DType::f32);
  check_matches(mul(expanded, other), expected_binary(BinaryOp::mul, expanded, other, DType::f32));
  REQUIRE_THROWS_AS(add(random_tensor({2, 3}, DType::f32), random_tensor({4, 3}, DType::f32)), Error);
}

TEST_CASE("type promotion matches PyTorch", "[elementwise][promotion]") {
  const Tensor f32 = ones({2}), f64 = ones({2}, {.dtype = DType::f64}), f16 = ones({2}, {.dtype = DType::f16});
  const Tensor bf = ones({2}, {.dtype = DType::bf16}), i32 = ones({2}, {.dtype = DType::i32});
  const Tensor i64 = ones({2}, {.dtype = DType::i64}), u8 = ones({2}, {.dtype = DType::u8});
  const Tensor i8 = ones({2}, {.dtype = DType::i8}), b = ones({2}, {.dtype = DType::bool_});
  CHECK((f32 + f64).dtype() == DType::f64);
  CHECK((f16 + bf).dtype() == DType::f32);
  CHECK((i32 + f16).dtype() == DType::f16);
  CHECK((i32 + i64).dtype() == DType::i64);
  CHECK((b + u8).dtype() == DType::u8);
  CHECK((i8 + u8).dtype() == DType::i32);  // PyTorch: int16, which Keel does not have
  // Scalars do not raise the dtype within a category, but lift the category.
  CHECK((i32 + 2.5).dtype() == DType::f32);
  CHECK((f16 * 2.0).dtype() == DType::f16);
  CHECK((i8 + 5).dtype() == DType::i8);
  CHECK((b + 1).dtype() == DType::i64);
  CHECK((b + true).dtype() == DType::bool_);
  CHECK((u8 / 2).dtype() == DType::f32);
  // 0-D tensors rank below dimensioned ones.
  const Tensor zero_dim_f64 = scalar_tensor(1.5, DType::f64);
  CHECK((f32 + zero_dim_f64).dtype() == DType::f32);
  CHECK((i32 + zero_dim_f64).dtype() == DType::f64);
  CHECK((scalar_tensor(1, DType::i64) + zero_dim_f64).dtype() == DType::f64);
  CHECK(result_type(i32, scalar_tensor(2, DType::i64)) == DType::i32);
}

TEST_CASE("scalar operands and in-place binary ops", "[elementwise]") {
  for (DType dtype : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64}) {
    for (int64_t size : kSizes) {
      const Tensor a = random_tensor({size}, dtype);
      const RefTensor ra = reference::from_tensor(a);
      const double s = is_floating(dtype) ? 1.5 : 3;
      const Scalar scalar = is_floating(dtype) ? Scalar(1.5) : Scalar(3);
      auto expect = [&](auto f) {
        return reference::map(ra, [&](double x) { return reference::round_to(dtype, f(x)); });
      };
      check_matches(a + scalar, expect([&](double x) { return x + s; }));
      check_matches(scalar - a, expect([&](double x) { return s - x; }));
      check_matches(a * scalar, expect([&](double x) { return x * s; }));
      Tensor c = a.clone();
      c += scalar;
      check_matches(c, expect([&](double x) { return x + s; }));
      c = a.clone();
      mul_(c, a);
      check_matches(c, expect([&](double x) { return x * x; }));
    }
  }
  // In-place with broadcasting of the other operand, and into a non-contiguous view.
  Tensor m = random_tensor({5, 7}, DType::f32);
  const RefTensor before = reference::from_tensor(m);
  const Tensor row = random_tensor({7}, DType::f32);
  Tensor view = m.t();
  REQUIRE_THROWS_AS(add_(view, row), Error);  // [7, 5] and [7] do not broadcast
  add_(m, row);
  check_matches(m, reference::zip(before, reference::from_tensor(row), [](double x, double y) {
                  return static_cast<double>(static_cast<float>(x + y));
                }));
  Tensor ints = tensor({1, 2, 3});
  REQUIRE_THROWS_AS(ints += 0.5, Error);  // float result into i64
  Tensor small = ones({3});
  REQUIRE_THROWS_AS(small += ones({2, 3}), Error);  // would need to grow the output
  Tensor flags = tensor({true, false});
  REQUIRE_THROWS_AS(sub(flags, flags), Error);
}

TEST_CASE("where and clamp", "[elementwise]") {
  for (DType dtype : kAllDTypes) {
    for (int64_t size : kSizes) {
      const Tensor condition = random_tensor({size, 3}, DType::bool_);
      const Tensor a = random_tensor({size, 3}, dtype), b = random_tensor({1, 3}, dtype);
      const Tensor y = where(condition, a, b);
      const RefTensor rc = reference::from_tensor(condition), ra = reference::from_tensor(a), rb = reference::from_tensor(b);
      RefTensor expected{{size, 3}, std::vector<double>(static_cast<size_t>(size * 3))};
      for (int64_t i = 0; i < size * 3; ++i) expected.values[i] = rc.values[i] != 0 ? ra.values[i] : rb.values[i % 3];
      check_matches(y, expected, std::string("where ") + std::string(dtype_name(dtype)));
      check_matches(where(non_contiguous(condition), non_contiguous(a), b), expected, "where non-contiguous");
    }
  }
  const Tensor x = tensor({-3.0, -0.5, 0.0, 0.5, 3.0, std::nan("")});
  check_matches(clamp(x, -1.0, 1.0), reference::RefTensor{{6}, {-1, -0.5, 0, 0.5, 1, std::nan("")}});
  check_matches(clamp_min(x, 0.0), reference::RefTensor{{6}, {0, 0, 0, 0.5, 3, std::nan("")}});
  check_matches(clamp_max(x, 0.0), reference::RefTensor{{6}, {-3, -0.5, 0, 0, 0, std::nan("")}});
  const Tensor ints = tensor({-5, 0, 5});
  CHECK(clamp(ints, -1, 1).dtype() == DType::i64);
  CHECK(clamp(ints, -0.5, 0.5).dtype() == DType::f32);
  check_matches(clamp(ints, -1, 1), reference::RefTensor{{3}, {-1, 0, 1}});
  Tensor y = x.clone();
  clamp_(y, 0.0, 1.0);
  check_matches(y, reference::RefTensor{{6}, {0, 0, 0, 0.5, 1, std::nan("")}});
  const Tensor low = tensor({0.0, 1.0, 2.0}), high = tensor({1.0, 2.0, 3.0});
  check_matches(clamp(tensor({5.0, -5.0, 2.5}), low, high), reference::RefTensor{{3}, {1, 1, 2.5}});
  REQUIRE_THROWS_AS(where(tensor({1, 0}), x, x), Error);  // condition must be bool
}

TEST_CASE("f16 and bf16 compute in f32 and round once", "[elementwise]") {
  const Tensor a = tensor({1.0, 2049.0, 0.1}).to(DType::f16);
  const Tensor b = tensor({1e-4, 1.0, 0.2}).to(DType::f16);
  const Tensor y = a + b;
  const RefTensor ra = reference::from_tensor(a), rb = reference::from_tensor(b);
  for (int i = 0; i < 3; ++i)
    CHECK(reference::from_tensor(y).values[i] == reference::round_to(DType::f16, static_cast<float>(ra.values[i]) + static_cast<float>(rb.values[i])));
}

TEST_CASE("elementwise errors name the op and shapes", "[elementwise][errors]") {
  try {
    add(ones({2, 3}), ones({4, 5}));
    FAIL("no error");
  } catch (const Error& error) {
    const std::string message = error.what();
    CHECK(message.find("[add]") != std::string::npos);
    CHECK(message.find("[2, 3]") != std::string::npos);
    CHECK(message.find("[4, 5]") != std::string::npos);
  }
  REQUIRE_THROWS_AS(relu(tensor({true, false})), Error);
  // PyTorch refuses subtraction with any bool operand, and integers to negative integer powers.
  REQUIRE_THROWS_AS(sub(ones({2}), tensor({true, false})), Error);
  REQUIRE_THROWS_AS(ones({2}) - true, Error);
  REQUIRE_THROWS_AS(tensor({1, 2}) - true, Error);
  REQUIRE_THROWS_AS(pow(tensor({2, 3}), -1), Error);
  REQUIRE_THROWS_AS(pow(tensor({true}), -1), Error);
  CHECK(pow(tensor({2.0, 4.0}), -1).dtype() == DType::f32);
  CHECK(pow(tensor({2, 4}), -1.0).dtype() == DType::f32);
  check_matches(pow(tensor({2, 3}), tensor({-1, 2})), RefTensor{{2}, {0, 9}});  // tensor exponents are allowed
  REQUIRE_THROWS_AS(clamp(tensor({true}), 0, 1), Error);
  REQUIRE_THROWS_AS(Tensor().dim(), Error);
}

// ---- vectorized f32 exp and 16-bit conversions (kernels/op_math.h exp_f32, elementwise.isa.cpp) --
// (These cases came later; their extra headers are included here.)
#include <algorithm>
#include <cstring>
#include <limits>

#include "keel/kernels/convert.h"
#include "keel/kernels/cpu/cpu_kernels.h"
#include "keel/kernels/op_math.h"

namespace {


// |y - exact| in units of the last place of a float at `exact` (2^-149 below 2^-126). y = inf
// is exact when `exact` itself rounds to inf, else it counts as 2^128.
double ulp_error(float y, double exact) {
  if (std::isnan(exact)) return std::isnan(y) ? 0.0 : INFINITY;
  if (std::isnan(y)) return INFINITY;
  if (std::isinf(y) && std::isinf(static_cast<float>(exact)) && (y > 0) == (exact > 0)) return 0.0;
  const double magnitude = std::isinf(y) ? std::ldexp(1.0, 128) : static_cast<double>(y);
  int exponent = 0;
  std::frexp(std::fabs(exact), &exponent);  // |exact| in [2^(exponent-1), 2^exponent)
  const double ulp = std::ldexp(1.0, std::max(exponent - 1, -126) - 23);
  return std::fabs(magnitude - exact) / ulp;
}

// Applies fn to `inputs` as f32 tensors of up to 4M elements; returns the outputs.
std::vector<float> apply_f32(const std::vector<float>& inputs, Tensor (*fn)(const Tensor&)) {
  std::vector<float> outputs(inputs.size());
  constexpr size_t kPiece = size_t{1} << 22;
  for (size_t start = 0; start < inputs.size(); start += kPiece) {
    const size_t count = std::min(kPiece, inputs.size() - start);
    const Tensor x = from_blob(const_cast<float*>(inputs.data() + start), {static_cast<int64_t>(count)});
    const Tensor y = fn(x).contiguous();
    REQUIRE(y.dtype() == DType::f32);
    std::memcpy(outputs.data() + start, y.data_ptr<float>(), count * sizeof(float));
  }
  return outputs;
}

}  // namespace

TEST_CASE("f32 exp is within 2 ulp of e^x over the whole float range", "[elementwise][exp]") {
  std::vector<float> inputs;
  // Every 331st float from 0 to 89 and from -0 to -104 (all binades, subnormal inputs too), every
  // 257th float in [-1, 1], a decimal grid of step 2^-10 across [-110, 95]. (Every float in
  // [-104, 89] was checked once outside the tests: worst 0.99 ulp without fma, 1.01 with.)
  for (uint64_t bits = 0; bits <= detail::float_bits(89.0f); bits += 331) inputs.push_back(detail::bits_float(static_cast<uint32_t>(bits)));
  for (uint64_t bits = 0x80000000u; bits <= detail::float_bits(-104.0f); bits += 331) inputs.push_back(detail::bits_float(static_cast<uint32_t>(bits)));
  for (uint64_t bits = 0; bits <= detail::float_bits(1.0f); bits += 257) {
    inputs.push_back(detail::bits_float(static_cast<uint32_t>(bits)));
    inputs.push_back(-detail::bits_float(static_cast<uint32_t>(bits)));
  }
  for (int step = -110 * 1024; step <= 95 * 1024; ++step) inputs.push_back(static_cast<float>(step) / 1024.0f);
  // Edges: the overflow threshold (ln FLT_MAX = 88.7228391...: the float below it is the last
  // finite result), the subnormal range and the underflow threshold (e^x < 2^-150 below
  // -103.972...), and far outside.
  const float kLastFinite = 88.72283172607421875f, kFirstInf = 88.72283935546875f;
  const std::vector<float> edges = {
      0.0f, -0.0f, INFINITY, -INFINITY, 88.72f, kLastFinite, kFirstInf, -87.3f, -103.9f, -103.97f,
      -103.972f, -103.973f, -103.2789f, -104.0f, 89.0f, 89.1f, -104.1f, 1e30f, -1e30f,
      std::numeric_limits<float>::max(), std::numeric_limits<float>::lowest(),
      std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min(), -1e-40f};
  inputs.insert(inputs.end(), edges.begin(), edges.end());
  for (int k = 1; k <= 64; ++k) {  // the floats around both thresholds
    inputs.push_back(detail::bits_float(detail::float_bits(kFirstInf) + static_cast<uint32_t>(k - 32)));
    inputs.push_back(detail::bits_float(detail::float_bits(kLastFinite) - static_cast<uint32_t>(k)));
    inputs.push_back(detail::bits_float(detail::float_bits(-103.972f) + static_cast<uint32_t>(k - 32)));
    inputs.push_back(detail::bits_float(detail::float_bits(-87.3365f) + static_cast<uint32_t>(k - 32)));  // 2^-126
  }

  const std::vector<float> outputs = apply_f32(inputs, &exp);
  double worst = 0.0;
  float worst_input = 0.0f;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const double error = ulp_error(outputs[i], std::exp(static_cast<double>(inputs[i])));
    if (!(error <= worst)) {
      worst = error;
      worst_input = inputs[i];
    }
  }
  INFO("ISA " << cpu::active_isa() << ", " << inputs.size() << " inputs; worst " << worst << " ulp at x = "
              << std::hexfloat << worst_input);
  CHECK(worst <= 2.0);
  CHECK(worst > 0.0);  // a broken sweep (say, every output equal to the reference) must not pass

  const Tensor special = exp(tensor({0.0f, -0.0f, INFINITY, -INFINITY, NAN, kLastFinite, kFirstInf, -104.0f, -100.0f}, DType::f32));
  const float* s = special.data_ptr<float>();
  CHECK(s[0] == 1.0f);
  CHECK(s[1] == 1.0f);
  CHECK(s[2] == INFINITY);
  CHECK(detail::float_bits(s[3]) == 0u);  // +0
  CHECK(std::isnan(s[4]));
  CHECK(std::isfinite(s[5]));
  CHECK(s[5] > 3.4e38f);
  CHECK(s[6] == INFINITY);
  CHECK(detail::float_bits(s[7]) == 0u);
  CHECK(s[8] > 0.0f);                                        // a subnormal, not flushed
  CHECK(s[8] < std::numeric_limits<float>::min());
}

TEST_CASE("f32 sigmoid and silu built on the vector exp stay within 3 ulp", "[elementwise][exp]") {
  // Where e^-x overflows (x < -88.72) sigmoid is 1 / inf = 0 as with the C library's expf, so the
  // sweep stops there.
  std::vector<float> inputs;
  for (int step = -88 * 1024; step <= 95 * 1024; ++step) inputs.push_back(static_cast<float>(step) / 1024.0f);
  for (uint64_t bits = 0; bits <= detail::float_bits(1.0f); bits += 4099) {
    inputs.push_back(detail::bits_float(static_cast<uint32_t>(bits)));
    inputs.push_back(-detail::bits_float(static_cast<uint32_t>(bits)));
  }
  const std::vector<float> sig = apply_f32(inputs, &sigmoid), swish = apply_f32(inputs, &silu);
  double worst_sigmoid = 0.0, worst_silu = 0.0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const double x = inputs[i];
    worst_sigmoid = std::max(worst_sigmoid, ulp_error(sig[i], 1.0 / (1.0 + std::exp(-x))));
    worst_silu = std::max(worst_silu, ulp_error(swish[i], x / (1.0 + std::exp(-x))));
  }
  INFO("ISA " << cpu::active_isa() << ": sigmoid " << worst_sigmoid << " ulp, silu " << worst_silu << " ulp");
  CHECK(worst_sigmoid <= 3.0);
  CHECK(worst_silu <= 3.0);
  const Tensor ends = sigmoid(tensor({NAN, INFINITY, -INFINITY, -90.0f}, DType::f32));
  CHECK(std::isnan(ends.data_ptr<float>()[0]));
  CHECK(ends.data_ptr<float>()[1] == 1.0f);
  CHECK(ends.data_ptr<float>()[2] == 0.0f);
  CHECK(ends.data_ptr<float>()[3] == 0.0f);
}

namespace {

// All 65536 bit patterns of a 16-bit dtype, as a tensor over `patterns`.
Tensor all_patterns(std::vector<uint16_t>& patterns, DType dtype) {
  patterns.resize(65536);
  for (uint32_t i = 0; i < 65536; ++i) patterns[i] = static_cast<uint16_t>(i);
  return from_blob(patterns.data(), {65536}, {.dtype = dtype});
}

template <typename T> uint16_t bits_of_16(T value) { return value.bits; }
template <typename T> T from_bits_16(uint16_t bits) { return T(bits, typename T::FromBits{}); }
template <typename T> std::vector<uint16_t> bits_vector(const Tensor& t) {
  const Tensor c = t.contiguous();
  REQUIRE(c.dtype() == dtype_of_v<T>);
  const uint16_t* data = reinterpret_cast<const uint16_t*>(c.data_ptr<T>());
  return std::vector<uint16_t>(data, data + c.numel());
}

// Converts every 16-bit pattern of T to f32/f64/the other 16-bit type/integers through
// Tensor::to and compares with the scalar conversion (keel::convert, i.e. core/half.h).
template <typename T, typename Other> void check_patterns_convert() {
  std::vector<uint16_t> patterns;
  const Tensor h = all_patterns(patterns, dtype_of_v<T>);
  const Tensor f = h.to(DType::f32), d = h.to(DType::f64), o = h.to(dtype_of_v<Other>);
  const Tensor i32 = h.to(DType::i32), i8 = h.to(DType::i8), flag = h.to(DType::bool_);
  const Tensor back = f.to(dtype_of_v<T>);
  const std::vector<uint16_t> other_bits = bits_vector<Other>(o), back_bits = bits_vector<T>(back);
  int mismatches = 0;
  for (uint32_t i = 0; i < 65536; ++i) {
    const T value = from_bits_16<T>(static_cast<uint16_t>(i));
    const float expected = static_cast<float>(value);
    const double expected_double = static_cast<double>(expected);
    bool same = detail::float_bits(f.data_ptr<float>()[i]) == detail::float_bits(expected);
    same &= std::memcmp(&d.data_ptr<double>()[i], &expected_double, sizeof(double)) == 0;
    same &= other_bits[i] == bits_of_16(Other(expected));
    same &= back_bits[i] == bits_of_16(T(expected));
    same &= i32.data_ptr<int32_t>()[i] == convert<int32_t, T>(value);
    same &= i8.data_ptr<int8_t>()[i] == convert<int8_t, T>(value);
    same &= flag.data_ptr<bool>()[i] == convert<bool, T>(value);
    if (!std::isnan(expected)) same &= back_bits[i] == i;  // 16 -> 32 -> 16 is the identity
    if (!same && ++mismatches <= 5) FAIL_CHECK(dtype_name(dtype_of_v<T>) << " pattern 0x" << std::hex << i);
  }
  CHECK(mismatches == 0);
}

}  // namespace

TEST_CASE("f16 and bf16 conversions through copy match the scalar Half and BFloat16 bit for bit", "[elementwise][dtype]") {
  INFO("ISA " << cpu::active_isa());
  check_patterns_convert<Half, BFloat16>();
  check_patterns_convert<BFloat16, Half>();

  // Floats: every 1021st pattern (all exponents, signs, NaN payloads) plus every float in the
  // windows where the rounding has a special case: the f16 subnormal boundary 2^-14, half the
  // smallest f16 subnormal 2^-25, the f16 overflow threshold 65520, [1, 1 + 2^-6) (every
  // combination of the low 17 bits: bf16 and f16 ties), the largest finite float, inf and NaN.
  std::vector<float> floats;
  for (uint64_t bits = 0; bits < (uint64_t{1} << 32); bits += 1021) floats.push_back(detail::bits_float(static_cast<uint32_t>(bits)));
  for (const uint32_t center : {0x38800000u, 0x33000000u, 0x477ff000u, 0x3f810000u, 0x7f7f0000u, 0x7f800000u, 0x7fc00000u}) {
    for (uint32_t bits = center - 0x10000u; bits < center + 0x10000u; ++bits) {
      floats.push_back(detail::bits_float(bits));
      floats.push_back(detail::bits_float(bits | 0x80000000u));
    }
  }
  const Tensor x = from_blob(floats.data(), {static_cast<int64_t>(floats.size())});
  const std::vector<uint16_t> half_bits = bits_vector<Half>(x.to(DType::f16));
  const std::vector<uint16_t> bf16_bits = bits_vector<BFloat16>(x.to(DType::bf16));
  int64_t half_mismatches = 0, bf16_mismatches = 0;
  for (size_t i = 0; i < floats.size(); ++i) {
    half_mismatches += half_bits[i] != Half(floats[i]).bits;
    bf16_mismatches += bf16_bits[i] != BFloat16(floats[i]).bits;
  }
  INFO(floats.size() << " floats");
  CHECK(half_mismatches == 0);
  CHECK(bf16_mismatches == 0);

  // Doubles and integers go through float first (convert<Half, double> = Half(float(d))).
  std::vector<double> doubles = {0.0, -0.0, 65504.0, 65519.99, 65520.0, 1e300, -1e300, 5.96e-8, 2.98e-8,
                                 std::nan(""), INFINITY, -INFINITY, 1.0 + 1.0 / 2048, 1.0 + 1.0 / 256};
  for (int k = -3000; k < 3000; ++k) doubles.push_back(std::ldexp(1.0 + k / 3001.0, k / 100));
  const Tensor xd = from_blob(doubles.data(), {static_cast<int64_t>(doubles.size())}, {.dtype = DType::f64});
  std::vector<int32_t> ints;
  for (int32_t v = -300000; v <= 300000; v += 7) ints.push_back(v);
  const Tensor xi = from_blob(ints.data(), {static_cast<int64_t>(ints.size())}, {.dtype = DType::i32});
  const std::vector<uint16_t> dh = bits_vector<Half>(xd.to(DType::f16)), db = bits_vector<BFloat16>(xd.to(DType::bf16));
  const std::vector<uint16_t> ih = bits_vector<Half>(xi.to(DType::f16)), ib = bits_vector<BFloat16>(xi.to(DType::bf16));
  int64_t other_mismatches = 0;
  for (size_t i = 0; i < doubles.size(); ++i)
    other_mismatches += (dh[i] != convert<Half, double>(doubles[i]).bits) + (db[i] != convert<BFloat16, double>(doubles[i]).bits);
  for (size_t i = 0; i < ints.size(); ++i)
    other_mismatches += (ih[i] != convert<Half, int32_t>(ints[i]).bits) + (ib[i] != convert<BFloat16, int32_t>(ints[i]).bits);
  CHECK(other_mismatches == 0);

  // A strided destination and source (the scalar path) and an offset start (chunk tails).
  Tensor strided = zeros({1000}, {.dtype = DType::f16}).slice(0, 0, 1000, 2);
  strided.copy_(x.narrow(0, 3, 500));
  const std::vector<uint16_t> strided_bits = bits_vector<Half>(strided);
  const std::vector<uint16_t> offset_bits = bits_vector<Half>(x.narrow(0, 3, 500).to(DType::f16));
  for (int i = 0; i < 500; ++i) {
    CHECK(strided_bits[static_cast<size_t>(i)] == Half(floats[static_cast<size_t>(i) + 3]).bits);
    CHECK(offset_bits[static_cast<size_t>(i)] == Half(floats[static_cast<size_t>(i) + 3]).bits);
  }
}

namespace {

// Every op on all 65536 patterns of T (a) against the reversed patterns (b), contiguous, with
// a broadcast scalar on either side, from an unaligned offset and strided: compared with the
// scalar math in float rounded once to T. Exact ops must match bit for bit (any NaN for a NaN:
// which NaN operand x86 propagates depends on operand order); exp/sigmoid may differ by one
// 16-bit ulp, since the f32 exp may round differently with and without fma contraction.
template <typename T> void check_patterns_ops() {
  std::vector<uint16_t> a_bits;
  const Tensor a = all_patterns(a_bits, dtype_of_v<T>);
  std::vector<uint16_t> b_bits(a_bits.rbegin(), a_bits.rend());
  const Tensor b = from_blob(b_bits.data(), {65536}, {.dtype = dtype_of_v<T>});
  const int64_t kScalarIndex = 0x3c01;  // some ordinary value in either format
  const float scalar = static_cast<float>(from_bits_16<T>(b_bits[kScalarIndex]));
  const Tensor b_scalar = b.narrow(0, kScalarIndex, 1).expand({65536});

  auto value = [](uint16_t bits) { return static_cast<float>(from_bits_16<T>(bits)); };
  auto same = [](uint16_t actual, float expected, bool exact) {
    const uint16_t expected_bits = T(expected).bits;
    if (std::isnan(expected)) return std::isnan(static_cast<float>(from_bits_16<T>(actual)));
    if (exact) return actual == expected_bits;
    return actual == expected_bits || actual + 1 == expected_bits || actual == expected_bits + 1;
  };
  auto check_binary = [&](const char* name, Tensor (*fn)(const Tensor&, const Tensor&), auto math_fn) {
    const std::vector<uint16_t> plain = bits_vector<T>(fn(a, b)), right = bits_vector<T>(fn(a, b_scalar)),
                                left = bits_vector<T>(fn(b_scalar, a)),
                                offset = bits_vector<T>(fn(a.narrow(0, 3, 60000), b.narrow(0, 5, 60000))),
                                strided = bits_vector<T>(fn(a.slice(0, 0, 65536, 2), b.slice(0, 1, 65536, 2)));
    int mismatches = 0;
    for (size_t i = 0; i < 65536; ++i) {
      bool ok = same(plain[i], math_fn(value(a_bits[i]), value(b_bits[i])), true);
      ok &= same(right[i], math_fn(value(a_bits[i]), scalar), true);
      ok &= same(left[i], math_fn(scalar, value(a_bits[i])), true);
      if (i < 60000) ok &= same(offset[i], math_fn(value(a_bits[i + 3]), value(b_bits[i + 5])), true);
      if (i < 32768) ok &= same(strided[i], math_fn(value(a_bits[2 * i]), value(b_bits[2 * i + 1])), true);
      if (!ok && ++mismatches <= 5) FAIL_CHECK(name << " " << dtype_name(dtype_of_v<T>) << " at pattern 0x" << std::hex << i);
    }
    CHECK(mismatches == 0);
  };
  check_binary("add", &add, [](float x, float y) { return x + y; });
  check_binary("sub", &sub, [](float x, float y) { return x - y; });
  check_binary("mul", &mul, [](float x, float y) { return x * y; });
  check_binary("div", &div, [](float x, float y) { return x / y; });
  check_binary("maximum", &maximum, [](float x, float y) { return math::binary<BinaryOp::maximum>(x, y); });
  check_binary("minimum", &minimum, [](float x, float y) { return math::binary<BinaryOp::minimum>(x, y); });

  // Comparisons give bool from the same float values.
  const Tensor less = lt(a, b), equal = eq(a, b_scalar);
  int compare_mismatches = 0;
  for (size_t i = 0; i < 65536; ++i) {
    compare_mismatches += less.data_ptr<bool>()[i] != (value(a_bits[i]) < value(b_bits[i]));
    compare_mismatches += equal.data_ptr<bool>()[i] != (value(a_bits[i]) == scalar);
  }
  CHECK(compare_mismatches == 0);

  auto check_unary = [&](const char* name, Tensor (*fn)(const Tensor&), auto math_fn, bool exact) {
    const std::vector<uint16_t> plain = bits_vector<T>(fn(a)), strided = bits_vector<T>(fn(a.slice(0, 1, 65536, 3)));
    int mismatches = 0;
    for (size_t i = 0; i < 65536; ++i) {
      bool ok = same(plain[i], math_fn(value(a_bits[i])), exact);
      if (i < strided.size()) ok &= same(strided[i], math_fn(value(a_bits[3 * i + 1])), exact);
      if (!ok && ++mismatches <= 5) FAIL_CHECK(name << " " << dtype_name(dtype_of_v<T>) << " at pattern 0x" << std::hex << i);
    }
    CHECK(mismatches == 0);
  };
  check_unary("neg", &neg, [](float x) { return -x; }, true);
  check_unary("abs", &abs, [](float x) { return math::unary<UnaryOp::abs>(x); }, true);
  check_unary("relu", &relu, [](float x) { return math::unary<UnaryOp::relu>(x); }, true);
  check_unary("sqrt", &sqrt, [](float x) { return std::sqrt(x); }, true);
  check_unary("tanh", &tanh, [](float x) { return std::tanh(x); }, true);
  check_unary("exp", &exp, [](float x) { return math::exp_f32(x); }, false);
  check_unary("sigmoid", &sigmoid, [](float x) { return math::unary<UnaryOp::sigmoid>(x); }, false);
}

}  // namespace

TEST_CASE("f16 and bf16 ops on every bit pattern match float math rounded once", "[elementwise][dtype]") {
  INFO("ISA " << cpu::active_isa());
  check_patterns_ops<Half>();
  check_patterns_ops<BFloat16>();
}
