#include "keel/nn/models/resnet.h"

#include "keel/nn/init.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/reduce.h"

namespace keel::nn {

BasicBlock::BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride)
    : conv1(in_channels, out_channels, 3, {.stride = {stride, stride}, .padding = {1, 1}, .bias = false}),
      bn1(out_channels),
      conv2(out_channels, out_channels, 3, {.padding = {1, 1}, .bias = false}),
      bn2(out_channels) {
  register_module("conv1", conv1);
  register_module("bn1", bn1);
  register_module("conv2", conv2);
  register_module("bn2", bn2);
  if (stride != 1 || in_channels != out_channels) {
    downsample = register_module("downsample", std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
        std::make_shared<Conv2d>(in_channels, out_channels, 1, Conv2dOptions{.stride = {stride, stride}, .bias = false}),
        std::make_shared<BatchNorm2d>(out_channels)}));
  }
}

Tensor BasicBlock::forward(const Tensor& x) {
  const Tensor out = bn2(conv2(relu(bn1(conv1(x)))));
  return relu(out + (downsample ? (*downsample)(x) : x));
}

ResNet::ResNet(ResNetOptions options) : options(options) {
  const char* op = "[nn.ResNet]";
  KEEL_CHECK(!options.widths.empty() && options.widths.size() == options.blocks_per_stage.size(), op,
             " widths and blocks_per_stage need one entry per stage, got ", options.widths, " and ", options.blocks_per_stage);
  for (size_t s = 0; s < options.widths.size(); ++s)
    KEEL_CHECK(options.widths[s] > 0 && options.blocks_per_stage[s] > 0, op, " widths and blocks per stage must be positive");
  conv1 = register_module("conv1", std::make_shared<Conv2d>(options.in_channels, options.widths[0], 3,
                                                            Conv2dOptions{.padding = {1, 1}, .bias = false}));
  bn1 = register_module("bn1", std::make_shared<BatchNorm2d>(options.widths[0]));
  int64_t in = options.widths[0];
  for (size_t s = 0; s < options.widths.size(); ++s) {
    auto stage = std::make_shared<Sequential>();
    for (int64_t b = 0; b < options.blocks_per_stage[s]; ++b) {
      const int64_t stride = s > 0 && b == 0 ? 2 : 1;
      stage->push_back(std::make_shared<BasicBlock>(in, options.widths[s], stride));
      in = options.widths[s];
    }
    layers.push_back(register_module("layer" + std::to_string(s + 1), stage));
  }
  fc = register_module("fc", std::make_shared<Linear>(in, options.num_classes));
  // torchvision's initialisation: convolutions kaiming_normal_(fan_out, relu); norms ones / zeros.
  for (auto& [name, module] : named_modules())
    if (auto* conv = dynamic_cast<Conv2d*>(module))
      init::kaiming_normal_(conv->weight, 0, init::FanMode::fan_out, init::Nonlinearity::relu);
}

Tensor ResNet::forward(const Tensor& images) {
  Tensor x = relu((*bn1)((*conv1)(images)));
  for (const auto& stage : layers) x = (*stage)(x);
  return (*fc)(mean(x, {2, 3}));  // global average pooling
}

}  // namespace keel::nn
