#pragma once
// Neural-network functions (torch.nn.functional): softmax, log_softmax, layer_norm, rms_norm,
// dropout, embedding. Each is one op with its own backward node; the forward is composed of
// public ops for now (fused kernels replace it later, with this composite as their oracle).
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

// Inverted dropout: x * mask / (1 - p), mask ~ Bernoulli(1 - p) from `generator` (the default
// generator when null). p = 0, !training or an empty x return x itself; p = 1 gives zeros.
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true, Generator* generator = nullptr);

// Rows of the table `weight` [num_embeddings, embedding_dim] picked by `indices` (i32/i64, any
// shape): out has shape [*indices.shape, embedding_dim]. The argument order is PyTorch's
// torch.nn.functional.embedding(input, weight, padding_idx): INDICES FIRST, then the table.
// Rows at padding_idx (negative counts from the end) get no gradient.
Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<int64_t> padding_idx = std::nullopt);

}  // namespace keel
