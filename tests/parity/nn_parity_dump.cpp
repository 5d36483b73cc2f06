// nn parity dump: builds nn layers with Keel's seeded initial weights, runs forward and
// backward of sum(output * w) (w fixed random), and writes the weights, inputs, outputs, input
// gradients, parameter gradients and buffers after the step; compare_nn_torch.py rebuilds each
// layer in torch 1.13, loads the same weights (load_state_dict, strict) and compares. It also
// writes the state_dict key lists and shapes of whole models, compared with equivalent torch
// modules' keys.
//
//   <dir>/index.json  {"cases": [{"id", "layer", "args", "dtype", "mode", "tensors": {name: t}}],
//                      "models": [{"id", "args", "keys": [[name, shape], ...]}]}
//   <dir>/data.bin    every tensor as float64, contiguous, little-endian; t = {"offset" (bytes), "shape"}
// Tensor names: "x" input, "w" output-gradient weights, "state.<key>" weights before the step,
// "out" output, "grad.x", "grad.<param>", "after.<buffer>" buffers after the forward.
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>

#include "dump_json.h"

using namespace keel;
using parity::Args;
using parity::json_list;
using parity::json_string;

namespace {

class Dump : public parity::F64Dump {
 public:
  explicit Dump(const std::filesystem::path& dir) : F64Dump(dir, {"cases", "models"}) {}
  void add_case(const std::string& id, const std::string& layer, const Args& args, DType dtype, bool training,
                nn::Module& module, const Tensor& x) {
    module.to(dtype);
    module.train(training);
    std::string tensors;
    auto put = [&](const std::string& name, const Tensor& t) {
      tensors += (tensors.empty() ? "" : ", ") + json_string(name) + ": " + tensor_entry(t);
    };
    for (auto& [name, t] : module.state_dict()) put("state." + name, t);
    const Tensor input = x.to(dtype).detach().requires_grad_();
    const Tensor out = module(input);
    const Tensor w = randn(out.shape(), {.dtype = dtype});
    sum(out * w).backward();
    put("x", input);
    put("w", w);
    put("out", out);
    put("grad.x", input.grad());
    for (auto& [name, p] : module.named_parameters()) put("grad." + name, p.grad());
    for (auto& [name, b] : module.named_buffers()) put("after." + name, b);
    add("cases", "{\"id\": " + json_string(id) + ", \"layer\": " + json_string(layer) + ", \"args\": " + args.str() +
                     ", \"dtype\": " + json_string(std::string(dtype_name(dtype))) + ", \"mode\": " + json_string(training ? "train" : "eval") +
                     ", \"tensors\": {" + tensors + "}}");
  }
  // GPT: integer input (written as float64), no input gradient.
  void add_gpt_case(const std::string& id, const Args& args, DType dtype, nn::GPT& gpt, const Tensor& idx) {
    gpt.to(dtype);
    gpt.train(true);
    std::string tensors;
    auto put = [&](const std::string& name, const Tensor& t) {
      tensors += (tensors.empty() ? "" : ", ") + json_string(name) + ": " + tensor_entry(t);
    };
    for (auto& [name, t] : gpt.state_dict()) put("state." + name, t);
    const Tensor out = gpt(idx);
    const Tensor w = randn(out.shape(), {.dtype = dtype});
    sum(out * w).backward();
    put("x", idx);
    put("w", w);
    put("out", out);
    for (auto& [name, p] : gpt.named_parameters()) put("grad." + name, p.grad());
    add("cases", "{\"id\": " + json_string(id) + ", \"layer\": \"GPT\", \"args\": " + args.str() +
                     ", \"dtype\": " + json_string(std::string(dtype_name(dtype))) + ", \"mode\": \"train\", \"tensors\": {" +
                     tensors + "}}");
  }
  void add_model(const std::string& id, const Args& args, const nn::Module& module) {
    std::string keys;
    for (auto& [name, t] : module.state_dict())
      keys += (keys.empty() ? "" : ", ") + std::string("[") + json_string(name) + ", " + json_list(t.shape()) + "]";
    add("models", "{\"id\": " + json_string(id) + ", \"args\": " + args.str() + ", \"keys\": [" + keys + "]}");
  }
};

// Random affine parameters and running statistics, so that ones / zeros hide nothing.
void randomize_norm(nn::Module& m) {
  NoGradGuard g;
  for (auto& [name, t] : m.state_dict()) {
    if (name.find("weight") != std::string::npos) t.copy_(rand(t.shape()) + 0.5);
    else if (name.find("bias") != std::string::npos || name.find("running_mean") != std::string::npos) t.copy_(randn(t.shape()) * 0.5);
    else if (name.find("running_var") != std::string::npos) t.copy_(rand(t.shape()) + 0.5);
    else if (name.find("num_batches_tracked") != std::string::npos) t.fill_(3);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: nn_parity_dump <output dir>\n";
    return 2;
  }
  try {
    manual_seed(2026);
    Dump dump(argv[1]);
    for (DType dtype : {DType::f64, DType::f32}) {
      const std::string suffix = "_" + std::string(dtype_name(dtype));
      {
        nn::Linear m(5, 4);
        dump.add_case("linear" + suffix, "Linear", Args().set("in", int64_t{5}).set("out", int64_t{4}), dtype, true, m,
                      randn({3, 2, 5}));
      }
      {
        nn::Conv2d m(4, 6, 3, {.stride = {2, 1}, .padding = {1, 1}, .groups = 2});
        dump.add_case("conv2d" + suffix, "Conv2d",
                      Args().set("in", int64_t{4}).set("out", int64_t{6}).set("kernel", int64_t{3}).set("stride", std::vector<int64_t>{2, 1})
                          .set("padding", std::vector<int64_t>{1, 1}).set("groups", int64_t{2}),
                      dtype, true, m, randn({2, 4, 7, 6}));
      }
      for (bool training : {true, false}) {
        nn::BatchNorm2d m(3);
        randomize_norm(m);
        dump.add_case(std::string("batchnorm2d_") + (training ? "train" : "eval") + suffix, "BatchNorm2d",
                      Args().set("features", int64_t{3}), dtype, training, m, randn({4, 3, 5, 5}) * 2 + 0.5);
      }
      {
        nn::BatchNorm1d m(4, {.momentum = std::nullopt});
        randomize_norm(m);
        dump.add_case("batchnorm1d_cumulative" + suffix, "BatchNorm1d", Args().set("features", int64_t{4}), dtype, true, m,
                      randn({6, 4}));
      }
      {
        nn::LayerNorm m(Shape{4, 6});
        randomize_norm(m);
        dump.add_case("layernorm" + suffix, "LayerNorm", Args().set("shape", std::vector<int64_t>{4, 6}), dtype, true, m,
                      randn({3, 4, 6}));
      }
      {
        nn::GroupNorm m(3, 6);
        randomize_norm(m);
        dump.add_case("groupnorm" + suffix, "GroupNorm", Args().set("groups", int64_t{3}).set("channels", int64_t{6}), dtype,
                      true, m, randn({2, 6, 3, 4}));
      }
      for (bool causal : {false, true}) {
        nn::MultiheadAttention m(8, 2, {.causal = causal});
        { NoGradGuard g; m.in_proj_bias.copy_(randn({24}) * 0.1); m.out_proj.bias.copy_(randn({8}) * 0.1); }
        dump.add_case(std::string("mha_") + (causal ? "causal" : "full") + suffix, "MultiheadAttention",
                      Args().set("embed", int64_t{8}).set("heads", int64_t{2}).set("causal", causal), dtype, true, m,
                      randn({2, 5, 8}));
      }
      {
        nn::TransformerBlock m(8, 2);
        randomize_norm(m.ln_1);
        randomize_norm(m.ln_2);
        dump.add_case("transformer_block" + suffix, "TransformerBlock", Args().set("embed", int64_t{8}).set("heads", int64_t{2}),
                      dtype, true, m, randn({2, 5, 8}));
      }
      {
        nn::GPT gpt({.vocab_size = 11, .block_size = 8, .n_layer = 2, .n_head = 2, .n_embd = 8, .dropout = 0.0, .bias = true});
        // Nonzero biases and norm parameters, so that every term is exercised.
        {
          NoGradGuard g;
          for (auto& [name, p] : gpt.named_parameters())
            if (name.find("bias") != std::string::npos || name.find("ln_") != std::string::npos) p.copy_(randn(p.shape()) * 0.1 + (name.find("weight") != std::string::npos ? 1.0 : 0.0));
        }
        dump.add_gpt_case("gpt" + suffix,
                          Args().set("vocab", int64_t{11}).set("block", int64_t{8}).set("layers", int64_t{2}).set("heads", int64_t{2}).set("embd", int64_t{8}),
                          dtype, gpt, randint(0, 11, {2, 6}));
      }
      {
        nn::SmallCNN m({.channels = {4, 8}, .dropout = 0});
        dump.add_case("small_cnn" + suffix, "SmallCNN", Args().set("channels", std::vector<int64_t>{4, 8}), dtype, true, m,
                      randn({2, 1, 28, 28}));
      }
    }
    {
      nn::SmallCNN cnn;
      dump.add_model("small_cnn", Args().set("channels", std::vector<int64_t>{32, 64}), cnn);
      nn::TransformerBlock block(16, 4);
      dump.add_model("transformer_block", Args().set("embed", int64_t{16}).set("heads", int64_t{4}), block);
      nn::MLP mlp({784, 256, 10}, {.dropout = 0.1});
      dump.add_model("mlp", Args().set("sizes", std::vector<int64_t>{784, 256, 10}), mlp);
    }
    dump.finish();
  } catch (const std::exception& error) {
    std::cerr << "nn_parity_dump: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
