#pragma once
// Parameter initialisation (torch.nn.init): each function fills `tensor` in place, without
// recording autograd, with draws from `generator` (keel's default generator when null, so that
// manual_seed makes a model's initial weights reproducible).
//
// Fans (torch.nn.init._calculate_fan_in_and_fan_out), for a tensor of at least 2 dims
// [out, in, *receptive]: fan_in = in * prod(receptive), fan_out = out * prod(receptive).
//
//   kaiming_uniform_:  U(-b, b),  b = gain * sqrt(3 / fan)          fan per `mode`
//   kaiming_normal_:   N(0, s^2), s = gain / sqrt(fan)
//   xavier_uniform_:   U(-b, b),  b = gain * sqrt(6 / (fan_in + fan_out))
//   xavier_normal_:    N(0, s^2), s = gain * sqrt(2 / (fan_in + fan_out))
//   trunc_normal_:     N(mean, std^2) conditioned on [a, b] (inverse-CDF sampling, as PyTorch)
#include <optional>

#include "keel/core/rng.h"
#include "keel/core/tensor.h"

namespace keel::nn::init {

enum class Nonlinearity { linear, conv, sigmoid, tanh, relu, leaky_relu, selu };
enum class FanMode { fan_in, fan_out };

// torch.nn.init.calculate_gain: linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2),
// leaky_relu sqrt(2 / (1 + slope^2)) (slope = param, default 0.01), selu 3/4.
double calculate_gain(Nonlinearity nonlinearity, std::optional<double> param = std::nullopt);

struct Fans {
  int64_t fan_in, fan_out;
};
// keel::Error for tensors of fewer than 2 dims (as PyTorch).
Fans calculate_fan_in_and_fan_out(const Tensor& tensor);

Tensor& uniform_(Tensor& tensor, double low = 0, double high = 1, Generator* generator = nullptr);
Tensor& normal_(Tensor& tensor, double mean = 0, double std = 1, Generator* generator = nullptr);
Tensor& trunc_normal_(Tensor& tensor, double mean = 0, double std = 1, double a = -2, double b = 2,
                      Generator* generator = nullptr);
Tensor& constant_(Tensor& tensor, double value);
Tensor& zeros_(Tensor& tensor);
Tensor& ones_(Tensor& tensor);
// `a`: the negative slope of the leaky_relu that follows (used only by leaky_relu's gain).
Tensor& kaiming_uniform_(Tensor& tensor, double a = 0, FanMode mode = FanMode::fan_in,
                         Nonlinearity nonlinearity = Nonlinearity::leaky_relu, Generator* generator = nullptr);
Tensor& kaiming_normal_(Tensor& tensor, double a = 0, FanMode mode = FanMode::fan_in,
                        Nonlinearity nonlinearity = Nonlinearity::leaky_relu, Generator* generator = nullptr);
Tensor& xavier_uniform_(Tensor& tensor, double gain = 1, Generator* generator = nullptr);
Tensor& xavier_normal_(Tensor& tensor, double gain = 1, Generator* generator = nullptr);

}  // namespace keel::nn::init
