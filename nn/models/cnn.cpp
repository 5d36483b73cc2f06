#include "keel/nn/models/cnn.h"

#include "keel/nn/activation.h"
#include "keel/nn/conv.h"
#include "keel/nn/linear.h"
#include "keel/nn/normalization.h"

namespace keel::nn {

SmallCNN::SmallCNN(SmallCNNOptions options) : options(options) {
  const char* op = "[nn.SmallCNN]";
  KEEL_CHECK(options.in_channels > 0 && options.num_classes > 0 && options.convs_per_stage > 0, op,
             " in_channels, num_classes and convs_per_stage must be positive");
  KEEL_CHECK(!options.channels.empty(), op, " channels is empty: give one width per stage, e.g. {32, 64}");
  const int64_t stages = static_cast<int64_t>(options.channels.size());
  KEEL_CHECK(options.image_size >> stages > 0, op, " image_size ", options.image_size, " is too small for ", stages,
             " stages of 2x2 pooling");
  int64_t in = options.in_channels;
  for (int64_t width : options.channels) {
    KEEL_CHECK(width > 0, op, " channel widths must be positive, got ", options.channels);
    for (int64_t i = 0; i < options.convs_per_stage; ++i) {
      features.push_back(std::make_shared<Conv2d>(in, width, 3, Conv2dOptions{.padding = {1, 1}, .bias = false}));
      features.push_back(std::make_shared<BatchNorm2d>(width));
      features.push_back(std::make_shared<ReLU>());
      in = width;
    }
    features.push_back(std::make_shared<MaxPool2d>(2));
  }
  const int64_t side = options.image_size >> stages;
  KEEL_CHECK(options.hidden >= 0, op, " hidden must be >= 0 (0: no hidden layer), got ", options.hidden);
  classifier.push_back(std::make_shared<Flatten>());
  classifier.push_back(std::make_shared<Dropout>(options.dropout));
  int64_t features_out = in * side * side;
  if (options.hidden > 0) {
    classifier.push_back(std::make_shared<Linear>(features_out, options.hidden));
    classifier.push_back(std::make_shared<ReLU>());
    classifier.push_back(std::make_shared<Dropout>(options.dropout));
    features_out = options.hidden;
  }
  classifier.push_back(std::make_shared<Linear>(features_out, options.num_classes));
  register_module("features", features);
  register_module("classifier", classifier);
}

Tensor SmallCNN::forward(const Tensor& images) {
  KEEL_CHECK(images.dim() == 4 && images.size(1) == options.in_channels && images.size(2) == options.image_size &&
                 images.size(3) == options.image_size,
             "[nn.SmallCNN] expected images (N, ", options.in_channels, ", ", options.image_size, ", ", options.image_size,
             "), got ", images.shape());
  return classifier(features(images));
}

}  // namespace keel::nn
