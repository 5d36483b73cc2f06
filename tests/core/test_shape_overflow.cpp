// Shape and size arithmetic on user input (the review's regression tests): element counts,
// byte counts, strides and offsets that overflow int64 must be a keel::Error naming the op and
// the shape, never a wrapped value (empty({1 << 40, 1 << 40}) used to allocate 0 bytes, and
// view({2^62 + 1, 4}) of 4 elements used to succeed because the product wrapped to 4). Also the
// float -> integer conversion of Scalar and the integer arange / randint bounds.
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "test_util.h"

using namespace keel;

namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t k2to40 = int64_t{1} << 40;
constexpr int64_t k2to62 = int64_t{1} << 62;

// Runs f, requires a keel::Error whose message contains each of `parts`.
template <typename F> void require_error(F f, std::initializer_list<std::string> parts) {
  try {
    f();
    FAIL("no keel::Error thrown");
  } catch (const keel::Error& error) {
    const std::string message = error.what();
    INFO(message);
    for (const std::string& part : parts) CHECK(message.find(part) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("numel or byte counts that overflow int64 throw", "[overflow]") {
  require_error([] { empty({k2to40, k2to40}); }, {"[empty]", "[1099511627776, 1099511627776]"});
  require_error([] { empty({int64_t{1} << 31, int64_t{1} << 31, 4}); }, {"[empty]"});
  require_error([] { zeros({k2to40, k2to40}, {DType::i8}); }, {"[empty]"});
  // numel fits, bytes do not: 2^62 f64 elements are 2^65 bytes.
  require_error([] { empty({k2to62}, {DType::f64}); }, {"[empty]", "[4611686018427387904]"});
  // A zero anywhere makes any other sizes valid (PyTorch gives strides [0, 2^62, 1]).
  const Tensor hollow = empty({0, k2to62, k2to62});
  CHECK(hollow.numel() == 0);
  CHECK(hollow.strides() == Shape{0, k2to62, 1});
  CHECK(empty({k2to62, k2to62, 0}).numel() == 0);
}

TEST_CASE("view, reshape, expand and flatten refuse wrapped shapes", "[overflow]") {
  const Tensor x = zeros({4});
  // (2^62 + 1) * 4 = 2^64 + 4 wraps to exactly 4.
  require_error([&] { x.view({k2to62 + 1, 4}); }, {"[view]"});
  require_error([&] { x.reshape({k2to62 + 1, 4}); }, {"[reshape]"});
  require_error([&] { x.reshape({k2to62, 8, -1}); }, {"[reshape]"});
  require_error([&] { x.unflatten(0, {k2to62 + 1, 4}); }, {"[unflatten]"});
  require_error([] { zeros({1, 1}).expand({k2to40, k2to40}); }, {"[expand]"});
  require_error([] { zeros({1}).expand({-2}); }, {"[expand]", "-2"});
  require_error([] { zeros({2, 1}).expand({2, -3}); }, {"[expand]", "-3"});
  require_error([] { empty({0, k2to62, k2to62}).flatten(1); }, {"[flatten]"});
  // Shapes that do fit still work.
  CHECK(zeros({1}).expand({0}).numel() == 0);
  CHECK(zeros({0}).view({k2to62, 4, 0}).shape() == Shape{k2to62, 4, 0});
  CHECK(zeros({1, 1}).expand({-1, 5}).shape() == Shape{1, 5});
}

TEST_CASE("from_blob and as_strided refuse strides and offsets that overflow", "[overflow]") {
  float data[4] = {1, 2, 3, 4};
  require_error([&] { from_blob(data, {2, 2}, {kMax, 1}, {}); }, {"[from_blob]", "[9223372036854775807, 1]"});
  require_error([&] { from_blob(data, {3, 3}, {kMax / 2, kMax / 2}, {}); }, {"[from_blob]"});
  require_error([&] { from_blob(data, {k2to62}, {1}, {DType::f32}); }, {"[from_blob]"});
  CHECK(from_blob(data, {2, 2}, {1, 2}, {}).storage()->nbytes() == 4 * sizeof(float));

  const Tensor x = arange(0, 4).to(DType::f32);
  require_error([&] { x.as_strided({1}, {1}, kMax); }, {"[as_strided]", "9223372036854775807"});
  require_error([&] { x.as_strided({3}, {kMax / 2}, 0); }, {"[as_strided]"});
  require_error([&] { x.as_strided({2, 2}, {kMax, kMax}, 1); }, {"[as_strided]"});
  require_error([&] { x.as_strided({2}, {-1}, 1); }, {"[as_strided]", "negative stride"});
  // The last reachable element exactly at the end of the storage is fine; one past is not.
  CHECK(reference::from_tensor(x.as_strided({2}, {1}, 2)).values == std::vector<double>{2, 3});
  require_error([&] { x.as_strided({2}, {1}, 3); }, {"[as_strided]", "4 elements"});
}

TEST_CASE("slice and narrow with extreme steps and lengths", "[overflow]") {
  const Tensor x = arange(0, 5);
  const Tensor one = x.slice(0, 0, 5, kMax);  // (end - start + step - 1) used to overflow
  CHECK(one.shape() == Shape{1});
  CHECK(one.item<int64_t>() == 0);
  const Tensor two = x.slice(0, 1, 5, 3);
  REQUIRE(two.shape() == Shape{2});
  CHECK(reference::from_tensor(two).values == std::vector<double>{1, 4});
  CHECK(x.slice(0, 3, 2, kMax).numel() == 0);
  require_error([&] { x.narrow(0, 1, kMax); }, {"[narrow]", "[5]"});
  require_error([&] { x.narrow(0, 6, 0); }, {"[narrow]"});
  CHECK(x.narrow(0, 5, 0).numel() == 0);
}

TEST_CASE("Scalar float -> int64 conversion saturates instead of undefined behaviour", "[overflow]") {
  CHECK(Scalar(std::nan("")).to_int64() == 0);
  CHECK(Scalar(1e30).to_int64() == kMax);
  CHECK(Scalar(-1e30).to_int64() == kMin);
  CHECK(Scalar(9223372036854775808.0).to_int64() == kMax);
  CHECK(Scalar(-9223372036854775808.0).to_int64() == kMin);
  CHECK(Scalar(-3.9).to_int64() == -3);
  CHECK(Scalar(3.9).to<int32_t>() == 3);
  CHECK(Scalar(int64_t{-7}).to_int64() == -7);
}

TEST_CASE("integer arange counts in 128 bits", "[overflow]") {
  // ceil((2^64 - 1) / (2^63 - 1)) = 3 elements: INT64_MIN, -1, 2^63 - 2.
  const Tensor x = arange(kMin, kMax, kMax);
  REQUIRE(x.shape() == Shape{3});
  const int64_t* data = x.data_ptr<int64_t>();
  CHECK(data[0] == kMin);
  CHECK(data[1] == -1);
  CHECK(data[2] == kMax - 1);
  const Tensor down = arange(kMax, kMin, kMin + 1);  // step -(2^63 - 1)
  REQUIRE(down.shape() == Shape{3});
  CHECK(down.data_ptr<int64_t>()[2] == kMin + 1);
}

TEST_CASE("randint refuses ranges its double bounds cannot carry or the dtype cannot hold", "[overflow]") {
  // A range of 2^64 used to become a 0 modulus: SIGFPE.
  require_error([] { randint(kMin, kMax, {3}); }, {"[randint]"});
  require_error([] { randint(0, (int64_t{1} << 53) + 2, {3}); }, {"[randint]"});
  require_error([] { randint(0, 300, {3}, {DType::u8}); }, {"[randint]", "uint8"});
  require_error([] { randint(-1, 3, {3}, {DType::u8}); }, {"[randint]", "uint8"});
  require_error([] { randint(-200, 3, {3}, {DType::i8}); }, {"[randint]", "int8"});
  // Full ranges that fit are fine, and every value lands in [low, high).
  for (auto [low, high, dtype] : {std::tuple{int64_t{0}, int64_t{256}, DType::u8},
                                  std::tuple{int64_t{-128}, int64_t{128}, DType::i8},
                                  std::tuple{-(int64_t{1} << 52), int64_t{1} << 52, DType::i64}}) {
    const Tensor r = randint(low, high, {4096}, {dtype});
    const std::vector<double> v = reference::from_tensor(r).values;
    for (double value : v) {
      REQUIRE(value >= static_cast<double>(low));
      REQUIRE(value < static_cast<double>(high));
    }
  }
}
