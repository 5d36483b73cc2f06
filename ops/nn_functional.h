#pragma once
// Neural-network functions (torch.nn.functional): softmax, log_softmax, layer_norm, rms_norm,
// dropout, embedding. Each is one op with its own backward node. On CPU, softmax, log_softmax,
// layer_norm and rms_norm of f32/bf16/f16 run fused kernels (kernels/cpu/norms.isa.cpp); their
// composites of public ops (f64, CUDA) are the spec and the tests' oracle.
// f16/bf16 inputs are computed in f32 and returned in the input dtype, as PyTorch does on CPU.
#include <optional>

#include "keel/core/rng.h"
#include "keel/core/tensor.h"

namespace keel {

// softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) along dim (floating input only).
Tensor softmax(const Tensor& x, int64_t dim);
// log_softmax(x)_i = x_i - max x - log(sum_j exp(x_j - max x)) along dim.
Tensor log_softmax(const Tensor& x, int64_t dim);

// (x - mean) / sqrt(var + eps) * weight + bias over the trailing dims `normalized_shape`, with
// the biased variance; weight and bias (optional) have shape normalized_shape.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                  const Tensor& bias = {}, double eps = 1e-5);
// x / sqrt(mean(x^2) + eps) * weight over the trailing dims `normalized_shape` (PyTorch 2.4+).
// eps defaults to the machine epsilon of x's dtype (torch.finfo(x.dtype).eps).
Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = {},
                std::optional<double> eps = std::nullopt);

// ---- backward ops (the vjps above call them; the fused CPU kernels behind them) ----------------
// dx of softmax / log_softmax along dim from the forward's output y and the gradient dy:
//   softmax: dx = y * (dy - sum(dy * y)),  log_softmax: dx = dy - exp(y) * sum(dy).
// Both are differentiable in y and dy (their own vjps), so second derivatives flow through them.
Tensor softmax_backward(const Tensor& y, const Tensor& dy, int64_t dim);
Tensor log_softmax_backward(const Tensor& y, const Tensor& dy, int64_t dim);

// Gradients of layer_norm / rms_norm from the forward's statistics: mean and rstd hold one value
// per row (any shape of that many elements, e.g. x's shape with the normalized dims of size 1).
// With g = dy * weight (dy without weight), xhat = (x - mean) * rstd (x * rstd for rms_norm):
//   dx = rstd * (g - mean g - xhat * mean(g * xhat))   (rms_norm: no mean g term)
//   dweight = sum over rows of dy * xhat,  dbias = sum over rows of dy   (f32 for 16-bit inputs)
// Fields not asked for by mask (and dweight without weight, dbias for rms_norm) stay undefined.
// On CPU (f32/bf16/f16) a fused kernel runs unless autograd must record; otherwise the result is
// made of public ops, differentiable in every input with the statistics as independent inputs
// (the vjps of layer_norm / rms_norm use their own composite under create_graph instead, which
// also differentiates the statistics).
struct NormGrads {
  Tensor dx, dweight, dbias;
};
struct NormGradMask {
  bool input = true, weight = true, bias = true;
};
NormGrads layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                              const Tensor& weight, const Shape& normalized_shape, NormGradMask mask = {});
NormGrads rms_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& rstd, const Tensor& weight,
                            const Shape& normalized_shape, NormGradMask mask = {});

// Inverted dropout: x * mask / (1 - p), mask ~ Bernoulli(1 - p) from `generator` (the default
// generator when null). p = 0, !training or an empty x return x itself; p = 1 gives zeros.
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true, Generator* generator = nullptr);

// Rows of the table `weight` [num_embeddings, embedding_dim] picked by `indices` (i32/i64, any
// shape): out has shape [*indices.shape, embedding_dim]. The argument order is PyTorch's
// torch.nn.functional.embedding(input, weight, padding_idx): INDICES FIRST, then the table.
// Rows at padding_idx (negative counts from the end) get no gradient.
Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<int64_t> padding_idx = std::nullopt);

}  // namespace keel
