#pragma once
// Tensor factories. Random ones draw from keel's Philox generator (core/rng.h): the same seed
// gives the same numbers on CPU and CUDA.
#include <initializer_list>
#include <optional>
#include <vector>

#include "keel/core/rng.h"
#include "keel/core/tensor.h"

namespace keel {

Tensor zeros(Shape shape, TensorOptions options = {});
Tensor ones(Shape shape, TensorOptions options = {});
Tensor full(Shape shape, const Scalar& value, TensorOptions options = {});
// [start, end) by step. Without options, the dtype follows PyTorch: i64 when all three are
// integers, the default float dtype otherwise.
Tensor arange(const Scalar& end);
Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step = 1);
Tensor arange(const Scalar& start, const Scalar& end, const Scalar& step, TensorOptions options);
Tensor linspace(double start, double end, int64_t steps, TensorOptions options = {});
Tensor eye(int64_t n, int64_t m = -1, TensorOptions options = {});

// U[0, 1), N(0, 1), integers in [low, high), and Bernoulli(p) draws (p a scalar or a tensor).
Tensor rand(Shape shape, TensorOptions options = {}, Generator* generator = nullptr);
Tensor randn(Shape shape, TensorOptions options = {}, Generator* generator = nullptr);
Tensor randint(int64_t low, int64_t high, Shape shape, TensorOptions options = {.dtype = DType::i64},
               Generator* generator = nullptr);
Tensor bernoulli(const Tensor& probabilities, Generator* generator = nullptr);
Tensor bernoulli(Shape shape, double p, TensorOptions options = {}, Generator* generator = nullptr);

Tensor empty_like(const Tensor& x);
Tensor zeros_like(const Tensor& x);
Tensor ones_like(const Tensor& x);
Tensor full_like(const Tensor& x, const Scalar& value);
Tensor rand_like(const Tensor& x, Generator* generator = nullptr);
Tensor randn_like(const Tensor& x, Generator* generator = nullptr);

// tensor({...}) from (nested) initializer lists, like torch.tensor: the dtype is inferred
// (bool, i64 or the default float) unless given; ragged nesting throws.
class NestedList {
 public:
  NestedList(double value) : value_(value), kind_(Scalar::Kind::floating) {}
  NestedList(float value) : value_(value), kind_(Scalar::Kind::floating) {}
  NestedList(int value) : value_(value), int_value_(value), kind_(Scalar::Kind::integral) {}
  NestedList(long value) : value_(static_cast<double>(value)), int_value_(value), kind_(Scalar::Kind::integral) {}
  NestedList(long long value) : value_(static_cast<double>(value)), int_value_(value), kind_(Scalar::Kind::integral) {}
  NestedList(bool value) : value_(value), kind_(Scalar::Kind::boolean) {}
  NestedList(std::initializer_list<NestedList> children) : children_(children), is_list_(true) {}

  bool is_list() const { return is_list_; }
  const std::vector<NestedList>& children() const { return children_; }
  Scalar scalar() const;

 private:
  double value_ = 0;
  int64_t int_value_ = 0;
  Scalar::Kind kind_ = Scalar::Kind::floating;
  std::vector<NestedList> children_;
  bool is_list_ = false;
};
Tensor tensor(const NestedList& values, std::optional<DType> dtype = std::nullopt,
              Device device = Device::cpu());
// A 0-dim tensor holding one scalar, with the scalar's natural dtype unless given.
Tensor scalar_tensor(const Scalar& value, std::optional<DType> dtype = std::nullopt,
                     Device device = Device::cpu());

}  // namespace keel
