// Autograd overhead benchmark, the Keel side (bench/torch_autograd_bench.py is PyTorch's;
// bench/run_autograd_bench.sh runs both and writes the "Autograd" section of bench/RESULTS.md).
//
//   (a) a chain of 100 tiny ops on a 1-element f32 tensor that requires grad, forward then
//       backward; reported as ns per op (forward + backward, divided by 100). The chain cycles
//       through mul-by-scalar, add-scalar, sin, mul by a tensor, tanh, sub, exp(-x), so both
//       scalar and tensor operands and saved inputs and outputs are exercised.
//   (b) memory: resident set size after 1e4, 2e4, ..., 1e5 chains (each one 100 ops + backward):
//       a flat line means nothing leaks and the tape does not grow across iterations.
//
// (a) is the median of 9 runs of 2000 chains after warm-up. One JSON object per line.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <keel/keel.h>

namespace {

using namespace keel;
using Clock = std::chrono::steady_clock;

constexpr int kChainLength = 100;

Tensor chain(const Tensor& x, const Tensor& w) {
  Tensor y = x;
  for (int i = 0; i < kChainLength; ++i) {
    switch (i % 7) {
      case 0: y = y * 0.5; break;
      case 1: y = y + 1.0; break;
      case 2: y = sin(y); break;
      case 3: y = y * w; break;
      case 4: y = tanh(y); break;
      case 5: y = y - w; break;
      default: y = exp(-y); break;  // two ops: neg, exp
    }
  }
  return y;
}

// Ops per chain: every case is one op except the last, which is two.
int ops_per_chain() {
  int ops = 0;
  for (int i = 0; i < kChainLength; ++i) ops += i % 7 == 6 ? 2 : 1;
  return ops;
}

void step(const Tensor& x, const Tensor& w) {
  Tensor y = chain(x, w);
  y.backward();
  x.zero_grad();
  w.zero_grad();
}

long rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

}  // namespace

int main() {
  Tensor x = full({1}, 0.3).requires_grad_();
  Tensor w = full({1}, 0.7).requires_grad_();
  const int ops = ops_per_chain();
  for (int i = 0; i < 500; ++i) step(x, w);
  constexpr int kChains = 2000;
  // ns per op of kChains calls of body, for each of 9 runs, sorted.
  auto per_op_ns = [&](const auto& body) {
    std::vector<double> times;
    for (int r = 0; r < 9; ++r) {
      const auto start = Clock::now();
      for (int i = 0; i < kChains; ++i) body();
      times.push_back(std::chrono::duration<double>(Clock::now() - start).count() / kChains / ops * 1e9);
    }
    std::sort(times.begin(), times.end());
    return times;
  };
  const std::vector<double> per_op = per_op_ns([&] { step(x, w); });
  std::printf("{\"group\": \"autograd\", \"name\": \"chain_fwd_bwd\", \"ops\": %d, \"value\": %.1f, \"min\": %.1f, "
              "\"max\": %.1f, \"unit\": \"ns/op\"}\n",
              ops, per_op[4], per_op.front(), per_op.back());
  // Forward alone, for the split.
  const std::vector<double> forward = per_op_ns([&] { chain(x, w); });
  std::printf("{\"group\": \"autograd\", \"name\": \"chain_fwd\", \"ops\": %d, \"value\": %.1f, \"unit\": \"ns/op\"}\n",
              ops, forward[4]);
  std::fflush(stdout);

  std::string samples;
  const long start_rss = rss_kib();
  for (int i = 1; i <= 100000; ++i) {
    step(x, w);
    if (i % 10000 == 0) samples += (samples.empty() ? "" : ", ") + std::to_string(rss_kib());
  }
  std::printf("{\"group\": \"autograd\", \"name\": \"rss_kib\", \"start\": %ld, \"samples\": [%s], \"unit\": \"KiB\"}\n",
              start_rss, samples.c_str());
  return 0;
}
