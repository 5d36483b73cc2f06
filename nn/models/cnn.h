#pragma once
// SmallCNN: a VGG-style network for small grayscale images (Fashion-MNIST's 28 x 28):
//
//   per stage s (channels[s]): convs_per_stage x [Conv2d 3x3 pad 1 (no bias), BatchNorm2d, ReLU],
//                              then MaxPool2d(2)
//   classifier: Flatten, Dropout(dropout), Linear(channels.back() * (image_size / 2^stages)^2, classes)
//   or, with hidden > 0: Flatten, Dropout, Linear(.., hidden), ReLU, Dropout, Linear(hidden, classes)
//
// The default (channels {32, 64}, two convs per stage) is conv32-bn-relu-conv32-bn-relu-maxpool,
// conv64-bn-relu-conv64-bn-relu-maxpool, dropout, linear 10. Narrower channels train faster on
// few cores. Names as the equivalent torch.nn.Sequential pair: "features.0.weight",
// "features.1.running_mean", ..., "classifier.2.weight".
#include <vector>

#include "keel/nn/module.h"

namespace keel::nn {

struct SmallCNNOptions {
  int64_t in_channels = 1;
  std::vector<int64_t> channels = {32, 64};
  int64_t convs_per_stage = 2;
  double dropout = 0.25;
  int64_t hidden = 0;  // width of a hidden fully connected layer in the classifier; 0: none
  int64_t num_classes = 10;
  int64_t image_size = 28;  // height = width of the input
};

class SmallCNN : public Module {
 public:
  explicit SmallCNN(SmallCNNOptions options = {});
  Tensor forward(const Tensor& images) override;  // (N, in_channels, H, W) -> logits (N, num_classes)
  std::string type_name() const override { return "SmallCNN"; }

  const SmallCNNOptions options;
  Sequential features;
  Sequential classifier;
};

}  // namespace keel::nn
