// The Philox generator and the random factories: known-answer vectors, seeding, generator
// independence, the moments of large draws, dtypes and bad input.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "keel/kernels/convert.h"
#include "keel/kernels/dispatch.h"
#include "keel/kernels/random_draw.h"
#include "test_util.h"

using namespace keel;

namespace {
// All elements as double, read on the host.
std::vector<double> host_values(const Tensor& t) {
  const Tensor host = t.cpu().to(f64).contiguous();
  const double* data = host.data_ptr<double>();
  return std::vector<double>(data, data + host.numel());
}

struct Moments {
  double mean, variance, min, max;
};
Moments moments(const std::vector<double>& values) {
  double sum = 0, min = INFINITY, max = -INFINITY;
  for (double v : values) {
    sum += v;
    min = std::min(min, v);
    max = std::max(max, v);
  }
  const double mean = sum / static_cast<double>(values.size());
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  return {mean, squares / static_cast<double>(values.size() - 1), min, max};
}
}  // namespace

TEST_CASE("philox4x32_10 matches the Random123 known-answer vector", "[random]") {
  // Random123 kat_vectors: philox4x32 10, counter {0, 0, 0, 0}, key {0, 0}.
  uint32_t out[4];
  philox4x32_10(0, 0, out);
  CHECK(out[0] == 0x6627e8d5u);
  CHECK(out[1] == 0xe169c58du);
  CHECK(out[2] == 0xbc57ac4cu);
  CHECK(out[3] == 0x9b00dbd8u);
  // Keel packs a 64-bit counter into words (c0 = low, c1 = high, c2 = c3 = 0) and the seed into
  // the key (k0 = low, k1 = high). Expected words from a separate Python Philox4x32-10 that
  // reproduces all three Random123 known-answer vectors (zeros, all-ones and the pi digits).
  philox4x32_10(0x0123456789abcdefull, 0xfedcba9876543210ull, out);
  CHECK(out[0] == 0x2c03a599u);
  CHECK(out[1] == 0xd8a290fcu);
  CHECK(out[2] == 0x4339955bu);
  CHECK(out[3] == 0x8784c033u);
  philox4x32_10(42, 7, out);
  CHECK(out[0] == 0x5bbd83b1u);
  CHECK(out[1] == 0x68784c85u);
  CHECK(out[2] == 0x172067aau);
  CHECK(out[3] == 0x2e6b75b7u);
  philox4x32_10(0xa4093822299f31d0ull, 1ull << 32, out);
  CHECK(out[0] == 0x5085a9f4u);
  CHECK(out[1] == 0xaed87868u);
  CHECK(out[2] == 0xc682089bu);
  CHECK(out[3] == 0x1356417au);
  // 2^-24 steps: the largest 32-bit draw maps below 1.
  CHECK(uniform_from_bits(0) == 0.0f);
  CHECK(uniform_from_bits(0xffffffffu) == 1.0f - 5.9604644775390625e-08f);
}

TEST_CASE("every CPU path draws draw_element's numbers, element by element", "[random]") {
  // The kernels compute Philox 16 blocks at a time per instruction set (kernels/cpu/random.isa.cpp);
  // the numbers must be those of the shared formula (kernels/random_draw.h, also CUDA's), bit for
  // bit: in particular no multiply-add may be fused on the FMA paths.
  struct Draw {
    const char* name;
    int kind;
    DType dtype;
    double a, b;
  };
  const std::vector<Draw> draws = {{"rand f32", kRandomUniform24, f32, 0, 1},   {"rand f64", kRandomUniform53, f64, 0, 1},
                                   {"rand f16", kRandomUniform11, f16, 0, 1},   {"rand bf16", kRandomUniform8, bf16, 0, 1},
                                   {"randn f32", kRandomNormal, f32, 0, 1},
                                   {"randn f64", kRandomNormal, f64, 0, 1},     {"randint", kRandomInteger, i64, -5, 1000}};
  for (const std::string& isa : test::cpu_paths()) {
    test::CpuPathGuard guard(isa);
    for (const Draw& d : draws) {
      for (int64_t n : {1, 3, 5, 31, 64, 65, 257, 1000, 4099}) {
        INFO(isa << " " << d.name << " n " << n);
        Generator generator(0x5eed + static_cast<uint64_t>(n));
        const PhiloxState state{generator.seed(), 0};
        Tensor x;
        if (d.kind == kRandomNormal) x = randn({n}, {.dtype = d.dtype}, &generator);
        else if (d.kind == kRandomInteger) x = randint(static_cast<int64_t>(d.a), static_cast<int64_t>(d.b), {n}, {.dtype = i64}, &generator);
        else x = rand({n}, {.dtype = d.dtype}, &generator);
        const Tensor host = x.to(f64);
        int64_t mismatches = 0;
        for (int64_t i = 0; i < n; ++i) {
          const double expected_draw = draw_element(d.kind, d.a, d.b, state, i);
          double expected = expected_draw;
          dispatch_all(d.dtype, "test", [&]<typename T>() { expected = convert<double, T>(convert<T, double>(expected_draw)); });
          const double got = host.data_ptr<double>()[i];
          if (std::memcmp(&got, &expected, sizeof(double)) != 0 && ++mismatches <= 3)
            FAIL_CHECK("element " << i << ": got " << got << ", expected " << expected);
        }
        CHECK(mismatches == 0);
      }
    }
  }
}

TEST_CASE("manual_seed makes draws reproducible", "[random]") {
  manual_seed(42);
  const auto a = host_values(rand({1001}));
  const auto b = host_values(randn({33, 3}));
  const auto c = host_values(randint(-5, 17, {257}));
  manual_seed(42);
  CHECK(host_values(rand({1001})) == a);
  CHECK(host_values(randn({33, 3})) == b);
  CHECK(host_values(randint(-5, 17, {257})) == c);
  manual_seed(43);
  CHECK(host_values(rand({1001})) != a);
  // The generator remembers its seed and moves its offset by the blocks a draw uses.
  manual_seed(7);
  CHECK(default_generator().seed() == 7);
  CHECK(default_generator().state().offset == 0);
  (void)rand({10});  // 10 uniform elements: 3 blocks of 4
  CHECK(default_generator().state().offset == 3);
  (void)randint(0, 5, {3});  // integers take 2 per block
  CHECK(default_generator().state().offset == 5);
}

TEST_CASE("consecutive draws differ and do not overlap", "[random]") {
  manual_seed(5);
  const auto first = host_values(rand({31}));
  const auto second = host_values(rand({31}));
  CHECK(first != second);
  // One draw of 64 equals the two draws of 32 that follow the same seed (disjoint counters).
  manual_seed(6);
  const auto whole = host_values(rand({64}));
  manual_seed(6);
  auto halves = host_values(rand({32}));
  const auto rest = host_values(rand({32}));
  halves.insert(halves.end(), rest.begin(), rest.end());
  CHECK(halves == whole);
}

TEST_CASE("Generator objects are independent of the default generator", "[random]") {
  manual_seed(1);
  const auto expected_default = host_values(rand({100}));

  manual_seed(1);
  Generator generator(99);
  const auto from_generator = host_values(rand({100}, {}, &generator));
  CHECK(host_values(rand({100})) == expected_default);  // the default did not move
  CHECK(from_generator != expected_default);

  Generator same_seed(99);
  CHECK(host_values(rand({100}, {}, &same_seed)) == from_generator);
  CHECK(host_values(rand({100}, {}, &generator)) != from_generator);  // it moved on
  generator.manual_seed(99);
  CHECK(host_values(rand({100}, {}, &generator)) == from_generator);
  // set_state rewinds.
  const PhiloxState saved = generator.state();
  const auto next = host_values(randn({50}, {}, &generator));
  generator.set_state(saved);
  CHECK(host_values(randn({50}, {}, &generator)) == next);
}

TEST_CASE("moments of a million draws", "[random]") {
  constexpr int64_t kCount = 1000000;
  Generator generator(2024);

  SECTION("rand: mean 1/2, variance 1/12, inside [0, 1)") {
    const Moments m = moments(host_values(rand({kCount}, {}, &generator)));
    CHECK(std::fabs(m.mean - 0.5) < 0.002);
    CHECK(std::fabs(m.variance - 1.0 / 12.0) < 0.001);
    CHECK(m.min >= 0.0);
    CHECK(m.max < 1.0);
  }
  SECTION("randn: mean 0, standard deviation 1") {
    const auto values = host_values(randn({kCount}, {}, &generator));
    const Moments m = moments(values);
    CHECK(std::fabs(m.mean) < 0.005);
    CHECK(std::fabs(std::sqrt(m.variance) - 1.0) < 0.005);
    // Tails: P(|z| > 2) = 0.0455, P(|z| > 3) = 0.0027.
    int64_t beyond_two = 0, beyond_three = 0;
    for (double v : values) {
      beyond_two += std::fabs(v) > 2.0;
      beyond_three += std::fabs(v) > 3.0;
    }
    CHECK(std::fabs(static_cast<double>(beyond_two) / kCount - 0.0455) < 0.002);
    CHECK(std::fabs(static_cast<double>(beyond_three) / kCount - 0.0027) < 0.0005);
  }
  SECTION("randint: every value of [low, high) equally likely (chi-square)") {
    const int64_t low = -3, high = 7;
    const Tensor draw = randint(low, high, {kCount}, {.dtype = i64}, &generator);
    CHECK(draw.dtype() == i64);
    std::vector<int64_t> counts(high - low, 0);
    for (double v : host_values(draw)) {
      REQUIRE(v >= low);
      REQUIRE(v < high);
      REQUIRE(v == std::floor(v));
      ++counts[static_cast<size_t>(v - low)];
    }
    const double expected = static_cast<double>(kCount) / (high - low);
    double chi_square = 0;
    for (int64_t c : counts) chi_square += (c - expected) * (c - expected) / expected;
    // 9 degrees of freedom: P(chi^2 > 33.7) = 1e-4.
    CHECK(chi_square < 33.7);
  }
  SECTION("bernoulli: frequency p") {
    const auto values = host_values(bernoulli({kCount}, 0.3, {}, &generator));
    double ones = 0;
    for (double v : values) {
      REQUIRE((v == 0.0 || v == 1.0));
      ones += v;
    }
    CHECK(std::fabs(ones / kCount - 0.3) < 0.003);
    // Per-element probabilities: p = 0 never fires, p = 1 always does.
    const Tensor p = tensor({0.0, 1.0, 0.0, 1.0});
    CHECK(host_values(bernoulli(p, &generator)) == std::vector<double>{0, 1, 0, 1});
  }
}

TEST_CASE("rand and randn in every floating dtype", "[random]") {
  for (DType dtype : {f32, f64, f16, bf16}) {
    INFO(dtype_name(dtype));
    manual_seed(11);
    const Tensor u = rand({100000}, {.dtype = dtype});
    const Tensor z = randn({100000}, {.dtype = dtype});
    CHECK(u.dtype() == dtype);
    CHECK(z.dtype() == dtype);
    CHECK(u.shape() == Shape{100000});
    const Moments mu = moments(host_values(u));
    const Moments mz = moments(host_values(z));
    CHECK(mu.min >= 0.0);
    CHECK(mu.max <= 1.0);  // the strict bound is the next test case
    CHECK(std::fabs(mu.mean - 0.5) < 0.01);
    CHECK(std::fabs(mz.mean) < 0.02);
    CHECK(std::fabs(std::sqrt(mz.variance) - 1.0) < 0.02);
    manual_seed(11);
    CHECK(host_values(rand({100000}, {.dtype = dtype})) == host_values(u));
  }
  // Shapes with zero elements draw nothing.
  manual_seed(3);
  CHECK(rand({0, 4}).numel() == 0);
  CHECK(default_generator().state().offset == 0);
}

TEST_CASE("rand stays in [0, 1) after rounding to f16 and bf16, as torch.rand does", "[random]") {
  // torch.rand(10**7, dtype=torch.float16).max() -> 0.99951171875 (never 1): PyTorch draws as
  // many random bits as the dtype has digits. A 24-bit f32 uniform rounded to f16 gives 1.0
  // with probability 2^-12 (2^-9 for bf16).
  for (DType dtype : {f16, bf16}) {
    INFO(dtype_name(dtype));
    Generator generator(8);
    const Moments m = moments(host_values(rand({1000000}, {.dtype = dtype}, &generator)));
    CHECK(m.max < 1.0);
  }
}

TEST_CASE("random factories reject bad input", "[random]") {
  CHECK_THROWS_AS(randint(5, 5, {3}), keel::Error);
  CHECK_THROWS_AS(randint(5, 2, {3}), keel::Error);
  CHECK_THROWS_AS(randint(0, 2, {3}, {.dtype = bool_}), keel::Error);
  CHECK_THROWS_AS(rand({3}, {.dtype = i32}), keel::Error);
  CHECK_THROWS_AS(rand({3}, {.dtype = i64}), keel::Error);
  CHECK_THROWS_AS(randn({3}, {.dtype = u8}), keel::Error);
  CHECK_THROWS_AS(bernoulli({3}, 1.5), keel::Error);
  CHECK_THROWS_AS(bernoulli({3}, -0.1), keel::Error);
  CHECK_THROWS_AS(bernoulli(tensor({1, 0})), keel::Error);  // integer probabilities
  CHECK_THROWS_AS(rand({-1}), keel::Error);
}

TEST_CASE("the same seed gives the same numbers on CPU and CUDA", "[random][cuda]") {
  if (!cuda::is_available()) {
    WARN("skipped: no CUDA device");
    return;
  }
  for (DType dtype : {f32, f64, f16, bf16}) {
    manual_seed(77);
    const auto cpu_uniform = host_values(rand({1025}, {.dtype = dtype}));
    const auto cpu_normal = host_values(randn({1025}, {.dtype = dtype}));
    const auto cpu_int = host_values(randint(-9, 1000, {1025}));
    manual_seed(77);
    CHECK(host_values(rand({1025}, {.dtype = dtype, .device = Device::cuda(0)})) == cpu_uniform);
    const auto gpu_normal = host_values(randn({1025}, {.dtype = dtype, .device = Device::cuda(0)}));
    REQUIRE(gpu_normal.size() == cpu_normal.size());
    for (size_t i = 0; i < gpu_normal.size(); ++i) {
      // sin/cos/log may differ by an ulp between the host libm and CUDA's.
      REQUIRE(std::fabs(gpu_normal[i] - cpu_normal[i]) <= 1e-5 * (1 + std::fabs(cpu_normal[i])) + (dtype == f16 ? 2e-3 : dtype == bf16 ? 1.6e-2 : 0));
    }
    CHECK(host_values(randint(-9, 1000, {1025}, {.dtype = i64, .device = Device::cuda(0)})) == cpu_int);
  }
}
