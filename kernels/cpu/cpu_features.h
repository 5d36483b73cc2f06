#pragma once
// What the CPU can run, read from CPUID once (plus the OS's permission for AMX tiles), then
// narrowed by the user: KEEL_CPU_ISA=amx|avx512|avx2|baseline caps the level, KEEL_CPU_DISABLE
// (a comma list of feature names, e.g. "amx,avx512_bf16") turns single features off, and
// set_cpu_isa()/set_cpu_disabled() do the same from code. Kernels ask cpu_features() at each
// call, so a test can run every path this machine has in one process.
//
// Levels: baseline = x86-64-v2 (SSE4.2), avx2 = x86-64-v3 (AVX2, FMA, F16C, BMI2),
// avx512 = x86-64-v4 (AVX-512 F/BW/CD/DQ/VL) and its extensions (VNNI, BF16, FP16), amx = avx512
// plus AMX tiles (BF16, INT8). AMX needs arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA) once per
// process (Linux >= 5.16); when the kernel refuses, the AMX features stay off and the AVX-512
// paths run instead.
#include <string>
#include <string_view>

namespace keel::cpu {

struct CpuFeatures {
  bool avx2 = false;         // x86-64-v3: AVX2 + FMA + F16C + BMI2
  bool avx512 = false;       // x86-64-v4: AVX-512 F/BW/CD/DQ/VL
  bool avx512_vnni = false;  // vpdpbusd: u8 x s8 dot products into s32
  bool avx512_bf16 = false;  // vdpbf16ps: bf16 pair dot products into f32
  bool avx512_fp16 = false;  // native f16 arithmetic and conversions
  bool amx_bf16 = false;     // AMX tiles with TDPBF16PS (permission granted)
  bool amx_int8 = false;     // AMX tiles with TDPBUSD (permission granted)
};

// The features the kernels may use now: detected, capped by KEEL_CPU_ISA / set_cpu_isa and
// minus KEEL_CPU_DISABLE / set_cpu_disabled. Cheap (one atomic load).
CpuFeatures cpu_features();
// The features CPUID (and the OS, for AMX) report, before any cap.
CpuFeatures detected_cpu_features();

// Caps the level: "amx", "avx512", "avx2" or "baseline" (keel::Error otherwise). A level this
// CPU lacks falls to the highest it has. Not meant to race with running kernels.
void set_cpu_isa(std::string_view level);
// Turns features off by name (comma list of avx512_vnni, avx512_bf16, avx512_fp16, amx_bf16,
// amx_int8, or "amx" for both AMX ones); "" turns nothing off.
void set_cpu_disabled(std::string_view feature_list);

// The level now in force ("amx", "avx512", "avx2", "baseline").
std::string_view active_isa();
// One line for logs and benchmark reports: "avx512 (avx512_vnni avx512_bf16 avx512_fp16; amx: not
// reported by CPUID)".
std::string describe_cpu_features();

}  // namespace keel::cpu
