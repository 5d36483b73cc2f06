#pragma once
// AMX GEMMs: bf16 x bf16 -> f32 tiles (TDPBF16PS) and u8 x s8 -> s32 tiles (TDPBUSD), for the
// bf16 matmul of kernels/cpu/gemm.isa.cpp and the INT8 GEMM of kernels/cpu/gemm_int8.cpp, which
// call them when cpu_features().amx_bf16 / amx_int8 are true (AMX reported by CPUID and the tile
// state granted by the OS) or when the emulator is switched on for tests.
//
// One kernel source (gemm_amx_kernels.inc) is compiled twice: with the real tile instructions
// (namespace amx_hardware, gemm_amx.cpp) and with the software emulator of amx_tiles.h (namespace
// amx_emulated, gemm_amx_emulated.cpp). The emulated instantiation is what the tests run on a CPU
// without AMX; the hardware one runs only where AMX is present. It never ran on AMX hardware: the
// machine it was written on has none, and its tests run the hardware code only with every tile
// instruction trapped (SIGILL) and computed by the emulator.
#include <cstdint>

#include "keel/kernels/cpu/gemm_int8.h"
#include "keel/kernels/op_math.h"

namespace keel::cpu {

// out = act(a @ b + bias), bf16 operands and output, f32 accumulation in the tiles (the K sum of
// each 32-deep slice in two f32 partial sums, see amx_tiles.h), bias and activation in f32, one
// rounding to bf16 (nearest even).
struct AmxBf16GemmArgs {
  int64_t m = 0, n = 0, k = 0;
  const uint16_t* a = nullptr;  // bf16 bits; a[i, p] at a + i * a_row_stride + p * a_col_stride
  int64_t a_row_stride = 0, a_col_stride = 1;
  const uint16_t* b = nullptr;  // b[p, j] at b + p * b_k_stride + j * b_n_stride
  int64_t b_k_stride = 0, b_n_stride = 1;
  uint16_t* out = nullptr;  // out[i, j] at out + i * out_row_stride + j * out_col_stride
  int64_t out_row_stride = 0, out_col_stride = 1;
  const float* bias = nullptr;  // [n] (or [m] when bias_per_row), f32
  bool bias_per_row = false;
  bool has_activation = false;
  UnaryOp activation = UnaryOp::relu;  // relu, gelu_erf, gelu_tanh or silu
};

// Whether the drivers take the AMX kernels now: the CPU feature, or the emulator switch.
bool amx_bf16_gemm_enabled();
bool amx_int8_gemm_enabled();

// The AMX kernels as the drivers call them: emulated when set_amx_emulation(true), otherwise on
// the tile hardware (only where cpu_features() reports it). gemm_int8_amx has the semantics and
// the epilogues of gemm_int8 (gemm_int8.h), bit for bit.
void gemm_bf16_amx(const AmxBf16GemmArgs& args);
void gemm_int8_amx(const Int8GemmArgs& args);

// For tests: routes the drivers' AMX hooks (and gemm_*_amx) to the emulated kernels, so that the
// hooks, the strides the drivers pass and the kernels all run on a CPU without AMX (slowly: the
// emulator computes each tile instruction element by element). Off by default; the environment
// variable KEEL_AMX_EMULATION=1 turns it on at start-up (to run whole test suites through the hooks).
void set_amx_emulation(bool enabled);
bool amx_emulation();

// The two instantiations of the kernels, for tests that call one directly.
namespace amx_hardware {
void gemm_bf16(const AmxBf16GemmArgs& args);
void gemm_int8(const Int8GemmArgs& args);
}  // namespace amx_hardware
namespace amx_emulated {
void gemm_bf16(const AmxBf16GemmArgs& args);
void gemm_int8(const Int8GemmArgs& args);
}  // namespace amx_emulated

}  // namespace keel::cpu
