#include "keel/nn/normalization.h"

#include "keel/autograd/grad_mode.h"
#include "keel/nn/repr.h"
#include "keel/ops/conv.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
#include "keel/ops/nn_functional.h"
#include "keel/ops/reduce.h"

namespace keel::nn {

namespace {
int64_t checked_features(int64_t n, const char* op, const char* what) {
  KEEL_CHECK(n > 0, "[nn.", op, "] ", what, " must be positive, got ", n);
  return n;
}
Shape checked_shape(const Shape& shape, const char* op) {
  KEEL_CHECK(!shape.empty(), "[nn.", op, "] normalized_shape is empty: give the sizes of the trailing dims to normalize");
  for (int64_t size : shape)
    KEEL_CHECK(size > 0, "[nn.", op, "] normalized_shape must have positive sizes, got ", shape);
  return shape;
}
void check_trailing(const Tensor& input, const Shape& normalized_shape, const char* op) {
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  bool ok = input.dim() >= k;
  for (int64_t i = 0; ok && i < k; ++i) ok = input.size(input.dim() - k + i) == normalized_shape[i];
  KEEL_CHECK(ok, "[nn.", op, "] input of shape ", input.shape(), " does not end in normalized_shape ", normalized_shape);
}
}  // namespace

// ---- BatchNorm --------------------------------------------------------------------------------

BatchNormBase::BatchNormBase(int64_t num_features, BatchNormOptions options, const char* name)
    : num_features(checked_features(num_features, name, "num_features")),
      options(options),
      weight(options.affine ? register_parameter("weight", ones({num_features})) : none_),
      bias(options.affine ? register_parameter("bias", zeros({num_features})) : none_),
      running_mean(options.track_running_stats ? register_buffer("running_mean", zeros({num_features})) : none_),
      running_var(options.track_running_stats ? register_buffer("running_var", ones({num_features})) : none_),
      num_batches_tracked(options.track_running_stats
                              ? register_buffer("num_batches_tracked", zeros({}, {.dtype = DType::i64}))
                              : none_) {
  KEEL_CHECK(options.eps > 0, "[nn.", name, "] eps must be positive, got ", options.eps);
  KEEL_CHECK(!options.momentum || (*options.momentum >= 0 && *options.momentum <= 1), "[nn.", name,
             "] momentum must be in [0, 1], got ", *options.momentum);
}

void BatchNormBase::reset_running_stats() {
  if (!options.track_running_stats) return;
  NoGradGuard no_grad;
  running_mean.zero_();
  running_var.fill_(1);
  num_batches_tracked.zero_();
}

Tensor BatchNormBase::forward(const Tensor& input) {
  check_input(input);
  KEEL_CHECK(input.size(1) == num_features, "[nn.", type_name(), "] input has ", input.size(1), " channels in dim 1 (shape ",
             input.shape(), "), the layer was built for num_features = ", num_features);
  const bool use_batch_stats = training_ || !options.track_running_stats;
  double factor = 0;
  if (training_ && options.track_running_stats) {
    {
      NoGradGuard no_grad;
      num_batches_tracked += 1;
    }
    factor = options.momentum ? *options.momentum : 1.0 / static_cast<double>(num_batches_tracked.item<int64_t>());
  }
  // Running stats are passed only when they are to be updated (training) or used (evaluation).
  const bool pass_running = options.track_running_stats;
  return batch_norm(input, pass_running ? running_mean : Tensor(), pass_running ? running_var : Tensor(), weight, bias,
                    use_batch_stats, factor, options.eps);
}

std::string BatchNormBase::extra_repr() const {
  return std::to_string(num_features) + ", eps=" + repr::number(options.eps) +
         ", momentum=" + (options.momentum ? repr::number(*options.momentum) : std::string("None")) +
         ", affine=" + repr::boolean(options.affine) + ", track_running_stats=" + repr::boolean(options.track_running_stats);
}

void BatchNorm1d::check_input(const Tensor& input) const {
  KEEL_CHECK(input.dim() == 2 || input.dim() == 3, "[nn.BatchNorm1d] expected a 2-D (N, C) or 3-D (N, C, L) input, got ",
             input.shape());
}

void BatchNorm2d::check_input(const Tensor& input) const {
  KEEL_CHECK(input.dim() == 4, "[nn.BatchNorm2d] expected a 4-D (N, C, H, W) input, got ", input.shape());
}

// ---- LayerNorm, RMSNorm -----------------------------------------------------------------------

LayerNorm::LayerNorm(Shape normalized_shape, LayerNormOptions options)
    : normalized_shape(checked_shape(normalized_shape, "LayerNorm")),
      options(options),
      weight(options.elementwise_affine ? register_parameter("weight", ones(normalized_shape)) : none_),
      bias(options.elementwise_affine && options.bias ? register_parameter("bias", zeros(normalized_shape)) : none_) {
  KEEL_CHECK(options.eps > 0, "[nn.LayerNorm] eps must be positive, got ", options.eps);
}

Tensor LayerNorm::forward(const Tensor& input) {
  check_trailing(input, normalized_shape, "LayerNorm");
  return layer_norm(input, normalized_shape, weight, bias, options.eps);
}

std::string LayerNorm::extra_repr() const {
  return repr::tuple(normalized_shape) + ", eps=" + repr::number(options.eps) +
         ", elementwise_affine=" + repr::boolean(options.elementwise_affine);
}

RMSNorm::RMSNorm(Shape normalized_shape, RMSNormOptions options)
    : normalized_shape(checked_shape(normalized_shape, "RMSNorm")),
      options(options),
      weight(options.elementwise_affine ? register_parameter("weight", ones(normalized_shape)) : none_) {
  KEEL_CHECK(!options.eps || *options.eps > 0, "[nn.RMSNorm] eps must be positive, got ", options.eps.value_or(0));
}

Tensor RMSNorm::forward(const Tensor& input) {
  check_trailing(input, normalized_shape, "RMSNorm");
  return rms_norm(input, normalized_shape, weight, options.eps);
}

std::string RMSNorm::extra_repr() const {
  return repr::tuple(normalized_shape) + ", eps=" + (options.eps ? repr::number(*options.eps) : std::string("None")) +
         ", elementwise_affine=" + repr::boolean(options.elementwise_affine);
}

// ---- GroupNorm --------------------------------------------------------------------------------

Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  KEEL_CHECK(input.dim() >= 2, "[group_norm] expected an input (N, C, *), got ", input.shape());
  KEEL_CHECK(num_groups > 0 && input.size(1) % num_groups == 0, "[group_norm] num_groups = ", num_groups,
             " must divide the number of channels ", input.size(1), " (input ", input.shape(), ")");
  const int64_t n = input.size(0), c = input.size(1);
  KEEL_CHECK(!weight.defined() || weight.shape() == Shape{c}, "[group_norm] weight must have shape [", c, "], got ",
             weight.shape());
  KEEL_CHECK(!bias.defined() || bias.shape() == Shape{c}, "[group_norm] bias must have shape [", c, "], got ", bias.shape());
  // (N, G, C/G * spatial): the statistics of each row are those of one (sample, group).
  const Tensor grouped = input.reshape({n, num_groups, -1});
  const Tensor mean_g = mean(grouped, {2}, true);
  const Tensor centered = grouped - mean_g;
  const Tensor var_g = mean(centered * centered, {2}, true);
  Tensor y = (centered * rsqrt(var_g + eps)).reshape(input.shape());
  Shape channel_shape(input.dim(), 1);
  channel_shape[1] = c;
  if (weight.defined()) y = y * weight.reshape(channel_shape);
  if (bias.defined()) y = y + bias.reshape(channel_shape);
  return y;
}

GroupNorm::GroupNorm(int64_t num_groups, int64_t num_channels, GroupNormOptions options)
    : num_groups(checked_features(num_groups, "GroupNorm", "num_groups")),
      num_channels(checked_features(num_channels, "GroupNorm", "num_channels")),
      options(options),
      weight(options.affine ? register_parameter("weight", ones({num_channels})) : none_),
      bias(options.affine ? register_parameter("bias", zeros({num_channels})) : none_) {
  KEEL_CHECK(num_channels % num_groups == 0, "[nn.GroupNorm] num_groups = ", num_groups,
             " must divide num_channels = ", num_channels);
  KEEL_CHECK(options.eps > 0, "[nn.GroupNorm] eps must be positive, got ", options.eps);
}

Tensor GroupNorm::forward(const Tensor& input) {
  KEEL_CHECK(input.dim() >= 2 && input.size(1) == num_channels, "[nn.GroupNorm] expected an input (N, ", num_channels,
             ", *), got ", input.shape());
  return group_norm(input, num_groups, weight, bias, options.eps);
}

std::string GroupNorm::extra_repr() const {
  return std::to_string(num_groups) + ", " + std::to_string(num_channels) + ", eps=" + repr::number(options.eps) +
         ", affine=" + repr::boolean(options.affine);
}

}  // namespace keel::nn
