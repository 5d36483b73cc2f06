#include "keel/kernels/reference/reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace keel::reference {

namespace {
double read_element(const char* pointer, DType dtype) {
  switch (dtype) {
    case DType::f32: { float v; std::memcpy(&v, pointer, 4); return v; }
    case DType::f64: { double v; std::memcpy(&v, pointer, 8); return v; }
    case DType::f16: { uint16_t v; std::memcpy(&v, pointer, 2); return detail::half_bits_to_float(v); }
    case DType::bf16: { uint16_t v; std::memcpy(&v, pointer, 2); return detail::bfloat16_bits_to_float(v); }
    case DType::i8: { int8_t v; std::memcpy(&v, pointer, 1); return v; }
    case DType::u8: { uint8_t v; std::memcpy(&v, pointer, 1); return v; }
    case DType::i32: { int32_t v; std::memcpy(&v, pointer, 4); return v; }
    case DType::i64: { int64_t v; std::memcpy(&v, pointer, 8); return static_cast<double>(v); }
    case DType::bool_: { uint8_t v; std::memcpy(&v, pointer, 1); return v != 0; }
  }
  return 0;
}
}  // namespace

RefTensor from_tensor(const Tensor& tensor) {
  KEEL_CHECK(tensor.is_cpu(), "[reference] reads CPU tensors only");
  RefTensor result{tensor.shape(), std::vector<double>(static_cast<size_t>(tensor.numel()))};
  const auto* base = static_cast<const char*>(tensor.storage()->data());
  const int64_t itemsize = static_cast<int64_t>(tensor.itemsize());
  const int64_t ndim = tensor.dim();
  for (int64_t linear = 0; linear < tensor.numel(); ++linear) {
    int64_t rest = linear, element = tensor.offset();
    for (int64_t d = ndim - 1; d >= 0; --d) {
      element += (rest % tensor.shape()[d]) * tensor.strides()[d];
      rest /= tensor.shape()[d];
    }
    result.values[linear] = read_element(base + element * itemsize, tensor.dtype());
  }
  return result;
}

std::vector<int64_t> unravel(int64_t linear, const Shape& shape) {
  std::vector<int64_t> coordinates(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    coordinates[d] = linear % shape[d];
    linear /= shape[d];
  }
  return coordinates;
}

int64_t ravel(const std::vector<int64_t>& coordinates, const Shape& shape) {
  int64_t linear = 0;
  for (size_t d = 0; d < shape.size(); ++d) linear = linear * shape[d] + coordinates[d];
  return linear;
}

int64_t broadcast_source(const Shape& shape, const Shape& out_shape, int64_t index) {
  int64_t source = 0, source_stride = 1;
  const int64_t shift = static_cast<int64_t>(out_shape.size() - shape.size());
  for (int64_t d = static_cast<int64_t>(out_shape.size()) - 1; d >= 0; --d) {
    const int64_t coordinate = index % out_shape[d];
    index /= out_shape[d];
    if (d - shift >= 0) {
      const int64_t size = shape[d - shift];
      source += (size == 1 ? 0 : coordinate) * source_stride;
      source_stride *= size;
    }
  }
  return source;
}

double round_to(DType dtype, double value) {
  switch (dtype) {
    case DType::f32: return static_cast<float>(value);
    case DType::f64: return value;
    case DType::f16: return detail::half_bits_to_float(detail::float_to_half_bits(static_cast<float>(value)));
    case DType::bf16:
      return detail::bfloat16_bits_to_float(detail::float_to_bfloat16_bits(static_cast<float>(value)));
    case DType::bool_: return value != 0;
    default: return value;  // integer results are compared exactly
  }
}

RefTensor map(const RefTensor& x, const std::function<double(double)>& f) {
  RefTensor out{x.shape, x.values};
  for (double& v : out.values) v = f(v);
  return out;
}

RefTensor zip(const RefTensor& a, const RefTensor& b, const std::function<double(double, double)>& f) {
  const Shape shape = broadcast_shapes(a.shape, b.shape, "reference");
  RefTensor out{shape, std::vector<double>(static_cast<size_t>(shape_numel(shape)))};
  for (int64_t i = 0; i < out.numel(); ++i)
    out.values[i] = f(a.values[broadcast_source(a.shape, shape, i)], b.values[broadcast_source(b.shape, shape, i)]);
  return out;
}

double unary_value(UnaryOp op, double x) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::abs: return std::fabs(x);
    case UnaryOp::exp: return std::exp(x);
    case UnaryOp::log: return std::log(x);
    case UnaryOp::log1p: return std::log1p(x);
    case UnaryOp::expm1: return std::expm1(x);
    case UnaryOp::sqrt: return std::sqrt(x);
    case UnaryOp::rsqrt: return 1.0 / std::sqrt(x);
    case UnaryOp::sin: return std::sin(x);
    case UnaryOp::cos: return std::cos(x);
    case UnaryOp::tanh: return std::tanh(x);
    case UnaryOp::sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case UnaryOp::relu: return std::isnan(x) ? x : std::max(x, 0.0);
    case UnaryOp::erf: return std::erf(x);
    case UnaryOp::gelu_erf: return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));
    case UnaryOp::gelu_tanh: {
      const double k = std::sqrt(2.0 / M_PI);
      return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
    }
    case UnaryOp::silu: return x / (1.0 + std::exp(-x));
    case UnaryOp::logical_not: return x == 0.0;
    case UnaryOp::isnan: return std::isnan(x);
    case UnaryOp::isinf: return std::isinf(x);
  }
  return 0;
}

double binary_value(BinaryOp op, double a, double b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::pow: return std::pow(a, b);
    case BinaryOp::maximum: return std::isnan(a) || std::isnan(b) ? std::nan("") : std::max(a, b);
    case BinaryOp::minimum: return std::isnan(a) || std::isnan(b) ? std::nan("") : std::min(a, b);
    case BinaryOp::eq: return a == b;
    case BinaryOp::ne: return a != b;
    case BinaryOp::lt: return a < b;
    case BinaryOp::le: return a <= b;
    case BinaryOp::gt: return a > b;
    case BinaryOp::ge: return a >= b;
    case BinaryOp::logical_and: return a != 0 && b != 0;
    case BinaryOp::logical_or: return a != 0 || b != 0;
    case BinaryOp::logical_xor: return (a != 0) != (b != 0);
  }
  return 0;
}

RefTensor unary(UnaryOp op, const RefTensor& x) {
  return map(x, [op](double v) { return unary_value(op, v); });
}
RefTensor binary(BinaryOp op, const RefTensor& a, const RefTensor& b) {
  return zip(a, b, [op](double x, double y) { return binary_value(op, x, y); });
}

namespace {
// Output shape (keepdim) and, for each input element, the output element it reduces into.
struct ReductionMap {
  Shape kept_shape;     // x's rank, reduced dims set to 1
  Shape result_shape;   // kept_shape, or without the reduced dims
  std::vector<int64_t> target;  // per input element
};
ReductionMap reduction_map(const Shape& shape, std::vector<int64_t> dims, bool keepdim) {
  const int64_t ndim = static_cast<int64_t>(shape.size());
  if (dims.empty()) for (int64_t d = 0; d < ndim; ++d) dims.push_back(d);
  std::vector<bool> reduced(ndim, false);
  for (int64_t d : dims) reduced[wrap_dim(d, ndim, "reference")] = ndim > 0;
  ReductionMap map;
  for (int64_t d = 0; d < ndim; ++d) {
    map.kept_shape.push_back(reduced[d] ? 1 : shape[d]);
    if (!reduced[d] || keepdim) map.result_shape.push_back(reduced[d] ? 1 : shape[d]);
  }
  const int64_t numel = shape_numel(shape);
  map.target.resize(numel);
  for (int64_t i = 0; i < numel; ++i) {
    int64_t rest = i, target = 0, target_stride = 1;
    for (int64_t d = ndim - 1; d >= 0; --d) {
      const int64_t coordinate = rest % shape[d];
      rest /= shape[d];
      if (!reduced[d]) {
        target += coordinate * target_stride;
        target_stride *= shape[d];
      }
    }
    map.target[i] = target;
  }
  return map;
}
}  // namespace

RefTensor reduce(ReduceOp op, const RefTensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  const ReductionMap m = reduction_map(x.shape, dims, keepdim);
  double identity = 0;
  switch (op) {
    case ReduceOp::sum: case ReduceOp::any: identity = 0; break;
    case ReduceOp::prod: case ReduceOp::all: identity = 1; break;
    case ReduceOp::amax: identity = -std::numeric_limits<double>::infinity(); break;
    case ReduceOp::amin: identity = std::numeric_limits<double>::infinity(); break;
  }
  RefTensor out{m.result_shape, std::vector<double>(static_cast<size_t>(shape_numel(m.kept_shape)), identity)};
  for (int64_t i = 0; i < x.numel(); ++i) {
    double& acc = out.values[m.target[i]];
    const double v = x.values[i];
    switch (op) {
      case ReduceOp::sum: acc += v; break;
      case ReduceOp::prod: acc *= v; break;
      case ReduceOp::amax: acc = (std::isnan(acc) || std::isnan(v)) ? std::nan("") : std::max(acc, v); break;
      case ReduceOp::amin: acc = (std::isnan(acc) || std::isnan(v)) ? std::nan("") : std::min(acc, v); break;
      case ReduceOp::all: acc = acc != 0 && v != 0; break;
      case ReduceOp::any: acc = acc != 0 || v != 0; break;
    }
  }
  return out;
}

RefTensor variance(const RefTensor& x, const std::vector<int64_t>& dims, double correction, bool keepdim) {
  const ReductionMap m = reduction_map(x.shape, dims, keepdim);
  const size_t outputs = static_cast<size_t>(shape_numel(m.kept_shape));
  std::vector<double> sum(outputs, 0), count(outputs, 0), squares(outputs, 0);
  for (int64_t i = 0; i < x.numel(); ++i) {
    sum[m.target[i]] += x.values[i];
    count[m.target[i]] += 1;
  }
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double deviation = x.values[i] - sum[m.target[i]] / count[m.target[i]];
    squares[m.target[i]] += deviation * deviation;
  }
  RefTensor out{m.result_shape, std::vector<double>(outputs)};
  for (size_t o = 0; o < outputs; ++o) out.values[o] = squares[o] / std::max(0.0, count[o] - correction);
  return out;
}

RefTensor reduce_with(const RefTensor& x, const std::vector<int64_t>& dims, bool keepdim,
                      const std::function<double(const std::vector<double>&)>& f) {
  const ReductionMap m = reduction_map(x.shape, dims, keepdim);
  std::vector<std::vector<double>> groups(static_cast<size_t>(shape_numel(m.kept_shape)));
  for (int64_t i = 0; i < x.numel(); ++i) groups[m.target[i]].push_back(x.values[i]);
  RefTensor out{m.result_shape, std::vector<double>(groups.size())};
  for (size_t o = 0; o < groups.size(); ++o) out.values[o] = f(groups[o]);
  return out;
}

RefValuesIndices arg_reduce(bool is_max, const RefTensor& x, int64_t dim, bool keepdim) {
  RefTensor values = reduce_with(x, {dim}, keepdim, [&](const std::vector<double>& group) {
    double best = group.at(0);
    for (double v : group)
      if (!std::isnan(best) && (std::isnan(v) || (is_max ? v > best : v < best))) best = v;
    return best;
  });
  RefTensor indices = reduce_with(x, {dim}, keepdim, [&](const std::vector<double>& group) {
    size_t best = 0;
    for (size_t i = 1; i < group.size(); ++i) {
      const double v = group[i], b = group[best];
      if (!std::isnan(b) && (std::isnan(v) || (is_max ? v > b : v < b))) best = i;
    }
    return static_cast<double>(best);
  });
  return {values, indices};
}

}  // namespace keel::reference
