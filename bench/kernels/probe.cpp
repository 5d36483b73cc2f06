// The machine limits that the kernel benchmarks are fractions of, measured in the same run:
//
//   fma_f32:  peak f32 multiply-adds: 2 flops x lanes per FMA, chains of independent vfmadd231ps
//             on 24 (AVX-512) or 12 (AVX2) accumulators, so latency never limits throughput.
//   dot_bf16: peak of vdpbf16ps (AVX512-BF16): 2 products of bf16 pairs per f32 lane = 64 flops per
//             512-bit instruction.
//   dot_int8: peak of vpdpbusd (AVX512-VNNI): 4 u8 x s8 products per s32 lane = 128 ops per
//             instruction.
//   copy_bw:  memcpy of 16 MiB (the figure) and 64 MiB split over the threads; bytes = read + write.
// AMX is measured only where the OS grants tiles (not on the reference machine). Each figure:
// median of 9 samples (bench_util.h), 1 and all threads, as JSON lines with impl "probe".
#include <immintrin.h>
#include <omp.h>

#include <cstring>
#include <memory>

#include "bench_util.h"
#include "keel/kernels/cpu/cpu_features.h"

namespace {

using keel::bench::emit;
using keel::bench::median_seconds;

constexpr long kIterations = 1 << 20;  // per thread and sample

// Each function runs kIterations x (accumulators) instructions and returns a value that
// depends on all accumulators, so that nothing is optimised away.
__attribute__((target("avx512f"))) float fma_avx512(float seed) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(seed + i);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long it = 0; it < kIterations; ++it)
#pragma GCC unroll 32
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  __m512 sum = acc[0];
  for (int i = 1; i < 24; ++i) sum = _mm512_add_ps(sum, acc[i]);
  return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx2,fma"))) float fma_avx2(float seed) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(seed + i);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long it = 0; it < kIterations; ++it)
#pragma GCC unroll 32
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  __m256 sum = acc[0];
  for (int i = 1; i < 12; ++i) sum = _mm256_add_ps(sum, acc[i]);
  float lanes[8];
  _mm256_storeu_ps(lanes, sum);
  return lanes[0] + lanes[7];
}

__attribute__((target("avx512f,avx512bf16"))) float dot_bf16_avx512(float seed) {
  __m512 acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_ps(seed + i);
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3380);
  for (long it = 0; it < kIterations; ++it)
#pragma GCC unroll 32
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  __m512 sum = acc[0];
  for (int i = 1; i < 24; ++i) sum = _mm512_add_ps(sum, acc[i]);
  return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx512f,avx512vnni"))) float dot_int8_avx512(float seed) {
  __m512i acc[24];
  for (int i = 0; i < 24; ++i) acc[i] = _mm512_set1_epi32(static_cast<int>(seed) + i);
  const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(1);
  for (long it = 0; it < kIterations; ++it)
#pragma GCC unroll 32
    for (int i = 0; i < 24; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  __m512i sum = acc[0];
  for (int i = 1; i < 24; ++i) sum = _mm512_add_epi32(sum, acc[i]);
  return static_cast<float>(_mm512_reduce_add_epi32(sum));
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
    if (features.avx512) probe_compute("fma_f32", fma_avx512, 24.0 * 32 * kIterations, threads);
    else if (features.avx2) probe_compute("fma_f32", fma_avx2, 12.0 * 16 * kIterations, threads);
    if (features.avx512_bf16) probe_compute("dot_bf16", dot_bf16_avx512, 24.0 * 64 * kIterations, threads);
    if (features.avx512_vnni) probe_compute("dot_int8", dot_int8_avx512, 24.0 * 128 * kIterations, threads);
    probe_copy(int64_t{16} << 20, threads);
    probe_copy(int64_t{64} << 20, threads);
  }
}
