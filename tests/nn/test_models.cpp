// nn models: output shapes, parameter counts against their formulas, tied weights, attention
// against a float64 composite, and tiny models that overfit a tiny batch.
#include <algorithm>
#include <set>

#include "test_util.h"

using namespace keel;
using autograd::TensorList;
using test::max_abs_diff;

namespace {

int64_t count(const nn::Module& m) {
  int64_t total = 0;
  for (const Tensor& p : m.parameters()) total += p.numel();
  return total;
}

// Plain SGD written inline (optim is another folder): p -= lr * grad.
template <class LossFn> std::pair<double, double> train_steps(nn::Module& model, LossFn loss_fn, int steps, double lr) {
  double first = 0, last = 0;
  for (int step = 0; step < steps; ++step) {
    model.zero_grad();
    const Tensor loss = loss_fn();
    loss.backward();
    {
      NoGradGuard g;
      for (Tensor& p : model.parameters()) p -= p.grad() * lr;
    }
    (step == 0 ? first : last) = loss.item<double>();
  }
  return {first, last};
}

// Multi-head attention by hand in f64: per head h, softmax(q_h k_g^T / sqrt(D) + mask) v_g.
Tensor attention_composite(const nn::MultiheadAttention& mha, const Tensor& xq, const Tensor& xkv, bool causal) {
  const int64_t E = mha.embed_dim, H = mha.num_heads, G = mha.num_kv_heads, D = mha.head_dim;
  const Tensor w = mha.in_proj_weight.detach().to(DType::f64), b = mha.in_proj_bias.detach().to(DType::f64);
  const Tensor q = matmul(xq, w.narrow(0, 0, H * D).t()) + b.narrow(0, 0, H * D);
  const Tensor k = matmul(xkv, w.narrow(0, H * D, G * D).t()) + b.narrow(0, H * D, G * D);
  const Tensor v = matmul(xkv, w.narrow(0, (H + G) * D, G * D).t()) + b.narrow(0, (H + G) * D, G * D);
  const int64_t L = xq.size(1), S = xkv.size(1);
  std::vector<Tensor> heads;
  for (int64_t h = 0; h < H; ++h) {
    const int64_t g = h / (H / G);
    Tensor scores = matmul(q.narrow(2, h * D, D), k.narrow(2, g * D, D).transpose(1, 2)) / std::sqrt(double(D));
    if (causal) scores = masked_fill(scores, tril(ones({L, S}, {.dtype = DType::bool_})) == false, -INFINITY);
    heads.push_back(matmul(softmax(scores, -1), v.narrow(2, g * D, D)));
  }
  return matmul(cat(heads, 2), mha.out_proj.weight.detach().to(DType::f64).t()) + mha.out_proj.bias.detach().to(DType::f64);
  (void)E;
}

}  // namespace

TEST_CASE("MLP chains Linear and activations with Sequential's names", "[nn][models]") {
  manual_seed(21);
  nn::MLP mlp({6, 16, 8, 3}, {.activation = [] { return std::make_shared<nn::Tanh>(); }, .dropout = 0.1});
  std::vector<std::string> names;
  for (auto& [name, p] : mlp.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias"});
  CHECK(count(mlp) == 6 * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3);
  CHECK(mlp[1].type_name() == "Tanh");
  CHECK(mlp[2].type_name() == "Dropout");
  CHECK(mlp(randn({5, 6})).shape() == Shape{5, 3});
  test::check_error([] { nn::MLP({4}); }, {"[nn.MLP]"});

  // A tiny MLP overfits 8 points.
  nn::MLP tiny({4, 32, 3});
  const Tensor x = randn({8, 4});
  const Tensor y = tensor({0, 1, 2, 0, 1, 2, 0, 1}, DType::i64);
  auto [first, last] = train_steps(tiny, [&] { return cross_entropy(tiny(x), y); }, 60, 0.5);
  CHECK(last < 0.2 * first);
}

TEST_CASE("SmallCNN: shapes, parameter count and torch.nn.Sequential's names", "[nn][models]") {
  manual_seed(22);
  nn::SmallCNN cnn;  // conv32-bn-relu-conv32-bn-relu-pool, conv64-bn-relu-conv64-bn-relu-pool, dropout, linear
  CHECK(cnn(randn({3, 1, 28, 28})).shape() == Shape{3, 10});
  const int64_t expected = (1 * 32 * 9 + 2 * 32) + (32 * 32 * 9 + 2 * 32) + (32 * 64 * 9 + 2 * 64) +
                           (64 * 64 * 9 + 2 * 64) + (64 * 7 * 7 * 10 + 10);
  CHECK(count(cnn) == expected);
  const nn::StateDict state = cnn.state_dict();
  CHECK(state.front().first == "features.0.weight");
  CHECK(state[1].first == "features.1.weight");
  CHECK(state[3].first == "features.1.running_mean");
  CHECK(state.back().first == "classifier.2.bias");
  CHECK(state.size() == 4 * (1 + 5) + 2);

  nn::SmallCNN narrow({.channels = {8, 16}, .convs_per_stage = 1, .dropout = 0});
  CHECK(narrow(randn({2, 1, 28, 28})).shape() == Shape{2, 10});
  const std::string table = narrow.summary({2, 1, 28, 28});
  INFO(table);
  CHECK(table.find("[2, 16, 7, 7]") != std::string::npos);
  // A hidden layer in the classifier: Flatten, Dropout, Linear, ReLU, Dropout, Linear.
  nn::SmallCNN hidden({.channels = {8, 16}, .convs_per_stage = 1, .dropout = 0, .hidden = 24});
  CHECK(hidden(randn({2, 1, 28, 28})).shape() == Shape{2, 10});
  CHECK(count(hidden) == (1 * 8 * 9 + 2 * 8) + (8 * 16 * 9 + 2 * 16) + (16 * 7 * 7 * 24 + 24) + (24 * 10 + 10));
  CHECK(hidden.state_dict().back().first == "classifier.5.bias");
  CHECK(hidden.classifier.size() == 6);
  test::check_error([] { nn::SmallCNN({.hidden = -1}); }, {"[nn.SmallCNN]", "hidden must be >= 0"});
  test::check_error([] { nn::SmallCNN({.channels = {}}); }, {"[nn.SmallCNN]", "channels is empty"});
  test::check_error([&] { narrow(randn({2, 1, 32, 32})); }, {"[nn.SmallCNN]", "expected images"});

  // A tiny CNN overfits a tiny batch.
  nn::SmallCNN tiny({.channels = {4, 8}, .convs_per_stage = 1, .dropout = 0, .num_classes = 3, .image_size = 8});
  const Tensor x = randn({6, 1, 8, 8});
  const Tensor y = tensor({0, 1, 2, 2, 1, 0}, DType::i64);
  auto [first, last] = train_steps(tiny, [&] { return cross_entropy(tiny(x), y); }, 40, 0.1);
  CHECK(last < 0.3 * first);
}

TEST_CASE("ResNet: BasicBlocks with torchvision's names and a downsampling shortcut", "[nn][models]") {
  manual_seed(23);
  nn::ResNet net({.in_channels = 1, .widths = {4, 8}, .blocks_per_stage = {1, 2}, .num_classes = 5});
  CHECK(net(randn({2, 1, 12, 12})).shape() == Shape{2, 5});
  const auto bn = [](int64_t c) { return 2 * c; };
  const int64_t expected = 1 * 4 * 9 + bn(4) +                                        // stem
                           (4 * 4 * 9 + bn(4) + 4 * 4 * 9 + bn(4)) +                  // layer1.0
                           (4 * 8 * 9 + bn(8) + 8 * 8 * 9 + bn(8) + 4 * 8 + bn(8)) +  // layer2.0 with downsample
                           (8 * 8 * 9 + bn(8) + 8 * 8 * 9 + bn(8)) +                  // layer2.1
                           8 * 5 + 5;                                                 // fc
  CHECK(count(net) == expected);
  std::set<std::string> names;
  for (auto& [name, t] : net.state_dict()) names.insert(name);
  CHECK(names.count("layer2.0.downsample.0.weight"));
  CHECK(names.count("layer2.0.downsample.1.running_var"));
  CHECK(names.count("layer1.0.conv2.weight"));
  CHECK_FALSE(names.count("layer1.0.downsample.0.weight"));
  CHECK(names.count("fc.weight"));

  // A downsampling block passes gradcheck (input and every parameter, BatchNorm in training).
  nn::BasicBlock block(2, 3, 2);
  block.to(DType::f64);
  TensorList inputs = {randn({2, 2, 4, 4}, {.dtype = DType::f64}).requires_grad_()};
  for (const Tensor& p : block.parameters()) inputs.push_back(p);
  CHECK(autograd::gradcheck([&](const TensorList& in) { return block(in[0]); }, inputs));
}

TEST_CASE("MultiheadAttention equals the float64 composite (causal, cross, grouped-query)", "[nn][models]") {
  manual_seed(24);
  const TensorOptions f64{.dtype = DType::f64};
  SECTION("self-attention, causal") {
    nn::MultiheadAttention mha(12, 3, {.causal = true});
    mha.to(DType::f64);
    { NoGradGuard g; mha.in_proj_bias.copy_(randn({36}, f64) * 0.1); }
    CHECK(mha.in_proj_weight.shape() == Shape{36, 12});
    const Tensor x = randn({2, 5, 12}, f64);
    CHECK(max_abs_diff(mha(x), attention_composite(mha, x, x, true)) < 1e-10);
  }
  SECTION("grouped-query heads") {
    nn::MultiheadAttention mha(16, 4, {.num_kv_heads = 2});
    mha.to(DType::f64);
    CHECK(mha.in_proj_weight.shape() == Shape{(4 + 2 * 2) * 4, 16});
    const Tensor x = randn({2, 6, 16}, f64);
    CHECK(max_abs_diff(mha(x), attention_composite(mha, x, x, false)) < 1e-10);
    nn::MultiheadAttention causal_gqa(16, 4, {.num_kv_heads = 1, .causal = true});
    causal_gqa.to(DType::f64);
    CHECK(max_abs_diff(causal_gqa(x), attention_composite(causal_gqa, x, x, true)) < 1e-10);
  }
  SECTION("cross-attention") {
    nn::MultiheadAttention mha(8, 2);
    mha.to(DType::f64);
    const Tensor q = randn({2, 3, 8}, f64), kv = randn({2, 7, 8}, f64);
    CHECK(max_abs_diff(mha.forward(q, kv, kv), attention_composite(mha, q, kv, false)) < 1e-10);
  }
  SECTION("gradients") {
    nn::MultiheadAttention mha(4, 2, {.num_kv_heads = 1, .causal = true});
    mha.to(DType::f64);
    TensorList inputs = {randn({1, 3, 4}, f64).requires_grad_()};
    for (const Tensor& p : mha.parameters()) inputs.push_back(p);
    CHECK(autograd::gradcheck([&](const TensorList& in) { return mha(in[0]); }, inputs));
  }
  test::check_error([] { nn::MultiheadAttention(10, 3); }, {"[nn.MultiheadAttention]", "must divide embed_dim"});
  test::check_error([] { nn::MultiheadAttention(12, 4, {.num_kv_heads = 3}); }, {"num_kv_heads = 3 must divide"});
}

TEST_CASE("TransformerBlock is x + attn(ln_1(x)), then + mlp(ln_2(x))", "[nn][models]") {
  manual_seed(25);
  nn::TransformerBlock block(8, 2, {.num_kv_heads = 1});
  block.to(DType::f64);
  const Tensor x = randn({2, 4, 8}, {.dtype = DType::f64});
  const Tensor h = x + block.attn(block.ln_1(x));
  const Tensor hidden = gelu(linear(block.ln_2(h), block.mlp.c_fc.weight, block.mlp.c_fc.bias));
  const Tensor expected = h + linear(hidden, block.mlp.c_proj.weight, block.mlp.c_proj.bias);
  CHECK(max_abs_diff(block(x), expected) < 1e-10);
  // Causal: the first position does not see the later ones.
  Tensor changed = x.clone();
  { NoGradGuard g; changed.narrow(1, 2, 2).fill_(3.0); }
  CHECK(max_abs_diff(block(changed).narrow(1, 0, 2), block(x).narrow(1, 0, 2)) < 1e-12);
}

TEST_CASE("GPT: nanoGPT's parameter count, tied embeddings, and it overfits a tiny batch", "[nn][models]") {
  manual_seed(26);
  const nn::GPTConfig config{.vocab_size = 37, .block_size = 16, .n_layer = 2, .n_head = 2, .n_embd = 16, .dropout = 0.0, .bias = true};
  nn::GPT gpt(config);
  const int64_t V = 37, T = 16, C = 16, L = 2;
  // nanoGPT: wte + wpe + per block (ln_1, c_attn, c_proj, ln_2, c_fc, c_proj) + ln_f; lm_head tied.
  const int64_t per_block = 2 * C + (3 * C * C + 3 * C) + (C * C + C) + 2 * C + (4 * C * C + 4 * C) + (4 * C * C + C);
  const int64_t total = V * C + T * C + L * per_block + 2 * C;
  CHECK(gpt.num_parameters(false) == total);
  CHECK(gpt.num_parameters() == total - T * C);
  CHECK(count(gpt) == total);
  // Tied: one tensor in two slots, listed once by parameters() but under both names in state_dict.
  CHECK(gpt.lm_head.weight.is_same(gpt.wte.weight));
  CHECK(gpt.parameter("lm_head.weight").is_same(gpt.parameter("transformer.wte.weight")));
  std::vector<std::string> keys;
  for (auto& [name, t] : gpt.state_dict()) keys.push_back(name);
  CHECK(std::find(keys.begin(), keys.end(), "lm_head.weight") != keys.end());
  CHECK(keys.front() == "transformer.wte.weight");
  CHECK(std::find(keys.begin(), keys.end(), "transformer.h.1.attn.in_proj_weight") != keys.end());
  CHECK(std::find(keys.begin(), keys.end(), "transformer.h.0.mlp.c_proj.bias") != keys.end());
  // nanoGPT's init: the residual projections have std 0.02 / sqrt(2 n_layer).
  CHECK(keel::std(gpt.wte.weight).item<double>() == Approx(0.02).epsilon(0.15));
  const auto& block0 = static_cast<nn::TransformerBlock&>(gpt.h[0]);
  CHECK(keel::std(block0.mlp.c_proj.weight).item<double>() == Approx(0.02 / std::sqrt(4.0)).epsilon(0.15));
  CHECK(max(abs(block0.mlp.c_fc.bias)).item<double>() == 0.0);

  const Tensor idx = randint(0, V, {2, 8});
  const Tensor logits = gpt(idx);
  CHECK(logits.shape() == Shape{2, 8, V});
  // Both uses of the tied weight reach its gradient: it differs from the embedding-only gradient.
  gpt.loss(idx, randint(0, V, {2, 8})).backward();
  REQUIRE(gpt.wte.weight.grad().defined());
  CHECK(gpt.lm_head.weight.grad().is_same(gpt.wte.weight.grad()));
  const Tensor unused_rows = gpt.wte.weight.grad();  // rows of tokens not in idx still get lm_head's gradient
  CHECK(sum(abs(unused_rows)).item<double>() > 0);

  // Still tied after to(dtype); still one tensor.
  gpt.to(DType::f64);
  CHECK(gpt.lm_head.weight.is_same(gpt.wte.weight));
  gpt.to(DType::f32);

  // It memorizes a tiny batch in a few SGD steps.
  const Tensor x = randint(0, V, {2, 12}), y = randint(0, V, {2, 12});
  auto [first, last] = train_steps(gpt, [&] { return gpt.loss(x, y); }, 40, 1.0);
  CHECK(first == Approx(std::log(37.0)).epsilon(0.1));
  CHECK(last < 0.5 * first);

  const std::string table = gpt.summary(randint(0, V, {1, 5}));
  INFO(table);
  CHECK(table.find("[1, 5, 37]") != std::string::npos);
  const Tensor sampled = gpt.generate(x.narrow(1, 0, 3), 5, 1.0, 3);
  CHECK(sampled.shape() == Shape{2, 8});
  CHECK(gpt.is_training());
  test::check_error([&] { gpt(randint(0, V, {1, 17})); }, {"[nn.GPT]", "exceeds block_size = 16"});
  test::check_error([] { nn::GPT({.n_head = 5, .n_embd = 16}); }, {"[nn.GPT]", "must divide n_embd"});
}
