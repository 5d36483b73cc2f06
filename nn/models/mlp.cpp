#include "keel/nn/models/mlp.h"

namespace keel::nn {

MLP::MLP(const std::vector<int64_t>& sizes, MLPOptions options) {
  KEEL_CHECK(sizes.size() >= 2, "[nn.MLP] sizes needs at least the input and output sizes, got ", sizes);
  for (size_t i = 0; i + 1 < sizes.size(); ++i) {
    push_back(std::make_shared<Linear>(sizes[i], sizes[i + 1], options.bias));
    if (i + 2 == sizes.size()) break;
    push_back(options.activation ? options.activation() : std::make_shared<ReLU>());
    if (options.dropout > 0) push_back(std::make_shared<Dropout>(options.dropout));
  }
}

}  // namespace keel::nn
