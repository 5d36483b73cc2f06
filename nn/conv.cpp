#include "keel/nn/conv.h"

#include <cmath>

#include "keel/nn/init.h"
#include "keel/nn/repr.h"
#include "keel/ops/factory.h"

namespace keel::nn {

namespace {
Tensor checked_conv_weight(int64_t in_channels, int64_t out_channels, Size2 kernel_size, const Conv2dOptions& o) {
  const char* op = "[nn.Conv2d]";
  KEEL_CHECK(in_channels > 0 && out_channels > 0, op, " in_channels and out_channels must be positive, got ",
             in_channels, " and ", out_channels);
  KEEL_CHECK(kernel_size[0] > 0 && kernel_size[1] > 0, op, " kernel_size must be positive, got ", repr::pair(kernel_size));
  KEEL_CHECK(o.stride[0] > 0 && o.stride[1] > 0, op, " stride must be positive, got ", repr::pair(o.stride));
  KEEL_CHECK(o.dilation[0] > 0 && o.dilation[1] > 0, op, " dilation must be positive, got ", repr::pair(o.dilation));
  KEEL_CHECK(o.padding[0] >= 0 && o.padding[1] >= 0, op, " padding must be non-negative, got ", repr::pair(o.padding));
  KEEL_CHECK(o.groups > 0, op, " groups must be positive, got ", o.groups);
  KEEL_CHECK(in_channels % o.groups == 0 && out_channels % o.groups == 0, op, " groups = ", o.groups,
             " must divide in_channels = ", in_channels, " and out_channels = ", out_channels);
  return empty({out_channels, in_channels / o.groups, kernel_size[0], kernel_size[1]});
}
}  // namespace

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Conv2dOptions options)
    : in_channels(in_channels),
      out_channels(out_channels),
      kernel_size(kernel_size),
      options(options),
      weight(register_parameter("weight", checked_conv_weight(in_channels, out_channels, kernel_size, options))),
      bias(options.bias ? register_parameter("bias", empty({out_channels})) : no_bias_) {
  reset_parameters();
}

void Conv2d::reset_parameters() {
  init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double fan_in = static_cast<double>(init::calculate_fan_in_and_fan_out(weight).fan_in);
    init::uniform_(bias, -1.0 / std::sqrt(fan_in), 1.0 / std::sqrt(fan_in));
  }
}

Tensor Conv2d::forward(const Tensor& input) {
  KEEL_CHECK((input.dim() == 3 || input.dim() == 4) && input.size(-3) == in_channels, "[nn.Conv2d] expected an input (N, ",
             in_channels, ", H, W) or (", in_channels, ", H, W), got ", input.shape());
  return conv2d(input, weight, bias,
                {.stride = options.stride, .padding = options.padding, .dilation = options.dilation, .groups = options.groups});
}

std::string Conv2d::extra_repr() const {
  std::string out = std::to_string(in_channels) + ", " + std::to_string(out_channels) +
                    ", kernel_size=" + repr::pair(kernel_size) + ", stride=" + repr::pair(options.stride);
  if (options.padding != Size2{0, 0}) out += ", padding=" + repr::pair(options.padding);
  if (options.dilation != Size2{1, 1}) out += ", dilation=" + repr::pair(options.dilation);
  if (options.groups != 1) out += ", groups=" + std::to_string(options.groups);
  if (!options.bias) out += ", bias=False";
  return out;
}

namespace {
void check_pool(const char* op, Size2 kernel, const std::optional<Size2>& stride, Size2 padding) {
  KEEL_CHECK(kernel[0] > 0 && kernel[1] > 0, op, " kernel_size must be positive, got ", repr::pair(kernel));
  KEEL_CHECK(!stride || ((*stride)[0] > 0 && (*stride)[1] > 0), op, " stride must be positive, got ", repr::pair(*stride));
  KEEL_CHECK(padding[0] >= 0 && padding[1] >= 0 && 2 * padding[0] <= kernel[0] && 2 * padding[1] <= kernel[1], op,
             " padding must be between 0 and half the kernel size, got padding ", repr::pair(padding), " for kernel ",
             repr::pair(kernel));
}
}  // namespace

MaxPool2d::MaxPool2d(MaxPool2dOptions options) : options(options) {
  check_pool("[nn.MaxPool2d]", options.kernel_size, options.stride, options.padding);
  KEEL_CHECK(options.dilation[0] > 0 && options.dilation[1] > 0, "[nn.MaxPool2d] dilation must be positive, got ",
             repr::pair(options.dilation));
}

namespace {
MaxPool2dOptions square_max_pool(int64_t kernel_size) {
  MaxPool2dOptions options;
  options.kernel_size = {kernel_size, kernel_size};
  return options;
}
AvgPool2dOptions square_avg_pool(int64_t kernel_size) {
  AvgPool2dOptions options;
  options.kernel_size = {kernel_size, kernel_size};
  return options;
}
}  // namespace

MaxPool2d::MaxPool2d(int64_t kernel_size) : MaxPool2d(square_max_pool(kernel_size)) {}
AvgPool2d::AvgPool2d(int64_t kernel_size) : AvgPool2d(square_avg_pool(kernel_size)) {}

std::string MaxPool2d::extra_repr() const {
  return "kernel_size=" + repr::pair(options.kernel_size) + ", stride=" + repr::pair(options.stride.value_or(options.kernel_size)) +
         ", padding=" + repr::pair(options.padding) + ", dilation=" + repr::pair(options.dilation) +
         ", ceil_mode=" + repr::boolean(options.ceil_mode);
}

AvgPool2d::AvgPool2d(AvgPool2dOptions options) : options(options) {
  check_pool("[nn.AvgPool2d]", options.kernel_size, options.stride, options.padding);
  KEEL_CHECK(!options.divisor_override || *options.divisor_override != 0, "[nn.AvgPool2d] divisor_override must be nonzero");
}

std::string AvgPool2d::extra_repr() const {
  return "kernel_size=" + repr::pair(options.kernel_size) + ", stride=" + repr::pair(options.stride.value_or(options.kernel_size)) +
         ", padding=" + repr::pair(options.padding);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 output_size) : output_size(output_size) {
  KEEL_CHECK(output_size[0] > 0 && output_size[1] > 0, "[nn.AdaptiveAvgPool2d] output_size must be positive, got ",
             repr::pair(output_size));
}

std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + repr::pair(output_size); }

}  // namespace keel::nn
