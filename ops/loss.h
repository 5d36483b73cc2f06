#pragma once
// Loss functions with torch.nn.functional's semantics (names, arguments, reductions, weights,
// ignore_index, label smoothing). Math and gradients are stated in ops/loss.cpp.
//
// Every loss takes a floating input; the result has the input's dtype (promoted with the target's
// where the target takes part in elementwise math). Where torch broadcasts input against target
// with a "this will likely lead to incorrect results" warning (mse, l1, smooth_l1, huber, kl_div),
// Keel throws instead: the shapes must be equal.
#include <cstdint>

#include "keel/core/tensor.h"

namespace keel {

// How a loss reduces its per-element values: none (keep them), mean, sum. batchmean (sum / size
// of dim 0, the KL divergence's mathematical definition) is valid for kl_div only, as in torch.
enum class Reduction { none, mean, sum, batchmean };

struct CrossEntropyOptions {
  Tensor weight;                  // [C] rescaling weight per class (constant: takes no gradient)
  int64_t ignore_index = -100;    // class-index targets equal to it add nothing, not even to mean's denominator
  Reduction reduction = Reduction::mean;
  double label_smoothing = 0.0;   // in [0, 1]: targets become (1 - s) * target + s / C
};

// input: [C], [N, C] or [N, C, d1, d2, ...] logits (class dim 1, or 0 for [C]); target either
// class indices (i64, the input's shape without the class dim) or class probabilities (floating,
// the input's shape). mean divides by the summed weight of the non-ignored targets (the count of
// them without weights: all ignored gives nan) for class indices, and by N * d1 * ... for
// probabilities. Gradient w.r.t. input, and w.r.t. target when it holds probabilities.
Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyOptions& options = {});

struct NllLossOptions {
  Tensor weight;                  // [C] rescaling weight per class
  int64_t ignore_index = -100;
  Reduction reduction = Reduction::mean;
};

// Negative log likelihood of log-probabilities: loss = -weight[t] * input[n, t, d1, ...].
// Shapes and the mean rule as cross_entropy with class-index targets.
Tensor nll_loss(const Tensor& input, const Tensor& target, const NllLossOptions& options = {});

// (input - target)^2.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);
// |input - target|.
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);
// With d = |input - target|: 0.5 d^2 / beta if d < beta, else d - 0.5 beta (beta = 0: l1_loss).
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean,
                      double beta = 1.0);
// With d = |input - target|: 0.5 d^2 if d < delta, else delta (d - 0.5 delta).
Tensor huber_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean,
                  double delta = 1.0);
// Binary cross entropy of logits x and floating targets t (input's shape), computed stably:
//   weight * ((1 - t) x + (1 + (pos_weight - 1) t) log(1 + exp(-x)))
// weight broadcasts to the input's shape; pos_weight (per class, usually [C]) broadcasts too.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                                        Reduction reduction = Reduction::mean, const Tensor& pos_weight = {});
// KL divergence with input = log q and target = p (log p when log_target):
//   p (log p - input), with 0 where p = 0.  batchmean divides the sum by input.size(0).
Tensor kl_div(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean,
              bool log_target = false);

}  // namespace keel
