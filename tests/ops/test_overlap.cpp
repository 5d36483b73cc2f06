// Writes into memory that an input also reads (the review's regression tests):
//   - an in-place op or copy_ whose input is another view of the output's storage computes as if
//     the input had been read in full first: x[1:] += x[:-1] gives x0[1:] + x0[:-1], also on the
//     OpenMP path (n above 2 * kParallelGrain), where reading overwritten elements was a race;
//   - writing into an expanded view (stride 0 on a dim of size > 1) throws keel::Error naming the
//     op and the shape, as PyTorch refuses it; fill_ stays allowed (its result has no order).
// Expected values are computed in double from a snapshot taken before the op.
#include <functional>
#include <string>
#include <vector>

#include "test_util.h"

using namespace keel;
using namespace keel::test;

namespace {

std::vector<double> values(const Tensor& t) { return reference::from_tensor(t).values; }

// Sizes of the written view: the standard odd sizes plus one that takes the parallel path.
const std::vector<int64_t> kOverlapSizes = {0, 1, 31, 32, 33, 257, 100003};

void check_values(const Tensor& actual, const std::vector<double>& expected, const std::string& what) {
  INFO(what);
  const std::vector<double> got = values(actual);
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != expected[i]) {
      FAIL_CHECK("element " << i << ": got " << got[i] << ", expected " << expected[i]);
      return;
    }
  }
  SUCCEED();
}

}  // namespace

TEST_CASE("in-place binary ops read a shifted view of their output before writing", "[overlap]") {
  for (DType dtype : {DType::f32, DType::f64, DType::i32, DType::i64}) {
    for (int64_t n : kOverlapSizes) {
      const std::string what = std::string(dtype_name(dtype)) + " n=" + std::to_string(n);
      // out = x[1:], input = x[:-1]: a forward loop reads elements it has just written.
      Tensor x = arange(0, n + 1).to(dtype);
      std::vector<double> before = values(x);
      Tensor tail = x.slice(0, 1, n + 1);
      add_(tail, x.slice(0, 0, n));
      std::vector<double> expected(before);
      for (int64_t i = 1; i <= n; ++i) expected[i] = before[i] + before[i - 1];
      check_values(x, expected, "x[1:] += x[:-1], " + what);

      // out = x[:-1], input = x[1:]: correct serially, a race between threads before the fix.
      Tensor y = arange(0, n + 1).to(dtype);
      before = values(y);
      Tensor head = y.slice(0, 0, n);
      add_(head, y.slice(0, 1, n + 1));
      expected = before;
      for (int64_t i = 0; i < n; ++i) expected[i] = before[i] + before[i + 1];
      check_values(y, expected, "x[:-1] += x[1:], " + what);
    }
  }
}

TEST_CASE("in-place ops with a transposed or broadcast view of themselves", "[overlap]") {
  for (int64_t n : {1, 31, 33, 257}) {
    Tensor x = arange(0, n * n).to(DType::f32).reshape({n, n});
    const std::vector<double> before = values(x);
    add_(x, x.t());
    std::vector<double> expected(before.size());
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) expected[i * n + j] = before[i * n + j] + before[j * n + i];
    check_values(x, expected, "x += x.t(), n=" + std::to_string(n));

    // Row 0 broadcast over x: row 0 must not be read after it was updated.
    Tensor y = arange(0, n * 3).to(DType::f64).reshape({3, n});
    const std::vector<double> y_before = values(y);
    sub_(y, y.select(0, 0));
    std::vector<double> y_expected(y_before.size());
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t j = 0; j < n; ++j) y_expected[r * n + j] = y_before[r * n + j] - y_before[j];
    check_values(y, y_expected, "y -= y[0], n=" + std::to_string(n));
  }
  // Interleaved views share no element (no copy needed): still the plain result.
  Tensor z = arange(0, 6).to(DType::f32);
  Tensor evens = z.slice(0, 0, 6, 2);
  add_(evens, z.slice(0, 1, 6, 2));
  check_values(z, {1, 1, 5, 3, 9, 5}, "x[::2] += x[1::2]");
}

TEST_CASE("copy_ from an overlapping view of the destination", "[overlap]") {
  for (int64_t n : kOverlapSizes) {
    Tensor x = arange(0, n + 1).to(DType::f32);
    const std::vector<double> before = values(x);
    x.slice(0, 1, n + 1).copy_(x.slice(0, 0, n));
    std::vector<double> expected(before);
    for (int64_t i = 1; i <= n; ++i) expected[i] = before[i - 1];
    check_values(x, expected, "x[1:].copy_(x[:-1]), n=" + std::to_string(n));

    // With a dtype conversion on the way (i64 source view of i64 storage into itself is the same
    // dtype; here the destination view is re-read through a wider stride).
    Tensor y = arange(0, 2 * n + 1);
    const std::vector<double> y_before = values(y);
    y.slice(0, 0, n).copy_(y.slice(0, 1, 2 * n + 1, 2));
    std::vector<double> y_expected(y_before);
    for (int64_t i = 0; i < n; ++i) y_expected[i] = y_before[2 * i + 1];
    check_values(y, y_expected, "y[:n].copy_(y[1::2]), n=" + std::to_string(n));
  }
  for (int64_t n : {2, 33}) {
    Tensor x = arange(0, n * n).to(DType::f64).reshape({n, n});
    const std::vector<double> before = values(x);
    x.copy_(x.t());
    std::vector<double> expected(before.size());
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) expected[i * n + j] = before[j * n + i];
    check_values(x, expected, "x.copy_(x.t()), n=" + std::to_string(n));
  }
  // The very same view is still a no-op copy.
  Tensor same = arange(0, 5).to(DType::f32);
  same.copy_(same.alias());
  check_values(same, {0, 1, 2, 3, 4}, "x.copy_(x)");
}

TEST_CASE("scatter_ with a source or index that is self", "[overlap]") {
  Tensor x = arange(0, 4).to(DType::f32);
  scatter_(x, 0, tensor({int64_t(3), 2, 1, 0}), x);
  check_values(x, {3, 2, 1, 0}, "x.scatter_(0, [3,2,1,0], x)");

  Tensor index = tensor({int64_t(1), 0, 2});
  scatter_(index, 0, index.alias(), tensor({int64_t(7), 8, 9}));
  check_values(index, {8, 7, 9}, "i.scatter_(0, i, src)");
}

TEST_CASE("writing into an expanded view throws", "[overlap]") {
  auto expanded = [] { return zeros({1, 4}).expand({3, 4}); };
  auto check_throws = [&](const std::string& op, const std::function<void(Tensor&)>& write) {
    INFO(op);
    Tensor x = expanded();
    try {
      write(x);
      FAIL_CHECK("no error");
    } catch (const keel::Error& error) {
      const std::string message = error.what();
      CHECK(message.find("[" + op + "]") != std::string::npos);
      CHECK(message.find("[3, 4]") != std::string::npos);
    }
  };
  check_throws("add_", [](Tensor& x) { add_(x, 1.0); });
  check_throws("add_", [](Tensor& x) { add_(x, ones({3, 4})); });
  check_throws("mul_", [](Tensor& x) { mul_(x, ones({4})); });
  check_throws("neg", [](Tensor& x) { neg_(x); });
  check_throws("exp", [](Tensor& x) { exp_(x); });
  check_throws("clamp_", [](Tensor& x) { clamp_(x, 0.0, 1.0); });
  check_throws("copy_", [](Tensor& x) { x.copy_(ones({3, 4})); });
  check_throws("masked_fill_", [](Tensor& x) { masked_fill_(x, ones({3, 4}, {DType::bool_}), 1.0); });
  check_throws("scatter_", [](Tensor& x) { scatter_(x, 1, zeros({3, 4}, {DType::i64}), ones({3, 4})); });

  // The base is untouched by the refused writes, and fill_ (order-independent) is allowed.
  Tensor base = zeros({1, 4});
  Tensor view = base.expand({3, 4});
  REQUIRE_THROWS_AS(add_(view, 1.0), keel::Error);
  check_values(base, {0, 0, 0, 0}, "base after refused add_");
  view.fill_(2.0);
  check_values(base, {2, 2, 2, 2}, "fill_ through an expanded view");
  // A size-1 dim with stride 0 shares nothing: allowed.
  Tensor single = zeros({4}).expand({1, 4});
  add_(single, 1.0);
  check_values(single, {1, 1, 1, 1}, "add_ on a [1, 4] expanded view");
}
