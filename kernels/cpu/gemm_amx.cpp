// The AMX GEMM kernels on the real tile instructions (the kernel source, gemm_amx_kernels.inc, is
// shared with the emulated instantiation in gemm_amx_emulated.cpp), and the switch between the two.
// Only functions that execute tile instructions carry the AMX target attribute; the rest of this
// file (packing, epilogues, OpenMP) is plain x86-64. These kernels run only where
// cpu_features().amx_bf16 / amx_int8 are true; they never ran on AMX hardware (the machine they were
// written on has none). Tests there run the emulated instantiation, and this code with each tile
// instruction trapped (SIGILL) and computed by the emulator.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string_view>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>
#include <vector>

#include "keel/core/error.h"
#include "keel/kernels/convert.h"
#include "keel/kernels/cpu/amx_tiles_hardware.h"
#include "keel/kernels/cpu/cpu_features.h"
#include "keel/kernels/cpu/gemm_amx.h"
#include "keel/kernels/cpu/quantize.h"

namespace keel::cpu::amx_hardware {
using Tiles = amx::HardwareTiles;
}  // namespace keel::cpu::amx_hardware

#define KEEL_AMX_NS amx_hardware
#include "keel/kernels/cpu/gemm_amx_kernels.inc"
#undef KEEL_AMX_NS

namespace keel::cpu {

namespace {
// KEEL_AMX_EMULATION=1 starts with the emulator on (tests: runs whole suites through the AMX hooks).
bool emulation_from_environment() {
  const char* value = std::getenv("KEEL_AMX_EMULATION");
  return value && *value && std::string_view(value) != "0";
}
std::atomic<bool> emulation{emulation_from_environment()};
}  // namespace

void set_amx_emulation(bool enabled) { emulation.store(enabled, std::memory_order_relaxed); }
bool amx_emulation() { return emulation.load(std::memory_order_relaxed); }

bool amx_bf16_gemm_enabled() { return amx_emulation() || cpu_features().amx_bf16; }
bool amx_int8_gemm_enabled() { return amx_emulation() || cpu_features().amx_int8; }

void gemm_bf16_amx(const AmxBf16GemmArgs& args) {
  if (amx_emulation()) return amx_emulated::gemm_bf16(args);
  KEEL_ASSERT(cpu_features().amx_bf16);
  amx_hardware::gemm_bf16(args);
}

void gemm_int8_amx(const Int8GemmArgs& args) {
  if (amx_emulation()) return amx_emulated::gemm_int8(args);
  KEEL_ASSERT(cpu_features().amx_int8);
  amx_hardware::gemm_int8(args);
}

}  // namespace keel::cpu
