#pragma once
// Normalization layers (torch.nn.BatchNorm1d / BatchNorm2d, LayerNorm, RMSNorm, GroupNorm).
// Affine weights start at ones and biases at zeros, as PyTorch.
#include <optional>

#include "keel/nn/module.h"

namespace keel::nn {

struct BatchNormOptions {
  double eps = 1e-5;
  // Weight of the new batch statistic in the running average; nullopt: a cumulative average
  // (factor 1 / num_batches_tracked), as PyTorch's momentum=None.
  std::optional<double> momentum = 0.1;
  bool affine = true;               // registers weight and bias
  bool track_running_stats = true;  // registers running_mean, running_var, num_batches_tracked
};

// Per channel c of x (N, C, *): y = (x - mean_c) / sqrt(var_c + eps) * weight_c + bias_c.
// Training (or without running stats): the batch's mean and biased variance, and the running
// stats are updated: r = (1 - m) r + m s, with the UNBIASED batch variance for running_var (as
// PyTorch); num_batches_tracked += 1. Evaluation: running_mean and running_var.
class BatchNormBase : public Module {
 public:
  BatchNormBase(int64_t num_features, BatchNormOptions options, const char* name);
  Tensor forward(const Tensor& input) override;
  std::string extra_repr() const override;
  void reset_running_stats();

  const int64_t num_features;
  const BatchNormOptions options;
  Tensor& weight;  // undefined unless affine
  Tensor& bias;
  Tensor& running_mean;  // undefined unless track_running_stats
  Tensor& running_var;
  Tensor& num_batches_tracked;  // i64 scalar

 protected:
  virtual void check_input(const Tensor& input) const = 0;

 private:
  Tensor none_;
};

// Inputs (N, C) or (N, C, L).
class BatchNorm1d : public BatchNormBase {
 public:
  explicit BatchNorm1d(int64_t num_features, BatchNormOptions options = {})
      : BatchNormBase(num_features, options, "BatchNorm1d") {}
  std::string type_name() const override { return "BatchNorm1d"; }

 protected:
  void check_input(const Tensor& input) const override;
};

// Inputs (N, C, H, W).
class BatchNorm2d : public BatchNormBase {
 public:
  explicit BatchNorm2d(int64_t num_features, BatchNormOptions options = {})
      : BatchNormBase(num_features, options, "BatchNorm2d") {}
  std::string type_name() const override { return "BatchNorm2d"; }

 protected:
  void check_input(const Tensor& input) const override;
};

struct LayerNormOptions {
  double eps = 1e-5;
  bool elementwise_affine = true;  // registers weight (and bias, when bias is true)
  bool bias = true;
};

// Normalizes over the trailing dims normalized_shape (biased variance); weight, bias of that shape.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(Shape normalized_shape, LayerNormOptions options = {});
  explicit LayerNorm(int64_t normalized_size, LayerNormOptions options = {})
      : LayerNorm(Shape{normalized_size}, options) {}
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "LayerNorm"; }
  std::string extra_repr() const override;

  const Shape normalized_shape;
  const LayerNormOptions options;
  Tensor& weight;
  Tensor& bias;

 private:
  Tensor none_;
};

struct RMSNormOptions {
  std::optional<double> eps;  // default: the machine epsilon of the input's dtype (PyTorch)
  bool elementwise_affine = true;
};

// x / sqrt(mean(x^2) + eps) * weight over the trailing dims (torch.nn.RMSNorm, PyTorch 2.4+).
class RMSNorm : public Module {
 public:
  explicit RMSNorm(Shape normalized_shape, RMSNormOptions options = {});
  explicit RMSNorm(int64_t normalized_size, RMSNormOptions options = {}) : RMSNorm(Shape{normalized_size}, options) {}
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "RMSNorm"; }
  std::string extra_repr() const override;

  const Shape normalized_shape;
  const RMSNormOptions options;
  Tensor& weight;

 private:
  Tensor none_;
};

struct GroupNormOptions {
  double eps = 1e-5;
  bool affine = true;
};

// torch.nn.functional.group_norm: x (N, C, *) split into num_groups groups of C / num_groups
// channels; each (sample, group) is normalized by its own mean and biased variance, then
// y = xhat * weight_c + bias_c (weight, bias (C) or undefined). A composite of public ops, so
// autograd differentiates it (and its gradient) op by op.
Tensor group_norm(const Tensor& input, int64_t num_groups, const Tensor& weight = {}, const Tensor& bias = {},
                  double eps = 1e-5);

class GroupNorm : public Module {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, GroupNormOptions options = {});
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "GroupNorm"; }
  std::string extra_repr() const override;

  const int64_t num_groups, num_channels;
  const GroupNormOptions options;
  Tensor& weight;
  Tensor& bias;

 private:
  Tensor none_;
};

}  // namespace keel::nn
