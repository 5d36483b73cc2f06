#pragma once
// Quantize / dequantize kernels (kernels/cpu/quantize.cpp), and one quantized value, shared by
// them and the requantizing GEMM epilogue so that both give bit-identical results (ONNX
// QuantizeLinear):
//
//   q = saturate(round_half_to_even(x / scale) + zero_point)      into [qmin, qmax]
//
// In f32: the division is IEEE (correctly rounded), the rounding is nearbyint in the default
// rounding mode (half to even). Saturation never wraps: +inf and values above the range give qmax,
// -inf and values below give qmin (torch 1.13 gives qmin for +inf and for finite values beyond
// 2^63 * scale: its float -> int64 conversion overflows; Keel does not copy that). NaN gives qmin,
// as torch.quantize_per_tensor does on x86 (ONNX leaves NaN undefined).
#include <cmath>
#include <cstdint>

namespace keel::cpu {

inline int32_t quantize_value(float x, float scale, float zero_point, float qmin, float qmax) {
  float y = std::nearbyint(x / scale) + zero_point;  // |y| >= 2^24 saturates either way
  if (!(y >= qmin)) y = qmin;                         // also NaN
  if (y > qmax) y = qmax;
  return static_cast<int32_t>(y);
}

// x: contiguous f32 viewed as (outer, channels, inner); out: u8 (or i8 when is_signed), same
// layout. scales/zero_points hold one value per channel (channels = 1 for per tensor).
void quantize_linear(const float* x, void* out, bool is_signed, int64_t outer, int64_t channels, int64_t inner,
                     const float* scales, const int32_t* zero_points);
// out = f32(q - zero_point) * scale; q: contiguous u8, i8 or i32, same layout as above.
enum class QuantizedKind { u8, i8, i32 };
void dequantize_linear(const void* q, QuantizedKind kind, float* out, int64_t outer, int64_t channels, int64_t inner,
                       const float* scales, const int32_t* zero_points);

}  // namespace keel::cpu
