#pragma once
// Shared by the CPU kernel benchmarks (bench/kernels/*_bench.cpp): timing by medians and one JSON
// line per measurement, which bench/kernels/report.py turns into bench/RESULTS.md.
//
// A row: {"group": "gemm_f32", "case": "1024x1024x1024", "impl": "keel" | "onednn" | "torch" | ...,
//         "threads": 2, "seconds": median, "flops": per call, "bytes": per call, "limit": "fma_f32"}
// "limit" names the machine limit the row is a fraction of: fma_f32, dot_bf16, dot_int8 (the
// compute peaks bench/kernels/probe.cpp measures) or copy_bw (its copy bandwidth). report.py
// puts rows of one (group, case, threads) side by side: the ratio is keel over each peer.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace keel::bench {

// Median seconds of one call of body: warm-up (>= 2 calls and >= 0.1 s), then `repetitions`
// timed samples, each of enough calls to last >= min_sample_seconds.
template <typename Body>
double median_seconds(Body&& body, int repetitions = 9, double min_sample_seconds = 0.02) {
  using Clock = std::chrono::steady_clock;
  auto elapsed = [](Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); };
  const auto warm_start = Clock::now();
  int calls_in_warmup = 0;
  for (; calls_in_warmup < 2 || elapsed(warm_start) < 0.1; ++calls_in_warmup) body();
  const double per_call = elapsed(warm_start) / calls_in_warmup;
  const int inner = std::max(1, static_cast<int>(min_sample_seconds / std::max(per_call, 1e-9)));
  std::vector<double> samples;
  for (int r = 0; r < repetitions; ++r) {
    const auto start = Clock::now();
    for (int i = 0; i < inner; ++i) body();
    samples.push_back(elapsed(start) / inner);
  }
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

inline void emit(const std::string& group, const std::string& case_name, const std::string& impl, int threads,
                 double seconds, double flops, double bytes, const std::string& limit) {
  std::printf("{\"group\": \"%s\", \"case\": \"%s\", \"impl\": \"%s\", \"threads\": %d, \"seconds\": %.9g, "
              "\"flops\": %.17g, \"bytes\": %.17g, \"limit\": \"%s\"}\n",
              group.c_str(), case_name.c_str(), impl.c_str(), threads, seconds, flops, bytes, limit.c_str());
  std::fflush(stdout);
}

// The thread counts every benchmark runs: 1 and all cores (2 on the reference machine).
inline std::vector<int> thread_counts() {
  const int all = omp_get_num_procs();
  return all > 1 ? std::vector<int>{1, all} : std::vector<int>{1};
}

}  // namespace keel::bench
