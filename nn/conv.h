#pragma once
// Convolution and pooling layers (torch.nn.Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d) over
// (N, C, H, W) or unbatched (C, H, W) inputs; the ops are in ops/conv.h.
#include "keel/nn/module.h"
#include "keel/ops/conv.h"

namespace keel::nn {

struct Conv2dOptions {
  Size2 stride = {1, 1};
  Size2 padding = {0, 0};  // zeros on both sides
  Size2 dilation = {1, 1};
  int64_t groups = 1;  // divides in_channels and out_channels
  bool bias = true;
};

// weight [out_channels, in_channels / groups, kH, kW], bias [out_channels]. PyTorch's default
// initialisation: weight kaiming_uniform_(a = sqrt(5)) (U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with
// fan_in = in_channels / groups * kH * kW) and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Conv2dOptions options = {});
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv2dOptions options = {})
      : Conv2d(in_channels, out_channels, Size2{kernel_size, kernel_size}, options) {}
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override;
  void reset_parameters();

  const int64_t in_channels, out_channels;
  const Size2 kernel_size;
  const Conv2dOptions options;
  Tensor& weight;
  Tensor& bias;  // undefined without bias

 private:
  Tensor no_bias_;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(MaxPool2dOptions options);
  explicit MaxPool2d(int64_t kernel_size);  // square window, stride = kernel_size
  Tensor forward(const Tensor& input) override { return max_pool2d(input, options); }
  std::string type_name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override;
  const MaxPool2dOptions options;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(AvgPool2dOptions options);
  explicit AvgPool2d(int64_t kernel_size);  // square window, stride = kernel_size
  Tensor forward(const Tensor& input) override { return avg_pool2d(input, options); }
  std::string type_name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override;
  const AvgPool2dOptions options;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size);
  explicit AdaptiveAvgPool2d(int64_t output_size) : AdaptiveAvgPool2d(Size2{output_size, output_size}) {}
  Tensor forward(const Tensor& input) override { return adaptive_avg_pool2d(input, output_size); }
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override;
  const Size2 output_size;
};

}  // namespace keel::nn
