// ONNX export parity, Keel's side: exports models (an MLP, the Fashion-MNIST SmallCNN with the
// main job's default options, a small GPT, and one small function per op mapping) with
// io::export_onnx, once each with a dynamic batch, and writes for several batch sizes random
// inputs and Keel's outputs (safetensors). compare_onnx.py checks each model with
// onnx.checker (full_check) and runs it in onnxruntime at every batch size.
//
// Usage: onnx_export_dump OUT_DIR
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "keel/keel.h"

using namespace keel;

namespace {

struct Case {
  std::string name;
  // Makes the inputs for a batch size.
  std::function<std::vector<Tensor>(int64_t batch)> inputs;
  io::TracedFunction function;
  io::NamedTensors weights;
  io::OnnxExportOptions options = {};
};

std::vector<std::string> g_index;

void run_case(const std::string& dir, const Case& c, const std::vector<int64_t>& batches = {1, 3, 8}) {
  const std::string model_path = dir + "/" + c.name + ".onnx";
  io::export_onnx(c.function, c.inputs(2), c.weights, model_path, c.options);
  std::ostringstream entry;
  entry << "{\"name\": \"" << c.name << "\", \"model\": \"" << c.name << ".onnx\", \"external\": "
        << (c.options.external_data_threshold_bytes < 1000 ? "true" : "false") << ", \"batches\": [";
  for (size_t b = 0; b < batches.size(); ++b) {
    const std::vector<Tensor> inputs = c.inputs(batches[b]);
    std::vector<Tensor> outputs;
    {
      NoGradGuard no_grad;
      outputs = c.function(inputs);
    }
    io::NamedTensors tensors;
    for (size_t k = 0; k < inputs.size(); ++k) {
      const std::string name = k < c.options.input_names.size() ? c.options.input_names[k]
                               : inputs.size() == 1              ? "input"
                                                                 : "input_" + std::to_string(k);
      tensors.emplace_back("in:" + name, inputs[k]);
    }
    for (size_t k = 0; k < outputs.size(); ++k) {
      const std::string name = k < c.options.output_names.size() ? c.options.output_names[k]
                               : outputs.size() == 1              ? "output"
                                                                  : "output_" + std::to_string(k);
      tensors.emplace_back("out:" + name, outputs[k].contiguous());
    }
    const std::string file = c.name + "_b" + std::to_string(batches[b]) + ".safetensors";
    io::save_safetensors(dir + "/" + file, tensors);
    entry << (b ? ", " : "") << "\"" << file << "\"";
  }
  entry << "]}";
  g_index.push_back(entry.str());
}

Case module_case(const std::string& name, std::shared_ptr<nn::Module> model, std::function<std::vector<Tensor>(int64_t)> inputs) {
  model->eval();
  return {name, std::move(inputs),
          [model](const std::vector<Tensor>& x) { return std::vector<Tensor>{model->forward(x[0])}; },
          model->state_dict()};
}

// Gives BatchNorm running statistics other than 0 and 1, so that eval mode reads them.
void randomize_buffers(nn::Module& model) {
  NoGradGuard no_grad;
  for (auto& [name, buffer] : model.named_buffers()) {
    if (!is_floating(buffer.dtype())) continue;
    if (name.find("running_var") != std::string::npos) buffer.copy_(rand(buffer.shape()) + 0.5);
    else buffer.copy_(randn(buffer.shape()) * 0.3);
  }
}

std::function<std::vector<Tensor>(int64_t)> randn_input(Shape tail) {
  return [tail](int64_t batch) {
    Shape shape = {batch};
    shape.insert(shape.end(), tail.begin(), tail.end());
    return std::vector<Tensor>{randn(shape)};
  };
}

Tensor param(Shape shape) { return randn(shape) * 0.5; }

}  // namespace

int main(int argc, char** argv) try {
  KEEL_CHECK(argc == 2, "usage: onnx_export_dump OUT_DIR");
  const std::string dir = argv[1];
  std::filesystem::create_directories(dir);
  manual_seed(1234);

  // ---- whole models -------------------------------------------------------------------------------
  run_case(dir, module_case("mlp", std::make_shared<nn::MLP>(std::vector<int64_t>{20, 64, 32, 5}), randn_input({20})));
  {
    // The main job's model (examples/fashion_mnist.cpp defaults): channels {32, 64}, one conv per
    // stage, hidden 128, dropout 0.25.
    auto cnn = std::make_shared<nn::SmallCNN>(nn::SmallCNNOptions{.channels = {32, 64}, .convs_per_stage = 1, .dropout = 0.25, .hidden = 128});
    randomize_buffers(*cnn);
    run_case(dir, module_case("small_cnn", cnn, randn_input({1, 28, 28})));
    auto cnn2 = std::make_shared<nn::SmallCNN>(nn::SmallCNNOptions{.channels = {8, 16}, .convs_per_stage = 2, .hidden = 0});
    randomize_buffers(*cnn2);
    run_case(dir, module_case("small_cnn_2convs", cnn2, randn_input({1, 28, 28})));
  }
  {
    auto resnet = std::make_shared<nn::ResNet>(nn::ResNetOptions{.in_channels = 3, .widths = {8, 16}, .blocks_per_stage = {1, 1}});
    randomize_buffers(*resnet);
    run_case(dir, module_case("resnet", resnet, randn_input({3, 16, 16})));
  }
  {
    auto gpt = std::make_shared<nn::GPT>(nn::GPTConfig{.vocab_size = 50, .block_size = 16, .n_layer = 2, .n_head = 2, .n_embd = 32});
    run_case(dir, module_case("gpt", gpt, [](int64_t batch) {
               return std::vector<Tensor>{randint(0, 50, {batch, 12}, {.dtype = DType::i64})};
             }));
  }

  // ---- one small function per op mapping ----------------------------------------------------------
  auto fn_case = [&](const std::string& name, Shape tail, io::NamedTensors weights,
                     std::function<Tensor(const Tensor&)> f) {
    run_case(dir, {name, randn_input(tail), [f](const std::vector<Tensor>& x) { return std::vector<Tensor>{f(x[0])}; },
                   weights});
  };
  {
    const Tensor w = param({6}), m = param({6, 4}), bm = param({4});
    fn_case("binary_broadcast_scalar", {6}, {{"w", w}},
            [w](const Tensor& x) { return sub(1.5, (x + w) * 2 - x / (abs(w) + 3)) + pow(abs(x) + 1, 1.5) + maximum(x, w) - minimum(x, 0.25 * w); });
    fn_case("unary", {6}, {},
            [](const Tensor& x) {
              return relu(x) + sigmoid(x) + tanh(x) + silu(x) + exp(x * 0.1) + neg(x) + abs(x) + sqrt(abs(x) + 1) +
                     rsqrt(abs(x) + 1) + log(abs(x) + 1) + sin(x) + cos(x) + erf(x) + log1p(abs(x)) + sign(x);
            });
    fn_case("gelu", {6}, {}, [](const Tensor& x) { return gelu(x) + gelu(x * 2, GeluApproximation::tanh); });
    fn_case("linear_activations", {6}, {{"m", m}, {"bm", bm}}, [m, bm](const Tensor& x) {
      const Tensor weight = m.t();  // [4, 6]: a transposed weight (a traced view of an initializer)
      Tensor y = linear(x, weight, bm);
      for (Activation a : {Activation::relu, Activation::gelu, Activation::gelu_tanh, Activation::silu})
        y = y + linear(x, weight.contiguous(), bm, a) + linear(x, weight.contiguous(), Tensor(), a);
      return y;
    });
  }
  {
    const Tensor w = param({8}), b = param({8}), mean = param({4}), var = rand({4}) + 0.5, g4 = param({4}), b4 = param({4});
    fn_case("softmax_norms", {3, 8}, {{"w", w}, {"b", b}}, [w, b](const Tensor& x) {
      return softmax(x, 1) + log_softmax(x, -1) + softmax(x, -1) + layer_norm(x, {8}, w, b) + layer_norm(x, {3, 8}, Tensor(), Tensor(), 1e-3) +
             rms_norm(x, {8}, w) + rms_norm(x, {8}, Tensor(), 1e-2);
    });
    fn_case("batch_norm_eval", {4, 5, 5}, {{"mean", mean}, {"var", var}, {"g4", g4}, {"b4", b4}},
            [=](const Tensor& x) { return batch_norm(x, mean, var, g4, b4, false, 0.1, 1e-3) + batch_norm(x, mean, var); });
    const Tensor k1 = param({6, 4, 3, 3}), kb = param({6}), k2 = param({6, 2, 3, 3});
    fn_case("conv_pool", {4, 11, 11}, {{"k1", k1}, {"kb", kb}, {"k2", k2}}, [=](const Tensor& x) {
      const Tensor a = conv2d(x, k1, kb, {.stride = {2, 1}, .padding = {1, 2}, .dilation = {1, 2}});   // [B,6,6,9]
      const Tensor c = conv2d(x, k2, Tensor(), {.padding = {1, 1}, .groups = 2});                      // [B,6,11,11]
      const Tensor p1 = max_pool2d(c, {.kernel_size = {3, 3}, .stride = Size2{2, 2}, .padding = {1, 1}});  // 6x6
      const Tensor p2 = avg_pool2d(c, {.kernel_size = {3, 2}, .stride = Size2{2, 2}, .padding = {1, 1}, .count_include_pad = false});
      const Tensor p3 = avg_pool2d(c, {.kernel_size = {2, 2}, .ceil_mode = true});  // 6x6
      const Tensor g = adaptive_avg_pool2d(p1, {1, 1}) + sum(adaptive_avg_pool2d(p1, {3, 2}), {2, 3}, true);
      return cat({a.flatten(1), p1.flatten(1), p2.flatten(1), p3.flatten(1), g.flatten(1)}, 1);
    });
    const Tensor table = param({10, 3}), wmat = param({3, 5});
    fn_case("shape_ops", {4, 6}, {{"table", table}, {"wmat", wmat}}, [=](const Tensor& x) {
      const Tensor idx = tensor({2, 0, 3}, DType::i64);
      const Tensor t = x.permute({0, 2, 1}).transpose(1, 2).reshape({x.size(0), 24}).view({x.size(0), 4, 6});
      const Tensor parts = cat({t.slice(2, 1, 5, 2), sum(t.narrow(1, 0, 2), {1}, true).expand({x.size(0), 4, 6}).slice(2, 0, 2)}, 1);
      const Tensor picked = index_select(t, 1, idx).select(2, 3) + t.select(-1, -1).slice(1, 0, 3);
      const Tensor emb = embedding(idx, table);  // constant indices: [3, 3]
      const Tensor mm = matmul(t.slice(2, 0, 3), wmat);  // batched [B,4,3] x [3,5]
      const Tensor st = stack({t.select(1, 0), t.select(1, 1)}, 1);  // [B,2,6]
      return cat({parts.flatten(1), picked.flatten(1), mm.flatten(1), st.flatten(1),
                  emb.reshape({1, 9}).expand({x.size(0), 9}) + t.select(2, 0).slice(1, 0, 1), keel::mean(t, {1}), amax(t, {2}), amin(t, {1}),
                  clamp(t, -0.5, 0.5).flatten(1), t.unsqueeze(1).squeeze(1).flatten(1).to(DType::f64).to(DType::f32)}, 1);
    });
    fn_case("matmul_batched", {3, 4}, {}, [](const Tensor& x) { return matmul(x, x.transpose(1, 2)); });
    // Masks: bool (true = attend; the diagonal always) and additive float, both constants.
    const Tensor bool_mask = logical_or(rand({5, 5}) > 0.4, eye(5).to(DType::bool_));
    const Tensor float_mask = randn({2, 5, 5});
    fn_case("attention", {2, 5, 4}, {}, [=](const Tensor& x) {
      const Tensor q = x, k = x * 0.5 + 0.1, v = x * -1.0 + 0.2;
      return scaled_dot_product_attention(q, k, v, {.is_causal = true}) + scaled_dot_product_attention(q, k, v) +
             scaled_dot_product_attention(q, k, v, {.scale = 0.3}) +
             scaled_dot_product_attention(q, k, v, {.attn_mask = bool_mask}) +
             scaled_dot_product_attention(q, k, v, {.attn_mask = float_mask});
    });
  }
  {
    auto mha = std::make_shared<nn::MultiheadAttention>(16, 4, nn::MultiheadAttentionOptions{.causal = true});
    run_case(dir, module_case("multihead_attention", mha, randn_input({7, 16})));
  }
  {
    // Two named inputs (one bool), two named outputs; where with broadcasting.
    const Tensor w = param({5});
    Case c{"where_two_inputs",
           [](int64_t batch) { return std::vector<Tensor>{randn({batch, 5}), rand({batch, 5}) > 0.5}; },
           [w](const std::vector<Tensor>& x) {
             return std::vector<Tensor>{where(x[1], x[0], w), where(x[1], 2.0, x[0]) * 3};
           },
           {{"w", w}},
           {.input_names = {"x", "mask"}, .output_names = {"picked", "scaled"}}};
    run_case(dir, c);
  }
  {
    // gather with an index that is a graph input (i64).
    Case c{"gather_index_input",
           [](int64_t batch) { return std::vector<Tensor>{randn({batch, 4, 6}), randint(0, 6, {batch, 4, 2}, {.dtype = DType::i64})}; },
           [](const std::vector<Tensor>& x) { return std::vector<Tensor>{gather(x[0], 2, x[1]) * 2.0}; },
           {}};
    run_case(dir, c);
  }
  {
    // External data, forced: every initializer of 16 bytes or more goes to mlp_external.onnx.data.
    auto mlp = std::make_shared<nn::MLP>(std::vector<int64_t>{12, 40, 3});
    Case c = module_case("mlp_external", mlp, randn_input({12}));
    c.options.external_data_threshold_bytes = 0;
    c.options.external_data_min_tensor_bytes = 16;
    run_case(dir, c);
  }
  std::ofstream index(dir + "/index.json");
  index << "[\n";
  for (size_t i = 0; i < g_index.size(); ++i) index << "  " << g_index[i] << (i + 1 < g_index.size() ? ",\n" : "\n");
  index << "]\n";
  std::cout << "onnx_export_dump: " << g_index.size() << " cases in " << dir << "\n";
  return 0;
} catch (const std::exception& error) {
  std::cerr << "onnx_export_dump: " << error.what() << "\n";
  return 1;
}
