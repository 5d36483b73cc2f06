// nn::Module and nn::Sequential: registration, PyTorch's dotted names, train/eval, to(dtype),
// zero_grad, state_dict round trips and the load checks (a failed load changes nothing).
#include "test_util.h"

using namespace keel;

namespace {

struct Block : nn::Module {
  nn::Linear fc{4, 3};
  nn::BatchNorm1d bn{3};
  Block() {
    register_module("fc", fc);
    register_module("bn", bn);
  }
  Tensor forward(const Tensor& x) override { return relu(bn(fc(x))); }
};

struct Net : nn::Module {
  Block block;
  std::shared_ptr<nn::Sequential> head;
  Tensor& scale;
  Tensor& mask;
  Net() : scale(register_parameter("scale", ones({3}))), mask(register_buffer("mask", ones({3}), /*persistent=*/false)) {
    register_module("block", block);
    head = register_module("head", std::make_shared<nn::Sequential>(
                                       std::initializer_list<std::shared_ptr<nn::Module>>{
                                           std::make_shared<nn::Linear>(3, 5), std::make_shared<nn::ReLU>(),
                                           std::make_shared<nn::Linear>(5, 2, false)}));
  }
  Tensor forward(const Tensor& x) override { return (*head)(block(x) * scale * mask); }
};

std::vector<std::string> names_of(const std::vector<std::pair<std::string, Tensor>>& list) {
  std::vector<std::string> out;
  for (const auto& [name, tensor] : list) out.push_back(name);
  return out;
}

bool equal_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && all(eq(a.to(DType::f64), b.to(DType::f64))).item<bool>();
}

}  // namespace

TEST_CASE("Module registers parameters, buffers and submodules under PyTorch's dotted names", "[nn][module]") {
  Net net;
  const std::vector<std::string> params = {"scale",        "block.fc.weight", "block.fc.bias", "block.bn.weight",
                                           "block.bn.bias", "head.0.weight",   "head.0.bias",   "head.2.weight"};
  CHECK(names_of(net.named_parameters()) == params);
  CHECK(net.parameters().size() == params.size());
  CHECK(names_of(net.named_parameters(false)) == std::vector<std::string>{"scale"});
  CHECK(names_of(net.named_buffers()) ==
        std::vector<std::string>{"mask", "block.bn.running_mean", "block.bn.running_var", "block.bn.num_batches_tracked"});
  std::vector<std::string> modules;
  for (auto& [name, module] : net.named_modules()) modules.push_back(name);
  CHECK(modules == std::vector<std::string>{"", "block", "block.fc", "block.bn", "head", "head.0", "head.1", "head.2"});
  CHECK(net.children().size() == 2);
  CHECK(net.children()[0] == &net.block);
  // The non-persistent buffer is not in the state dict; everything else is, parameters first per module.
  CHECK(names_of(net.state_dict()) ==
        std::vector<std::string>{"scale", "block.fc.weight", "block.fc.bias", "block.bn.weight", "block.bn.bias",
                                 "block.bn.running_mean", "block.bn.running_var", "block.bn.num_batches_tracked",
                                 "head.0.weight", "head.0.bias", "head.2.weight"});
  for (const Tensor& p : net.parameters()) {
    CHECK(p.requires_grad());
    CHECK(p.is_leaf());
  }
  CHECK(net.parameter("block.fc.weight").is_same(net.block.fc.weight));
  CHECK(net.buffer("block.bn.running_var").is_same(net.block.bn.running_var));
  CHECK(&net.module("head.2") == &(*net.head)[2]);
  CHECK(net.head->size() == 3);
  CHECK(net.type_name() == "Net");
  CHECK(net(randn({6, 4})).shape() == Shape{6, 2});
}

TEST_CASE("Module refuses bad registrations", "[nn][module]") {
  nn::Module m;
  m.register_parameter("w", zeros({2}));
  test::check_error([&] { m.register_parameter("w", zeros({2})); }, {"[nn.Module]", "'w' is already registered"});
  test::check_error([&] { m.register_buffer("w", zeros({2})); }, {"already registered"});
  test::check_error([&] { m.register_parameter("a.b", zeros({2})); }, {"contains '.'"});
  test::check_error([&] { m.register_parameter("", zeros({2})); }, {"empty"});
  test::check_error([&] { m.register_parameter("i", zeros({2}, {.dtype = DType::i64})); }, {"only floating"});
  test::check_error([&] { m.register_module("self", m); }, {"the module itself"});
  test::check_error([&] { m(zeros({2})); }, {"[nn.Module]", "no single-input forward"});
  // A failed registration registered nothing.
  CHECK(m.named_parameters().size() == 1);
}

TEST_CASE("train() and eval() reach every submodule", "[nn][module]") {
  Net net;
  CHECK(net.is_training());
  net.eval();
  for (auto& [name, module] : net.named_modules()) CHECK_FALSE(module->is_training());
  net.train();
  for (auto& [name, module] : net.named_modules()) CHECK(module->is_training());
  net.block.train(false);
  CHECK(net.is_training());
  CHECK_FALSE(net.block.bn.is_training());
}

TEST_CASE("to(dtype) converts floating parameters and buffers and updates the layers' references", "[nn][module]") {
  Net net;
  const Tensor before = net.block.fc.weight.clone();
  net.block.fc.weight.set_grad(ones({3, 4}));
  net.to(DType::f64);
  for (auto& [name, p] : net.named_parameters()) {
    INFO(name);
    CHECK(p.dtype() == DType::f64);
    CHECK(p.requires_grad());
    CHECK(p.is_leaf());
  }
  CHECK(net.block.fc.weight.dtype() == DType::f64);  // the layer's member sees the new tensor
  CHECK(net.block.fc.weight.grad().dtype() == DType::f64);
  CHECK(net.block.bn.running_mean.dtype() == DType::f64);
  CHECK(net.block.bn.num_batches_tracked.dtype() == DType::i64);  // integers keep their dtype
  CHECK(equal_values(net.block.fc.weight, before));
  CHECK(net(randn({5, 4}, {.dtype = DType::f64})).dtype() == DType::f64);
  test::check_error([&] { net.to(DType::i32); }, {"not floating"});
}

TEST_CASE("a failed to(device) changes nothing", "[nn][module]") {
  Net net;
  const std::vector<Tensor> before = net.parameters();
  try {
    net.to(Device::cuda(0));
  } catch (const Error&) {
    // A CPU-only build (or no GPU): every parameter is still the same CPU tensor.
    const std::vector<Tensor> after = net.parameters();
    REQUIRE(after.size() == before.size());
    for (size_t i = 0; i < after.size(); ++i) CHECK(after[i].is_same(before[i]));
    return;
  }
  net.to(Device::cpu());  // a GPU build: it moved; move it back
  for (const Tensor& p : net.parameters()) CHECK(p.is_cpu());
}

TEST_CASE("zero_grad drops or zeroes the gradients", "[nn][module]") {
  Net net;
  sum(net(randn({6, 4}))).backward();
  for (const Tensor& p : net.parameters()) CHECK(p.grad().defined());
  net.zero_grad(false);
  for (const Tensor& p : net.parameters()) {
    REQUIRE(p.grad().defined());
    CHECK(sum(abs(p.grad())).item<double>() == 0.0);
  }
  net.zero_grad();
  for (const Tensor& p : net.parameters()) CHECK_FALSE(p.grad().defined());
}

TEST_CASE("state_dict shares storage and round-trips through load_state_dict", "[nn][module]") {
  Net a, b;
  { NoGradGuard g; a.block.bn.running_mean.fill_(0.25); a.block.bn.num_batches_tracked.fill_(7); }
  nn::StateDict state = a.state_dict();
  for (auto& [name, tensor] : state) CHECK_FALSE(tensor.requires_grad());
  CHECK(state[1].second.storage() == a.block.fc.weight.storage());  // detached, not copied
  CHECK_FALSE(equal_values(b.block.fc.weight, a.block.fc.weight));
  b.load_state_dict(state);
  const nn::StateDict loaded = b.state_dict();
  REQUIRE(loaded.size() == state.size());
  for (size_t i = 0; i < state.size(); ++i) {
    INFO(state[i].first);
    CHECK(loaded[i].first == state[i].first);
    CHECK(equal_values(loaded[i].second, state[i].second));
    CHECK(loaded[i].second.storage() != state[i].second.storage());  // values copied in
  }
  CHECK(b.block.bn.num_batches_tracked.item<int64_t>() == 7);
  // Both give the same outputs in evaluation.
  a.eval();
  b.eval();
  const Tensor x = randn({3, 4});
  CHECK(equal_values(a(x), b(x)));
}

TEST_CASE("a strict load with a wrong, missing or misshapen entry throws and changes nothing", "[nn][module]") {
  Net src, net;
  const nn::StateDict good = src.state_dict();
  const nn::StateDict original = net.state_dict();
  std::vector<Tensor> snapshot;
  for (auto& [name, tensor] : original) snapshot.push_back(tensor.clone());
  auto unchanged = [&] {
    const nn::StateDict now = net.state_dict();
    for (size_t i = 0; i < now.size(); ++i) {
      INFO(now[i].first);
      CHECK(equal_values(now[i].second, snapshot[i]));
    }
  };

  nn::StateDict renamed = good;
  renamed[2].first = "block.fc.bias_typo";
  test::check_error([&] { net.load_state_dict(renamed); },
                    {"[nn.Module.load_state_dict]", "missing keys: 'block.fc.bias'", "unexpected keys: 'block.fc.bias_typo'"});
  unchanged();

  nn::StateDict missing(good.begin(), good.end() - 1);
  test::check_error([&] { net.load_state_dict(missing); }, {"missing keys: 'head.2.weight'"});
  unchanged();

  nn::StateDict misshapen = good;
  misshapen.back().second = zeros({2, 6});  // the last entry: every other entry would load first if unchecked
  test::check_error([&] { net.load_state_dict(misshapen); }, {"size mismatch for 'head.2.weight'", "[2, 6]", "[2, 5]"});
  unchanged();
  // Shape mismatches are errors even when not strict.
  test::check_error([&] { net.load_state_dict(misshapen, false); }, {"size mismatch"});
  unchanged();
}

TEST_CASE("a non-strict load takes the names both have and ignores the rest", "[nn][module]") {
  Net src, net;
  nn::StateDict partial;
  for (auto& [name, tensor] : src.state_dict())
    if (name.rfind("head.", 0) == 0) partial.emplace_back(name, tensor);
  partial.emplace_back("unknown.weight", zeros({1}));
  const Tensor fc_before = net.block.fc.weight.clone();
  net.load_state_dict(partial, false);
  CHECK(equal_values(net.head->operator[](0).parameter("weight"), src.head->operator[](0).parameter("weight")));
  CHECK(equal_values(net.block.fc.weight, fc_before));
}

TEST_CASE("Sequential chains its modules and names them 0, 1, ...", "[nn][module]") {
  nn::Sequential seq;
  seq.push_back(std::make_shared<nn::Linear>(3, 4));
  seq.push_back("act", std::make_shared<nn::Tanh>());
  seq.push_back(std::make_shared<nn::Linear>(4, 2));
  CHECK(names_of(seq.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  const Tensor x = randn({5, 3});
  auto& l0 = static_cast<nn::Linear&>(seq[0]);
  auto& l2 = static_cast<nn::Linear&>(seq[2]);
  const Tensor expected = linear(tanh(linear(x, l0.weight, l0.bias)), l2.weight, l2.bias);
  CHECK(equal_values(seq(x), expected));
  test::check_error([&] { seq[3]; }, {"[nn.Sequential] index 3 out of range"});
}

TEST_CASE("str() prints like PyTorch and summary() lists shapes and parameter counts", "[nn][module]") {
  nn::Sequential seq{std::make_shared<nn::Linear>(784, 10), std::make_shared<nn::ReLU>()};
  CHECK(seq.str() ==
        "Sequential(\n  (0): Linear(in_features=784, out_features=10, bias=True)\n  (1): ReLU()\n)");
  nn::MultiheadAttention mha(4, 2);
  CHECK(mha.str() ==
        "MultiheadAttention(\n  embed_dim=4, num_heads=2\n  (out_proj): Linear(in_features=4, out_features=4, bias=True)\n)");
  Net net;
  const std::string text = net.summary({2, 4});
  INFO(text);
  CHECK(text.find("block.fc (Linear)") != std::string::npos);
  CHECK(text.find("[2, 3]") != std::string::npos);
  CHECK(text.find("[2, 5]") != std::string::npos);
  // 3 + (12 + 3) + (3 + 3) + (15 + 5) + 10
  CHECK(text.find("Total params: 54") != std::string::npos);
  CHECK(net.is_training());  // summary restores the mode
  CHECK(net.block.bn.num_batches_tracked.item<int64_t>() == 0);  // and moved no running stats
}
