// Mixed precision: GradScaler (torch.cuda.amp.GradScaler's dynamic loss scaling: skipped steps
// on inf/NaN grads, backoff, growth after growth_interval clean steps, unscale_ before clipping)
// and AutocastGuard (linear / matmul compute in bf16, gradients reach f32 weights in f32; ops
// outside the autocast list keep their dtype).
#include <cmath>
#include <limits>
#include <vector>

#include "optim_test_util.h"

using namespace keel;
using namespace keel::optim_test;

TEST_CASE("GradScaler scales the loss, unscales grads and steps", "[optim][amp]") {
  Tensor w = param_of({1.0, 2.0});
  optim::SGD opt({w}, {.lr = 0.1});
  optim::GradScaler scaler({.init_scale = 1024.0, .growth_interval = 3});
  CHECK(scaler.get_scale() == 1024.0);
  Tensor loss = sum(w * w);  // grad 2w
  scaler.scale(loss).backward();
  check_close(values_of(w.grad()), {2.0 * 1024, 4.0 * 1024});
  CHECK(scaler.step(opt));
  check_close(values_of(w), {1.0 - 0.1 * 2.0, 2.0 - 0.1 * 4.0});
  scaler.update();
  CHECK(scaler.get_scale() == 1024.0);
  CHECK(scaler.growth_tracker() == 1);
}

TEST_CASE("GradScaler skips the step on inf or NaN grads and backs off; grows after growth_interval", "[optim][amp]") {
  Tensor w = param_of({1.0, 2.0});
  optim::SGD opt({w}, {.lr = 0.1});
  optim::GradScaler scaler({.init_scale = 1024.0, .growth_interval = 3});
  auto step_with = [&](const std::vector<double>& grad) {
    w.set_grad(f64_of(grad));
    const bool stepped = scaler.step(opt);
    scaler.update();
    return stepped;
  };
  CHECK(step_with({1024.0, 2048.0}));
  CHECK(step_with({1024.0, 1024.0}));
  const std::vector<double> before = values_of(w);
  CHECK(!step_with({std::numeric_limits<double>::infinity(), 1.0}));
  CHECK(values_of(w) == before);  // skipped
  CHECK(scaler.get_scale() == 512.0);
  CHECK(scaler.growth_tracker() == 0);
  CHECK(!step_with({1.0, std::nan("")}));
  CHECK(scaler.get_scale() == 256.0);
  for (int i = 0; i < 2; ++i) CHECK(step_with({256.0, 256.0}));
  CHECK(scaler.get_scale() == 256.0);
  CHECK(scaler.growth_tracker() == 2);
  CHECK(step_with({256.0, 256.0}));  // the third clean step in a row: grow
  CHECK(scaler.get_scale() == 512.0);
  CHECK(scaler.growth_tracker() == 0);
  CHECK(step_with({512.0, 512.0}));

  optim::GradScaler resumed;
  resumed.load_state_dict(scaler.state_dict());
  CHECK(resumed.get_scale() == 512.0);
  CHECK(resumed.growth_tracker() == 1);
  CHECK_THROWS_AS(resumed.load_state_dict({{"scale", -1.0}, {"growth_tracker", 0.0}}), Error);
  CHECK(resumed.get_scale() == 512.0);
}

TEST_CASE("GradScaler: unscale_ before clipping, and its misuse errors", "[optim][amp]") {
  Tensor w = param_of({1.0, 2.0});
  optim::SGD opt({w}, {.lr = 1.0});
  optim::GradScaler scaler({.init_scale = 8.0});
  w.set_grad(f64_of({24.0, 32.0}));  // true grads 3, 4: norm 5
  scaler.unscale_(opt);
  check_close(values_of(w.grad()), {3.0, 4.0});
  const Tensor total = optim::clip_grad_norm_({w}, 1.0);
  CHECK(total.item<double>() == Approx(5.0));
  CHECK_THROWS_WITH(scaler.unscale_(opt), Catch::Contains("already been called"));
  CHECK(scaler.step(opt));  // no second unscale
  check_close(values_of(w), {1.0 - 3.0 / (5.0 + 1e-6), 2.0 - 4.0 / (5.0 + 1e-6)});
  scaler.update();
  CHECK_THROWS_WITH(scaler.update(), Catch::Contains("without any inf check"));
  CHECK_THROWS_AS(optim::GradScaler({.growth_factor = 0.5}), Error);
  CHECK_THROWS_AS(optim::GradScaler({.backoff_factor = 1.5}), Error);

  optim::GradScaler disabled({.enabled = false});
  Tensor loss = sum(w);
  CHECK(disabled.scale(loss).is_same(loss));
  CHECK(disabled.get_scale() == 1.0);
}

TEST_CASE("autocast: linear and matmul compute in bf16 under AutocastGuard, grads reach f32 weights", "[optim][amp]") {
  manual_seed(7);
  Tensor x = randn({4, 8});
  Tensor weight = (randn({3, 8}) * 0.3).requires_grad_();
  Tensor bias = randn({3}).requires_grad_();
  Tensor y;
  {
    AutocastGuard autocast_guard(DType::bf16);
    REQUIRE(autocast_dtype() == DType::bf16);
    y = linear(x, weight, bias);
    CHECK(y.dtype() == DType::bf16);
    CHECK(matmul(x, weight.t()).dtype() == DType::bf16);
    CHECK(softmax(x, -1).dtype() == DType::f32);  // fp32 list: left as is
    const Tensor x64 = x.to(DType::f64);
    CHECK(matmul(x64, x64.t()).dtype() == DType::f64);  // f64 is never cast
    {
      AutocastGuard off(DType::bf16, false);
      CHECK(linear(x, weight, bias).dtype() == DType::f32);
    }
    CHECK(linear(x, weight, bias).dtype() == DType::bf16);
  }
  CHECK(!autocast_dtype().has_value());
  CHECK(linear(x, weight, bias).dtype() == DType::f32);

  // y = x W^T + b in bf16: close to the f32 result at bf16 precision.
  const Tensor y32 = linear(x, weight, bias).detach();
  const std::vector<double> a = values_of(y), b = values_of(y32);
  for (size_t i = 0; i < a.size(); ++i) CHECK(std::abs(a[i] - b[i]) <= 0.05 * std::max(1.0, std::abs(b[i])));

  // Gradients flow back through the casts: d sum(y) / dW = sum over rows of x, db = 4.
  sum(y.to(DType::f32)).backward();
  REQUIRE(weight.grad().defined());
  CHECK(weight.grad().dtype() == DType::f32);
  CHECK(bias.grad().dtype() == DType::f32);
  const std::vector<double> col_sums = values_of(sum(x, {0}));
  const std::vector<double> gw = values_of(weight.grad());
  for (int64_t o = 0; o < 3; ++o)
    for (int64_t k = 0; k < 8; ++k) CHECK(gw[o * 8 + k] == Approx(col_sums[k]).epsilon(0.02).margin(0.02));
  CHECK(values_of(bias.grad()) == std::vector<double>{4.0, 4.0, 4.0});
  CHECK_THROWS_AS(AutocastGuard(DType::f32), Error);
}

TEST_CASE("autocast: conv2d and scaled_dot_product_attention compute in bf16, grads reach f32 inputs", "[optim][amp]") {
  manual_seed(11);
  Tensor x = randn({2, 3, 6, 6});
  Tensor weight = (randn({4, 3, 3, 3}) * 0.2).requires_grad_();
  Tensor bias = randn({4}).requires_grad_();
  Tensor q = randn({2, 2, 5, 8}).requires_grad_(), k = randn({2, 2, 5, 8}), v = randn({2, 2, 5, 8});
  Tensor y, o;
  {
    AutocastGuard autocast_guard(DType::bf16);
    y = conv2d(x, weight, bias, {.padding = {1, 1}});
    o = scaled_dot_product_attention(q, k, v, {.is_causal = true});
  }
  CHECK(y.dtype() == DType::bf16);
  CHECK(o.dtype() == DType::bf16);
  const Tensor y32 = conv2d(x, weight, bias, {.padding = {1, 1}}).detach();
  const Tensor o32 = scaled_dot_product_attention(q, k, v, {.is_causal = true}).detach();
  const double y_err = max(abs(y.to(DType::f32) - y32)).item<double>(), y_max = max(abs(y32)).item<double>();
  const double o_err = max(abs(o.to(DType::f32) - o32)).item<double>(), o_max = max(abs(o32)).item<double>();
  CHECK(y_err <= 0.02 * y_max);
  CHECK(o_err <= 0.02 * o_max);
  (sum(y.to(DType::f32)) + sum(o.to(DType::f32))).backward();
  REQUIRE(weight.grad().defined());
  REQUIRE(q.grad().defined());
  CHECK(weight.grad().dtype() == DType::f32);
  CHECK(bias.grad().dtype() == DType::f32);
  CHECK(q.grad().dtype() == DType::f32);
  // d sum(y) / d bias = number of output positions per channel (2 images x 6 x 6), exact in bf16.
  CHECK(values_of(bias.grad()) == std::vector<double>(4, 72.0));
}

TEST_CASE("autocast + GradScaler: a bf16 training step of a linear model lowers the loss", "[optim][amp]") {
  manual_seed(3);
  Tensor x = randn({32, 16});
  Tensor target = matmul(x, randn({16, 1}));
  Tensor w = (randn({1, 16}) * 0.1).requires_grad_();
  optim::AdamW opt({w}, {.lr = 0.05, .weight_decay = 0});
  optim::GradScaler scaler({.init_scale = 1024.0});
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    Tensor loss;
    {
      AutocastGuard autocast_guard(DType::bf16);
      const Tensor pred = linear(x, w);
      loss = mse_loss(pred.to(DType::f32), target);  // the loss in f32, as torch's fp32 list
    }
    if (step == 0) first = loss.item<double>();
    last = loss.item<double>();
    scaler.scale(loss).backward();
    CHECK(scaler.step(opt));
    scaler.update();
    opt.zero_grad();
  }
  CHECK(w.dtype() == DType::f32);
  CHECK(last < 0.5 * first);
}
