#pragma once
// Quantization: ONNX QuantizeLinear / DequantizeLinear (PyTorch's quantize_per_tensor /
// quantize_per_channel / dequantize), the choice of scale and zero point from a tensor's range
// (PyTorch's MinMaxObserver / PerChannelMinMaxObserver), and the INT8 matrix product
// (ONNX MatMulInteger and QLinearMatMul, PyTorch's quantized::linear).
//
// Keel has no quantized dtype: a quantized tensor is its integer values (u8 or i8, what PyTorch's
// int_repr() gives) plus scales and zero points that the caller keeps beside it.
//
//   quantize:    q = saturate(round_half_to_even(x / scale) + zero_point)     computed in f32
//   dequantize:  x = (q - zero_point) * scale                                 f32 result
//
// Saturation never wraps: values beyond the range, +inf and -inf give the range's ends; NaN gives
// the lowest value (0 for u8, -128 for i8), as PyTorch does on x86. Differences from PyTorch 1.13:
// PyTorch multiplies by 1/scale where ONNX (and Keel) divide by scale, so a value that lies
// within an ulp of a rounding tie can round the other way; and PyTorch's +inf (and finite values
// beyond 2^63 * scale) wrap to the lowest value, where Keel saturates to the highest.
// None of these ops is differentiable (integer results; use fake quantization for training).
#include <memory>
#include <string_view>

#include "keel/core/tensor.h"

namespace keel {

namespace cpu {
struct Int8PackedB;
}

// x: floating (converted to f32 first); dtype u8 or i8; scale > 0 and finite; zero_point in the
// dtype's range. Symmetric quantization is i8 with zero_point 0.
Tensor quantize_per_tensor(const Tensor& x, double scale, int64_t zero_point, DType dtype);
// scales: f32 1-D of x.size(axis) positive values (other floating dtypes are converted);
// zero_points: i32 or i64 1-D of the same length, in the dtype's range.
Tensor quantize_per_channel(const Tensor& x, const Tensor& scales, const Tensor& zero_points, int64_t axis,
                            DType dtype);
// q: u8, i8 or i32 -> f32.
Tensor dequantize_per_tensor(const Tensor& q, double scale, int64_t zero_point);
Tensor dequantize_per_channel(const Tensor& q, const Tensor& scales, const Tensor& zero_points, int64_t axis);

// ---- choosing scale and zero point (torch.ao.quantization MinMaxObserver) ------------------------
enum class QScheme {
  affine,     // the range [min(x, 0), max(x, 0)] maps onto [qmin, qmax]
  symmetric,  // [-m, m], m = max|x|, maps onto the range around zero point 0 (i8) or 128 (u8)
};
struct QParams {
  double scale = 1;
  int64_t zero_point = 0;
};
// PyTorch's formulas in f32 (eps = 2^-23 keeps scale > 0 for an all-zero x):
//   affine:     scale = max(eps, (max(x,0) - min(x,0)) / (qmax - qmin)),
//               zero_point = clamp(qmin - round_half_even(min(x,0) / scale), qmin, qmax)
//   symmetric:  scale = max(eps, max(-min(x,0), max(x,0)) / ((qmax - qmin) / 2)),
//               zero_point = 0 (i8) or 128 (u8)
// x: floating, finite values, at least one element.
QParams choose_qparams_per_tensor(const Tensor& x, DType dtype = DType::u8, QScheme scheme = QScheme::affine);
struct ChannelQParams {
  Tensor scales;       // f32 [x.size(axis)]
  Tensor zero_points;  // i64 [x.size(axis)]
};
// The same per slice x.select(axis, c) (PerChannelMinMaxObserver; weights: i8 symmetric, axis 0).
ChannelQParams choose_qparams_per_channel(const Tensor& x, int64_t axis, DType dtype = DType::i8,
                                          QScheme scheme = QScheme::symmetric);

// ---- INT8 matrix product --------------------------------------------------------------------
struct QuantizedMatmulOptions {
  // a's quantization (per tensor).
  double a_scale = 1;
  int64_t a_zero_point = 0;
  // b's quantization: per tensor (b_scale, b_zero_point), or per output channel (column of b)
  // when b_scales (f32 [N]) / b_zero_points (i32 or i64 [N]) are defined.
  double b_scale = 1;
  int64_t b_zero_point = 0;
  Tensor b_scales;
  Tensor b_zero_points;
  // f32 [N], added in real units before any requantization. Not allowed with i32 output.
  Tensor bias;
  // f32: dequantized result a_scale * b_scale[n] * acc + bias;  i32: the exact integer sum acc
  // (ONNX MatMulInteger; scales and bias unused);  u8 / i8: the f32 result quantized with
  // out_scale / out_zero_point (ONNX QLinearMatMul).
  DType out_dtype = DType::f32;
  double out_scale = 1;
  int64_t out_zero_point = 0;
};
// acc[..., n] = sum_k (a[..., k] - a_zero_point) * (b[k, n] - b_zero_point[n]), exact.
// a: u8 or i8 [..., K] (leading dims are folded into rows); b: i8 [K, N], any strides (pass
// weight.t() for a [N, K] weight, or use quantized_linear). K is limited so that acc fits in s32
// for every possible input: K * max|a - za| * max|b - zb| < 2^31 (K <= 65793 for u8 x s8 with zero
// points 0; an error names the bound). Kernel: kernels/cpu/gemm_int8.cpp (CPU only).
Tensor quantized_matmul(const Tensor& a, const Tensor& b, const QuantizedMatmulOptions& options = {});
// torch.ops.quantized.linear: x [..., in] u8 or i8, weight i8 [out, in] (per-channel scales along
// out); = quantized_matmul(x, weight.t(), options).
Tensor quantized_linear(const Tensor& x, const Tensor& weight, const QuantizedMatmulOptions& options = {});

// ---- prepacked weights ----------------------------------------------------------------------
// An i8 weight [out_features, in_features] packed once into the layout of the INT8 kernel path
// this CPU takes now (avx512_vnni: 64-column strips [K/4][64][4]; avx2: 16-bit [K/2][16][2];
// scalar: a contiguous copy), with its column sums (the zero-point compensation), so that
// inference with fixed weights never packs them again. It holds no scales or zero points: those
// stay in QuantizedMatmulOptions (per tensor or per out_feature), as for the unpacked weight.
// Immutable and cheap to copy (the packed data is shared). The results equal
// quantized_linear(x, weight, options) bit for bit.
class PackedInt8Weight {
 public:
  PackedInt8Weight() = default;
  bool defined() const { return packed_ != nullptr; }
  int64_t out_features() const;
  int64_t in_features() const;
  // The kernel path it was packed for ("avx512_vnni", "avx2", "scalar").
  std::string_view path() const;
  const cpu::Int8PackedB& packed() const;

 private:
  friend PackedInt8Weight pack_quantized_weight(const Tensor& weight);
  std::shared_ptr<const cpu::Int8PackedB> packed_;
};
// weight: i8 [out_features, in_features], any strides (a [K, N] matrix b packs as b.t()).
PackedInt8Weight pack_quantized_weight(const Tensor& weight);
// quantized_linear with a prepacked weight. Errors (keel::Error, never a silent repack): x's last
// dim differs from in_features; the weight is undefined; or the kernel path differs from the one it
// was packed for (the CPU caps changed since: KEEL_CPU_ISA, KEEL_CPU_DISABLE, cpu::set_cpu_isa) —
// pack it again.
Tensor quantized_linear(const Tensor& x, const PackedInt8Weight& weight, const QuantizedMatmulOptions& options = {});

}  // namespace keel
