#pragma once
// nn::Embedding (torch.nn.Embedding): a table weight [num_embeddings, embedding_dim] looked up by
// integer indices (any shape) -> [*indices.shape, embedding_dim]. Initialised N(0, 1), with the
// padding_idx row zeroed; that row gets no gradient.
#include <optional>

#include "keel/nn/module.h"

namespace keel::nn {

struct EmbeddingOptions {
  std::optional<int64_t> padding_idx;  // negative counts from the end, as PyTorch
};

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, EmbeddingOptions options = {});
  Tensor forward(const Tensor& indices) override;
  std::string type_name() const override { return "Embedding"; }
  std::string extra_repr() const override;
  void reset_parameters();

  const int64_t num_embeddings, embedding_dim;
  const std::optional<int64_t> padding_idx;  // normalized to [0, num_embeddings)
  Tensor& weight;
};

}  // namespace keel::nn
