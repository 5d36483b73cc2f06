#pragma once
// Losses that torch.nn.functional does not have, written with public ops (so autograd
// differentiates them): focal losses (Lin et al., "Focal Loss for Dense Object Detection", 2017).
// The other losses (cross_entropy, mse, l1, smooth_l1, huber, bce_with_logits, kl_div) are ops:
// see ops/loss.h.
#include <optional>

#include "keel/core/tensor.h"
#include "keel/ops/loss.h"

namespace keel::nn {

// torchvision.ops.sigmoid_focal_loss: for logits x and binary targets t (same shape, floating),
//   p = sigmoid(x), p_t = p t + (1 - p)(1 - t)
//   loss = bce_with_logits(x, t) (1 - p_t)^gamma, times alpha t + (1 - alpha)(1 - t) when alpha >= 0.
// Reduction none / mean / sum (default none, as torchvision).
Tensor sigmoid_focal_loss(const Tensor& input, const Tensor& target, double alpha = 0.25, double gamma = 2.0,
                          Reduction reduction = Reduction::none);

struct FocalLossOptions {
  double gamma = 2.0;
  Tensor weight;  // [C] per-class weight (alpha_c), or undefined
  int64_t ignore_index = -100;
  Reduction reduction = Reduction::mean;
};

// Multi-class focal loss of logits [N, C] (or [N, C, d...]) and class indices target:
//   loss_i = -w_{y_i} (1 - p_{i, y_i})^gamma log p_{i, y_i},  p = softmax over dim 1.
// mean divides by the summed weights of the non-ignored targets (cross_entropy's rule), so gamma = 0
// gives cross_entropy exactly.
Tensor focal_loss(const Tensor& input, const Tensor& target, const FocalLossOptions& options = {});

}  // namespace keel::nn
