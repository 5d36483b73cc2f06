#include "keel/nn/linear.h"

#include <cmath>

#include "keel/nn/init.h"
#include "keel/nn/repr.h"
#include "keel/ops/factory.h"
#include "keel/ops/linalg.h"

namespace keel::nn {

namespace {
Tensor checked_weight(int64_t in_features, int64_t out_features) {
  KEEL_CHECK(in_features > 0 && out_features > 0, "[nn.Linear] in_features and out_features must be positive, got ",
             in_features, " and ", out_features);
  return empty({out_features, in_features});
}
}  // namespace

Linear::Linear(int64_t in_features, int64_t out_features, bool bias)
    : in_features(in_features),
      out_features(out_features),
      weight(register_parameter("weight", checked_weight(in_features, out_features))),
      bias(bias ? register_parameter("bias", empty({out_features})) : no_bias_) {
  reset_parameters();
}

void Linear::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& input) {
  KEEL_CHECK(input.dim() >= 1 && input.size(-1) == in_features, "[nn.Linear] input of shape ", input.shape(),
             " does not end in in_features = ", in_features, ": reshape or flatten the input to [..., ", in_features, "]");
  return linear(input, weight, bias);
}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(in_features) + ", out_features=" + std::to_string(out_features) +
         ", bias=" + repr::boolean(bias.defined());
}

}  // namespace keel::nn
