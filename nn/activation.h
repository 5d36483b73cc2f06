#pragma once
// Parameter-free layers: activations (torch.nn.ReLU, GELU, SiLU, Tanh, Sigmoid), Dropout,
// Flatten and Identity. Each forward is one op of ops/.
#include <optional>

#include "keel/core/rng.h"
#include "keel/nn/module.h"
#include "keel/ops/elementwise.h"

namespace keel::nn {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& input) override { return relu(input); }
  std::string type_name() const override { return "ReLU"; }
};

class GELU : public Module {
 public:
  explicit GELU(GeluApproximation approximate = GeluApproximation::none) : approximate(approximate) {}
  Tensor forward(const Tensor& input) override { return gelu(input, approximate); }
  std::string type_name() const override { return "GELU"; }
  std::string extra_repr() const override {
    return approximate == GeluApproximation::tanh ? "approximate='tanh'" : "approximate='none'";
  }
  const GeluApproximation approximate;
};

class SiLU : public Module {
 public:
  Tensor forward(const Tensor& input) override { return silu(input); }
  std::string type_name() const override { return "SiLU"; }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& input) override { return tanh(input); }
  std::string type_name() const override { return "Tanh"; }
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& input) override { return sigmoid(input); }
  std::string type_name() const override { return "Sigmoid"; }
};

class Identity : public Module {
 public:
  Tensor forward(const Tensor& input) override { return input; }
  std::string type_name() const override { return "Identity"; }
};

// Inverted dropout in training (x * mask / (1 - p)); the identity in evaluation.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* generator = nullptr);
  Tensor forward(const Tensor& input) override;
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  const double p;

 private:
  Generator* generator_;
};

// Flattens dims start_dim..end_dim into one (torch.nn.Flatten: start_dim = 1 keeps the batch).
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1) : start_dim(start_dim), end_dim(end_dim) {}
  Tensor forward(const Tensor& input) override { return input.flatten(start_dim, end_dim); }
  std::string type_name() const override { return "Flatten"; }
  std::string extra_repr() const override {
    return "start_dim=" + std::to_string(start_dim) + ", end_dim=" + std::to_string(end_dim);
  }
  const int64_t start_dim, end_dim;
};

}  // namespace keel::nn
