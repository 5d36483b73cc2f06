#pragma once
// Small ready-made models: an MLP (a Sequential of Linear, activation, dropout).
#include <functional>
#include <memory>

#include "keel/nn/activation.h"
#include "keel/nn/linear.h"
#include "keel/nn/module.h"

namespace keel::nn {

struct MLPOptions {
  // Makes the activation after each hidden layer (ReLU when empty).
  std::function<std::shared_ptr<Module>()> activation;
  double dropout = 0;  // a Dropout after each activation when > 0
  bool bias = true;
};

// sizes = {in, hidden..., out}: Linear(in, h1), act, [Dropout], ..., Linear(h_last, out).
// State dict names as the same torch.nn.Sequential: "0.weight", "0.bias", "2.weight", ...
class MLP : public Sequential {
 public:
  explicit MLP(const std::vector<int64_t>& sizes, MLPOptions options = {});
  std::string type_name() const override { return "MLP"; }
};

}  // namespace keel::nn
