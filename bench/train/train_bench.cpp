// Training-step benchmark, the Keel side (bench/train/torch_train.py is PyTorch's; both are run
// alternately by bench/run_train_bench.sh, which writes the "Training step" section of
// bench/RESULTS.md).
//
//   train_bench cnn [--threads N] [--samples S]   Fashion-MNIST CNN step: images/s
//   train_bench gpt [--threads N] [--samples S]   GPT step: tokens/s
//
// One model per process, so that the peak resident set size printed at the end (getrusage's
// ru_maxrss) covers that model alone. A step is what a training loop does per batch: forward,
// loss, backward, optimizer step, zero_grad. The batch is fixed (random inputs and labels, made
// once): data loading is not part of the figure. Timing: warm-up steps (>= 3 and >= 0.5 s), then
// S samples of k steps each (k chosen so a sample lasts >= 0.3 s); the figure is the median.
// Prints one JSON line:
//   {"group": "train", "case": "cnn", "impl": "keel", "threads": 2, "seconds": median per step,
//    "items_per_step": 128, "items_per_s": ..., "unit": "images/s", "samples": [per-step seconds],
//    "steps_per_sample": k, "peak_rss_mb": ...}
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "keel/keel.h"

namespace {

using namespace keel;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct Timing {
  double median = 0;
  int steps_per_sample = 0;
  std::vector<double> samples;  // seconds per step, in the order taken
};

Timing time_steps(const std::function<void()>& step, int samples) {
  const auto warm_start = Clock::now();
  int warm_steps = 0;
  for (; warm_steps < 3 || since(warm_start) < 0.5; ++warm_steps) step();
  const double per_step = since(warm_start) / warm_steps;
  Timing timing;
  timing.steps_per_sample = std::max(1, static_cast<int>(0.3 / per_step + 0.5));
  for (int s = 0; s < samples; ++s) {
    const auto start = Clock::now();
    for (int i = 0; i < timing.steps_per_sample; ++i) step();
    timing.samples.push_back(since(start) / timing.steps_per_sample);
  }
  std::vector<double> sorted = timing.samples;
  std::sort(sorted.begin(), sorted.end());
  timing.median = sorted[sorted.size() / 2];
  return timing;
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // Linux: ru_maxrss is in KiB
}

void report(const std::string& model, int threads, const Timing& timing, int64_t items, const char* unit) {
  std::string samples;
  for (double s : timing.samples) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, "%s%.6g", samples.empty() ? "" : ", ", s);
    samples += buffer;
  }
  std::printf("{\"group\": \"train\", \"case\": \"%s\", \"impl\": \"keel\", \"threads\": %d, \"seconds\": %.9g, "
              "\"items_per_step\": %lld, \"items_per_s\": %.6g, \"unit\": \"%s\", \"samples\": [%s], "
              "\"steps_per_sample\": %d, \"peak_rss_mb\": %.1f}\n",
              model.c_str(), threads, timing.median, static_cast<long long>(items), items / timing.median, unit,
              samples.c_str(), timing.steps_per_sample, peak_rss_mb());
  std::fflush(stdout);
}

// The main job's model (examples/fashion_mnist's defaults): SmallCNN {32, 64}, one conv per stage,
// a hidden layer of 128, on [128, 1, 28, 28] batches; AdamW lr 2e-3, weight_decay 1e-2.
void bench_cnn(int threads, int samples) {
  constexpr int64_t batch = 128;
  nn::SmallCNN model({.channels = {32, 64}, .convs_per_stage = 1, .dropout = 0.25, .hidden = 128});
  model.train();
  optim::AdamW optimizer(model.parameters(), {.lr = 2e-3, .weight_decay = 1e-2});
  const Tensor images = randn({batch, 1, 28, 28});
  const Tensor labels = randint(0, 10, {batch});
  const Timing timing = time_steps(
      [&] {
        const Tensor loss = cross_entropy(model(images), labels);
        loss.backward();
        optimizer.step();
        optimizer.zero_grad();
      },
      samples);
  report("cnn", threads, timing, batch, "images/s");
}

// nanoGPT-like: vocab 256, n_embd 256, 4 layers, 4 heads, T 128, batch 8, dropout 0, bias;
// AdamW lr 3e-4, weight_decay 0.1.
void bench_gpt(int threads, int samples) {
  constexpr int64_t batch = 8, length = 128, vocab = 256;
  nn::GPT model({.vocab_size = vocab, .block_size = length, .n_layer = 4, .n_head = 4, .n_embd = 256,
                 .dropout = 0.0, .bias = true});
  model.train();
  optim::AdamW optimizer(model.parameters(), {.lr = 3e-4, .weight_decay = 0.1});
  const Tensor idx = randint(0, vocab, {batch, length});
  const Tensor targets = randint(0, vocab, {batch, length});
  const Timing timing = time_steps(
      [&] {
        const Tensor loss = model.loss(idx, targets);
        loss.backward();
        optimizer.step();
        optimizer.zero_grad();
      },
      samples);
  report("gpt", threads, timing, batch * length, "tokens/s");
}

int usage() {
  std::fprintf(stderr, "usage: train_bench cnn|gpt [--threads N] [--samples S]   (S >= 1, default 9)\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string model = argv[1];
  int threads = omp_get_max_threads(), samples = 9;
  for (int i = 2; i < argc; ++i) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (std::strcmp(argv[i], "--samples") == 0 && i + 1 < argc)
      samples = std::atoi(argv[++i]);
    else
      return usage();
  }
  if (threads < 1 || samples < 1) return usage();
  omp_set_num_threads(threads);
  keel::manual_seed(0);
  try {
    if (model == "cnn")
      bench_cnn(threads, samples);
    else if (model == "gpt")
      bench_gpt(threads, samples);
    else
      return usage();
  } catch (const keel::Error& error) {
    std::fprintf(stderr, "[train_bench] %s\n", error.what());
    return 1;
  }
  return 0;
}
