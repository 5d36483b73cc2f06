// Autograd on CUDA tensors: forward and backward of small models and of each op family run on
// the device and must give the CPU's values and gradients (the CPU's are checked against
// PyTorch and gradcheck in tests/autograd and tests/parity). Skips with a warning without a device.
#include <functional>
#include <string>
#include <vector>

#include "test_util.h"

using namespace keel;
using namespace keel::test;
using autograd::TensorList;

namespace {

using Model = std::function<Tensor(const TensorList&)>;

// Runs `model` on CPU and CUDA copies of `inputs` (float ones require grad) and compares the
// output and every gradient.
void check_on_device(const std::string& name, const Model& model, const TensorList& inputs, Tolerance tol) {
  INFO("case: " << name);
  TensorList host, device;
  for (const Tensor& input : inputs) {
    Tensor h = input.clone(), d = input.to(Device::cuda(0));
    if (is_floating(input.dtype())) {
      h.requires_grad_();
      d.requires_grad_();
    }
    host.push_back(h);
    device.push_back(d);
  }
  Tensor host_out = model(host), device_out = model(device);
  REQUIRE(device_out.is_cuda());
  check_matches(device_out.cpu(), reference::from_tensor(host_out), tol, name + " output");
  sum(host_out * host_out).backward();
  sum(device_out * device_out).backward();
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!host[i].requires_grad()) continue;
    REQUIRE(device[i].grad().defined());
    CHECK(device[i].grad().is_cuda());
    check_matches(device[i].grad().cpu(), reference::from_tensor(host[i].grad()), tol,
                  name + " gradient of input " + std::to_string(i));
  }
}

}  // namespace

TEST_CASE("autograd on CUDA matches the CPU", "[cuda][autograd]") {
  if (!keel::cuda::is_available()) { WARN("skipped: no CUDA device"); return; }
  const Tolerance tol{1e-4, 1e-4};
  check_on_device("elementwise chain", [](const TensorList& in) {
    return gelu(in[0] * in[1] + sin(in[0])) / (exp(-in[1]) + 1) - pow(tanh(in[0]), 2.0);
  }, {randn({7, 33}), randn({33})}, tol);
  check_on_device("reductions and views", [](const TensorList& in) {
    Tensor x = in[0].t().reshape({5, 66});
    return logsumexp(x, {1}) + amax(x, {1}) + keel::std(x, {1}) + sum(x.slice(1, 0, 66, 3), {1});
  }, {randn({66, 5})}, tol);
  check_on_device("mlp with layer norm and cross entropy", [](const TensorList& in) {
    Tensor h = gelu(linear(in[0], in[1], in[2]));
    h = layer_norm(h, {16}, in[3], in[4]);
    return cross_entropy(linear(h, in[5]), in[6], {.label_smoothing = 0.1});
  }, {randn({9, 12}), randn({16, 12}) * 0.3, randn({16}), 1 + randn({16}) * 0.1, randn({16}) * 0.1,
      randn({5, 16}) * 0.3, randint(0, 5, {9})}, tol);
  check_on_device("attention", [](const TensorList& in) {
    return scaled_dot_product_attention(in[0], in[1], in[2], {.is_causal = true});
  }, {randn({2, 4, 17, 8}), randn({2, 2, 17, 8}), randn({2, 2, 17, 8})}, tol);
  check_on_device("indexing", [](const TensorList& in) {
    Tensor rows = embedding(in[1], in[0]);
    return gather(rows, 1, in[2]) + sum(index_select(rows, 0, in[3]));
  }, {randn({10, 6}), tensor({{1, 3, 3, 9}}, DType::i64).view({4}), tensor({{0}, {5}, {2}, {2}}, DType::i64),
      tensor({0, 3}, DType::i64)}, tol);
}
