#pragma once
// MultiheadAttention and the pre-norm TransformerBlock.
//
// MultiheadAttention (torch.nn.MultiheadAttention with batch_first=True, plus grouped-query heads):
//   x (B, L, E) -> q = x Wq^T + bq (H heads), k = x Wk^T + bk, v = x Wv^T + bv (Hkv heads each,
//   Hkv dividing H; Hkv = H is ordinary multi-head attention), head size D = E / H,
//   o_h = softmax(q_h k_g^T / sqrt(D) [+ mask]) v_g with g = h / (H / Hkv)   (fused: ops/attention.h)
//   out = concat_h(o_h) Wo^T + bo
// Parameters as PyTorch names them: in_proj_weight [(H + 2 Hkv) D, E] (the rows of Wq, Wk, Wv
// stacked), in_proj_bias [(H + 2 Hkv) D], out_proj.weight [E, E], out_proj.bias [E]. PyTorch's
// initialisation: xavier_uniform_(in_proj_weight), zero biases, out_proj.weight as Linear.
#include <memory>

#include "keel/nn/linear.h"
#include "keel/nn/module.h"
#include "keel/nn/normalization.h"

namespace keel::nn {

struct MultiheadAttentionOptions {
  int64_t num_kv_heads = 0;  // 0: num_heads (no grouping)
  bool bias = true;
  double dropout = 0;   // on the attention weights, in training
  bool causal = false;  // forward(x): query i attends to keys j <= i
};

class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, MultiheadAttentionOptions options = {});
  // Self-attention of x (B, L, E), causal when options.causal.
  Tensor forward(const Tensor& x) override;
  // query (B, L, E), key and value (B, S, E). attn_mask: bool (true = may attend) or additive,
  // broadcast to (B, H, L, S); cannot be combined with is_causal.
  Tensor forward(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& attn_mask = {},
                 bool is_causal = false);
  std::string type_name() const override { return "MultiheadAttention"; }
  std::string extra_repr() const override;

  const int64_t embed_dim, num_heads, num_kv_heads, head_dim;
  const MultiheadAttentionOptions options;
  Tensor& in_proj_weight;
  Tensor& in_proj_bias;  // undefined without bias
  Linear out_proj;

 private:
  Tensor no_bias_;
};

struct TransformerBlockOptions {
  int64_t num_kv_heads = 0;  // 0: num_heads
  int64_t mlp_ratio = 4;     // hidden width of the MLP = mlp_ratio * embed_dim
  double dropout = 0;        // attention weights and both residual branches, in training
  bool bias = true;          // in the linear layers and the LayerNorms
  bool causal = true;
};

// The MLP of a transformer block: c_proj(gelu(c_fc(x))) (nanoGPT's names), dropout after.
class TransformerMLP : public Module {
 public:
  TransformerMLP(int64_t embed_dim, int64_t hidden_dim, bool bias, double dropout);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "MLP"; }
  Linear c_fc, c_proj;
  const double dropout;
};

// Pre-norm block: x = x + dropout(attn(ln_1(x))); x = x + mlp(ln_2(x)). Input (B, T, E).
class TransformerBlock : public Module {
 public:
  TransformerBlock(int64_t embed_dim, int64_t num_heads, TransformerBlockOptions options = {});
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "TransformerBlock"; }

  const TransformerBlockOptions options;
  LayerNorm ln_1;
  MultiheadAttention attn;
  LayerNorm ln_2;
  TransformerMLP mlp;
};

}  // namespace keel::nn
