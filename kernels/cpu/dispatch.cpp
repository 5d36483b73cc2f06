// Reads the CPU's features once and picks the kernel table (isa_table.h) from them; the user's
// caps (KEEL_CPU_ISA, KEEL_CPU_DISABLE, set_cpu_isa, set_cpu_disabled) can lower both at any time.
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>

#include "keel/core/error.h"
#include "keel/kernels/cpu/cpu_features.h"
#include "keel/kernels/cpu/isa_table.h"

namespace keel::cpu {
namespace {

constexpr int kLevelBaseline = 0, kLevelAvx2 = 1, kLevelAvx512 = 2, kLevelAmx = 3;

// Why AMX is off, for describe_cpu_features().
std::string amx_status = "not reported by CPUID";

bool os_saves_avx512_state() {
  // XCR0 bits 1, 2 (SSE, AVX) and 5-7 (opmask, ZMM upper halves, ZMM16-31) must all be on.
  unsigned eax, ebx, ecx, edx;
  __cpuid(1, eax, ebx, ecx, edx);
  if (!(ecx & (1u << 27))) return false;  // OSXSAVE
  unsigned xcr0_low, xcr0_high;
  __asm__ volatile("xgetbv" : "=a"(xcr0_low), "=d"(xcr0_high) : "c"(0));
  return (xcr0_low & 0xe6) == 0xe6;
}

// Linux gives a process AMX tile state only on request (XTILEDATA is an XFD-guarded feature);
// without permission the first tile instruction kills the process with SIGILL.
bool request_amx_permission() {
  constexpr long kArchReqXcompPerm = 0x1023, kXFeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXFeatureXtiledata) != 0) {
    amx_status = "reported by CPUID, but the OS refused tile permission (arch_prctl)";
    return false;
  }
  amx_status = "permitted";
  return true;
}

CpuFeatures detect() {
  __builtin_cpu_init();
  CpuFeatures f;
  // The variants were compiled with -march=x86-64-v3 / -v4; require what those levels use.
  f.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("f16c");
  f.avx512 = f.avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl") && os_saves_avx512_state();
  if (!f.avx512) return f;
  unsigned eax, ebx, ecx, edx;
  __cpuid_count(7, 0, eax, ebx, ecx, edx);
  f.avx512_vnni = ecx & (1u << 11);
  f.avx512_fp16 = edx & (1u << 23);
  const bool amx_tile = edx & (1u << 24), amx_bf16 = edx & (1u << 22), amx_int8 = edx & (1u << 25);
  __cpuid_count(7, 1, eax, ebx, ecx, edx);
  f.avx512_bf16 = eax & (1u << 5);
  if (amx_tile && (amx_bf16 || amx_int8) && request_amx_permission()) {
    f.amx_bf16 = amx_bf16;
    f.amx_int8 = amx_int8;
  }
  return f;
}

const CpuFeatures& detected() {
  static const CpuFeatures features = detect();
  return features;
}

int parse_level(std::string_view level) {
  if (level == "amx") return kLevelAmx;
  if (level == "avx512") return kLevelAvx512;
  if (level == "avx2") return kLevelAvx2;
  if (level == "baseline") return kLevelBaseline;
  ::keel::fail("[cpu] ISA level '", std::string(level), "' is not one of amx, avx512, avx2, baseline");
}

struct Caps {
  int level = kLevelAmx;
  CpuFeatures disabled;  // a true field is turned off
};

CpuFeatures parse_disabled(std::string_view list) {
  CpuFeatures off;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view name = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (name.empty()) continue;
    if (name == "avx512_vnni") off.avx512_vnni = true;
    else if (name == "avx512_bf16") off.avx512_bf16 = true;
    else if (name == "avx512_fp16") off.avx512_fp16 = true;
    else if (name == "amx_bf16") off.amx_bf16 = true;
    else if (name == "amx_int8") off.amx_int8 = true;
    else if (name == "amx") off.amx_bf16 = off.amx_int8 = true;
    else
      ::keel::fail("[cpu] cannot disable CPU feature '", std::string(name),
                "': expected avx512_vnni, avx512_bf16, avx512_fp16, amx_bf16, amx_int8 or amx");
  }
  return off;
}

CpuFeatures apply(const CpuFeatures& have, const Caps& caps) {
  CpuFeatures f = have;
  if (caps.level < kLevelAmx) f.amx_bf16 = f.amx_int8 = false;
  if (caps.level < kLevelAvx512) f.avx512 = f.avx512_vnni = f.avx512_bf16 = f.avx512_fp16 = false;
  if (caps.level < kLevelAvx2) f.avx2 = false;
  f.avx512_vnni &= !caps.disabled.avx512_vnni;
  f.avx512_bf16 &= !caps.disabled.avx512_bf16;
  f.avx512_fp16 &= !caps.disabled.avx512_fp16;
  f.amx_bf16 &= !caps.disabled.amx_bf16;
  f.amx_int8 &= !caps.disabled.amx_int8;
  return f;
}

// The state kernels read: the narrowed features and the table for them. Replaced whole under a
// mutex; readers take one atomic pointer. Old states are kept (a handful at most), so a reader
// holding one is never left with a dangling pointer.
struct State {
  CpuFeatures features;
  const IsaKernels* table;
  std::string_view level;
};

std::mutex state_mutex;
Caps current_caps;
std::atomic<const State*> current_state{nullptr};

const State* make_state(const Caps& caps) {
  const CpuFeatures f = apply(detected(), caps);
  std::string_view level = "baseline";
  const IsaKernels* table = &baseline::isa_kernels();
  if (f.avx512) {
    table = &avx512::isa_kernels();
    level = (f.amx_bf16 || f.amx_int8) ? "amx" : "avx512";
  } else if (f.avx2) {
    table = &avx2::isa_kernels();
    level = "avx2";
  }
  return new State{f, table, level};  // never freed: see State
}

const State& state() {
  const State* s = current_state.load(std::memory_order_acquire);
  if (s) return *s;
  std::lock_guard lock(state_mutex);
  s = current_state.load(std::memory_order_relaxed);
  if (!s) {
    // A variable set to the empty string counts as unset (as `KEEL_CPU_ISA= ./app` usually means).
    const char* level = std::getenv("KEEL_CPU_ISA");
    if (level && *level) current_caps.level = parse_level(level);
    const char* disabled = std::getenv("KEEL_CPU_DISABLE");
    if (disabled && *disabled) current_caps.disabled = parse_disabled(disabled);
    s = make_state(current_caps);
    current_state.store(s, std::memory_order_release);
  }
  return *s;
}

const IsaKernels& table() { return *state().table; }

}  // namespace

CpuFeatures cpu_features() { return state().features; }
CpuFeatures detected_cpu_features() { return detected(); }

void set_cpu_isa(std::string_view level) {
  const int parsed = parse_level(level);
  state();
  std::lock_guard lock(state_mutex);
  current_caps.level = parsed;
  current_state.store(make_state(current_caps), std::memory_order_release);
}

void set_cpu_disabled(std::string_view feature_list) {
  const CpuFeatures off = parse_disabled(feature_list);
  state();
  std::lock_guard lock(state_mutex);
  current_caps.disabled = off;
  current_state.store(make_state(current_caps), std::memory_order_release);
}

std::string_view active_isa() { return state().level; }

std::string describe_cpu_features() {
  const State& s = state();
  const CpuFeatures& f = s.features;
  std::string line(s.level);
  std::string extensions;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!extensions.empty()) extensions += ' ';
    extensions += name;
  };
  add(f.avx512_vnni, "avx512_vnni");
  add(f.avx512_bf16, "avx512_bf16");
  add(f.avx512_fp16, "avx512_fp16");
  add(f.amx_bf16, "amx_bf16");
  add(f.amx_int8, "amx_int8");
  detected();
  line += " (" + (extensions.empty() ? std::string("no extensions") : extensions) + "; amx: " + amx_status + ")";
  return line;
}

void unary(UnaryOp op, const Tensor& out, const Tensor& x) { table().unary(op, out, x); }
void gelu_erf_backward(const Tensor& out, const Tensor& g, const Tensor& x) { table().gelu_erf_backward(out, g, x); }
void binary(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) { table().binary(op, out, a, b); }
void where(const Tensor& out, const Tensor& condition, const Tensor& a, const Tensor& b) {
  table().where(out, condition, a, b);
}
void clamp(const Tensor& out, const Tensor& x, const Tensor& low, const Tensor& high) {
  table().clamp(out, x, low, high);
}
void copy(const Tensor& dst, const Tensor& src) { table().copy(dst, src); }
void fill(const Tensor& dst, const Scalar& value) { table().fill(dst, value); }
void reduce(ReduceOp op, const Tensor& out, const Tensor& x, const std::vector<int64_t>& dims) {
  table().reduce(op, out, x, dims);
}
void arg_reduce(bool is_max, const Tensor& values, const Tensor& indices, const Tensor& x, int64_t dim) {
  table().arg_reduce(is_max, values, indices, x, dim);
}
void matmul(const Tensor& out, const Tensor& a, const Tensor& b, const MatmulEpilogue& epilogue) {
  table().matmul(out, a, b, epilogue);
}
void flash_attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                             const Tensor& mask, bool causal, double scale) {
  table().flash_attention_forward(out, lse, q, k, v, mask, causal, scale);
}
void flash_attention_backward(const Tensor& grad_q, const Tensor& grad_k, const Tensor& grad_v, const Tensor& grad_out,
                              const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                              const Tensor& mask, bool causal, double scale) {
  table().flash_attention_backward(grad_q, grad_k, grad_v, grad_out, q, k, v, out, lse, mask, causal, scale);
}

namespace {
std::atomic<bool> bf16_dot_kernel{false};
}  // namespace
void random_fill(const Tensor& out, int kind, double a, double b, PhiloxState state) {
  table().random_fill(out, kind, a, b, state);
}
void set_gemm_bf16_dot(bool enabled) { bf16_dot_kernel.store(enabled, std::memory_order_relaxed); }
bool gemm_bf16_dot() { return bf16_dot_kernel.load(std::memory_order_relaxed); }

}  // namespace keel::cpu
