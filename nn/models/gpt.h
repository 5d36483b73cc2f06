#pragma once
// GPT: a nanoGPT-like decoder-only transformer (Karpathy's nanoGPT model.py).
//   idx (B, T) i64 -> x = wte(idx) + wpe(0..T-1) -> dropout -> h.0 .. h.{n_layer-1}
//   (pre-norm TransformerBlocks, causal) -> ln_f -> lm_head -> logits (B, T, vocab_size)
// lm_head's weight IS wte's weight (tied: one tensor, counted once by parameters()).
// Initialisation as nanoGPT: Linear and Embedding weights N(0, 0.02), biases zero, and the
// projections into the residual stream (attn.out_proj.weight, mlp.c_proj.weight)
// N(0, (0.02 / sqrt(2 n_layer))^2). Names: transformer.wte.weight, transformer.wpe.weight,
// transformer.h.0.ln_1.weight, transformer.h.0.attn.in_proj_weight (nanoGPT: c_attn),
// transformer.h.0.attn.out_proj.weight (nanoGPT: c_proj), transformer.h.0.mlp.c_fc.weight, ...,
// transformer.ln_f.weight, lm_head.weight.
#include <optional>

#include "keel/core/rng.h"
#include "keel/nn/embedding.h"
#include "keel/nn/linear.h"
#include "keel/nn/models/attention.h"
#include "keel/nn/module.h"
#include "keel/nn/normalization.h"

namespace keel::nn {

struct GPTConfig {
  int64_t vocab_size = 50304;
  int64_t block_size = 1024;  // the longest sequence (rows of wpe)
  int64_t n_layer = 12;
  int64_t n_head = 12;
  int64_t n_embd = 768;
  double dropout = 0.0;
  bool bias = true;  // in Linears and LayerNorms
};

class GPT : public Module {
 public:
  explicit GPT(GPTConfig config);
  // idx (B, T) integers in [0, vocab_size), T <= block_size -> logits (B, T, vocab_size).
  Tensor forward(const Tensor& idx) override;
  // The mean cross-entropy of the next-token logits against targets (B, T).
  Tensor loss(const Tensor& idx, const Tensor& targets);
  // Appends max_new_tokens tokens to idx (B, T), each sampled from softmax(logits / temperature)
  // of the last position (restricted to the top_k most likely when given), with the model in
  // evaluation mode and no grad. Returns (B, T + max_new_tokens).
  Tensor generate(const Tensor& idx, int64_t max_new_tokens, double temperature = 1.0,
                  std::optional<int64_t> top_k = std::nullopt, Generator* generator = nullptr);
  // nanoGPT's get_num_params: every parameter once, minus wpe when non_embedding.
  int64_t num_parameters(bool non_embedding = true) const;
  std::string type_name() const override { return "GPT"; }

  const GPTConfig config;
  Module transformer;  // holds wte, wpe, h, ln_f (nanoGPT's ModuleDict)
  Embedding wte, wpe;
  Sequential h;
  LayerNorm ln_f;
  Linear lm_head;
};

}  // namespace keel::nn
