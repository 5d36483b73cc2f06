#pragma once
// nn::Linear (torch.nn.Linear): y = x W^T + b, weight [out_features, in_features], bias
// [out_features]. PyTorch's default initialisation: weight kaiming_uniform_(a = sqrt(5)), i.e.
// U(-1/sqrt(in), 1/sqrt(in)), and bias U(-1/sqrt(in), 1/sqrt(in)).
#include "keel/nn/module.h"

namespace keel::nn {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  // Draws the default initialisation again (from the default generator).
  void reset_parameters();

  const int64_t in_features, out_features;
  Tensor& weight;
  Tensor& bias;  // undefined without bias (not registered)

 private:
  Tensor no_bias_;
};

}  // namespace keel::nn
