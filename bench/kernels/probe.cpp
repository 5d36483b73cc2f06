// The machine limits that the kernel benchmarks are fractions of, measured in the same run:
//
//   fma_f32:  peak f32 multiply-adds: 2 flops x lanes per FMA, chains of independent vfmadd231ps
//             on 12 accumulators, so latency never limits throughput.
//   dot_bf16: peak of vdpbf16ps (AVX512-BF16): 2 products of bf16 pairs per f32 lane = 64 flops per
//             512-bit instruction.
//   dot_int8: peak of vpdpbusd (AVX512-VNNI): 4 u8 x s8 products per s32 lane = 128 ops per
//             instruction.
//   copy_bw:  memcpy of 16 MiB (the figure) and 64 MiB split over the threads; bytes = read + write.
// AMX is measured only where the OS grants tiles (not on the reference machine). Each figure:
// median of 9 samples (bench_util.h), 1 and all threads, as JSON lines with impl "probe".
#include <immintrin.h>
#include <omp.h>

#include <array>
#include <cstring>
#include <memory>

#include "bench_util.h"
#include "keel/kernels/cpu/cpu_features.h"

namespace {

using keel::bench::emit;
using keel::bench::median_seconds;

constexpr long kIterations = 1 << 20;  // per thread and sample

// Each function runs kIterations x 12 instructions on 12 independent accumulators (inline
// assembly: with intrinsics GCC copies the accumulators of the non-destructive forms through other
// registers and the stack, and the probe then measures those moves) and returns a value that
// depends on all of them, so that nothing is optimised away.
#define KEEL_PROBE_12(op, a, b)                                                                          \
  asm volatile(op " %12, %13, %0\n\t" op " %12, %13, %1\n\t" op " %12, %13, %2\n\t" op " %12, %13, %3\n\t" \
               op " %12, %13, %4\n\t" op " %12, %13, %5\n\t" op " %12, %13, %6\n\t" op " %12, %13, %7\n\t" \
               op " %12, %13, %8\n\t" op " %12, %13, %9\n\t" op " %12, %13, %10\n\t" op " %12, %13, %11\n\t"\
               : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7), "+v"(a8),       \
                 "+v"(a9), "+v"(a10), "+v"(a11)                                                                \
               : "v"(a), "v"(b))
constexpr int kAccumulators = 12;  // asm allows 30 operands; 12 chains cover 2 per cycle x 6 cycles of latency

template <typename Vector> float sum_lanes(const std::array<Vector, kAccumulators>& acc) {
  float total = 0;
  for (const Vector& v : acc) {
    float lanes[sizeof(Vector) / sizeof(float)];
    std::memcpy(lanes, &v, sizeof v);
    for (float lane : lanes) total += lane;
  }
  return total;
}

__attribute__((target("avx512f"))) float fma_avx512(float seed) {
  std::array<__m512, kAccumulators> acc;
  for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_set1_ps(seed + i);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  auto [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11] = acc;  // plain locals stay in registers
  for (long it = 0; it < kIterations; ++it) KEEL_PROBE_12("vfmadd231ps", a, b);
  acc = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11};
  return sum_lanes(acc);
}

__attribute__((target("avx2,fma"))) float fma_avx2(float seed) {
  std::array<__m256, kAccumulators> acc;
  for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm256_set1_ps(seed + i);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  auto [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11] = acc;  // plain locals stay in registers
  for (long it = 0; it < kIterations; ++it) KEEL_PROBE_12("vfmadd231ps", a, b);
  acc = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11};
  return sum_lanes(acc);
}

__attribute__((target("avx512f,avx512bf16"))) float dot_bf16_avx512(float seed) {
  std::array<__m512, kAccumulators> acc;
  for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_set1_ps(seed + i);
  const __m512i a = _mm512_set1_epi16(0x3f80), b = _mm512_set1_epi16(0x3380);
  auto [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11] = acc;  // plain locals stay in registers
  for (long it = 0; it < kIterations; ++it) KEEL_PROBE_12("vdpbf16ps", a, b);
  acc = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11};
  return sum_lanes(acc);
}

__attribute__((target("avx512f,avx512vnni"))) float dot_int8_avx512(float seed) {
  std::array<__m512i, kAccumulators> acc;
  for (int i = 0; i < kAccumulators; ++i) acc[i] = _mm512_set1_epi32(static_cast<int>(seed) + i);
  const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(1);
  auto [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11] = acc;  // plain locals stay in registers
  for (long it = 0; it < kIterations; ++it) KEEL_PROBE_12("vpdpbusd", a, b);
  acc = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11};
  return sum_lanes(acc);
}

volatile float sink;

// Runs kernel on every thread at once; returns the median seconds of one parallel round.
template <typename Kernel> double parallel_seconds(Kernel kernel, int threads) {
  omp_set_num_threads(threads);
  return median_seconds([&] {
#pragma omp parallel num_threads(threads)
    { sink = kernel(static_cast<float>(omp_get_thread_num())); }
  }, 9, 0.0);
}

void probe_compute(const char* name, float (*kernel)(float), double ops_per_call, int threads) {
  const double seconds = parallel_seconds(kernel, threads);
  emit("machine", name, "probe", threads, seconds, ops_per_call * threads, 0, name);
}

void probe_copy(int64_t bytes, int threads) {
  std::unique_ptr<char[]> source(new char[bytes]), target(new char[bytes]);
  std::memset(source.get(), 1, bytes);
  std::memset(target.get(), 2, bytes);
  const double seconds = median_seconds([&] {
#pragma omp parallel num_threads(threads)
    {
      const int thread = omp_get_thread_num(), count = omp_get_num_threads();
      const int64_t begin = bytes * thread / count, end = bytes * (thread + 1) / count;
      std::memcpy(target.get() + begin, source.get() + begin, end - begin);
    }
  });
  const std::string name = "copy_" + std::to_string(bytes >> 20) + "MiB";
  emit("machine", name, "probe", threads, seconds, 0, 2.0 * bytes, "copy_bw");
}

}  // namespace

int main() {
  const keel::cpu::CpuFeatures features = keel::cpu::detected_cpu_features();
  std::printf("{\"info\": \"cpu\", \"features\": \"%s\"}\n", keel::cpu::describe_cpu_features().c_str());
  for (int threads : keel::bench::thread_counts()) {
    const double instructions = double{kAccumulators} * kIterations;
    if (features.avx512) probe_compute("fma_f32", fma_avx512, instructions * 32, threads);
    else if (features.avx2) probe_compute("fma_f32", fma_avx2, instructions * 16, threads);
    if (features.avx512_bf16) probe_compute("dot_bf16", dot_bf16_avx512, instructions * 64, threads);
    if (features.avx512_vnni) probe_compute("dot_int8", dot_int8_avx512, instructions * 128, threads);
    probe_copy(int64_t{16} << 20, threads);
    probe_copy(int64_t{64} << 20, threads);
  }
}
