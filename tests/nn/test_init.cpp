// nn::init: the bound and std formulas of torch.nn.init, checked on the statistics of large
// tensors, and the argument checks.
#include "test_util.h"

using namespace keel;
using namespace keel::nn;

namespace {
double max_abs(const Tensor& t) { return max(abs(t)).item<double>(); }
double mean_of(const Tensor& t) { return mean(t.to(DType::f64)).item<double>(); }
double std_of(const Tensor& t) { return keel::std(t.to(DType::f64)).item<double>(); }
}  // namespace

TEST_CASE("calculate_gain and the fans follow torch.nn.init", "[nn][init]") {
  CHECK(init::calculate_gain(init::Nonlinearity::linear) == 1.0);
  CHECK(init::calculate_gain(init::Nonlinearity::sigmoid) == 1.0);
  CHECK(init::calculate_gain(init::Nonlinearity::tanh) == Approx(5.0 / 3.0));
  CHECK(init::calculate_gain(init::Nonlinearity::relu) == Approx(std::sqrt(2.0)));
  CHECK(init::calculate_gain(init::Nonlinearity::leaky_relu) == Approx(std::sqrt(2.0 / (1 + 0.01 * 0.01))));
  CHECK(init::calculate_gain(init::Nonlinearity::leaky_relu, std::sqrt(5.0)) == Approx(std::sqrt(1.0 / 3.0)));
  CHECK(init::calculate_gain(init::Nonlinearity::selu) == 0.75);
  const init::Fans fans = init::calculate_fan_in_and_fan_out(empty({8, 3, 5, 2}));
  CHECK(fans.fan_in == 30);
  CHECK(fans.fan_out == 80);
  test::check_error([] { init::calculate_fan_in_and_fan_out(empty({5})); }, {"[nn.init]", "at least 2 dims"});
}

TEST_CASE("uniform and normal initialisers have PyTorch's bounds and standard deviations", "[nn][init]") {
  manual_seed(11);
  Tensor w = empty({256, 512});  // fan_in 512, fan_out 256
  const double fan_in = 512, fan_out = 256;

  init::uniform_(w, -0.3, 0.7);
  CHECK(min(w).item<double>() >= -0.3);
  CHECK(max(w).item<double>() < 0.7);
  CHECK(mean_of(w) == Approx(0.2).margin(0.005));
  CHECK(std_of(w) == Approx(1.0 / std::sqrt(12.0)).epsilon(0.01));

  init::normal_(w, 1.5, 0.5);
  CHECK(mean_of(w) == Approx(1.5).margin(0.005));
  CHECK(std_of(w) == Approx(0.5).epsilon(0.01));

  // kaiming_uniform_(a = 0, fan_in, leaky_relu): bound = sqrt(2) * sqrt(3 / fan_in).
  init::kaiming_uniform_(w);
  const double k_bound = std::sqrt(2.0) * std::sqrt(3.0 / fan_in);
  CHECK(max_abs(w) <= k_bound);
  CHECK(max_abs(w) > 0.999 * k_bound);
  CHECK(std_of(w) == Approx(k_bound / std::sqrt(3.0)).epsilon(0.01));
  init::kaiming_uniform_(w, 0, init::FanMode::fan_out, init::Nonlinearity::relu);
  CHECK(max_abs(w) <= std::sqrt(6.0 / fan_out));
  CHECK(max_abs(w) > 0.999 * std::sqrt(6.0 / fan_out));

  // kaiming_normal_: std = gain / sqrt(fan).
  init::kaiming_normal_(w, 0, init::FanMode::fan_out, init::Nonlinearity::relu);
  CHECK(std_of(w) == Approx(std::sqrt(2.0 / fan_out)).epsilon(0.01));
  CHECK(mean_of(w) == Approx(0).margin(0.01 * std::sqrt(2.0 / fan_out)));

  // xavier: bound = gain sqrt(6 / (fan_in + fan_out)), std = gain sqrt(2 / (fan_in + fan_out)).
  init::xavier_uniform_(w, 2.0);
  const double x_bound = 2.0 * std::sqrt(6.0 / (fan_in + fan_out));
  CHECK(max_abs(w) <= x_bound);
  CHECK(max_abs(w) > 0.999 * x_bound);
  init::xavier_normal_(w);
  CHECK(std_of(w) == Approx(std::sqrt(2.0 / (fan_in + fan_out))).epsilon(0.01));

  init::constant_(w, 0.25);
  CHECK(min(w).item<double>() == 0.25);
  CHECK(max(w).item<double>() == 0.25);
  init::ones_(w);
  CHECK(mean_of(w) == 1.0);
  init::zeros_(w);
  CHECK(max_abs(w) == 0.0);
}

TEST_CASE("trunc_normal_ samples the truncated normal distribution", "[nn][init]") {
  manual_seed(12);
  Tensor w = empty({200000}, {.dtype = DType::f64});
  // N(0, 1) truncated to [-1, 2]: mean = (phi(a) - phi(b)) / Z, var = 1 + (a phi(a) - b phi(b)) / Z - mean^2.
  init::trunc_normal_(w, 0, 1, -1, 2);
  const auto phi = [](double x) { return std::exp(-x * x / 2) / std::sqrt(2 * M_PI); };
  const auto cdf = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  const double a = -1, b = 2, z = cdf(b) - cdf(a);
  const double expected_mean = (phi(a) - phi(b)) / z;
  const double expected_var = 1 + (a * phi(a) - b * phi(b)) / z - expected_mean * expected_mean;
  CHECK(min(w).item<double>() >= -1);
  CHECK(max(w).item<double>() <= 2);
  CHECK(min(w).item<double>() < -0.999);
  CHECK(mean_of(w) == Approx(expected_mean).margin(0.01));
  CHECK(std_of(w) == Approx(std::sqrt(expected_var)).epsilon(0.01));
  // Scaled: the bounds are absolute (as PyTorch), the shape follows mean and std.
  Tensor v = empty({100000});
  init::trunc_normal_(v, 0.5, 0.02, 0.46, 0.54);
  CHECK(min(v).item<double>() >= 0.46);
  CHECK(max(v).item<double>() <= 0.54);
  CHECK(mean_of(v) == Approx(0.5).margin(0.001));
  test::check_error([&] { init::trunc_normal_(v, 0, 1, 2, -2); }, {"[nn.init.trunc_normal_]"});
}

TEST_CASE("initialisers are seeded by the generator and refuse integer tensors", "[nn][init]") {
  Generator g1(42), g2(42);
  Tensor a = empty({64}), b = empty({64});
  init::normal_(a, 0, 1, &g1);
  init::normal_(b, 0, 1, &g2);
  CHECK(max_abs(a - b) == 0.0);
  Tensor ints = zeros({4}, {.dtype = DType::i64});
  test::check_error([&] { init::normal_(ints); }, {"[nn.init.normal_]", "floating"});
  // No gradient history is recorded on a parameter.
  Tensor p = empty({4, 4}).requires_grad_();
  init::xavier_uniform_(p);
  CHECK(p.is_leaf());
}
