// Views and copies of the tensor core: view, reshape, permute, transpose, t, slice, narrow,
// select, expand, squeeze/unsqueeze, flatten/unflatten, as_strided, contiguous, clone, copy_,
// to(dtype), item, data_ptr, from_blob. Values are checked against the float64 reference read
// through shape/strides/offset; views must share storage, copies must not.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "test_util.h"

using namespace keel;
using namespace keel::test;
using reference::RefTensor;

namespace {

RefTensor ref(const Tensor& t) { return reference::from_tensor(t); }

// 0, 1, 2, ... in row-major order, converted to dtype (bool: alternating).
Tensor iota(const Shape& shape, DType dtype = DType::f32) {
  Tensor values = empty(shape, {.dtype = DType::f64});
  for (int64_t i = 0; i < values.numel(); ++i) values.data_ptr<double>()[i] = static_cast<double>(i);
  if (dtype == DType::bool_) {
    for (int64_t i = 0; i < values.numel(); ++i) values.data_ptr<double>()[i] = static_cast<double>(i % 2);
  }
  return values.to(dtype);
}

Tensor values_tensor(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f64) {
  Tensor f64 = empty(shape, {.dtype = DType::f64});
  REQUIRE(static_cast<int64_t>(values.size()) == f64.numel());
  for (size_t i = 0; i < values.size(); ++i) f64.data_ptr<double>()[i] = values[i];
  return f64.to(dtype);
}



// out[c] = x[c'] with c'[dims[i]] = c[i].
RefTensor permute_ref(const RefTensor& x, const std::vector<int64_t>& dims) {
  Shape shape(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) shape[i] = x.shape[dims[i]];
  RefTensor out{shape, std::vector<double>(x.values.size())};
  for (int64_t i = 0; i < out.numel(); ++i) {
    const std::vector<int64_t> coordinates = reference::unravel(i, shape);
    std::vector<int64_t> source(dims.size());
    for (size_t k = 0; k < dims.size(); ++k) source[dims[k]] = coordinates[k];
    out.values[i] = x.values[reference::ravel(source, x.shape)];
  }
  return out;
}

// The same values with a new shape (row-major order unchanged).
RefTensor with_shape(RefTensor x, Shape shape) {
  x.shape = std::move(shape);
  return x;
}

// Python's slice(start, end, step) on range(size), step > 0.
std::vector<int64_t> python_slice(int64_t size, int64_t start, int64_t end, int64_t step) {
  auto clamp_index = [size](int64_t index) {
    if (index < 0) index += size;
    return std::min(std::max<int64_t>(index, 0), size);
  };
  std::vector<int64_t> picked;
  for (int64_t i = clamp_index(start); i < clamp_index(end); i += step) picked.push_back(i);
  return picked;
}

// The value `value` (held exactly in `from`) takes when stored as `to`, as kernels/convert.h
// defines it: to bool is != 0 (NaN true); float to integer truncates, saturates, NaN -> 0;
// integer to narrower integer wraps; to a float rounds to nearest even.
double convert_value(DType from, DType to, double value) {
  if (to == DType::bool_) return value != 0 ? 1.0 : 0.0;
  if (is_floating(to)) return reference::round_to(to, value);
  const int bits = static_cast<int>(dtype_size(to)) * 8;
  const bool is_unsigned = to == DType::u8;
  const double lowest = is_unsigned ? 0.0 : -std::ldexp(1.0, bits - 1);
  const double highest = is_unsigned ? std::ldexp(1.0, bits) - 1 : std::ldexp(1.0, bits - 1) - 1;
  if (is_floating(from)) {
    if (std::isnan(value)) return 0;
    return std::min(std::max(std::trunc(value), lowest), highest);
  }
  if (value >= lowest && value <= highest) return value;
  const double span = std::ldexp(1.0, bits);
  double wrapped = std::fmod(value - lowest, span);
  if (wrapped < 0) wrapped += span;
  return wrapped + lowest;
}

bool shares_storage(const Tensor& a, const Tensor& b) { return a.storage() == b.storage(); }

}  // namespace

// ---- view and reshape ------------------------------------------------------------------------------
TEST_CASE("view reinterprets contiguous memory and shares storage", "[views]") {
  const Tensor x = iota({2, 3, 4});
  for (const Shape& shape : {Shape{6, 4}, Shape{4, -1}, Shape{24}, Shape{-1}, Shape{2, 12}, Shape{1, 2, 1, 12, 1},
                             Shape{2, 3, 2, 2}}) {
    INFO("view " << to_string(shape));
    const Tensor v = x.view(shape);
    CHECK(shares_storage(v, x));
    CHECK(v.is_contiguous());
    CHECK(v.numel() == 24);
    check_matches(v, with_shape(ref(x), v.shape()));
  }
  CHECK(x.view({4, -1}).shape() == Shape{4, 6});
  // A row slice is still viewable: the offset carries over.
  const Tensor rows = x.view({6, 4}).slice(0, 2, 5);
  const Tensor flat = rows.view({12});
  CHECK(shares_storage(flat, x));
  CHECK(flat.offset() == 8);
  check_matches(flat, with_shape(ref(rows), {12}));
  // Splitting and merging dims of a transposed tensor where memory allows it.
  const Tensor transposed = iota({4, 6}).t();  // [6, 4], strides [1, 6]
  const Tensor split_dim = transposed.view({2, 3, 4});
  CHECK(split_dim.strides() == Shape{3, 1, 6});
  check_matches(split_dim, with_shape(ref(transposed), {2, 3, 4}));
  // Writes through a view are seen in the base.
  Tensor base = zeros({3, 4});
  base.view({12}).slice(0, 5, 6).fill_(9);
  CHECK(base.select(0, 1).select(0, 1).item<float>() == 9.0f);
}

TEST_CASE("view rejects impossible shapes", "[views]") {
  const Tensor x = iota({2, 3, 4});
  check_error([&] { x.view({5, 5}); }, {"[view]", "[5, 5]", "[2, 3, 4]"});
  check_error([&] { x.view({-1, -1}); }, {"[view]", "only one dimension can be -1"});
  check_error([&] { x.view({5, -1}); }, {"[view]", "[5, -1]"});
  check_error([&] { x.view({-2, 12}); }, {"[view]", "invalid size"});
  check_error([&] { x.transpose(0, 2).view({24}); }, {"[view]", "without copying", "reshape"});
  check_error([&] { x.slice(2, 0, 3).view({18}); }, {"[view]", "without copying"});
  CHECK(x.slice(2, 0, 4, 2).view({12}).strides() == Shape{2});  // evenly spaced: still a view
  check_error([&] { zeros({0, 3}).view({0, -1}); }, {"[view]"});  // -1 is ambiguous for 0 elements
}

TEST_CASE("reshape is a view when possible and a copy otherwise", "[views]") {
  for (DType dtype : kAllDTypes) {
    for (int64_t n : kSizes) {
      INFO(dtype_name(dtype) << " size " << n);
      const Tensor x = random_tensor({n, 6}, dtype);
      const Tensor as_view = x.reshape({3, -1, 2});
      CHECK(shares_storage(as_view, x));
      check_matches(as_view, with_shape(ref(x), {3, n, 2}));
      const Tensor transposed = x.t();  // [6, n]
      const Tensor copied = transposed.reshape({-1});
      if (n > 1) CHECK_FALSE(shares_storage(copied, x));  // needs a copy
      CHECK(copied.is_contiguous());
      check_matches(copied, with_shape(ref(transposed), {6 * n}));
      // The copy is independent of x.
      if (n > 1) {
        const RefTensor before = ref(x);
        Tensor target = copied;
        target.fill_(dtype == DType::bool_ ? Scalar(true) : Scalar(100));
        check_matches(x, before, "x after writing to the copy");
      }
    }
  }
  const Tensor x = iota({4, 6});
  CHECK(shares_storage(x.t().reshape({6, 4}), x));          // same shape: a view
  CHECK(shares_storage(x.t().reshape({3, 2, 4}), x));       // splitting a dim: a view
  CHECK_FALSE(shares_storage(x.t().reshape({4, 6}), x));    // merging across: a copy
  check_error([&] { x.reshape({5, 5}); }, {"[reshape]", "[5, 5]", "[4, 6]"});
  check_error([&] { x.reshape({-1, -1}); }, {"[reshape]", "-1"});
  check_error([&] { zeros({0, 3}).reshape({0, -1}); }, {"[reshape]"});
}

// ---- permute, transpose, t -----------------------------------------------------------------------
TEST_CASE("permute, transpose and t reorder dims without copying", "[views]") {
  for (DType dtype : kAllDTypes) {
    for (int64_t n : kSizes) {
      INFO(dtype_name(dtype) << " size " << n);
      const Tensor x = random_tensor({2, n, 3}, dtype);
      const RefTensor x_ref = ref(x);
      for (const std::vector<int64_t>& dims :
           std::vector<std::vector<int64_t>>{{2, 0, 1}, {1, 2, 0}, {0, 1, 2}, {-1, -3, -2}}) {
        const Tensor p = x.permute(dims);
        CHECK(shares_storage(p, x));
        std::vector<int64_t> wrapped = dims;
        for (int64_t& d : wrapped) d = d < 0 ? d + 3 : d;
        for (size_t i = 0; i < dims.size(); ++i) CHECK(p.stride(static_cast<int64_t>(i)) == x.stride(wrapped[i]));
        check_matches(p, permute_ref(x_ref, wrapped), "permute");
        check_matches(p.contiguous(), permute_ref(x_ref, wrapped), "permute contiguous");
      }
      check_matches(x.transpose(0, 2), permute_ref(x_ref, {2, 1, 0}), "transpose");
      check_matches(x.transpose(-1, 1), permute_ref(x_ref, {0, 2, 1}), "transpose negative");
      const Tensor matrix = random_tensor({n, 5}, dtype);
      check_matches(matrix.t(), permute_ref(ref(matrix), {1, 0}), "t");
      check_matches(matrix.t().t(), ref(matrix), "t twice");
    }
  }
  const Tensor vector = iota({5});
  CHECK(vector.t().shape() == Shape{5});
  CHECK(shares_storage(vector.t(), vector));
  CHECK(scalar_tensor(2.0).t().dim() == 0);
  CHECK(scalar_tensor(2.0).transpose(0, -1).dim() == 0);
  const Tensor x = iota({2, 3, 4});
  check_error([&] { x.permute({0, 1}); }, {"[permute]", "2 dims", "[2, 3, 4]"});
  check_error([&] { x.permute({0, 1, 1}); }, {"[permute]", "repeated"});
  check_error([&] { x.permute({0, 1, 3}); }, {"[permute]", "dim 3 out of range"});
  check_error([&] { x.transpose(0, 3); }, {"[transpose]", "dim 3"});
  check_error([&] { x.t(); }, {"[t]", "[2, 3, 4]"});
}

// ---- slice, narrow, select -------------------------------------------------------------------------
TEST_CASE("slice follows Python's clamping for every start, end and step", "[views]") {
  for (int64_t size : {0, 1, 5, 10}) {
    const Tensor x = iota({size, 2});
    for (int64_t start = -13; start <= 13; ++start) {
      for (int64_t end = -13; end <= 13; ++end) {
        for (int64_t step : {1, 2, 3, 7}) {
          const Tensor s = x.slice(0, start, end, step);
          const std::vector<int64_t> picked = python_slice(size, start, end, step);
          INFO("size " << size << " slice(" << start << ", " << end << ", " << step << ")");
          REQUIRE(s.shape() == Shape{static_cast<int64_t>(picked.size()), 2});
          CHECK(shares_storage(s, x));
          const RefTensor values = ref(s);
          for (size_t i = 0; i < picked.size(); ++i) REQUIRE(values.values[2 * i] == 2.0 * picked[i]);
        }
      }
    }
  }
  const Tensor x = iota({4, 10});
  const Tensor columns = x.slice(-1, 1, 100, 3);  // negative dim, end past the size
  CHECK(columns.shape() == Shape{4, 3});
  CHECK(columns.strides() == Shape{10, 3});
  check_matches(columns.select(0, 2), RefTensor{{3}, {21, 24, 27}});
  // Slicing a slice composes offsets and steps.
  check_matches(x.slice(1, 1, 10, 2).slice(1, 1, 5, 2), RefTensor{{4, 2}, {3, 7, 13, 17, 23, 27, 33, 37}});
  check_error([&] { x.slice(0, 0, 4, 0); }, {"[slice]", "step", "0"});
  check_error([&] { x.slice(0, 0, 4, -1); }, {"[slice]", "step", "-1"});
  check_error([&] { x.slice(2, 0, 1); }, {"[slice]", "dim 2"});
  check_error([&] { scalar_tensor(1.0).slice(0, 0, 1); }, {"[slice]", "0-D"});
}

TEST_CASE("narrow and select pick ranges and single entries", "[views]") {
  const Tensor x = iota({4, 5});
  check_matches(x.narrow(1, 1, 3).select(0, 0), RefTensor{{3}, {1, 2, 3}});
  check_matches(x.narrow(-1, -2, 2).select(0, 1), RefTensor{{2}, {8, 9}});  // negative start
  check_matches(x.narrow(0, 4, 0), RefTensor{{0, 5}, {}});
  CHECK(shares_storage(x.narrow(0, 1, 2), x));
  check_error([&] { x.narrow(1, 3, 3); }, {"[narrow]", "start 3", "length 3", "[4, 5]"});
  check_error([&] { x.narrow(1, -6, 1); }, {"[narrow]"});
  check_error([&] { x.narrow(1, 0, -1); }, {"[narrow]", "length -1"});
  check_error([&] { scalar_tensor(1.0).narrow(0, 0, 1); }, {"[narrow]", "0-D"});

  check_matches(x.select(0, -1), RefTensor{{5}, {15, 16, 17, 18, 19}});
  check_matches(x.select(1, 2), RefTensor{{4}, {2, 7, 12, 17}});
  check_matches(x.select(-1, -5), RefTensor{{4}, {0, 5, 10, 15}});
  CHECK(x.select(0, 2).select(0, 3).dim() == 0);
  CHECK(x.select(0, 2).select(0, 3).item<float>() == 13.0f);
  check_error([&] { x.select(0, 4); }, {"[select]", "index 4", "[4, 5]"});
  check_error([&] { x.select(1, -6); }, {"[select]", "index -6"});
  check_error([&] { scalar_tensor(1.0).select(0, 0); }, {"[select]", "0-D"});
  // Writes through select and slice land in the base.
  Tensor base = zeros({3, 4}, {.dtype = DType::i32});
  base.select(1, 2).fill_(5);
  base.slice(0, 0, 3, 2).select(1, 0).fill_(-1);
  check_matches(base, RefTensor{{3, 4}, {-1, 0, 5, 0, 0, 0, 5, 0, -1, 0, 5, 0}});
}

// ---- expand, squeeze, unsqueeze, flatten, unflatten --------------------------------------------------
TEST_CASE("expand broadcasts with stride 0", "[views]") {
  const Tensor column = iota({3, 1});
  const Tensor e = column.expand({2, 3, 4});
  CHECK(e.shape() == Shape{2, 3, 4});
  CHECK(e.strides() == Shape{0, 1, 0});
  CHECK(shares_storage(e, column));
  RefTensor expected{{2, 3, 4}, {}};
  for (int64_t i = 0; i < 24; ++i) expected.values.push_back(static_cast<double>((i / 4) % 3));
  check_matches(e, expected);
  CHECK(column.expand({-1, 5}).shape() == Shape{3, 5});
  CHECK(column.expand({2, -1, -1}).shape() == Shape{2, 3, 1});
  CHECK(column.expand({3, 0}).shape() == Shape{3, 0});
  CHECK(column.expand_as(zeros({7, 3, 2})).shape() == Shape{7, 3, 2});
  const Tensor scalar = scalar_tensor(4.5).expand({2, 3});
  CHECK(scalar.strides() == Shape{0, 0});
  check_matches(scalar, RefTensor{{2, 3}, std::vector<double>(6, 4.5)});
  // A copy of an expanded tensor is dense.
  const Tensor dense = e.contiguous();
  CHECK(dense.strides() == Shape{12, 4, 1});
  check_matches(dense, expected);
  check_error([&] { column.expand({3, 4}).expand({4, 4}); }, {"[expand]", "[3, 4]", "[4, 4]"});
  check_error([&] { column.expand({2, 4}); }, {"[expand]", "[3, 1]", "[2, 4]"});
  check_error([&] { column.expand({4}); }, {"[expand]", "fewer dims"});
  check_error([&] { column.expand({-1, 3, 4}); }, {"[expand]", "-1"});
}

TEST_CASE("squeeze, unsqueeze, flatten and unflatten", "[views]") {
  const Tensor x = iota({1, 3, 1, 4});
  CHECK(x.squeeze().shape() == Shape{3, 4});
  CHECK(x.squeeze(0).shape() == Shape{3, 1, 4});
  CHECK(x.squeeze(-2).shape() == Shape{1, 3, 4});
  CHECK(x.squeeze(1).shape() == Shape{1, 3, 1, 4});  // not size 1: unchanged
  CHECK(shares_storage(x.squeeze(), x));
  check_matches(x.squeeze(), with_shape(ref(x), {3, 4}));
  check_error([&] { x.squeeze(4); }, {"[squeeze]", "dim 4"});

  const Tensor m = iota({3, 4});
  CHECK(m.unsqueeze(0).shape() == Shape{1, 3, 4});
  CHECK(m.unsqueeze(1).shape() == Shape{3, 1, 4});
  CHECK(m.unsqueeze(2).shape() == Shape{3, 4, 1});
  CHECK(m.unsqueeze(-1).shape() == Shape{3, 4, 1});
  CHECK(m.unsqueeze(-3).shape() == Shape{1, 3, 4});
  CHECK(m.unsqueeze(1).strides() == Shape{4, 4, 1});
  CHECK(m.unsqueeze(1).is_contiguous());
  check_matches(m.t().unsqueeze(1), with_shape(permute_ref(ref(m), {1, 0}), {4, 1, 3}));
  check_error([&] { m.unsqueeze(3); }, {"[unsqueeze]", "dim 3"});
  check_error([&] { m.unsqueeze(-4); }, {"[unsqueeze]", "dim -4"});

  const Tensor y = iota({2, 3, 4, 5});
  CHECK(y.flatten().shape() == Shape{120});
  CHECK(y.flatten(1, 2).shape() == Shape{2, 12, 5});
  CHECK(y.flatten(-2).shape() == Shape{2, 3, 20});
  CHECK(y.flatten(2, 2).shape() == Shape{2, 3, 4, 5});
  CHECK(shares_storage(y.flatten(1, 2), y));
  check_matches(y.flatten(1, 2), with_shape(ref(y), {2, 12, 5}));
  const Tensor yt = y.transpose(1, 2);  // flatten of non-mergeable dims copies
  check_matches(yt.flatten(1, 2), with_shape(permute_ref(ref(y), {0, 2, 1, 3}), {2, 12, 5}));
  check_error([&] { y.flatten(2, 1); }, {"[flatten]", "start_dim 2", "end_dim 1"});
  CHECK(scalar_tensor(3.0).flatten().shape() == Shape{1});

  CHECK(y.unflatten(1, {3, 1}).shape() == Shape{2, 3, 1, 4, 5});
  CHECK(y.unflatten(-1, {-1, 1, 5}).shape() == Shape{2, 3, 4, 1, 1, 5});
  CHECK(y.flatten(1, 2).unflatten(1, {3, 4}).shape() == Shape{2, 3, 4, 5});
  check_matches(y.flatten(1, 2).unflatten(1, {3, 4}), ref(y));
  check_error([&] { y.unflatten(1, {2, 2}); }, {"[unflatten]", "[2, 2]"});
  check_error([&] { y.unflatten(1, {}); }, {"[unflatten]", "empty"});
}

// ---- as_strided --------------------------------------------------------------------------------------
TEST_CASE("as_strided views any in-bounds layout and rejects the rest", "[views]") {
  const Tensor x = iota({10});
  const Tensor windows = x.as_strided({4, 3}, {2, 1}, 1);  // overlapping windows
  check_matches(windows, RefTensor{{4, 3}, {1, 2, 3, 3, 4, 5, 5, 6, 7, 7, 8, 9}});
  CHECK(shares_storage(windows, x));
  CHECK(x.as_strided({2, 5}, {5, 1}, 0).view({10}).shape() == Shape{10});
  CHECK(x.as_strided({0, 3}, {100, 100}, 0).numel() == 0);  // empty: nothing is reached
  check_error([&] { x.as_strided({4, 3}, {2, 1}, 2); }, {"[as_strided]", "[4, 3]", "10 elements"});
  check_error([&] { x.as_strided({11}, {1}, 0); }, {"[as_strided]", "[11]"});
  check_error([&] { x.as_strided({2}, {-1}, 5); }, {"[as_strided]", "negative stride"});
  check_error([&] { x.as_strided({2}, {1}, -1); }, {"[as_strided]", "negative offset"});
  check_error([&] { x.as_strided({2, 2}, {1}, 0); }, {"[as_strided]", "different lengths"});
  check_error([&] { x.as_strided({-2}, {1}, 0); }, {"[as_strided]", "negative size"});
}

// ---- contiguous, clone, copy_ ------------------------------------------------------------------------
TEST_CASE("contiguous and clone copy exactly when needed", "[views]") {
  for (DType dtype : kAllDTypes) {
    for (int64_t n : kSizes) {
      INFO(dtype_name(dtype) << " size " << n);
      const Tensor x = random_tensor({n, 3}, dtype);
      CHECK(x.contiguous().is_same(x));
      const Tensor strided = non_contiguous(x);
      if (n > 1) CHECK_FALSE(strided.is_contiguous());
      const Tensor packed = strided.contiguous();
      CHECK(packed.is_contiguous());
      if (n > 1) CHECK_FALSE(shares_storage(packed, strided));
      check_matches(packed, ref(x));
      const Tensor copy = strided.clone();
      CHECK(copy.dtype() == dtype);
      CHECK(copy.is_contiguous());
      CHECK_FALSE(shares_storage(copy, strided));
      check_matches(copy, ref(x));
    }
  }
  // Writes to a clone do not reach the original.
  const Tensor x = iota({2, 3});
  Tensor copy = x.clone();
  copy.fill_(-1);
  check_matches(x, RefTensor{{2, 3}, {0, 1, 2, 3, 4, 5}});
}

TEST_CASE("copy_ broadcasts, converts dtypes and writes through views", "[views]") {
  for (DType from : kAllDTypes) {
    for (DType to : kAllDTypes) {
      INFO(dtype_name(from) << " -> " << dtype_name(to));
      const Tensor source = random_tensor({3, 5}, from);
      Tensor target = empty({3, 5}, {.dtype = to});
      const uint64_t version = target.storage()->version();
      target.copy_(source);
      CHECK(target.storage()->version() > version);
      check_matches(target, reference::map(ref(source), [from, to](double v) { return convert_value(from, to, v); }));
      // Broadcast rows into a transposed destination.
      Tensor wide = empty({5, 4}, {.dtype = to}).t();  // [4, 5]
      const Tensor row = source.select(0, 1);
      wide.copy_(row);
      RefTensor expected{{4, 5}, {}};
      const RefTensor row_ref = ref(row);
      for (int64_t i = 0; i < 20; ++i) expected.values.push_back(convert_value(from, to, row_ref.values[i % 5]));
      check_matches(wide, expected, "broadcast");
    }
  }
  Tensor base = zeros({4, 4});
  base.slice(0, 1, 3).slice(1, 1, 3).copy_(ones({2, 2}) * 2);
  check_matches(base, RefTensor{{4, 4}, {0, 0, 0, 0, 0, 2, 2, 0, 0, 2, 2, 0, 0, 0, 0, 0}});
  base.select(1, 0).copy_(scalar_tensor(7.0));  // a 0-D source broadcasts
  check_matches(base.select(1, 0), RefTensor{{4}, {7, 7, 7, 7}});
  Tensor small = zeros({2, 3});
  check_error([&] { small.copy_(zeros({3, 3})); }, {"[copy_]", "[2, 3]", "[3, 3]"});
  check_error([&] { small.copy_(zeros({4, 2, 3})); }, {"[copy_]", "[4, 2, 3]"});
  check_error([&] { small.copy_(Tensor()); }, {"[copy_]", "undefined"});
}

// ---- to(dtype), item, data_ptr ----------------------------------------------------------------------
TEST_CASE("to(dtype) converts as kernels/convert.h defines", "[views]") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor special = values_tensor({1e10, -1e10, nan, inf, -inf, -3.7, 3.7, 0.0, -0.0}, {9}, DType::f32);
  check_matches(special.to(DType::i32),
                RefTensor{{9}, {2147483647, -2147483648.0, 0, 2147483647, -2147483648.0, -3, 3, 0, 0}});
  check_matches(special.to(DType::i8), RefTensor{{9}, {127, -128, 0, 127, -128, -3, 3, 0, 0}});
  check_matches(special.to(DType::u8), RefTensor{{9}, {255, 0, 0, 255, 0, 0, 3, 0, 0}});
  const Tensor as_i64 = special.to(DType::i64);
  CHECK(as_i64.select(0, 0).item<int64_t>() == 10000000000);
  CHECK(as_i64.select(0, 2).item<int64_t>() == 0);
  CHECK(as_i64.select(0, 3).item<int64_t>() == std::numeric_limits<int64_t>::max());
  CHECK(as_i64.select(0, 4).item<int64_t>() == std::numeric_limits<int64_t>::min());
  check_matches(special.to(DType::bool_), RefTensor{{9}, {1, 1, 1, 1, 1, 1, 1, 0, 0}});  // NaN is true
  // f64 -> f16 saturates to inf above 65504 and rounds to nearest even.
  const Tensor halves = values_tensor({1e6, 65504, 1.0 + 1.0 / 4096, 1.0 + 3.0 / 4096}, {4}).to(DType::f16);
  check_matches(halves, RefTensor{{4}, {inf, 65504, 1.0, 1.0 + 4.0 / 4096}}, Tolerance{0, 0});
  // Integer narrowing wraps (as PyTorch); integers to float are exact here.
  check_matches(values_tensor({300, -1, 128}, {3}, DType::i32).to(DType::i8), RefTensor{{3}, {44, -1, -128}});
  check_matches(values_tensor({-1, 256}, {2}, DType::i32).to(DType::u8), RefTensor{{2}, {255, 0}});
  check_matches(values_tensor({-7, 12}, {2}, DType::i64).to(DType::f32), RefTensor{{2}, {-7, 12}});
  // Same dtype: the same tensor; the result of a conversion is a new dense tensor.
  CHECK(special.to(DType::f32).is_same(special));
  const Tensor strided = iota({4, 3}).t().to(DType::f64);
  CHECK(strided.is_contiguous());
  check_matches(strided, permute_ref(ref(iota({4, 3})), {1, 0}));
}

TEST_CASE("item and data_ptr check what they are given", "[views]") {
  const Tensor x = values_tensor({2.75}, {1, 1}, DType::f32);
  CHECK(x.item<float>() == 2.75f);
  CHECK(x.item<double>() == 2.75);
  CHECK(x.item<int>() == 2);
  CHECK(x.item<bool>());
  CHECK(scalar_tensor(int64_t{-5}).item<int64_t>() == -5);
  CHECK(iota({3, 4}).select(0, 2).select(0, 1).item<float>() == 9.0f);
  check_error([&] { iota({2}).item<float>(); }, {"[item]", "2 elements", "[2]"});
  check_error([&] { empty({0}).item<float>(); }, {"[item]", "0 elements"});

  const Tensor m = iota({3, 4});
  CHECK(m.data_ptr<float>()[5] == 5.0f);
  CHECK(m.select(0, 1).data_ptr<float>()[0] == 4.0f);  // a view's pointer includes its offset
  CHECK(m.select(0, 1).data_ptr<float>() == m.data_ptr<float>() + 4);
  check_error([&] { m.data_ptr<double>(); }, {"[data_ptr]", "float32", "float64"});
  check_error([&] { m.data_ptr<int32_t>(); }, {"[data_ptr]", "int32"});
  check_error([&] { Tensor().shape(); }, {"undefined"});
}

// ---- from_blob ---------------------------------------------------------------------------------------
TEST_CASE("from_blob wraps memory without copying and runs its deleter once", "[views]") {
  std::vector<float> buffer = {0, 1, 2, 3, 4, 5};
  {
    const Tensor t = from_blob(buffer.data(), {2, 3});
    CHECK(t.data_ptr<float>() == buffer.data());
    buffer[4] = 40;
    CHECK(t.select(0, 1).select(0, 1).item<float>() == 40.0f);  // no copy
    t.select(1, 0).fill_(-1);
    CHECK(buffer[0] == -1.0f);
    CHECK(buffer[3] == -1.0f);
  }
  CHECK(buffer[5] == 5.0f);  // no deleter: the memory is still the caller's

  int deleted = 0;
  void* deleted_pointer = nullptr;
  auto* owned = new double[6]{0, 1, 2, 3, 4, 5};
  {
    Tensor t = from_blob(owned, {3, 2}, {.dtype = DType::f64}, [&](void* pointer) {
      ++deleted;
      deleted_pointer = pointer;
      delete[] static_cast<double*>(pointer);
    });
    Tensor view = t.t().slice(1, 1, 3);
    Tensor alias = t;
    t = Tensor();
    CHECK(deleted == 0);
    alias = Tensor();
    CHECK(deleted == 0);  // the view still holds the storage
    check_matches(view, RefTensor{{2, 2}, {2, 4, 3, 5}});
    Tensor copy = view.clone();
    view = Tensor();
    CHECK(deleted == 1);  // the last view is gone; the clone has its own storage
    CHECK(deleted_pointer == owned);
    check_matches(copy, RefTensor{{2, 2}, {2, 4, 3, 5}});
  }
  CHECK(deleted == 1);

  // Explicit strides: a column-major buffer read as row-major [2, 3].
  std::vector<int32_t> column_major = {0, 3, 1, 4, 2, 5};
  const Tensor strided = from_blob(column_major.data(), {2, 3}, {1, 2}, {.dtype = DType::i32});
  check_matches(strided, RefTensor{{2, 3}, {0, 1, 2, 3, 4, 5}});
  CHECK_FALSE(strided.is_contiguous());
  check_error([&] { from_blob(column_major.data(), {2, 3}, {1}, {.dtype = DType::i32}); },
              {"[from_blob]", "different lengths"});
  check_error([&] { from_blob(nullptr, {2}); }, {"[from_blob]", "null"});
  check_error([&] { from_blob(column_major.data(), {-1}); }, {"[from_blob]", "negative size"});
}

// ---- empty and 0-D tensors ---------------------------------------------------------------------------
TEST_CASE("empty tensors keep their shapes through views and copies", "[views]") {
  const Tensor x = empty({0, 3});
  CHECK(x.numel() == 0);
  CHECK(x.is_contiguous());
  CHECK(x.view({3, 0}).shape() == Shape{3, 0});
  CHECK(x.view({0}).shape() == Shape{0});
  CHECK(x.reshape({2, 0, 5}).shape() == Shape{2, 0, 5});
  CHECK(x.t().shape() == Shape{3, 0});
  CHECK(x.t().contiguous().shape() == Shape{3, 0});
  CHECK(x.slice(1, 1, 3).shape() == Shape{0, 2});
  CHECK(x.unsqueeze(0).shape() == Shape{1, 0, 3});
  CHECK(x.flatten().shape() == Shape{0});
  CHECK(x.clone().shape() == Shape{0, 3});
  CHECK(x.to(DType::i64).shape() == Shape{0, 3});
  CHECK(zeros({1, 3}).expand({0, 3}).shape() == Shape{0, 3});
  CHECK(empty({1, 0}).expand({4, 0}).shape() == Shape{4, 0});
  Tensor target = empty({0, 3});
  target.copy_(zeros({3}));  // broadcasting into nothing is fine
  CHECK(iota({5}).slice(0, 3, 1).numel() == 0);
  check_error([&] { x.select(0, 0); }, {"[select]", "index 0"});
  check_error([&] { x.view({-1, 0}); }, {"[view]"});
}

TEST_CASE("0-D tensors view, expand and convert", "[views]") {
  const Tensor s = scalar_tensor(6.5);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.is_contiguous());
  CHECK(s.view({}).dim() == 0);
  CHECK(s.view({1}).shape() == Shape{1});
  CHECK(s.view({1, 1, 1}).shape() == Shape{1, 1, 1});
  CHECK(s.view({-1}).shape() == Shape{1});
  CHECK(shares_storage(s.view({1}), s));
  CHECK(s.reshape({1, 1}).shape() == Shape{1, 1});
  CHECK(s.unsqueeze(0).shape() == Shape{1});
  CHECK(s.unsqueeze(-1).shape() == Shape{1});
  CHECK(s.squeeze().dim() == 0);
  CHECK(s.squeeze(0).dim() == 0);
  CHECK(s.view({1}).squeeze().dim() == 0);
  CHECK(s.permute({}).dim() == 0);
  CHECK(iota({1, 1}).view({}).dim() == 0);
  CHECK(s.expand({2, 2}).strides() == Shape{0, 0});
  CHECK(s.to(DType::i32).item<int>() == 6);
  CHECK(s.clone().item<double>() == 6.5);
  check_error([&] { s.view({2}); }, {"[view]", "[2]"});
  check_error([&] { s.unsqueeze(2); }, {"[unsqueeze]"});
  check_error([&] { s.squeeze(1); }, {"[squeeze]"});
}
