#include "keel/nn/loss.h"

#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
#include "keel/ops/nn_functional.h"
#include "keel/ops/reduce.h"
#include "keel/ops/shape.h"

namespace keel::nn {

namespace {
Tensor reduce(const Tensor& loss, Reduction reduction, const char* op) {
  switch (reduction) {
    case Reduction::none: return loss;
    case Reduction::sum: return sum(loss);
    case Reduction::mean: return mean(loss);
    default: fail("[", op, "] reduction must be none, mean or sum");
  }
}
}  // namespace

Tensor sigmoid_focal_loss(const Tensor& input, const Tensor& target, double alpha, double gamma, Reduction reduction) {
  KEEL_CHECK(input.shape() == target.shape(), "[sigmoid_focal_loss] input ", input.shape(), " and target ", target.shape(),
             " must have the same shape");
  KEEL_CHECK(is_floating(input.dtype()) && is_floating(target.dtype()), "[sigmoid_focal_loss] input and target must be floating");
  KEEL_CHECK(gamma >= 0, "[sigmoid_focal_loss] gamma must be non-negative, got ", gamma);
  const Tensor p = sigmoid(input);
  const Tensor ce = binary_cross_entropy_with_logits(input, target, {}, Reduction::none);
  const Tensor p_t = p * target + (1 - p) * (1 - target);
  Tensor loss = ce * pow(1 - p_t, gamma);
  if (alpha >= 0) loss = (alpha * target + (1 - alpha) * (1 - target)) * loss;
  return reduce(loss, reduction, "sigmoid_focal_loss");
}

Tensor focal_loss(const Tensor& input, const Tensor& target, const FocalLossOptions& options) {
  const char* op = "[focal_loss]";
  KEEL_CHECK(input.dim() >= 2 && is_floating(input.dtype()), op, " expected floating logits (N, C, ...), got ", input.shape());
  KEEL_CHECK(target.dtype() == DType::i64 || target.dtype() == DType::i32, op, " target must hold class indices (i64)");
  Shape expected = input.shape();
  expected.erase(expected.begin() + 1);
  KEEL_CHECK(target.shape() == expected, op, " target ", target.shape(), " must be the input's shape without dim 1: ", expected);
  KEEL_CHECK(options.gamma >= 0, op, " gamma must be non-negative, got ", options.gamma);
  const int64_t classes = input.size(1);
  KEEL_CHECK(!options.weight.defined() || options.weight.shape() == Shape{classes}, op, " weight must have shape [", classes,
             "], got ", options.weight.shape());
  const Tensor index = target.to(DType::i64);
  const Tensor valid = index != options.ignore_index;
  const Tensor safe = where(valid, index, Scalar(0));
  KEEL_CHECK(all(logical_and(safe >= 0, safe < classes)).item<bool>(), op,
             " target has class indices outside [0, ", classes, ")");
  // log p_{i, y_i}: gather along dim 1.
  const Tensor log_p = gather(log_softmax(input, 1), 1, safe.unsqueeze(1)).squeeze(1);
  Tensor loss = -pow(1 - exp(log_p), options.gamma) * log_p;
  Tensor w = valid.to(input.dtype());
  if (options.weight.defined()) w = w * index_select(options.weight.to(input.dtype()), 0, safe.reshape({-1})).reshape(safe.shape());
  loss = loss * w;
  if (options.reduction == Reduction::mean) return sum(loss) / sum(w);
  return reduce(loss, options.reduction, "focal_loss");
}

}  // namespace keel::nn
