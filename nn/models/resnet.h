#pragma once
// A small ResNet (He et al. 2016) for small images, with torchvision's names:
//   conv1 (3x3, stride 1), bn1, relu, layer1 .. layerK (BasicBlocks; the first block of each stage
//   after the first halves the resolution), avgpool (global), fc.
#include <memory>
#include <vector>

#include "keel/nn/activation.h"
#include "keel/nn/conv.h"
#include "keel/nn/linear.h"
#include "keel/nn/module.h"
#include "keel/nn/normalization.h"

namespace keel::nn {

// out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); shortcut = downsample (1x1 conv
// with the stride, then BatchNorm) when the shape changes, else the identity.
class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride = 1);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "BasicBlock"; }

  Conv2d conv1;
  BatchNorm2d bn1;
  Conv2d conv2;
  BatchNorm2d bn2;
  std::shared_ptr<Sequential> downsample;  // null for the identity shortcut
};

struct ResNetOptions {
  int64_t in_channels = 1;
  std::vector<int64_t> widths = {16, 32, 64};       // one stage per width
  std::vector<int64_t> blocks_per_stage = {2, 2, 2};  // as many entries as widths
  int64_t num_classes = 10;
};

class ResNet : public Module {
 public:
  explicit ResNet(ResNetOptions options = {});
  Tensor forward(const Tensor& images) override;
  std::string type_name() const override { return "ResNet"; }

  const ResNetOptions options;
  std::shared_ptr<Conv2d> conv1;
  std::shared_ptr<BatchNorm2d> bn1;
  std::vector<std::shared_ptr<Sequential>> layers;  // "layer1", "layer2", ...
  std::shared_ptr<Linear> fc;
};

}  // namespace keel::nn
