#include "keel/nn/init.h"

#include <algorithm>
#include <cmath>

#include "keel/autograd/grad_mode.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"

namespace keel::nn::init {

namespace {

void check_floating(const Tensor& tensor, const char* op) {
  KEEL_CHECK(tensor.defined(), "[nn.init.", op, "] the tensor is undefined");
  KEEL_CHECK(is_floating(tensor.dtype()), "[nn.init.", op, "] needs a floating tensor, got ", dtype_name(tensor.dtype()));
}

// Draws in f64 for f64 tensors, f32 otherwise, on the tensor's device.
TensorOptions draw_options(const Tensor& tensor) {
  return {.dtype = tensor.dtype() == DType::f64 ? DType::f64 : DType::f32, .device = tensor.device()};
}

// Inverse of the standard normal CDF (Acklam's rational approximation, relative error 1.2e-9),
// refined by one Halley step on erfc to full double precision.
double normal_quantile(double p) {
  static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                             1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                             6.680131188771972e+01,  -1.328068155288572e+01};
  static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                             -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                             3.754408661907416e+00};
  const double low = 0.02425;
  double x;
  if (p < low) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p <= 1 - low) {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  } else {
    const double q = std::sqrt(-2 * std::log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * std::sqrt(2 * M_PI) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

double fan_of(const Tensor& tensor, FanMode mode) {
  const Fans fans = calculate_fan_in_and_fan_out(tensor);
  return static_cast<double>(mode == FanMode::fan_in ? fans.fan_in : fans.fan_out);
}

}  // namespace

double calculate_gain(Nonlinearity nonlinearity, std::optional<double> param) {
  switch (nonlinearity) {
    case Nonlinearity::linear:
    case Nonlinearity::conv:
    case Nonlinearity::sigmoid: return 1.0;
    case Nonlinearity::tanh: return 5.0 / 3.0;
    case Nonlinearity::relu: return std::sqrt(2.0);
    case Nonlinearity::leaky_relu: {
      const double slope = param.value_or(0.01);
      return std::sqrt(2.0 / (1 + slope * slope));
    }
    case Nonlinearity::selu: return 3.0 / 4.0;
  }
  return 1.0;
}

Fans calculate_fan_in_and_fan_out(const Tensor& tensor) {
  KEEL_CHECK(tensor.defined() && tensor.dim() >= 2, "[nn.init] fan in and fan out need a tensor of at least 2 dims, got ",
             tensor.defined() ? tensor.shape() : Shape{}, ": use uniform_ / normal_ for 1-D tensors");
  int64_t receptive = 1;
  for (int64_t d = 2; d < tensor.dim(); ++d) receptive *= tensor.size(d);
  return {tensor.size(1) * receptive, tensor.size(0) * receptive};
}

Tensor& uniform_(Tensor& tensor, double low, double high, Generator* generator) {
  check_floating(tensor, "uniform_");
  KEEL_CHECK(low <= high, "[nn.init.uniform_] low ", low, " is above high ", high);
  NoGradGuard no_grad;
  tensor.copy_(rand(tensor.shape(), draw_options(tensor), generator) * (high - low) + low);
  return tensor;
}

Tensor& normal_(Tensor& tensor, double mean, double std, Generator* generator) {
  check_floating(tensor, "normal_");
  KEEL_CHECK(std >= 0, "[nn.init.normal_] std must be non-negative, got ", std);
  NoGradGuard no_grad;
  tensor.copy_(randn(tensor.shape(), draw_options(tensor), generator) * std + mean);
  return tensor;
}

Tensor& trunc_normal_(Tensor& tensor, double mean, double std, double a, double b, Generator* generator) {
  check_floating(tensor, "trunc_normal_");
  KEEL_CHECK(std > 0 && a < b, "[nn.init.trunc_normal_] needs std > 0 and a < b, got std ", std, ", a ", a, ", b ", b);
  NoGradGuard no_grad;
  // x = mean + std * Phi^-1(u), u ~ U(Phi(alpha), Phi(beta)): exactly N(mean, std^2) restricted to
  // [a, b]; then clamped against rounding, as PyTorch.
  const auto cdf = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  const double lo = cdf((a - mean) / std), hi = cdf((b - mean) / std);
  Tensor draws = rand(tensor.shape(), {.dtype = DType::f64}, generator).contiguous();
  double* values = draws.data_ptr<double>();
  for (int64_t i = 0; i < draws.numel(); ++i) {
    const double p = std::min(std::max(lo + (hi - lo) * values[i], 1e-300), 1 - 1e-16);
    values[i] = std::min(std::max(mean + std * normal_quantile(p), a), b);
  }
  tensor.copy_(draws);
  return tensor;
}

Tensor& constant_(Tensor& tensor, double value) {
  KEEL_CHECK(tensor.defined(), "[nn.init.constant_] the tensor is undefined");
  NoGradGuard no_grad;
  tensor.fill_(value);
  return tensor;
}
Tensor& zeros_(Tensor& tensor) { return constant_(tensor, 0); }
Tensor& ones_(Tensor& tensor) { return constant_(tensor, 1); }

Tensor& kaiming_uniform_(Tensor& tensor, double a, FanMode mode, Nonlinearity nonlinearity, Generator* generator) {
  check_floating(tensor, "kaiming_uniform_");
  if (tensor.numel() == 0) return tensor;  // PyTorch warns and does nothing
  const double bound = calculate_gain(nonlinearity, a) * std::sqrt(3.0 / fan_of(tensor, mode));
  return uniform_(tensor, -bound, bound, generator);
}

Tensor& kaiming_normal_(Tensor& tensor, double a, FanMode mode, Nonlinearity nonlinearity, Generator* generator) {
  check_floating(tensor, "kaiming_normal_");
  if (tensor.numel() == 0) return tensor;
  return normal_(tensor, 0, calculate_gain(nonlinearity, a) / std::sqrt(fan_of(tensor, mode)), generator);
}

Tensor& xavier_uniform_(Tensor& tensor, double gain, Generator* generator) {
  check_floating(tensor, "xavier_uniform_");
  const Fans fans = calculate_fan_in_and_fan_out(tensor);
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(fans.fan_in + fans.fan_out));
  return uniform_(tensor, -bound, bound, generator);
}

Tensor& xavier_normal_(Tensor& tensor, double gain, Generator* generator) {
  check_floating(tensor, "xavier_normal_");
  const Fans fans = calculate_fan_in_and_fan_out(tensor);
  return normal_(tensor, 0, gain * std::sqrt(2.0 / static_cast<double>(fans.fan_in + fans.fan_out)), generator);
}

}  // namespace keel::nn::init
