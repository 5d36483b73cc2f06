// Quantize / dequantize (ONNX QuantizeLinear / DequantizeLinear), per tensor or per channel:
//
//   q = saturate(round_half_even(x / scale[c]) + zero_point[c])     (quantize_value, quantize.h)
//   x = (q - zero_point[c]) * scale[c]                               in f32
//   x, q: (outer, C, inner) contiguous; c = the channel index; C = 1 for per tensor.
//   reference: torch.quantize_per_tensor / quantize_per_channel (tests/parity/quantize_parity.py)
#include "keel/kernels/cpu/quantize.h"

#include <omp.h>

#include <algorithm>

namespace keel::cpu {

namespace {
constexpr int64_t kGrain = int64_t{1} << 16;
int threads_for(int64_t work) {
  if (work < 2 * kGrain || omp_in_parallel()) return 1;
  return static_cast<int>(std::min<int64_t>(omp_get_max_threads(), work / kGrain));
}
}  // namespace

void quantize_linear(const float* x, void* out, bool is_signed, int64_t outer, int64_t channels, int64_t inner,
                     const float* scales, const int32_t* zero_points) {
  const float qmin = is_signed ? -128.0f : 0.0f, qmax = is_signed ? 127.0f : 255.0f;
  const int64_t rows = outer * channels;
#pragma omp parallel for schedule(static) num_threads(threads_for(rows * inner))
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t c = row % channels;
    const float scale = scales[c], zero_point = static_cast<float>(zero_points[c]);
    const float* src = x + row * inner;
    if (is_signed) {
      int8_t* dst = static_cast<int8_t*>(out) + row * inner;
      for (int64_t t = 0; t < inner; ++t) dst[t] = static_cast<int8_t>(quantize_value(src[t], scale, zero_point, qmin, qmax));
    } else {
      uint8_t* dst = static_cast<uint8_t*>(out) + row * inner;
      for (int64_t t = 0; t < inner; ++t) dst[t] = static_cast<uint8_t>(quantize_value(src[t], scale, zero_point, qmin, qmax));
    }
  }
}

void dequantize_linear(const void* q, QuantizedKind kind, float* out, int64_t outer, int64_t channels, int64_t inner,
                       const float* scales, const int32_t* zero_points) {
  const int64_t rows = outer * channels;
#pragma omp parallel for schedule(static) num_threads(threads_for(rows * inner))
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t c = row % channels;
    const float scale = scales[c];
    const int64_t zero_point = zero_points[c];
    float* dst = out + row * inner;
    // q - zero_point is exact in int64; its f32 conversion is exact for u8/i8 (|q - zp| < 2^24).
    switch (kind) {
      case QuantizedKind::u8: {
        const uint8_t* src = static_cast<const uint8_t*>(q) + row * inner;
        for (int64_t t = 0; t < inner; ++t) dst[t] = static_cast<float>(src[t] - zero_point) * scale;
        break;
      }
      case QuantizedKind::i8: {
        const int8_t* src = static_cast<const int8_t*>(q) + row * inner;
        for (int64_t t = 0; t < inner; ++t) dst[t] = static_cast<float>(src[t] - zero_point) * scale;
        break;
      }
      case QuantizedKind::i32: {
        const int32_t* src = static_cast<const int32_t*>(q) + row * inner;
        for (int64_t t = 0; t < inner; ++t) dst[t] = static_cast<float>(src[t] - zero_point) * scale;
        break;
      }
    }
  }
}

}  // namespace keel::cpu
