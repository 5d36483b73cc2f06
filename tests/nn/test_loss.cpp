// nn losses: the focal losses against their formulas in float64, their limits (gamma = 0 is the
// cross entropy), gradients, and bad input.
#include "test_util.h"

using namespace keel;
using autograd::TensorList;
using test::max_abs_diff;

TEST_CASE("sigmoid_focal_loss follows torchvision's formula", "[nn][loss]") {
  manual_seed(31);
  const TensorOptions f64{.dtype = DType::f64};
  const Tensor x = randn({4, 5}, f64) * 2, t = (rand({4, 5}, f64) > 0.5).to(DType::f64);
  const Tensor p = 1 / (1 + exp(-x));
  const Tensor ce = -(t * log(p) + (1 - t) * log(1 - p));
  const Tensor p_t = p * t + (1 - p) * (1 - t);
  const Tensor expected = (0.25 * t + 0.75 * (1 - t)) * ce * pow(1 - p_t, 2.0);
  CHECK(max_abs_diff(nn::sigmoid_focal_loss(x, t), expected) < 1e-12);
  CHECK(max_abs_diff(nn::sigmoid_focal_loss(x, t, 0.25, 2.0, Reduction::mean), mean(expected)) < 1e-12);
  // gamma 0 and no alpha: the binary cross entropy.
  CHECK(max_abs_diff(nn::sigmoid_focal_loss(x, t, -1, 0, Reduction::sum),
                     binary_cross_entropy_with_logits(x, t, {}, Reduction::sum)) < 1e-12);
  const Tensor xg = randn({2, 3}, f64).requires_grad_();
  CHECK(autograd::gradcheck([&](const TensorList& in) { return nn::sigmoid_focal_loss(in[0], t.narrow(0, 0, 2).narrow(1, 0, 3)); },
                            {xg}));
  test::check_error([&] { nn::sigmoid_focal_loss(x, t.narrow(0, 0, 2)); }, {"[sigmoid_focal_loss]", "same shape"});
}

TEST_CASE("focal_loss down-weights easy examples and is cross_entropy at gamma 0", "[nn][loss]") {
  manual_seed(32);
  const TensorOptions f64{.dtype = DType::f64};
  const Tensor x = randn({6, 4}, f64) * 2;
  const Tensor y = tensor({0, 3, 1, -100, 2, 3}, DType::i64);
  const Tensor w = tensor({1.0, 2.0, 0.5, 1.5}, DType::f64);
  CHECK(max_abs_diff(nn::focal_loss(x, y, {.gamma = 0, .weight = w}), cross_entropy(x, y, {.weight = w})) < 1e-12);
  CHECK(max_abs_diff(nn::focal_loss(x, y, {.gamma = 0, .reduction = Reduction::none}),
                     cross_entropy(x, y, {.reduction = Reduction::none})) < 1e-12);
  // gamma 2, by hand: -(1 - p_y)^2 log p_y per row, mean over the five non-ignored rows.
  const Tensor p = softmax(x, 1);
  double total = 0;
  const std::vector<int64_t> labels = {0, 3, 1, -100, 2, 3};
  for (int64_t i = 0; i < 6; ++i) {
    if (labels[i] < 0) continue;
    const double py = p.select(0, i).select(0, labels[i]).item<double>();
    total += -std::pow(1 - py, 2.0) * std::log(py);
  }
  CHECK(nn::focal_loss(x, y).item<double>() == Approx(total / 5).epsilon(1e-12));
  const Tensor xg = randn({3, 4}, f64).requires_grad_();
  CHECK(autograd::gradcheck([&](const TensorList& in) { return nn::focal_loss(in[0], tensor({1, 0, 3}, DType::i64)); }, {xg}));
  test::check_error([&] { nn::focal_loss(x, tensor({0, 4, 1, 1, 2, 3}, DType::i64)); }, {"[focal_loss]", "outside [0, 4)"});
  test::check_error([&] { nn::focal_loss(x, y.narrow(0, 0, 5)); }, {"[focal_loss]", "without dim 1"});
}
