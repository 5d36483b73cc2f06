// Definitions of the small layers of activation.h and embedding.h.
#include "keel/autograd/grad_mode.h"
#include "keel/nn/activation.h"
#include "keel/nn/embedding.h"
#include "keel/nn/init.h"
#include "keel/nn/repr.h"
#include "keel/ops/factory.h"
#include "keel/ops/nn_functional.h"

namespace keel::nn {

Dropout::Dropout(double p, Generator* generator) : p(p), generator_(generator) {
  KEEL_CHECK(p >= 0 && p <= 1, "[nn.Dropout] p must be in [0, 1], got ", p);
}

Tensor Dropout::forward(const Tensor& input) { return dropout(input, p, training_, generator_); }

std::string Dropout::extra_repr() const { return "p=" + repr::number(p) + ", inplace=False"; }

namespace {
std::optional<int64_t> checked_padding_idx(int64_t num_embeddings, int64_t embedding_dim, std::optional<int64_t> padding_idx) {
  KEEL_CHECK(num_embeddings > 0 && embedding_dim > 0, "[nn.Embedding] num_embeddings and embedding_dim must be positive, got ",
             num_embeddings, " and ", embedding_dim);
  if (!padding_idx) return std::nullopt;
  KEEL_CHECK(*padding_idx >= -num_embeddings && *padding_idx < num_embeddings, "[nn.Embedding] padding_idx ", *padding_idx,
             " must be within [", -num_embeddings, ", ", num_embeddings, ")");
  return *padding_idx < 0 ? *padding_idx + num_embeddings : *padding_idx;
}
}  // namespace

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim, EmbeddingOptions options)
    : num_embeddings(num_embeddings),
      embedding_dim(embedding_dim),
      padding_idx(checked_padding_idx(num_embeddings, embedding_dim, options.padding_idx)),
      weight(register_parameter("weight", empty({num_embeddings, embedding_dim}))) {
  reset_parameters();
}

void Embedding::reset_parameters() {
  init::normal_(weight);
  if (padding_idx) {
    NoGradGuard no_grad;
    weight.select(0, *padding_idx).zero_();
  }
}

Tensor Embedding::forward(const Tensor& indices) {
  KEEL_CHECK(!is_floating(indices.dtype()) && indices.dtype() != DType::bool_, "[nn.Embedding] indices must be integers (i32 or i64), got ",
             dtype_name(indices.dtype()));
  return embedding(indices, weight, padding_idx);
}

std::string Embedding::extra_repr() const {
  std::string out = std::to_string(num_embeddings) + ", " + std::to_string(embedding_dim);
  if (padding_idx) out += ", padding_idx=" + std::to_string(*padding_idx);
  return out;
}

}  // namespace keel::nn
