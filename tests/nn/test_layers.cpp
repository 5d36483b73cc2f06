// nn layers: forward against the functional op or a float64 composite, gradients by gradcheck
// (small f64 layers, parameters and input), BatchNorm's running statistics against the formula,
// and bad constructor arguments.
#include "test_util.h"

using namespace keel;
using autograd::TensorList;
using test::max_abs_diff;

namespace {

// gradcheck of module(x) with respect to x and every parameter (the module in f64).
void check_module_gradients(nn::Module& module, const Tensor& x) {
  module.to(DType::f64);
  TensorList inputs = {x};
  for (const Tensor& p : module.parameters()) inputs.push_back(p);
  CHECK(autograd::gradcheck([&](const TensorList& in) { return module(in[0]); }, inputs));
}

}  // namespace

TEST_CASE("Linear computes x W^T + b and has PyTorch's names", "[nn][layers]") {
  manual_seed(1);
  nn::Linear fc(7, 5);
  CHECK(fc.weight.shape() == Shape{5, 7});
  CHECK(fc.bias.shape() == Shape{5});
  const Tensor x = randn({3, 2, 7});
  const Tensor w = fc.weight.to(DType::f64), b = fc.bias.to(DType::f64);
  const Tensor expected = matmul(x.to(DType::f64), w.t()) + b;
  CHECK(max_abs_diff(fc(x), expected) < 1e-5);
  nn::Linear no_bias(7, 5, false);
  CHECK_FALSE(no_bias.bias.defined());
  CHECK(no_bias.named_parameters().size() == 1);
  CHECK(no_bias.extra_repr() == "in_features=7, out_features=5, bias=False");
  test::check_error([] { nn::Linear(0, 3); }, {"[nn.Linear]", "must be positive"});
  test::check_error([&] { fc(randn({3, 6})); }, {"[nn.Linear]", "in_features = 7"});
}

TEST_CASE("Linear's and Conv2d's default initialisation follows PyTorch's bounds", "[nn][layers][init]") {
  manual_seed(2);
  nn::Linear fc(400, 300);
  const double bound = 1.0 / std::sqrt(400.0);  // kaiming_uniform_(a = sqrt(5)): sqrt(1/3) * sqrt(3 / fan_in)
  CHECK(max(abs(fc.weight)).item<double>() <= bound);
  CHECK(max(abs(fc.weight)).item<double>() > 0.999 * bound);
  CHECK(std::abs(mean(fc.weight).item<double>()) < 0.02 * bound);
  CHECK(std::abs(keel::std(fc.weight).item<double>() - bound / std::sqrt(3.0)) < 0.01 * bound);
  CHECK(max(abs(fc.bias)).item<double>() <= bound);
  CHECK(max(abs(fc.bias)).item<double>() > 0.95 * bound);

  nn::Conv2d conv(8, 64, 3, {.groups = 2});
  const double conv_bound = 1.0 / std::sqrt(4.0 * 9.0);  // fan_in = in / groups * kH * kW
  CHECK(conv.weight.shape() == Shape{64, 4, 3, 3});
  CHECK(max(abs(conv.weight)).item<double>() <= conv_bound);
  CHECK(max(abs(conv.weight)).item<double>() > 0.99 * conv_bound);
  CHECK(max(abs(conv.bias)).item<double>() <= conv_bound);

  // Seeded: the same seed gives the same weights.
  manual_seed(5);
  nn::Linear a(10, 10);
  manual_seed(5);
  nn::Linear b(10, 10);
  CHECK(max_abs_diff(a.weight, b.weight) == 0.0);
}

TEST_CASE("Conv2d matches conv2d with its options", "[nn][layers]") {
  manual_seed(3);
  nn::Conv2d conv(4, 6, {3, 2}, {.stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}, .groups = 2});
  const Tensor x = randn({2, 4, 9, 8});
  const Tensor expected = conv2d(x.to(DType::f64), conv.weight.to(DType::f64), conv.bias.to(DType::f64),
                                 {.stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}, .groups = 2});
  CHECK(max_abs_diff(conv(x), expected) < 1e-4);
  CHECK(conv.extra_repr() == "4, 6, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2");
  test::check_error([] { nn::Conv2d(4, 6, 3, {.groups = 4}); }, {"[nn.Conv2d]", "groups = 4 must divide"});
  test::check_error([] { nn::Conv2d(0, 6, 3); }, {"[nn.Conv2d]", "must be positive"});
  test::check_error([] { nn::Conv2d(4, 6, 0); }, {"kernel_size must be positive"});
  test::check_error([] { nn::Conv2d(4, 6, 3, {.stride = {0, 1}}); }, {"stride must be positive"});
  test::check_error([&] { conv(randn({2, 3, 9, 8})); }, {"[nn.Conv2d]", "expected an input"});
}

TEST_CASE("pooling layers match their ops", "[nn][layers]") {
  const Tensor x = randn({2, 3, 9, 10});
  nn::MaxPool2d max_pool(MaxPool2dOptions{.kernel_size = {3, 3}, .stride = Size2{2, 2}, .padding = {1, 1}});
  CHECK(max_abs_diff(max_pool(x), max_pool2d(x, {.kernel_size = {3, 3}, .stride = Size2{2, 2}, .padding = {1, 1}})) == 0);
  nn::MaxPool2d pool2(2);
  CHECK(pool2(x).shape() == Shape{2, 3, 4, 5});
  nn::AvgPool2d avg(2);
  // A 2x2 average is the mean of the four strided slices.
  const Tensor crop = x.narrow(2, 0, 8);
  const Tensor expected = (crop.slice(2, 0, 8, 2).slice(3, 0, 10, 2) + crop.slice(2, 1, 8, 2).slice(3, 0, 10, 2) +
                           crop.slice(2, 0, 8, 2).slice(3, 1, 10, 2) + crop.slice(2, 1, 8, 2).slice(3, 1, 10, 2)) / 4;
  CHECK(max_abs_diff(avg(x), expected) < 1e-6);
  nn::AdaptiveAvgPool2d gap(1);
  CHECK(max_abs_diff(gap(x), mean(x, {2, 3}, true)) < 1e-6);
  test::check_error([] { nn::MaxPool2d(0); }, {"[nn.MaxPool2d]", "kernel_size must be positive"});
  test::check_error([] { nn::AvgPool2d(AvgPool2dOptions{.kernel_size = {2, 2}, .padding = {2, 2}}); }, {"[nn.AvgPool2d]", "padding"});
  test::check_error([] { nn::AdaptiveAvgPool2d(0); }, {"[nn.AdaptiveAvgPool2d]"});
}

TEST_CASE("BatchNorm2d normalizes with batch statistics and updates the running ones as PyTorch", "[nn][layers]") {
  manual_seed(4);
  nn::BatchNorm2d bn(3);
  CHECK(bn.named_buffers().size() == 3);
  { NoGradGuard g; bn.weight.copy_(tensor({1.5, -0.5, 2.0})); bn.bias.copy_(tensor({0.1, 0.2, -0.3})); }
  const Tensor x = randn({4, 3, 5, 6}, {.dtype = DType::f64}) * 2 + 1;
  const Tensor mean_c = mean(x, {0, 2, 3});
  const Tensor var_biased = var(x, {0, 2, 3}, 0), var_unbiased = var(x, {0, 2, 3}, 1);
  bn.to(DType::f64);
  const Tensor y = bn(x);
  auto channel = [](const Tensor& t) { return t.reshape({1, 3, 1, 1}); };
  const Tensor expected = (x - channel(mean_c)) / sqrt(channel(var_biased) + 1e-5) * channel(bn.weight.detach()) +
                          channel(bn.bias.detach());
  CHECK(max_abs_diff(y, expected) < 1e-10);
  // r = (1 - m) r + m s, with the unbiased variance for running_var.
  CHECK(max_abs_diff(bn.running_mean, 0.1 * mean_c) < 1e-12);
  CHECK(max_abs_diff(bn.running_var, 0.9 * ones({3}, {.dtype = DType::f64}) + 0.1 * var_unbiased) < 1e-12);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 1);
  bn(x);
  CHECK(max_abs_diff(bn.running_mean, 0.9 * 0.1 * mean_c + 0.1 * mean_c) < 1e-12);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 2);

  // Evaluation uses the running statistics and moves nothing.
  bn.eval();
  const Tensor rm = bn.running_mean.clone(), rv = bn.running_var.clone();
  const Tensor y_eval = bn(x);
  const Tensor expected_eval = (x - channel(rm)) / sqrt(channel(rv) + 1e-5) * channel(bn.weight.detach()) + channel(bn.bias.detach());
  CHECK(max_abs_diff(y_eval, expected_eval) < 1e-10);
  CHECK(max_abs_diff(bn.running_mean, rm) == 0);
  CHECK(bn.num_batches_tracked.item<int64_t>() == 2);

  // momentum = nullopt: the cumulative average of the batch statistics.
  nn::BatchNorm1d cumulative(3, {.momentum = std::nullopt});
  cumulative.to(DType::f64);
  const Tensor a = randn({8, 3}, {.dtype = DType::f64}), b = randn({8, 3}, {.dtype = DType::f64});
  cumulative(a);
  cumulative(b);
  CHECK(max_abs_diff(cumulative.running_mean, (mean(a, {0}) + mean(b, {0})) / 2) < 1e-12);

  // Without running stats: batch statistics in evaluation too, no buffers.
  nn::BatchNorm1d untracked(3, {.affine = false, .track_running_stats = false});
  CHECK(untracked.named_buffers().empty());
  CHECK(untracked.named_parameters().empty());
  untracked.eval();
  untracked.to(DType::f64);
  CHECK(max_abs_diff(untracked(a), (a - mean(a, {0})) / sqrt(var(a, {0}, 0) + 1e-5)) < 1e-10);

  test::check_error([] { nn::BatchNorm2d(0); }, {"[nn.BatchNorm2d]", "num_features must be positive"});
  test::check_error([&] { bn(randn({4, 3, 5}, {.dtype = DType::f64})); }, {"[nn.BatchNorm2d]", "4-D"});
  test::check_error([&] { bn(randn({4, 2, 5, 5}, {.dtype = DType::f64})); }, {"num_features = 3"});
}

TEST_CASE("LayerNorm, RMSNorm and GroupNorm match their float64 composites", "[nn][layers]") {
  manual_seed(6);
  const Tensor x = randn({3, 4, 6}, {.dtype = DType::f64});
  nn::LayerNorm ln(Shape{4, 6});
  ln.to(DType::f64);
  { NoGradGuard g; ln.weight.copy_(randn({4, 6})); ln.bias.copy_(randn({4, 6})); }
  const Tensor mu = mean(x, {1, 2}, true), v = var(x, {1, 2}, 0, true);
  CHECK(max_abs_diff(ln(x), (x - mu) / sqrt(v + 1e-5) * ln.weight.detach() + ln.bias.detach()) < 1e-10);
  nn::LayerNorm ln_no_bias(6, {.bias = false});
  CHECK(ln_no_bias.named_parameters().size() == 1);

  nn::RMSNorm rms(6, {.eps = 1e-6});
  rms.to(DType::f64);
  { NoGradGuard g; rms.weight.copy_(randn({6})); }
  CHECK(max_abs_diff(rms(x), x / sqrt(mean(x * x, {2}, true) + 1e-6) * rms.weight.detach()) < 1e-10);

  nn::GroupNorm gn(2, 4);
  gn.to(DType::f64);
  { NoGradGuard g; gn.weight.copy_(randn({4})); gn.bias.copy_(randn({4})); }
  const Tensor image = randn({2, 4, 3, 5}, {.dtype = DType::f64});
  // Channels {0, 1} and {2, 3} normalized per sample.
  std::vector<Tensor> groups;
  for (int64_t g = 0; g < 2; ++g) {
    const Tensor part = image.narrow(1, 2 * g, 2);
    groups.push_back((part - mean(part, {1, 2, 3}, true)) / sqrt(var(part, {1, 2, 3}, 0, true) + 1e-5));
  }
  const Tensor expected = cat(groups, 1) * gn.weight.detach().reshape({1, 4, 1, 1}) + gn.bias.detach().reshape({1, 4, 1, 1});
  CHECK(max_abs_diff(gn(image), expected) < 1e-10);

  test::check_error([] { nn::GroupNorm(3, 4); }, {"[nn.GroupNorm]", "must divide num_channels = 4"});
  test::check_error([] { nn::LayerNorm(Shape{}); }, {"[nn.LayerNorm]", "empty"});
  test::check_error([&] { ln(randn({3, 6, 4}, {.dtype = DType::f64})); }, {"[nn.LayerNorm]", "does not end in"});
}

TEST_CASE("Embedding looks up rows, starts N(0, 1) and keeps the padding row at zero", "[nn][layers]") {
  manual_seed(7);
  nn::Embedding big(1000, 64);
  CHECK(std::abs(mean(big.weight).item<double>()) < 0.01);
  CHECK(std::abs(keel::std(big.weight).item<double>() - 1.0) < 0.01);
  nn::Embedding emb(10, 3, {.padding_idx = -1});
  CHECK(emb.padding_idx == 9);
  CHECK(sum(abs(emb.weight.select(0, 9))).item<double>() == 0.0);
  const Tensor idx = tensor({{1, 9}, {4, 1}}, DType::i64);
  const Tensor out = emb(idx);
  CHECK(out.shape() == Shape{2, 2, 3});
  CHECK(max_abs_diff(out.select(0, 1).select(0, 0), emb.weight.select(0, 4)) == 0);
  sum(out).backward();
  CHECK(sum(abs(emb.weight.grad().select(0, 9))).item<double>() == 0.0);
  CHECK(emb.weight.grad().select(0, 1).select(0, 0).item<double>() == 2.0);
  test::check_error([] { nn::Embedding(10, 3, {.padding_idx = 10}); }, {"[nn.Embedding]", "padding_idx 10"});
  test::check_error([] { nn::Embedding(0, 3); }, {"[nn.Embedding]", "must be positive"});
  test::check_error([&] { emb(randn({2})); }, {"[nn.Embedding]", "integers"});
}

TEST_CASE("activations, Dropout and Flatten", "[nn][layers]") {
  const Tensor x = randn({4, 5});
  CHECK(max_abs_diff(nn::ReLU()(x), clamp_min(x, 0)) == 0);
  CHECK(max_abs_diff(nn::Tanh()(x), tanh(x)) == 0);
  CHECK(max_abs_diff(nn::Sigmoid()(x), sigmoid(x)) == 0);
  CHECK(max_abs_diff(nn::SiLU()(x), x * sigmoid(x)) < 1e-6);
  const Tensor xd = x.to(DType::f64);
  const Tensor tanh_gelu = 0.5 * xd * (1 + tanh(std::sqrt(2 / M_PI) * (xd + 0.044715 * xd * xd * xd)));
  CHECK(max_abs_diff(nn::GELU(GeluApproximation::tanh)(xd), tanh_gelu) < 1e-12);
  CHECK(max_abs_diff(nn::GELU()(xd), 0.5 * xd * (1 + erf(xd / std::sqrt(2.0)))) < 1e-12);
  CHECK(nn::GELU(GeluApproximation::tanh).extra_repr() == "approximate='tanh'");

  nn::Dropout drop(0.5);
  const Tensor y = drop(ones({1000}));
  const double kept = sum(y != 0).item<double>();
  CHECK(kept > 400);
  CHECK(kept < 600);
  CHECK(max(y).item<double>() == 2.0);  // kept values scaled by 1 / (1 - p)
  drop.eval();
  CHECK(drop(x).is_same(x));
  test::check_error([] { nn::Dropout(1.5); }, {"[nn.Dropout]", "p must be in [0, 1]"});

  CHECK(nn::Flatten()(randn({2, 3, 4, 5})).shape() == Shape{2, 60});
  CHECK(nn::Flatten(0, 1)(randn({2, 3, 4})).shape() == Shape{6, 4});
}

TEST_CASE("layers with parameters pass gradcheck in float64", "[nn][layers][gradcheck]") {
  manual_seed(8);
  const TensorOptions f64{.dtype = DType::f64};
  SECTION("Linear") {
    nn::Linear fc(3, 2);
    check_module_gradients(fc, randn({2, 3}, f64).requires_grad_());
  }
  SECTION("Conv2d with stride, padding and groups") {
    nn::Conv2d conv(4, 2, 2, {.stride = {2, 1}, .padding = {1, 0}, .groups = 2});
    check_module_gradients(conv, randn({1, 4, 3, 3}, f64).requires_grad_());
  }
  SECTION("BatchNorm2d in training") {
    nn::BatchNorm2d bn(2);
    check_module_gradients(bn, randn({3, 2, 2, 2}, f64).requires_grad_());
  }
  SECTION("LayerNorm") {
    nn::LayerNorm ln(4);
    check_module_gradients(ln, randn({3, 4}, f64).requires_grad_());
  }
  SECTION("RMSNorm") {
    nn::RMSNorm rms(4);
    check_module_gradients(rms, randn({3, 4}, f64).requires_grad_());
  }
  SECTION("GroupNorm") {
    nn::GroupNorm gn(2, 4);
    check_module_gradients(gn, randn({2, 4, 2, 2}, f64).requires_grad_());
  }
  SECTION("Embedding") {
    nn::Embedding emb(5, 3);
    emb.to(DType::f64);
    CHECK(autograd::gradcheck([&](const TensorList& in) { return emb(tensor({{0, 2}, {2, 4}}, DType::i64)); },
                              {emb.weight}));
  }
}
