// Quantization ops (see quantize.h for the semantics): quantize / dequantize per tensor and per
// channel, the MinMaxObserver choice of scale and zero point, and the INT8 matrix product.
//
//   quantize:   q[o, c, i] = saturate(round_half_even(x[o, c, i] / scale[c]) + zp[c])
//   dequantize: x[o, c, i] = (q[o, c, i] - zp[c]) * scale[c]       (o, c, i): outer, axis, inner
//   quantized_matmul: out[m, n] = epilogue(sum_k (a[m, k] - za) * (b[k, n] - zb[n]))
//
// Not differentiable (integer outputs or integer inputs): nothing is recorded for autograd.
// Kernels: kernels/cpu/quantize.cpp and kernels/cpu/gemm_int8.cpp; CPU only (a CUDA tensor is
// refused with an error naming the op).
#include "keel/ops/quantize.h"

#include <cmath>
#include <limits>
#include <vector>

#include "keel/kernels/cpu/gemm_int8.h"
#include "keel/kernels/cpu/quantize.h"
#include "keel/ops/factory.h"

namespace keel {

namespace {

struct QRange {
  int64_t min, max;
};

QRange range_of(const char* op, DType dtype) {
  KEEL_CHECK(dtype == DType::u8 || dtype == DType::i8, "[", op, "] the quantized dtype must be uint8 or int8, got ",
             dtype_name(dtype));
  return dtype == DType::u8 ? QRange{0, 255} : QRange{-128, 127};
}

void check_cpu(const char* op, const Tensor& t, const char* name) {
  KEEL_CHECK(t.defined(), "[", op, "] ", name, " is undefined");
  KEEL_CHECK(t.is_cpu(), "[", op, "] only CPU tensors are supported, but ", name, " is on ", t.device().str());
}

void check_scale(const char* op, double scale, const char* what) {
  KEEL_CHECK(std::isfinite(scale) && scale > 0 && scale <= std::numeric_limits<float>::max(), "[", op, "] ", what,
             " must be positive and finite, got ", scale);
}

void check_zero_point(const char* op, int64_t zero_point, QRange range, const char* what) {
  KEEL_CHECK(zero_point >= range.min && zero_point <= range.max, "[", op, "] ", what, " ", zero_point,
             " is outside the quantized range [", range.min, ", ", range.max, "]");
}

// x as contiguous f32.
Tensor as_f32(const char* op, const Tensor& x) {
  check_cpu(op, x, "input");
  KEEL_CHECK(is_floating(x.dtype()), "[", op, "] expected a floating input (float32, float64, float16, bfloat16), got ",
             dtype_name(x.dtype()));
  return x.to(DType::f32).contiguous();
}

// Per-channel parameters, checked: scales f32 [C] > 0, zero points in range.
struct ChannelParams {
  std::vector<float> scales;
  std::vector<int32_t> zero_points;
};

ChannelParams channel_params(const char* op, const Tensor& scales, const Tensor& zero_points, int64_t channels,
                             QRange range, const Shape& x_shape, int64_t axis) {
  check_cpu(op, scales, "scales");
  check_cpu(op, zero_points, "zero_points");
  KEEL_CHECK(scales.dim() == 1 && scales.size(0) == channels, "[", op, "] scales must be 1-D with ", channels,
             " values (the size of axis ", axis, " of the input ", x_shape, "), got shape ", scales.shape());
  KEEL_CHECK(zero_points.dim() == 1 && zero_points.size(0) == channels, "[", op, "] zero_points must be 1-D with ",
             channels, " values (the size of axis ", axis, " of the input ", x_shape, "), got shape ",
             zero_points.shape());
  KEEL_CHECK(is_floating(scales.dtype()), "[", op, "] scales must be floating (float32), got ", dtype_name(scales.dtype()));
  KEEL_CHECK(zero_points.dtype() == DType::i32 || zero_points.dtype() == DType::i64, "[", op,
             "] zero_points must be int32 or int64, got ", dtype_name(zero_points.dtype()));
  const Tensor s = scales.to(DType::f64).contiguous();
  const Tensor z = zero_points.to(DType::i64).contiguous();
  ChannelParams params;
  for (int64_t c = 0; c < channels; ++c) {
    const double scale = s.data_ptr<double>()[c];
    const int64_t zero_point = z.data_ptr<int64_t>()[c];
    check_scale(op, scale, "every scale");
    check_zero_point(op, zero_point, range, "zero point");
    params.scales.push_back(static_cast<float>(scale));
    params.zero_points.push_back(static_cast<int32_t>(zero_point));
  }
  return params;
}

// (outer, channels, inner) of x around axis.
struct Split {
  int64_t outer = 1, channels = 1, inner = 1;
};
Split split_at(const Shape& shape, int64_t axis) {
  Split s;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < axis) s.outer *= shape[d];
    else if (d == axis) s.channels = shape[d];
    else s.inner *= shape[d];
  }
  return s;
}

cpu::QuantizedKind quantized_kind(const char* op, const Tensor& q) {
  check_cpu(op, q, "input");
  switch (q.dtype()) {
    case DType::u8: return cpu::QuantizedKind::u8;
    case DType::i8: return cpu::QuantizedKind::i8;
    case DType::i32: return cpu::QuantizedKind::i32;
    default: ::keel::fail("[", op, "] expected a uint8, int8 or int32 input, got ", dtype_name(q.dtype()));
  }
}

QRange dequantize_range(cpu::QuantizedKind kind) {
  switch (kind) {
    case cpu::QuantizedKind::u8: return {0, 255};
    case cpu::QuantizedKind::i8: return {-128, 127};
    default: return {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()};
  }
}

// PyTorch's MinMaxObserver._calculate_qparams for one (min, max), in f32.
QParams min_max_qparams(float min_value, float max_value, QRange range, QScheme scheme) {
  const float eps = std::numeric_limits<float>::epsilon();
  const float min_neg = std::min(min_value, 0.0f), max_pos = std::max(max_value, 0.0f);
  const float qmin = static_cast<float>(range.min), qmax = static_cast<float>(range.max);
  QParams p;
  if (scheme == QScheme::symmetric) {
    const float bound = std::max(-min_neg, max_pos);
    p.scale = std::max(bound / ((qmax - qmin) / 2.0f), eps);
    p.zero_point = range.min == 0 ? 128 : 0;
  } else {
    const float scale = std::max((max_pos - min_neg) / (qmax - qmin), eps);
    p.scale = scale;
    const int64_t zero_point = range.min - static_cast<int64_t>(std::nearbyint(min_neg / scale));
    p.zero_point = std::clamp(zero_point, range.min, range.max);
  }
  return p;
}

}  // namespace

// ---- quantize / dequantize ----------------------------------------------------------------------
Tensor quantize_per_tensor(const Tensor& x, double scale, int64_t zero_point, DType dtype) {
  const char* op = "quantize_per_tensor";
  const QRange range = range_of(op, dtype);
  check_scale(op, scale, "scale");
  check_zero_point(op, zero_point, range, "zero point");
  const Tensor xf = as_f32(op, x);
  Tensor out = empty(x.shape(), {.dtype = dtype});
  const float s = static_cast<float>(scale);
  const int32_t z = static_cast<int32_t>(zero_point);
  cpu::quantize_linear(xf.data_ptr<float>(), out.raw_data(), dtype == DType::i8, 1, 1, xf.numel(), &s, &z);
  return out;
}

Tensor quantize_per_channel(const Tensor& x, const Tensor& scales, const Tensor& zero_points, int64_t axis,
                            DType dtype) {
  const char* op = "quantize_per_channel";
  const QRange range = range_of(op, dtype);
  const Tensor xf = as_f32(op, x);
  KEEL_CHECK(x.dim() >= 1, "[", op, "] the input must have at least 1 dim, got shape ", x.shape());
  axis = wrap_dim(axis, x.dim(), op);
  const Split split = split_at(x.shape(), axis);
  const ChannelParams params = channel_params(op, scales, zero_points, split.channels, range, x.shape(), axis);
  Tensor out = empty(x.shape(), {.dtype = dtype});
  cpu::quantize_linear(xf.data_ptr<float>(), out.raw_data(), dtype == DType::i8, split.outer, split.channels,
                       split.inner, params.scales.data(), params.zero_points.data());
  return out;
}

Tensor dequantize_per_tensor(const Tensor& q, double scale, int64_t zero_point) {
  const char* op = "dequantize_per_tensor";
  const cpu::QuantizedKind kind = quantized_kind(op, q);
  check_scale(op, scale, "scale");
  check_zero_point(op, zero_point, dequantize_range(kind), "zero point");
  const Tensor qc = q.contiguous();
  Tensor out = empty(q.shape(), {.dtype = DType::f32});
  const float s = static_cast<float>(scale);
  const int32_t z = static_cast<int32_t>(zero_point);
  cpu::dequantize_linear(qc.raw_data(), kind, out.data_ptr<float>(), 1, 1, qc.numel(), &s, &z);
  return out;
}

Tensor dequantize_per_channel(const Tensor& q, const Tensor& scales, const Tensor& zero_points, int64_t axis) {
  const char* op = "dequantize_per_channel";
  const cpu::QuantizedKind kind = quantized_kind(op, q);
  KEEL_CHECK(q.dim() >= 1, "[", op, "] the input must have at least 1 dim, got shape ", q.shape());
  axis = wrap_dim(axis, q.dim(), op);
  const Split split = split_at(q.shape(), axis);
  const ChannelParams params = channel_params(op, scales, zero_points, split.channels, dequantize_range(kind),
                                              q.shape(), axis);
  const Tensor qc = q.contiguous();
  Tensor out = empty(q.shape(), {.dtype = DType::f32});
  cpu::dequantize_linear(qc.raw_data(), kind, out.data_ptr<float>(), split.outer, split.channels, split.inner,
                         params.scales.data(), params.zero_points.data());
  return out;
}

// ---- choosing scale and zero point ------------------------------------------------------------
QParams choose_qparams_per_tensor(const Tensor& x, DType dtype, QScheme scheme) {
  const char* op = "choose_qparams_per_tensor";
  const QRange range = range_of(op, dtype);
  const Tensor xf = as_f32(op, x);
  KEEL_CHECK(xf.numel() > 0, "[", op, "] the input is empty (shape ", x.shape(), "): no range to observe");
  const float* data = xf.data_ptr<float>();
  float lo = data[0], hi = data[0];
  for (int64_t i = 0; i < xf.numel(); ++i) {
    KEEL_CHECK(std::isfinite(data[i]), "[", op, "] the input holds a non-finite value (", data[i], ")");
    lo = std::min(lo, data[i]);
    hi = std::max(hi, data[i]);
  }
  return min_max_qparams(lo, hi, range, scheme);
}

ChannelQParams choose_qparams_per_channel(const Tensor& x, int64_t axis, DType dtype, QScheme scheme) {
  const char* op = "choose_qparams_per_channel";
  const QRange range = range_of(op, dtype);
  const Tensor xf = as_f32(op, x);
  KEEL_CHECK(x.dim() >= 1, "[", op, "] the input must have at least 1 dim, got shape ", x.shape());
  axis = wrap_dim(axis, x.dim(), op);
  const Split split = split_at(x.shape(), axis);
  KEEL_CHECK(split.outer * split.inner > 0, "[", op, "] the input ", x.shape(), " has no values per channel");
  const float* data = xf.data_ptr<float>();
  ChannelQParams result{empty({split.channels}, {.dtype = DType::f32}), empty({split.channels}, {.dtype = DType::i64})};
  for (int64_t c = 0; c < split.channels; ++c) {
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (int64_t o = 0; o < split.outer; ++o)
      for (int64_t i = 0; i < split.inner; ++i) {
        const float v = data[(o * split.channels + c) * split.inner + i];
        KEEL_CHECK(std::isfinite(v), "[", op, "] the input holds a non-finite value (", v, ")");
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    const QParams p = min_max_qparams(lo, hi, range, scheme);
    result.scales.data_ptr<float>()[c] = static_cast<float>(p.scale);
    result.zero_points.data_ptr<int64_t>()[c] = p.zero_point;
  }
  return result;
}

// ---- INT8 matrix product ------------------------------------------------------------------------
namespace {

// quantized_matmul with b either a tensor [K, N] or a packed weight (then b_tensor is null and
// b_shape is the packed weight's [K, N]).
Tensor quantized_matmul_impl(const char* op, const Tensor& a, const Tensor* b_tensor, const cpu::Int8PackedB* packed,
                             const Shape& b_shape, const QuantizedMatmulOptions& options) {
  check_cpu(op, a, "the first operand");
  KEEL_CHECK(a.dtype() == DType::u8 || a.dtype() == DType::i8, "[", op,
             "] the first operand (activations) must be uint8 or int8, got ", dtype_name(a.dtype()));
  KEEL_CHECK(a.dim() >= 1, "[", op, "] the first operand must have at least 1 dim [..., K], got shape ", a.shape());
  const int64_t k = a.shape().back(), n = b_shape[1];
  KEEL_CHECK(b_shape[0] == k, "[", op, "] shapes cannot be multiplied: got ", a.shape(), " and ", b_shape, " (", k,
             " columns of the first against ", b_shape[0], " rows of the second)");
  const DType out_dtype = options.out_dtype;
  KEEL_CHECK(out_dtype == DType::f32 || out_dtype == DType::i32 || out_dtype == DType::u8 || out_dtype == DType::i8,
             "[", op, "] out_dtype must be float32, int32, uint8 or int8, got ", dtype_name(out_dtype));

  // Quantization parameters.
  const QRange a_range = a.dtype() == DType::u8 ? QRange{0, 255} : QRange{-128, 127};
  const QRange b_range{-128, 127};
  check_scale(op, options.a_scale, "a_scale");
  check_zero_point(op, options.a_zero_point, a_range, "a_zero_point");
  std::vector<float> b_scales;
  std::vector<int32_t> b_zero_points;
  if (options.b_scales.defined()) {
    const Tensor none_zero = zeros({n}, {.dtype = DType::i64});
    b_scales = channel_params(op, options.b_scales, none_zero, n, b_range, b_shape, 1).scales;
  } else {
    check_scale(op, options.b_scale, "b_scale");
    b_scales = {static_cast<float>(options.b_scale)};
  }
  if (options.b_zero_points.defined()) {
    b_zero_points = channel_params(op, ones({n}), options.b_zero_points, n, b_range, b_shape, 1).zero_points;
  } else {
    check_zero_point(op, options.b_zero_point, b_range, "b_zero_point");
    b_zero_points = {static_cast<int32_t>(options.b_zero_point)};
  }
  Tensor bias;
  if (options.bias.defined()) {
    KEEL_CHECK(out_dtype != DType::i32, "[", op, "] a bias cannot be added to the int32 output (MatMulInteger has none)");
    check_cpu(op, options.bias, "bias");
    KEEL_CHECK(options.bias.dim() == 1 && options.bias.size(0) == n, "[", op, "] bias must be 1-D with ", n,
               " values (N), got shape ", options.bias.shape());
    KEEL_CHECK(is_floating(options.bias.dtype()), "[", op, "] bias must be floating, got ",
               dtype_name(options.bias.dtype()));
    bias = options.bias.to(DType::f32).contiguous();
  }
  if (out_dtype == DType::u8 || out_dtype == DType::i8) {
    check_scale(op, options.out_scale, "out_scale");
    check_zero_point(op, options.out_zero_point, range_of(op, out_dtype), "out_zero_point");
  }

  // Exactness of the s32 accumulation: K * max|a - za| * max|b - zb| < 2^31.
  const int64_t max_abs_a = std::max(options.a_zero_point - a_range.min, a_range.max - options.a_zero_point);
  int64_t max_abs_b = 0;
  for (const int32_t zb : b_zero_points) max_abs_b = std::max<int64_t>(max_abs_b, std::max(zb + 128, 127 - zb));
  const int64_t max_depth = cpu::gemm_int8_max_depth(max_abs_a, max_abs_b);
  KEEL_CHECK(k <= max_depth, "[", op, "] K = ", k, " is too deep for exact int32 accumulation with these zero points ",
             "(|a - za| up to ", max_abs_a, ", |b - zb| up to ", max_abs_b, "): K must be at most ", max_depth);

  // a [..., K] -> [M, K]
  Shape out_shape(a.shape().begin(), a.shape().end() - 1);
  out_shape.push_back(n);
  const int64_t rows = shape_numel(Shape(a.shape().begin(), a.shape().end() - 1));
  const Tensor a2 = a.reshape({rows, k});
  Tensor out = empty(out_shape, {.dtype = out_dtype});

  cpu::Int8GemmArgs args;
  args.m = rows;
  args.n = n;
  args.k = k;
  args.a = a2.raw_data();
  args.a_is_signed = a.dtype() == DType::i8;
  args.a_row_stride = a2.stride(0);
  args.a_col_stride = a2.stride(1);
  args.a_zero_point = static_cast<int32_t>(options.a_zero_point);
  args.a_scale = static_cast<float>(options.a_scale);
  if (b_tensor) {
    args.b = static_cast<const int8_t*>(b_tensor->raw_data());
    args.b_n_stride = b_tensor->stride(1);
    args.b_k_stride = b_tensor->stride(0);
  }
  args.packed_b = packed;
  args.b_zero_points = b_zero_points.data();
  args.b_zero_point_stride = b_zero_points.size() > 1 ? 1 : 0;
  args.b_scales = b_scales.data();
  args.b_scale_stride = b_scales.size() > 1 ? 1 : 0;
  args.bias = bias.defined() ? bias.data_ptr<float>() : nullptr;
  args.output = out_dtype == DType::f32   ? cpu::Int8GemmOutput::f32
                : out_dtype == DType::i32 ? cpu::Int8GemmOutput::s32
                : out_dtype == DType::u8  ? cpu::Int8GemmOutput::u8
                                          : cpu::Int8GemmOutput::i8;
  args.out = out.raw_data();
  args.out_row_stride = n;
  args.out_scale = static_cast<float>(options.out_scale);
  args.out_zero_point = static_cast<int32_t>(options.out_zero_point);
  cpu::gemm_int8(args);
  return out;
}

}  // namespace

Tensor quantized_matmul(const Tensor& a, const Tensor& b, const QuantizedMatmulOptions& options) {
  const char* op = "quantized_matmul";
  check_cpu(op, b, "the second operand");
  KEEL_CHECK(b.dtype() == DType::i8, "[", op, "] the second operand (weights) must be int8, got ",
             dtype_name(b.dtype()));
  KEEL_CHECK(b.dim() == 2, "[", op, "] the second operand must be 2-D [K, N], got shape ", b.shape());
  return quantized_matmul_impl(op, a, &b, nullptr, b.shape(), options);
}

Tensor quantized_linear(const Tensor& x, const Tensor& weight, const QuantizedMatmulOptions& options) {
  check_cpu("quantized_linear", weight, "weight");
  KEEL_CHECK(weight.dim() == 2, "[quantized_linear] weight must be 2-D [out_features, in_features], got shape ",
             weight.shape());
  return quantized_matmul(x, weight.t(), options);
}

// ---- prepacked weights ------------------------------------------------------------------------
int64_t PackedInt8Weight::out_features() const { return packed_ ? packed_->n : 0; }
int64_t PackedInt8Weight::in_features() const { return packed_ ? packed_->k : 0; }
std::string_view PackedInt8Weight::path() const {
  return packed_ ? cpu::int8_gemm_path_name(packed_->path) : std::string_view("none");
}
const cpu::Int8PackedB& PackedInt8Weight::packed() const {
  KEEL_CHECK(packed_ != nullptr, "[PackedInt8Weight] the weight is undefined (default-constructed)");
  return *packed_;
}

PackedInt8Weight pack_quantized_weight(const Tensor& weight) {
  const char* op = "pack_quantized_weight";
  check_cpu(op, weight, "weight");
  KEEL_CHECK(weight.dtype() == DType::i8, "[", op, "] the weight must be int8, got ", dtype_name(weight.dtype()));
  KEEL_CHECK(weight.dim() == 2, "[", op, "] the weight must be 2-D [out_features, in_features], got shape ",
             weight.shape());
  PackedInt8Weight result;
  result.packed_ = std::make_shared<const cpu::Int8PackedB>(
      cpu::pack_int8_b(static_cast<const int8_t*>(weight.raw_data()), weight.size(0), weight.size(1), weight.stride(0),
                       weight.stride(1)));
  return result;
}

Tensor quantized_linear(const Tensor& x, const PackedInt8Weight& weight, const QuantizedMatmulOptions& options) {
  const char* op = "quantized_linear";
  KEEL_CHECK(weight.defined(), "[", op, "] the packed weight is undefined (default-constructed)");
  const cpu::Int8PackedB& packed = weight.packed();
  const cpu::Int8GemmPath now = cpu::gemm_int8_path_kind();
  KEEL_CHECK(packed.path == now, "[", op, "] the weight was packed for the ", cpu::int8_gemm_path_name(packed.path),
             " kernel path but this call takes ", cpu::int8_gemm_path_name(now),
             " (the CPU caps changed since packing): pack it again with pack_quantized_weight");
  KEEL_CHECK(x.dim() >= 1 && x.shape().back() == packed.k, "[", op, "] the input's last dim must be in_features = ",
             packed.k, " of the packed weight [", packed.n, ", ", packed.k, "], got input shape ", x.shape());
  return quantized_matmul_impl(op, x, nullptr, &packed, Shape{packed.k, packed.n}, options);
}

}  // namespace keel
