#include "keel/nn/models/attention.h"

#include "keel/nn/init.h"
#include "keel/nn/repr.h"
#include "keel/ops/attention.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
#include "keel/ops/linalg.h"
#include "keel/ops/nn_functional.h"
#include "keel/ops/shape.h"

namespace keel::nn {

namespace {
struct Heads {
  int64_t kv, dim;
};
Heads checked_heads(int64_t embed_dim, int64_t num_heads, int64_t num_kv_heads) {
  const char* op = "[nn.MultiheadAttention]";
  KEEL_CHECK(embed_dim > 0 && num_heads > 0, op, " embed_dim and num_heads must be positive, got ", embed_dim, " and ", num_heads);
  KEEL_CHECK(embed_dim % num_heads == 0, op, " num_heads = ", num_heads, " must divide embed_dim = ", embed_dim);
  const int64_t kv = num_kv_heads == 0 ? num_heads : num_kv_heads;
  KEEL_CHECK(kv > 0 && num_heads % kv == 0, op, " num_kv_heads = ", num_kv_heads, " must divide num_heads = ", num_heads);
  return {kv, embed_dim / num_heads};
}
}  // namespace

MultiheadAttention::MultiheadAttention(int64_t embed_dim, int64_t num_heads, MultiheadAttentionOptions options)
    : embed_dim(embed_dim),
      num_heads(num_heads),
      num_kv_heads(checked_heads(embed_dim, num_heads, options.num_kv_heads).kv),
      head_dim(embed_dim / num_heads),
      options(options),
      in_proj_weight(register_parameter("in_proj_weight", empty({(num_heads + 2 * num_kv_heads) * head_dim, embed_dim}))),
      in_proj_bias(options.bias ? register_parameter("in_proj_bias", zeros({(num_heads + 2 * num_kv_heads) * head_dim}))
                                : no_bias_),
      out_proj(embed_dim, embed_dim, options.bias) {
  KEEL_CHECK(options.dropout >= 0 && options.dropout < 1, "[nn.MultiheadAttention] dropout must be in [0, 1), got ",
             options.dropout);
  register_module("out_proj", out_proj);
  init::xavier_uniform_(in_proj_weight);
  if (out_proj.bias.defined()) init::zeros_(out_proj.bias);
}

Tensor MultiheadAttention::forward(const Tensor& x) { return forward(x, x, x, {}, options.causal); }

Tensor MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& attn_mask,
                                   bool is_causal) {
  const char* op = "[nn.MultiheadAttention]";
  KEEL_CHECK(query.dim() == 3 && query.size(2) == embed_dim, op, " expected a query (B, L, ", embed_dim, "), got ", query.shape());
  KEEL_CHECK(key.dim() == 3 && value.dim() == 3 && key.shape() == value.shape() && key.size(0) == query.size(0) &&
                 key.size(2) == embed_dim,
             op, " expected key and value (", query.size(0), ", S, ", embed_dim, "), got ", key.shape(), " and ", value.shape());
  const int64_t batch = query.size(0), length = query.size(1), source = key.size(1);
  const int64_t q_rows = num_heads * head_dim, kv_rows = num_kv_heads * head_dim;
  Tensor q, k, v;
  if (query.is_same(key) && key.is_same(value)) {
    // Self-attention: one GEMM for the three projections.
    const std::vector<Tensor> parts = split(linear(query, in_proj_weight, in_proj_bias), {q_rows, kv_rows, kv_rows}, -1);
    q = parts[0], k = parts[1], v = parts[2];
  } else {
    auto project = [&](const Tensor& x, int64_t start, int64_t rows) {
      return linear(x, in_proj_weight.narrow(0, start, rows), in_proj_bias.defined() ? in_proj_bias.narrow(0, start, rows) : Tensor());
    };
    q = project(query, 0, q_rows);
    k = project(key, q_rows, kv_rows);
    v = project(value, q_rows + kv_rows, kv_rows);
  }
  q = q.reshape({batch, length, num_heads, head_dim}).transpose(1, 2);
  k = k.reshape({batch, source, num_kv_heads, head_dim}).transpose(1, 2);
  v = v.reshape({batch, source, num_kv_heads, head_dim}).transpose(1, 2);
  const Tensor heads = scaled_dot_product_attention(
      q, k, v, {.attn_mask = attn_mask, .is_causal = is_causal, .scale = std::nullopt, .dropout_p = training_ ? options.dropout : 0.0});
  return out_proj(heads.transpose(1, 2).reshape({batch, length, embed_dim}));
}

std::string MultiheadAttention::extra_repr() const {
  std::string out = "embed_dim=" + std::to_string(embed_dim) + ", num_heads=" + std::to_string(num_heads);
  if (num_kv_heads != num_heads) out += ", num_kv_heads=" + std::to_string(num_kv_heads);
  if (options.causal) out += ", causal=True";
  return out;
}

TransformerMLP::TransformerMLP(int64_t embed_dim, int64_t hidden_dim, bool bias, double dropout)
    : c_fc(embed_dim, hidden_dim, bias), c_proj(hidden_dim, embed_dim, bias), dropout(dropout) {
  register_module("c_fc", c_fc);
  register_module("c_proj", c_proj);
}

Tensor TransformerMLP::forward(const Tensor& x) {
  // gelu fused into the first GEMM (the same values as gelu(c_fc(x))).
  const Tensor hidden = linear(x, c_fc.weight, c_fc.bias, Activation::gelu);
  return keel::dropout(c_proj(hidden), dropout, training_);
}

TransformerBlock::TransformerBlock(int64_t embed_dim, int64_t num_heads, TransformerBlockOptions options)
    : options(options),
      ln_1(embed_dim, {.bias = options.bias}),
      attn(embed_dim, num_heads,
           {.num_kv_heads = options.num_kv_heads, .bias = options.bias, .dropout = options.dropout, .causal = options.causal}),
      ln_2(embed_dim, {.bias = options.bias}),
      mlp(embed_dim, options.mlp_ratio * embed_dim, options.bias, options.dropout) {
  KEEL_CHECK(options.mlp_ratio > 0, "[nn.TransformerBlock] mlp_ratio must be positive, got ", options.mlp_ratio);
  register_module("ln_1", ln_1);
  register_module("attn", attn);
  register_module("ln_2", ln_2);
  register_module("mlp", mlp);
}

Tensor TransformerBlock::forward(const Tensor& x) {
  const Tensor h = x + keel::dropout(attn(ln_1(x)), options.dropout, training_);
  return h + mlp(ln_2(h));
}

}  // namespace keel::nn
