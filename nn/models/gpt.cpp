#include "keel/nn/models/gpt.h"

#include <algorithm>
#include <functional>
#include <cmath>

#include "keel/autograd/grad_mode.h"
#include "keel/nn/init.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
#include "keel/ops/loss.h"
#include "keel/ops/nn_functional.h"
#include "keel/ops/shape.h"

namespace keel::nn {

namespace {
const GPTConfig& checked(const GPTConfig& c) {
  KEEL_CHECK(c.vocab_size > 0 && c.block_size > 0 && c.n_layer > 0 && c.n_head > 0 && c.n_embd > 0,
             "[nn.GPT] vocab_size, block_size, n_layer, n_head and n_embd must be positive");
  KEEL_CHECK(c.n_embd % c.n_head == 0, "[nn.GPT] n_head = ", c.n_head, " must divide n_embd = ", c.n_embd);
  KEEL_CHECK(c.dropout >= 0 && c.dropout < 1, "[nn.GPT] dropout must be in [0, 1), got ", c.dropout);
  return c;
}
}  // namespace

GPT::GPT(GPTConfig config)
    : config(checked(config)),
      wte(config.vocab_size, config.n_embd),
      wpe(config.block_size, config.n_embd),
      ln_f(config.n_embd, {.bias = config.bias}),
      lm_head(config.n_embd, config.vocab_size, false) {
  for (int64_t i = 0; i < config.n_layer; ++i)
    h.push_back(std::make_shared<TransformerBlock>(
        config.n_embd, config.n_head, TransformerBlockOptions{.dropout = config.dropout, .bias = config.bias, .causal = true}));
  transformer.register_module("wte", wte);
  transformer.register_module("wpe", wpe);
  transformer.register_module("h", h);
  transformer.register_module("ln_f", ln_f);
  register_module("transformer", transformer);
  register_module("lm_head", lm_head);
  lm_head.weight = wte.weight;  // tied: the same tensor in both slots

  const double std = 0.02, proj_std = 0.02 / std::sqrt(2.0 * static_cast<double>(config.n_layer));
  for (auto& [name, module] : named_modules()) {
    if (auto* fc = dynamic_cast<Linear*>(module)) {
      init::normal_(fc->weight, 0, std);
      if (fc->bias.defined()) init::zeros_(fc->bias);
    } else if (auto* emb = dynamic_cast<Embedding*>(module)) {
      init::normal_(emb->weight, 0, std);
    } else if (auto* attn = dynamic_cast<MultiheadAttention*>(module)) {
      init::normal_(attn->in_proj_weight, 0, std);
      if (attn->in_proj_bias.defined()) init::zeros_(attn->in_proj_bias);
    }
  }
  for (auto& [name, module] : named_modules()) {
    if (auto* block = dynamic_cast<TransformerBlock*>(module)) {
      init::normal_(block->attn.out_proj.weight, 0, proj_std);
      init::normal_(block->mlp.c_proj.weight, 0, proj_std);
    }
  }
}

Tensor GPT::forward(const Tensor& idx) {
  KEEL_CHECK(idx.dim() == 2 && (idx.dtype() == DType::i64 || idx.dtype() == DType::i32),
             "[nn.GPT] expected token indices (B, T) of dtype i64 or i32, got ", idx.shape(), " ", dtype_name(idx.dtype()));
  const int64_t length = idx.size(1);
  KEEL_CHECK(length <= config.block_size, "[nn.GPT] sequence length ", length, " exceeds block_size = ", config.block_size,
             ": crop the input to the last block_size tokens");
  const Tensor positions = arange(0, length, 1, {.dtype = DType::i64, .device = idx.device()});
  Tensor x = keel::dropout(wte(idx) + wpe(positions), config.dropout, training_);
  x = ln_f(h(x));
  return lm_head(x);
}

Tensor GPT::loss(const Tensor& idx, const Tensor& targets) {
  KEEL_CHECK(targets.shape() == idx.shape(), "[nn.GPT] targets ", targets.shape(), " must have the shape of idx ", idx.shape());
  const Tensor logits = forward(idx);
  return cross_entropy(logits.reshape({-1, config.vocab_size}), targets.reshape({-1}).to(DType::i64));
}

Tensor GPT::generate(const Tensor& idx, int64_t max_new_tokens, double temperature, std::optional<int64_t> top_k,
                     Generator* generator) {
  KEEL_CHECK(temperature > 0, "[nn.GPT.generate] temperature must be positive, got ", temperature);
  KEEL_CHECK(!top_k || *top_k > 0, "[nn.GPT.generate] top_k must be positive");
  const bool was_training = training_;
  eval();
  NoGradGuard no_grad;
  Tensor tokens = idx.to(DType::i64);
  const int64_t batch = tokens.size(0);
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    const int64_t length = tokens.size(1);
    const Tensor context = length > config.block_size ? tokens.narrow(1, length - config.block_size, config.block_size) : tokens;
    const Tensor logits = forward(context).select(1, context.size(1) - 1) / temperature;  // (B, V)
    const Tensor probs = softmax(logits.to(DType::f64), -1).cpu().contiguous();
    const Tensor draws = rand({batch}, {.dtype = DType::f64}, generator).contiguous();
    Tensor next = empty({batch, 1}, {.dtype = DType::i64});
    const double* p = probs.data_ptr<double>();
    for (int64_t b = 0; b < batch; ++b) {
      const double* row = p + b * config.vocab_size;
      std::vector<double> kept(row, row + config.vocab_size);
      if (top_k && *top_k < config.vocab_size) {
        std::vector<double> sorted = kept;
        std::nth_element(sorted.begin(), sorted.begin() + (*top_k - 1), sorted.end(), std::greater<double>());
        const double threshold = sorted[*top_k - 1];
        for (double& value : kept)
          if (value < threshold) value = 0;
      }
      double total = 0;
      for (double value : kept) total += value;
      double target = draws.data_ptr<double>()[b] * total, running = 0;
      int64_t choice = config.vocab_size - 1;
      for (int64_t v = 0; v < config.vocab_size; ++v) {
        running += kept[v];
        if (running > target && kept[v] > 0) {
          choice = v;
          break;
        }
      }
      next.data_ptr<int64_t>()[b] = choice;
    }
    tokens = cat({tokens, next.to(tokens.device())}, 1);
  }
  train(was_training);
  return tokens;
}

int64_t GPT::num_parameters(bool non_embedding) const {
  int64_t total = 0;
  for (const Tensor& p : parameters()) total += p.numel();
  if (non_embedding) total -= wpe.weight.numel();
  return total;
}

}  // namespace keel::nn
