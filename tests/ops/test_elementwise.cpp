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
