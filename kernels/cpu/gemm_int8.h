#pragma once
// INT8 matrix product on the CPU (kernels/cpu/gemm_int8.cpp): u8 (or s8) activations times s8
// weights, exact s32 accumulation, then one of four epilogues. The op is keel::quantized_matmul
// (ops/quantize.h), which checks every argument; this kernel only asserts.
//
//   acc[i, j] = sum_p (a[i, p] - za) * (b[j, p] - zb[j])                        exact in s32
//   s32:    out = acc                                                           (ONNX MatMulInteger)
//   f32:    out = fma(f32(acc), a_scale * b_scale[j], bias[j])                  (one rounding)
//   u8/i8:  out = saturate(round_half_even(f32_out / out_scale) + out_zp)       (ONNX QLinearMatMul)
//           bit-identical to quantize_per_tensor applied to the f32 epilogue's result
//
// The caller guarantees |acc| < 2^31 for every possible input: K * max|a - za| * max|b - zb| <=
// 2^31 - 1 (gemm_int8_max_depth). Intermediate sums may wrap (two's complement), the result is
// still exact because the true value fits.
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace keel::cpu {

enum class Int8GemmOutput : uint8_t { s32, f32, u8, i8 };

// The kernel paths, picked from cpu_features() at each call. An AMX-INT8 path would be added here
// (its micro-kernel in kernels/cpu/gemm_int8_amx.cpp): its tiles can read the avx512_vnni layout
// of B as it is (a B tile is 16 rows of 64 bytes = 16 k groups of 16 columns x 4 k, row stride
// 256 bytes inside a 64-column strip), so it could share pack_int8_b's format.
enum class Int8GemmPath : uint8_t { scalar, avx2, avx512_vnni };
std::string_view int8_gemm_path_name(Int8GemmPath path);

// B (s8 [N, K] read through strides) packed once for one path, with its column sums, so that a
// product with fixed weights never packs them again (what oneDNN's reordered weights give it).
//   avx512_vnni: ceil(N / 64) strips of [Kp / 4][64][4] s8 (Kp = K rounded up to 4, zero padded)
//   avx2:        ceil(N / 16) strips of [Kp / 2][16][2] s16
//   scalar:      [N, K] s8, row-major
struct Int8PackedB {
  Int8GemmPath path = Int8GemmPath::scalar;
  int64_t n = 0, k = 0;
  std::shared_ptr<void> data;         // 64-byte aligned
  std::vector<int32_t> column_sums;   // sum_p b[j, p] for j < N (exact: |sum| <= 128 K)
};
// Packs b[j, p] = b[j * b_n_stride + p * b_k_stride] for the path gemm_int8 takes now.
Int8PackedB pack_int8_b(const int8_t* b, int64_t n, int64_t k, int64_t b_n_stride, int64_t b_k_stride);

struct Int8GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  // a[i, p] at a + i * a_row_stride + p * a_col_stride (elements = bytes): u8, or s8 when
  // a_is_signed (then computed as the u8 value a + 128 with zero point za + 128).
  const void* a = nullptr;
  bool a_is_signed = false;
  int64_t a_row_stride = 0, a_col_stride = 1;
  int32_t a_zero_point = 0;
  float a_scale = 1;
  // b[j, p] at b + j * b_n_stride + p * b_k_stride: s8. A weight [N, K] has (K, 1), a [K, N]
  // matrix has (1, N).
  const int8_t* b = nullptr;
  int64_t b_n_stride = 0, b_k_stride = 1;
  // B packed beforehand (then b and its strides are not read): it must have been packed for the
  // path gemm_int8 takes now, with this n and k (asserted; the op checks and throws).
  const Int8PackedB* packed_b = nullptr;
  // zb[j] = b_zero_points[j * b_zero_point_stride], b_scale[j] = b_scales[j * b_scale_stride]:
  // stride 0 for one value per tensor, 1 for one per output channel.
  const int32_t* b_zero_points = nullptr;
  int64_t b_zero_point_stride = 0;
  const float* b_scales = nullptr;
  int64_t b_scale_stride = 0;
  const float* bias = nullptr;  // [n] f32 or null; f32/u8/i8 outputs only
  Int8GemmOutput output = Int8GemmOutput::f32;
  void* out = nullptr;  // out[i, j] at out + i * out_row_stride + j (elements)
  int64_t out_row_stride = 0;
  float out_scale = 1;       // u8/i8 outputs
  int32_t out_zero_point = 0;
};

void gemm_int8(const Int8GemmArgs& args);

// The path gemm_int8 takes now, from cpu_features(): "amx_int8" (TDPBUSD tiles, gemm_amx.h; "amx_int8
// (emulated)" under set_amx_emulation), "avx512_vnni" (vpdpbusd), "avx2" (vpmaddwd on 16-bit values;
// also used on AVX-512 CPUs without VNNI) or "scalar".
std::string_view gemm_int8_path();
Int8GemmPath gemm_int8_path_kind();

// The largest K for which every product of these operands fits in s32:
// floor((2^31 - 1) / (max|a - za| * max|b - zb|)), a in [0, 255] (u8) or [-128, 127] (s8),
// b in [-128, 127].
int64_t gemm_int8_max_depth(int64_t max_abs_a, int64_t max_abs_b);

}  // namespace keel::cpu
