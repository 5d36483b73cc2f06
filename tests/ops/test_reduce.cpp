// Reductions against the float64 reference: every op x dtype it takes, sizes 0/1/31/32/33/257,
// 1-D/2-D/3-D shapes with inner, outer, middle, several and all dims, keepdim both ways,
// transposed/strided/broadcast inputs, NaN propagation, f32 accuracy on 1e7 elements, errors.
#include <cmath>
#include <limits>

#include "test_util.h"

using namespace keel;
using namespace keel::test;
using reference::RefTensor;

namespace {

struct Case {
  Shape shape;
  Dims dims;
};

// Shapes and dim sets: 1-D over every standard size, 2-D [n, 33] and [33, 257], 3-D with every
// dim subset (inner, outer, middle, pairs, all), with negative dims mixed in.
std::vector<Case> cases() {
  std::vector<Case> result;
  for (int64_t n : kSizes) {
    result.push_back({{n}, {}});
    result.push_back({{n}, {0}});
    result.push_back({{n}, {-1}});
    result.push_back({{n, 33}, {0}});
    result.push_back({{33, n}, {1}});
    result.push_back({{n, 5}, {-1}});
    result.push_back({{3, n}, {0, 1}});
    result.push_back({{n, 2, 3}, {1}});
  }
  result.push_back({{33, 257}, {1}});
  result.push_back({{33, 257}, {0}});
  result.push_back({{33, 257}, {}});
  result.push_back({{33, 257}, {-1, 0}});
  for (const Dims& dims : std::vector<Dims>{{}, {0}, {1}, {2}, {0, 1}, {0, 2}, {1, 2}, {0, 1, 2}, {-1, -3}}) {
    result.push_back({{5, 33, 7}, dims});
    result.push_back({{4, 1, 31}, dims});
    result.push_back({{2, 0, 3}, dims});
  }
  result.push_back({{}, {}});
  result.push_back({{}, {0}});
  return result;
}

// Inputs of `case` in three layouts: contiguous, transposed (or strided for 1-D), and a
// strided slice of a larger tensor.
std::vector<std::pair<std::string, Tensor>> layouts(const Tensor& x) {
  std::vector<std::pair<std::string, Tensor>> result = {{"contiguous", x}, {"non-contiguous", non_contiguous(x)}};
  if (x.dim() >= 1) {
    Shape wide_shape = x.shape();
    wide_shape.back() *= 3;
    Tensor wide = zeros(wide_shape, x.options()).slice(-1, 1, wide_shape.back(), 3);
    wide.copy_(x);
    result.push_back({"strided", wide});
  }
  return result;
}

// Sum of |x| over each output's group: the scale of a sum's rounding error.
RefTensor abs_sum(const RefTensor& x, const Dims& dims, bool keepdim) {
  return reference::reduce(ReduceOp::sum, reference::map(x, [](double v) { return std::fabs(v); }), dims, keepdim);
}

// Like check_matches, with the absolute tolerance scaled by `scale` (sum |x| for sums).
void check_close(const Tensor& actual, const RefTensor& expected, const RefTensor& scale, Tolerance tol,
                 const std::string& what) {
  INFO(what);
  REQUIRE(actual.shape() == expected.shape);
  const RefTensor got = reference::from_tensor(actual);
  for (int64_t i = 0; i < got.numel(); ++i) {
    const Tolerance scaled{tol.atol + tol.rtol * scale.values[i], tol.rtol};
    if (!close(got.values[i], expected.values[i], scaled)) {
      FAIL_CHECK("element " << i << ": got " << got.values[i] << ", expected " << expected.values[i]);
      return;
    }
  }
  SUCCEED();
}

std::string describe(const char* op, DType dtype, const Case& c, bool keepdim, const std::string& layout) {
  return std::string(op) + " " + std::string(dtype_name(dtype)) + " shape " + to_string(c.shape) + " dims " +
         to_string(c.dims) + (keepdim ? " keepdim " : " ") + layout;
}

// Inputs for each op: prod near 1 (integers in {-1, 1} with rare 2s, so that products stay
// exact), all/any with zeros mixed in, the rest the standard random values.
Tensor input_for(ReduceOp op, const Shape& shape, DType dtype) {
  if (op == ReduceOp::prod) {
    if (is_floating(dtype)) return random_tensor(shape, dtype, 0.9, 1.1);
    Tensor u = rand(shape, {.dtype = DType::f64});
    Tensor sign = dtype == DType::u8 ? ones(shape, {.dtype = DType::f64}) : where(lt(u, 0.5), -1.0, 1.0);
    Tensor values = where(lt(rand(shape, {.dtype = DType::f64}), 1.0 / 1024), 2.0, sign);
    return dtype == DType::bool_ ? gt(u, 0.001) : values.to(dtype);
  }
  Tensor x = random_tensor(shape, dtype);
  if (op == ReduceOp::all || op == ReduceOp::any) {
    Tensor zero_mask = lt(rand(shape, {.dtype = DType::f64}), 0.02);
    if (op == ReduceOp::any) zero_mask = lt(rand(shape, {.dtype = DType::f64}), 0.98);
    x = where(zero_mask, zeros({}, {.dtype = dtype}), x);
  }
  return x;
}

struct PrimitiveCase {
  const char* name;
  ReduceOp op;
  Tensor (*fn)(const Tensor&, const Dims&, bool);
};

Tensor sum_fn(const Tensor& x, const Dims& d, bool k) { return sum(x, d, k); }
Tensor prod_fn(const Tensor& x, const Dims& d, bool k) { return prod(x, d, k); }
Tensor amax_fn(const Tensor& x, const Dims& d, bool k) { return amax(x, d, k); }
Tensor amin_fn(const Tensor& x, const Dims& d, bool k) { return amin(x, d, k); }
Tensor all_fn(const Tensor& x, const Dims& d, bool k) { return all(x, d, k); }
Tensor any_fn(const Tensor& x, const Dims& d, bool k) { return any(x, d, k); }

// The reference indexes dims of a 0-D tensor out of range; reducing "dim 0" of a 0-D tensor
// is the same as reducing all of its (no) dims.
Dims ref_dims(const Case& c) { return c.shape.empty() ? Dims{} : c.dims; }

bool reduces_empty_dim(const Case& c) {
  if (c.shape.empty()) return false;
  const Dims dims = c.dims.empty() ? [&] {
    Dims all_dims;
    for (size_t d = 0; d < c.shape.size(); ++d) all_dims.push_back(static_cast<int64_t>(d));
    return all_dims;
  }() : c.dims;
  for (int64_t d : dims) {
    if (c.shape[wrap_dim(d, static_cast<int64_t>(c.shape.size()), "test")] == 0) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("sum, prod, amax, amin, all, any match the reference on every dtype and layout", "[reduce]") {
  const std::vector<PrimitiveCase> ops = {{"sum", ReduceOp::sum, &sum_fn},   {"prod", ReduceOp::prod, &prod_fn},
                                          {"amax", ReduceOp::amax, &amax_fn}, {"amin", ReduceOp::amin, &amin_fn},
                                          {"all", ReduceOp::all, &all_fn},    {"any", ReduceOp::any, &any_fn}};
  for (const PrimitiveCase& op : ops) {
    for (DType dtype : kAllDTypes) {
      for (const Case& c : cases()) {
        const Tensor base = input_for(op.op, c.shape, dtype);
        for (const auto& [layout, x] : layouts(base)) {
          for (bool keepdim : {false, true}) {
            const std::string what = describe(op.name, dtype, c, keepdim, layout);
            const bool extreme = op.op == ReduceOp::amax || op.op == ReduceOp::amin;
            if (extreme && reduces_empty_dim(c)) {
              INFO(what);
              REQUIRE_THROWS_AS(op.fn(x, c.dims, keepdim), keel::Error);
              continue;
            }
            const Tensor got = op.fn(x, c.dims, keepdim);
            // Result dtypes: sum/prod of bool and integers give i64; all/any give bool.
            DType expected_dtype = dtype;
            if ((op.op == ReduceOp::sum || op.op == ReduceOp::prod) && !is_floating(dtype)) expected_dtype = DType::i64;
            if (op.op == ReduceOp::all || op.op == ReduceOp::any) expected_dtype = DType::bool_;
            {
              INFO(what);
              REQUIRE(got.dtype() == expected_dtype);
            }
            const RefTensor xr = reference::from_tensor(x);
            const RefTensor expected = reference::reduce(op.op, xr, ref_dims(c), keepdim);
            Tolerance tol = tolerance_for(expected_dtype);
            if (op.op == ReduceOp::sum) {
              check_close(got, expected, abs_sum(xr, ref_dims(c), keepdim), {tol.atol, std::max(tol.rtol, 1e-6)}, what);
            } else {
              check_matches(got, expected, tol, what);
            }
          }
        }
      }
    }
  }
}

TEST_CASE("sum and prod take a result dtype", "[reduce]") {
  const Tensor x = random_tensor({33, 31}, DType::f32);
  const RefTensor xr = reference::from_tensor(x);
  const Tensor s = sum(x, {1}, false, DType::f64);
  CHECK(s.dtype() == DType::f64);
  check_matches(s, reference::reduce(ReduceOp::sum, xr, {1}, false), {1e-12, 1e-12}, "sum f32 -> f64");
  const Tensor i = random_tensor({33, 31}, DType::i32);
  const Tensor si = sum(i, {0}, true, DType::f32);
  CHECK(si.dtype() == DType::f32);
  check_matches(si, reference::reduce(ReduceOp::sum, reference::from_tensor(i), {0}, true), "sum i32 -> f32");
  const Tensor p = prod(input_for(ReduceOp::prod, {5, 7}, DType::i8), {}, false, DType::i32);
  CHECK(p.dtype() == DType::i32);
  CHECK(p.dim() == 0);
  const Tensor h = sum(random_tensor({257}, DType::f16), {}, false, DType::f32);
  CHECK(h.dtype() == DType::f32);
}

TEST_CASE("broadcast (stride-0) inputs reduce like their materialized copies", "[reduce]") {
  const Tensor row = random_tensor({1, 257}, DType::f32);
  const Tensor x = row.expand({33, 257});
  for (const Dims& dims : std::vector<Dims>{{0}, {1}, {}}) {
    const RefTensor xr = reference::from_tensor(x);
    check_close(sum(x, dims), reference::reduce(ReduceOp::sum, xr, dims, false), abs_sum(xr, dims, false),
                {1e-5, 1e-6}, "sum of expanded " + to_string(dims));
    check_matches(amax(x, dims), reference::reduce(ReduceOp::amax, xr, dims, false), "amax of expanded");
  }
}

TEST_CASE("mean, var, std, logsumexp, norm match the reference on floating dtypes", "[reduce]") {
  for (DType dtype : kFloatDTypes) {
    for (const Case& c : cases()) {
      const Tensor base = random_tensor(c.shape, dtype);
      for (const auto& [layout, x] : layouts(base)) {
        for (bool keepdim : {false, true}) {
          const RefTensor xr = reference::from_tensor(x);
          Tolerance tol = tolerance_for(dtype);
          if (dtype == DType::f32) tol = {1e-5, 1e-5};
          const auto what = [&](const char* op) { return describe(op, dtype, c, keepdim, layout); };

          const Tensor m = mean(x, c.dims, keepdim);
          CHECK(m.dtype() == dtype);
          check_matches(m, reference::reduce_with(xr, ref_dims(c), keepdim, [](const std::vector<double>& g) {
                          double total = 0;
                          for (double v : g) total += v;
                          return total / static_cast<double>(g.size());  // 0/0 = nan for empty
                        }), tol, what("mean"));

          for (double correction : {1.0, 0.0}) {
            const RefTensor v = reference::variance(xr, ref_dims(c), correction, keepdim);
            check_matches(var(x, c.dims, correction, keepdim), v, tol, what("var"));
            check_matches(keel::std(x, c.dims, correction, keepdim),
                          reference::map(v, [](double value) { return std::sqrt(value); }), tol, what("std"));
          }

          check_matches(logsumexp(x, c.dims, keepdim),
                        reference::reduce_with(xr, ref_dims(c), keepdim, [](const std::vector<double>& g) {
                          double total = 0;
                          for (double v : g) total += std::exp(v);
                          return std::log(total);
                        }), tol, what("logsumexp"));

          const std::vector<double> ps = {2.0, 1.0, 0.0, 3.0, 0.5, std::numeric_limits<double>::infinity(),
                                          -std::numeric_limits<double>::infinity()};
          for (double p : ps) {
            if (std::isinf(p) && reduces_empty_dim(c)) {
              REQUIRE_THROWS_AS(norm(x, p, c.dims, keepdim), keel::Error);
              continue;
            }
            const Tensor n = norm(x, p, c.dims, keepdim);
            CHECK(n.dtype() == dtype);
            check_matches(n, reference::reduce_with(xr, ref_dims(c), keepdim, [p, dtype](const std::vector<double>& g) {
                            if (std::isinf(p)) {
                              double best = p > 0 ? 0 : std::numeric_limits<double>::infinity();
                              for (double v : g) best = p > 0 ? std::max(best, std::fabs(v)) : std::min(best, std::fabs(v));
                              return best;
                            }
                            double total = 0;
                            for (double v : g) total += p == 0 ? (v != 0) : std::pow(std::fabs(v), p);
                            // Rounded to the dtype: a large 0.5-norm overflows f16 to inf.
                            return reference::round_to(dtype, p == 0 ? total : std::pow(total, 1.0 / p));
                          }), tol, what("norm") + " p=" + std::to_string(p));
          }
        }
      }
    }
  }
}

TEST_CASE("logsumexp keeps infinities and handles large values", "[reduce]") {
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor x = tensor({{1000.0, 1000.0}, {-inf, -inf}, {inf, 1.0}, {-inf, 2.0}}, DType::f32);
  const Tensor got = logsumexp(x, {1});
  const RefTensor r = reference::from_tensor(got);
  CHECK(r.values[0] == Approx(1000.0 + std::log(2.0)));
  CHECK(r.values[1] == -inf);
  CHECK(r.values[2] == inf);
  CHECK(r.values[3] == Approx(2.0));
}

TEST_CASE("max/min along a dim and argmax/argmin match the reference; the first extreme wins", "[reduce]") {
  // bool is accepted by max/min but not by argmax/argmin (as PyTorch).
  for (DType dtype : kAllDTypes) {
    for (const Case& c : cases()) {
      if (c.dims.size() != 1) continue;
      const Tensor base = random_tensor(c.shape, dtype);  // integers and bool have many ties
      for (const auto& [layout, x] : layouts(base)) {
        for (bool keepdim : {false, true}) {
          for (bool is_max : {true, false}) {
            const char* name = is_max ? "max" : "min";
            const std::string what = describe(name, dtype, c, keepdim, layout);
            INFO(what);
            const int64_t dim = c.dims[0];
            if (reduces_empty_dim(c)) {
              REQUIRE_THROWS_AS(is_max ? max(x, dim, keepdim) : min(x, dim, keepdim), keel::Error);
              if (dtype != DType::bool_)
                REQUIRE_THROWS_AS(is_max ? argmax(x, dim, keepdim) : argmin(x, dim, keepdim), keel::Error);
              continue;
            }
            const ValuesIndices got = is_max ? max(x, dim, keepdim) : min(x, dim, keepdim);
            REQUIRE(got.values.dtype() == dtype);
            REQUIRE(got.indices.dtype() == DType::i64);
            reference::RefValuesIndices expected{reference::from_tensor(x), RefTensor{{}, {0.0}}};
            if (x.dim() > 0)
              expected = reference::arg_reduce(is_max, reference::from_tensor(x), wrap_dim(dim, x.dim(), "test"), keepdim);
            const RefTensor& expected_values = expected.values;
            const RefTensor& expected_indices = expected.indices;
            check_matches(got.values, expected_values, {0, 0}, what + " values");
            check_matches(got.indices, expected_indices, {0, 0}, what + " indices");
            if (dtype == DType::bool_) {
              REQUIRE_THROWS_AS(is_max ? argmax(x, dim, keepdim) : argmin(x, dim, keepdim), keel::Error);
            } else {
              check_matches(is_max ? argmax(x, dim, keepdim) : argmin(x, dim, keepdim), expected_indices, {0, 0},
                            what + " argmax/argmin");
            }
          }
        }
      }
    }
  }
}

TEST_CASE("argmax/argmin without a dim index the flattened tensor; max()/min() reduce all", "[reduce]") {
  for (DType dtype : {DType::f32, DType::bf16, DType::i32, DType::u8}) {
    for (const Shape& shape : std::vector<Shape>{{1}, {257}, {33, 31}, {5, 33, 7}, {}}) {
      const Tensor base = random_tensor(shape, dtype);
      for (const auto& [layout, x] : layouts(base)) {
        INFO(std::string(dtype_name(dtype)) + " " + to_string(shape) + " " + layout);
        const RefTensor flat{{x.numel()}, reference::from_tensor(x).values};
        const auto expected_max = reference::arg_reduce(true, flat, 0, false);
        const auto expected_min = reference::arg_reduce(false, flat, 0, false);
        check_matches(argmax(x), expected_max.indices, Tolerance{0, 0});
        check_matches(argmin(x), expected_min.indices, Tolerance{0, 0});
        check_matches(max(x), expected_max.values, Tolerance{0, 0});
        check_matches(min(x), expected_min.values, Tolerance{0, 0});
        const Tensor kept = argmax(x, std::nullopt, true);
        CHECK(kept.shape() == Shape(shape.size(), 1));
        CHECK(kept.item<int64_t>() == static_cast<int64_t>(expected_max.indices.values[0]));
      }
    }
  }
}

TEST_CASE("NaN propagates through amax/amin/sum and wins max/min/argmax/argmin", "[reduce]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dtype : kFloatDTypes) {
    for (int64_t n : {1, 31, 32, 33, 257, 100000}) {
      for (int64_t position : {int64_t{0}, n / 2, n - 1}) {
        INFO(std::string(dtype_name(dtype)) + " n=" + std::to_string(n) + " NaN at " + std::to_string(position));
        Tensor x = random_tensor({3, n}, dtype);
        x.select(0, 1).narrow(0, position, 1).fill_(nan);
        x.select(0, 2).narrow(0, n - 1, 1).fill_(nan);  // a later NaN must not win over an earlier one
        if (position < n - 1) x.select(0, 1).narrow(0, n - 1, 1).fill_(nan);
        for (const Tensor& view : {x, non_contiguous(x)}) {
          const RefTensor xr = reference::from_tensor(view);
          check_matches(amax(view, {1}), reference::reduce(ReduceOp::amax, xr, {1}, false), "amax");
          check_matches(amin(view, {1}), reference::reduce(ReduceOp::amin, xr, {1}, false), "amin");
          CHECK(std::isnan(amax(view).item<double>()));
          CHECK(std::isnan(min(view).item<double>()));
          const RefTensor s = reference::from_tensor(sum(view, {1}));
          CHECK(!std::isnan(s.values[0]));
          CHECK(std::isnan(s.values[1]));
          for (bool is_max : {true, false}) {
            const auto expected = reference::arg_reduce(is_max, xr, 1, false);
            const ValuesIndices got = is_max ? max(view, 1) : min(view, 1);
            check_matches(got.values, expected.values, {0, 0}, "max/min values");
            check_matches(got.indices, expected.indices, {0, 0}, "max/min indices");
            CHECK(reference::from_tensor(got.indices).values[1] == static_cast<double>(position));
            const Tensor flat_index = is_max ? argmax(view) : argmin(view);
            CHECK(flat_index.item<int64_t>() == n + position);  // row 1's NaN is the first one
            // The same rows as contiguous columns, reduced over the outer dim (the row-wise kernel).
            const Tensor columns = view.t().contiguous();
            const ValuesIndices by_column = is_max ? max(columns, 0) : min(columns, 0);
            check_matches(by_column.values, expected.values, {0, 0}, "max/min over dim 0 values");
            check_matches(by_column.indices, expected.indices, {0, 0}, "max/min over dim 0 indices");
          }
        }
      }
    }
  }
}

TEST_CASE("f32 sums of 1e7 elements stay accurate (relative error < 1e-6 against double)", "[reduce]") {
  const int64_t n = 10'000'000;
  const Tensor x = rand({n});
  const RefTensor xr = reference::from_tensor(x);
  double exact = 0;
  for (double v : xr.values) exact += v;
  const double got = sum(x).item<double>();
  CHECK(std::fabs(got - exact) / exact < 1e-6);
  CHECK(std::fabs(mean(x).item<double>() - exact / n) / (exact / n) < 1e-6);

  // The same values as [10000, 1000] reduced over the outer dim and over the inner dim.
  const Tensor matrix = x.view({10000, 1000});
  for (int64_t dim : {0, 1}) {
    INFO("dim " << dim);
    const RefTensor expected = reference::reduce(ReduceOp::sum, RefTensor{{10000, 1000}, xr.values}, {dim}, false);
    const RefTensor got_rows = reference::from_tensor(sum(matrix, {dim}));
    double worst = 0;
    for (int64_t i = 0; i < got_rows.numel(); ++i)
      worst = std::max(worst, std::fabs(got_rows.values[i] - expected.values[i]) / std::fabs(expected.values[i]));
    CHECK(worst < 1e-6);
  }

  // f16 and bf16 accumulate in f32 or wider: 1e5 ones sum to 1e5 would overflow nothing but
  // saturate a 16-bit accumulator at 2048 (f16) or 256 (bf16).
  for (DType dtype : {DType::f16, DType::bf16}) {
    const Tensor ones_half = ones({100000}, {.dtype = dtype});
    CHECK(sum(ones_half, {}, false, DType::f32).item<double>() == 100000.0);
    CHECK(mean(ones_half).item<double>() == 1.0);
  }
}

TEST_CASE("large reductions split across threads match the reference", "[reduce]") {
  // Big enough to cross the parallel grain in each kernel path: inner, outer, full, strided.
  for (DType dtype : {DType::f32, DType::f64, DType::bf16, DType::i32, DType::bool_}) {
    for (const Shape& shape : std::vector<Shape>{{3, 200003}, {200003, 3}, {1000, 517}, {17, 64, 129}}) {
      const Tensor base = random_tensor(shape, dtype);
      for (const auto& [layout, x] : layouts(base)) {
        const RefTensor xr = reference::from_tensor(x);
        std::vector<Dims> dim_sets = {{}, {0}, {-1}};
        if (shape.size() == 3) dim_sets.push_back({0, 2});
        for (const Dims& dims : dim_sets) {
          const std::string what = std::string(dtype_name(dtype)) + " " + to_string(shape) + " dims " +
                                   to_string(dims) + " " + layout;
          const DType result = is_floating(dtype) ? dtype : DType::i64;
          const Tolerance tol = tolerance_for(result);
          check_close(sum(x, dims), reference::reduce(ReduceOp::sum, xr, dims, false), abs_sum(xr, dims, false),
                      {tol.atol, std::max(tol.rtol, 1e-6)}, "sum " + what);
          check_matches(amax(x, dims), reference::reduce(ReduceOp::amax, xr, dims, false), "amax " + what);
          check_matches(amin(x, dims), reference::reduce(ReduceOp::amin, xr, dims, false), "amin " + what);
          check_matches(any(x, dims), reference::reduce(ReduceOp::any, xr, dims, false), "any " + what);
          check_matches(all(x, dims), reference::reduce(ReduceOp::all, xr, dims, false), "all " + what);
          if (dims.size() == 1) {
            const int64_t dim = wrap_dim(dims[0], x.dim(), "test");
            const auto expected = reference::arg_reduce(true, xr, dim, false);
            const ValuesIndices got = max(x, dim);
            check_matches(got.values, expected.values, {0, 0}, "max values " + what);
            check_matches(got.indices, expected.indices, {0, 0}, "max indices " + what);
          }
        }
      }
    }
  }
}

TEST_CASE("reductions reject bad input with keel::Error", "[reduce]") {
  const Tensor x = random_tensor({3, 4}, DType::f32);
  const Tensor i = random_tensor({3, 4}, DType::i32);
  REQUIRE_THROWS_AS(sum(x, {2}), keel::Error);
  REQUIRE_THROWS_AS(sum(x, {-3}), keel::Error);
  REQUIRE_THROWS_AS(sum(x, {0, 0}), keel::Error);
  REQUIRE_THROWS_AS(sum(x, {1, -1}), keel::Error);
  REQUIRE_THROWS_AS(amax(x, {0, -2}), keel::Error);
  REQUIRE_THROWS_AS(mean(i), keel::Error);
  REQUIRE_THROWS_AS(mean(random_tensor({3}, DType::bool_)), keel::Error);
  REQUIRE_THROWS_AS(var(i), keel::Error);
  REQUIRE_THROWS_AS(keel::std(i), keel::Error);
  REQUIRE_THROWS_AS(norm(i), keel::Error);
  REQUIRE_THROWS_AS(logsumexp(i, {0}), keel::Error);
  REQUIRE_THROWS_AS(max(x, 2), keel::Error);
  REQUIRE_THROWS_AS(argmax(x, -3), keel::Error);
  const Tensor empty_rows = zeros({0, 4});
  REQUIRE_THROWS_AS(argmax(empty_rows), keel::Error);
  REQUIRE_THROWS_AS(argmin(empty_rows, 0), keel::Error);
  REQUIRE_THROWS_AS(max(empty_rows), keel::Error);
  REQUIRE_THROWS_AS(min(empty_rows), keel::Error);
  REQUIRE_THROWS_AS(max(empty_rows, 0), keel::Error);
  REQUIRE_THROWS_AS(amax(empty_rows), keel::Error);
  REQUIRE_THROWS_AS(amin(empty_rows, {0}), keel::Error);
  // Reducing the non-empty dim of an empty tensor is fine: the result is empty.
  CHECK(amax(empty_rows, {1}).shape() == Shape{0});
  CHECK(argmax(empty_rows, 1).shape() == Shape{0});
  // The message names the op and the shape.
  try {
    (void)amax(empty_rows, {0});
    FAIL("amax over an empty dim did not throw");
  } catch (const keel::Error& error) {
    const std::string message = error.what();
    CHECK(message.find("[amax]") != std::string::npos);
    CHECK(message.find("[0, 4]") != std::string::npos);
  }
}

TEST_CASE("empty reductions give the identity; mean of nothing is nan", "[reduce]") {
  const Tensor x = zeros({0, 3});
  CHECK(reference::from_tensor(sum(x, {0})).values == std::vector<double>{0, 0, 0});
  CHECK(reference::from_tensor(prod(x, {0})).values == std::vector<double>{1, 1, 1});
  CHECK(reference::from_tensor(all(x, {0})).values == std::vector<double>{1, 1, 1});
  CHECK(reference::from_tensor(any(x, {0})).values == std::vector<double>{0, 0, 0});
  CHECK(std::isnan(mean(x).item<double>()));
  CHECK(sum(x).item<double>() == 0);
  CHECK(sum(x, {0}, true).shape() == Shape{1, 3});
  CHECK(reference::from_tensor(logsumexp(x, {0})).values ==
        std::vector<double>(3, -std::numeric_limits<double>::infinity()));
}
