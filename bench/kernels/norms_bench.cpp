// softmax, log_softmax, layer_norm, rms_norm (forward and backward) and the AdamW step: Keel's
// fused CPU kernels (kernels/cpu/norms.isa.cpp, adamw.isa.cpp, called on preallocated tensors as
// the ops call them) against oneDNN 2.6's primitives (softmax_v2 accurate/log,
// layer_normalization with scale and shift) on the same buffers, 1 and all threads. rms_norm and
// AdamW have no oneDNN peer: bench/kernels/torch_norms.py has PyTorch's for every group.
//
// Rows: group <op>_<fwd|bwd>_<f32|bf16> (adamw_f32), case RxC, limit copy_bw; bytes are the
// tensors read and written once (forward: x in, y out; backward: y or x, dy in, dx out; the
// statistics and the [C] parameters are left out; AdamW: p, g, m, v in, p, m, v out).
// Run: build-h/bench/kernel_bench_norms [filter]   (filter: a substring of the group)
//      build-h/bench/kernel_bench_norms --one layer_norm_fwd_bf16 8192x256 1   (see run_one)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "bench_util.h"
#include "keel/kernels/cpu/cpu_features.h"
#include "keel/kernels/cpu/fused_kernels.h"
#include <keel/keel.h>

using namespace keel;
using dnnl::memory;
namespace kb = keel::bench;

namespace {

struct Shape2 {
  int64_t rows, cols;
  std::string name() const { return std::to_string(rows) + "x" + std::to_string(cols); }
};

const std::vector<Shape2> kShapes = {{4096, 1024}, {64, 10}, {64 * 128, 256}, {512, 768}};

std::string filter;
bool wanted(const std::string& group) { return filter.empty() || group.find(filter) != std::string::npos; }

dnnl::engine& engine() {
  static dnnl::engine e{dnnl::engine::kind::cpu, 0};
  return e;
}
dnnl::stream& stream() {
  static dnnl::stream s{engine()};
  return s;
}

// A oneDNN memory over a keel tensor's data (no copy).
memory wrap(const Tensor& t, const memory::desc& md) { return memory(md, engine(), t.raw_data()); }

void run_onednn(const std::string& group, const std::string& case_name, int threads, double bytes,
                const std::function<void()>& body) {
  try {
    const double seconds = kb::median_seconds([&] {
      body();
      stream().wait();
    });
    kb::emit(group, case_name, "onednn", threads, seconds, 0, bytes, "copy_bw");
  } catch (const dnnl::error& e) {
    std::fprintf(stderr, "oneDNN %s %s: %s\n", group.c_str(), case_name.c_str(), e.what());
  }
}

void bench_softmax(const Shape2& s, DType dtype, int threads, bool is_log) {
  const std::string suffix = dtype == DType::bf16 ? "_bf16" : "_f32";
  const std::string op = is_log ? "log_softmax" : "softmax";
  const double tensor_bytes = static_cast<double>(s.rows * s.cols) * dtype_size(dtype);
  const Tensor x = randn({s.rows, s.cols}).to(dtype);
  const Tensor y = empty({s.rows, s.cols}, {.dtype = dtype});
  const Tensor dy = randn({s.rows, s.cols}).to(dtype);
  const Tensor dx = empty({s.rows, s.cols}, {.dtype = dtype});
  cpu::softmax_rows(y, x, is_log);
  const auto dt = dtype == DType::bf16 ? memory::data_type::bf16 : memory::data_type::f32;
  const memory::desc md({s.rows, s.cols}, dt, memory::format_tag::ab);
  const auto algorithm = is_log ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate;
  if (wanted(op + "_fwd" + suffix)) {
    kb::emit(op + "_fwd" + suffix, s.name(), "keel", threads,
             kb::median_seconds([&] { cpu::softmax_rows(y, x, is_log); }), 0, 2 * tensor_bytes, "copy_bw");
  }
  if (wanted(op + "_bwd" + suffix)) {
    kb::emit(op + "_bwd" + suffix, s.name(), "keel", threads,
             kb::median_seconds([&] { cpu::softmax_backward_rows(dx, y, dy, is_log); }), 0, 3 * tensor_bytes,
             "copy_bw");
  }
  try {
    const dnnl::softmax_v2_forward::primitive_desc fwd_pd(
        {dnnl::prop_kind::forward_training, algorithm, md, md, 1}, engine());
    const dnnl::softmax_v2_forward fwd(fwd_pd);
    const dnnl::softmax_v2_backward::primitive_desc bwd_pd({algorithm, md, md, md, 1}, engine(), fwd_pd);
    const dnnl::softmax_v2_backward bwd(bwd_pd);
    memory mx = wrap(x, md), my = wrap(y, md), mdy = wrap(dy, md), mdx = wrap(dx, md);
    if (wanted(op + "_fwd" + suffix)) {
      run_onednn(op + "_fwd" + suffix, s.name(), threads, 2 * tensor_bytes,
                 [&] { fwd.execute(stream(), {{DNNL_ARG_SRC, mx}, {DNNL_ARG_DST, my}}); });
    }
    if (wanted(op + "_bwd" + suffix)) {
      run_onednn(op + "_bwd" + suffix, s.name(), threads, 3 * tensor_bytes, [&] {
        bwd.execute(stream(), {{DNNL_ARG_DST, my}, {DNNL_ARG_DIFF_DST, mdy}, {DNNL_ARG_DIFF_SRC, mdx}});
      });
    }
  } catch (const dnnl::error& e) {
    std::fprintf(stderr, "oneDNN %s %s: %s\n", op.c_str(), s.name().c_str(), e.what());
  }
}

void bench_norm(const Shape2& s, DType dtype, int threads, bool centered) {
  const std::string suffix = dtype == DType::bf16 ? "_bf16" : "_f32";
  const std::string op = centered ? "layer_norm" : "rms_norm";
  const double tensor_bytes = static_cast<double>(s.rows * s.cols) * dtype_size(dtype);
  const Tensor x = randn({s.rows, s.cols}).to(dtype);
  const Tensor y = empty({s.rows, s.cols}, {.dtype = dtype});
  const Tensor dy = randn({s.rows, s.cols}).to(dtype);
  const Tensor dx = empty({s.rows, s.cols}, {.dtype = dtype});
  const Tensor weight = randn({s.cols}), bias = randn({s.cols});
  const Tensor dweight = empty({s.cols}), dbias = empty({s.cols});
  const Tensor mean = centered ? empty({s.rows}) : Tensor();
  const Tensor rstd = empty({s.rows});
  const Tensor use_bias = centered ? bias : Tensor();
  cpu::norm_forward_rows(y, mean, rstd, x, weight, use_bias, 1e-5);
  if (wanted(op + "_fwd" + suffix)) {
    kb::emit(op + "_fwd" + suffix, s.name(), "keel", threads,
             kb::median_seconds([&] { cpu::norm_forward_rows(y, mean, rstd, x, weight, use_bias, 1e-5); }), 0,
             2 * tensor_bytes, "copy_bw");
  }
  if (wanted(op + "_bwd" + suffix)) {
    kb::emit(op + "_bwd" + suffix, s.name(), "keel", threads, kb::median_seconds([&] {
               cpu::norm_backward_rows(dx, dweight, centered ? dbias : Tensor(), dy, x, mean, rstd, weight);
             }),
             0, 3 * tensor_bytes, "copy_bw");
  }
  if (!centered) return;
  try {
    const auto dt = dtype == DType::bf16 ? memory::data_type::bf16 : memory::data_type::f32;
    const memory::desc md({s.rows, s.cols}, dt, memory::format_tag::ab);
    const memory::desc stat_md({s.rows}, memory::data_type::f32, memory::format_tag::a);
    const memory::desc param_md({s.cols}, memory::data_type::f32, memory::format_tag::a);
    const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
    const dnnl::layer_normalization_forward::primitive_desc fwd_pd(
        {dnnl::prop_kind::forward_training, md, stat_md, 1e-5f, flags}, engine());
    const dnnl::layer_normalization_forward fwd(fwd_pd);
    const dnnl::layer_normalization_backward::primitive_desc bwd_pd(
        {dnnl::prop_kind::backward, md, md, stat_md, 1e-5f, flags}, engine(), fwd_pd);
    const dnnl::layer_normalization_backward bwd(bwd_pd);
    const Tensor variance = empty({s.rows});
    memory mx = wrap(x, md), my = wrap(y, md), mdy = wrap(dy, md), mdx = wrap(dx, md);
    memory mmean = wrap(mean, stat_md), mvar = wrap(variance, stat_md);
    memory mw = wrap(weight, param_md), mb = wrap(bias, param_md), mdw = wrap(dweight, param_md),
           mdb = wrap(dbias, param_md);
    const std::unordered_map<int, memory> fwd_args = {{DNNL_ARG_SRC, mx},   {DNNL_ARG_DST, my},
                                                      {DNNL_ARG_SCALE, mw}, {DNNL_ARG_SHIFT, mb},
                                                      {DNNL_ARG_MEAN, mmean}, {DNNL_ARG_VARIANCE, mvar}};
    fwd.execute(stream(), fwd_args);
    stream().wait();
    if (wanted(op + "_fwd" + suffix))
      run_onednn(op + "_fwd" + suffix, s.name(), threads, 2 * tensor_bytes, [&] { fwd.execute(stream(), fwd_args); });
    if (wanted(op + "_bwd" + suffix)) {
      run_onednn(op + "_bwd" + suffix, s.name(), threads, 3 * tensor_bytes, [&] {
        bwd.execute(stream(), {{DNNL_ARG_SRC, mx},
                               {DNNL_ARG_MEAN, mmean},
                               {DNNL_ARG_VARIANCE, mvar},
                               {DNNL_ARG_DIFF_DST, mdy},
                               {DNNL_ARG_SCALE, mw},
                               {DNNL_ARG_SHIFT, mb},
                               {DNNL_ARG_DIFF_SRC, mdx},
                               {DNNL_ARG_DIFF_SCALE, mdw},
                               {DNNL_ARG_DIFF_SHIFT, mdb}});
      });
    }
  } catch (const dnnl::error& e) {
    std::fprintf(stderr, "oneDNN layer_norm %s %s: %s\n", suffix.c_str(), s.name().c_str(), e.what());
  }
}

// AdamW over `count` parameters of `size` elements (f32 params and state), through the op.
void bench_adamw(int64_t count, int64_t size, int threads) {
  if (!wanted("adamw_f32")) return;
  std::vector<Tensor> params, grads, exp_avgs, exp_avg_sqs;
  for (int64_t k = 0; k < count; ++k) {
    params.push_back(randn({size}));
    grads.push_back(randn({size}));
    exp_avgs.push_back(zeros({size}));
    exp_avg_sqs.push_back(zeros({size}));
  }
  const AdamWStepOptions options{.lr = 1e-3, .weight_decay = 0.01};
  int64_t step = 0;
  const double seconds =
      kb::median_seconds([&] { adamw_step_(params, grads, exp_avgs, exp_avg_sqs, {}, ++step, options); });
  const double n = static_cast<double>(count * size);
  kb::emit("adamw_f32", std::to_string(count) + "x" + std::to_string(size), "keel", threads, seconds, 12 * n,
           7 * 4 * n, "copy_bw");
}

}  // namespace

// --one GROUP RxC THREADS: one keel row (GROUP as above, e.g. layer_norm_fwd_bf16) timed as the
// best of 15 samples, beside a 16 MiB memcpy on the same threads in the same process (row
// "machine" / "copy_16MiB", impl "memcpy"): for before/after comparisons process by process, the
// old library through LD_LIBRARY_PATH (bench/kernels/NOTES.md, softmax / norms).
int run_one(const std::string& group, const std::string& shape, int threads) {
  const auto x_at = shape.find('x');
  const Shape2 s{std::stoll(shape.substr(0, x_at)), std::stoll(shape.substr(x_at + 1))};
  const DType dtype = group.ends_with("_bf16") ? DType::bf16 : DType::f32;
  const std::string op = group.substr(0, group.rfind('_', group.rfind('_') - 1));  // layer_norm_fwd_bf16 -> layer_norm
  const bool backward = group.find("_bwd") != std::string::npos;
  omp_set_num_threads(threads);
  auto best_seconds = [](const std::function<void()>& body) {
    using Clock = std::chrono::steady_clock;
    auto elapsed = [](Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); };
    const auto warm = Clock::now();
    int calls = 0;
    for (; calls < 2 || elapsed(warm) < 0.05; ++calls) body();
    const int inner = std::max(1, static_cast<int>(0.01 / (elapsed(warm) / calls)));
    double best = 1e30;
    for (int r = 0; r < 15; ++r) {
      const auto start = Clock::now();
      for (int i = 0; i < inner; ++i) body();
      best = std::min(best, elapsed(start) / inner);
    }
    return best;
  };
  const size_t copy_bytes = size_t{16} << 20;
  std::vector<char> src(copy_bytes, 1), dst(copy_bytes, 2);
  auto copy = [&] {
#pragma omp parallel
    {
      const size_t t = omp_get_thread_num(), n = omp_get_num_threads();
      std::memcpy(dst.data() + copy_bytes * t / n, src.data() + copy_bytes * t / n,
                  copy_bytes * (t + 1) / n - copy_bytes * t / n);
    }
  };
  const double copy_before = best_seconds(copy);
  const double tensor_bytes = static_cast<double>(s.rows * s.cols) * dtype_size(dtype);
  const Tensor x = randn({s.rows, s.cols}).to(dtype), dy = randn({s.rows, s.cols}).to(dtype);
  const Tensor y = empty({s.rows, s.cols}, {.dtype = dtype}), dx = empty({s.rows, s.cols}, {.dtype = dtype});
  const Tensor weight = randn({s.cols}), bias = randn({s.cols}), dweight = empty({s.cols}), dbias = empty({s.cols});
  const Tensor mean = empty({s.rows}), rstd = empty({s.rows});
  const bool centered = op == "layer_norm", is_log = op == "log_softmax";
  std::function<void()> body;
  if (op == "softmax" || op == "log_softmax") {
    cpu::softmax_rows(y, x, is_log);
    if (backward) body = [&] { cpu::softmax_backward_rows(dx, y, dy, is_log); };
    else body = [&] { cpu::softmax_rows(y, x, is_log); };
  } else if (op == "layer_norm" || op == "rms_norm") {
    const Tensor use_mean = centered ? mean : Tensor(), use_bias = centered ? bias : Tensor();
    cpu::norm_forward_rows(y, use_mean, rstd, x, weight, use_bias, 1e-5);
    if (backward)
      body = [&, use_mean] { cpu::norm_backward_rows(dx, dweight, centered ? dbias : Tensor(), dy, x, use_mean, rstd, weight); };
    else body = [&, use_mean, use_bias] { cpu::norm_forward_rows(y, use_mean, rstd, x, weight, use_bias, 1e-5); };
  } else {
    std::fprintf(stderr, "--one: unknown group %s\n", group.c_str());
    return 2;
  }
  const double seconds = best_seconds(body);
  kb::emit(group, s.name(), "keel", threads, seconds, 0, (backward ? 3 : 2) * tensor_bytes, "copy_bw");
  kb::emit("machine", "copy_16MiB", "memcpy", threads, std::min(copy_before, best_seconds(copy)), 0,
           2.0 * static_cast<double>(copy_bytes), "copy_bw");
  return 0;
}

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--one") return run_one(argv[2], argv[3], std::atoi(argv[4]));
  if (argc > 1) filter = argv[1];
  std::fprintf(stderr, "# cpu: %s\n", cpu::describe_cpu_features().c_str());
  for (int threads : kb::thread_counts()) {
    omp_set_num_threads(threads);
    for (DType dtype : {DType::f32, DType::bf16}) {
      for (const Shape2& s : kShapes) {
        bench_softmax(s, dtype, threads, false);
        bench_softmax(s, dtype, threads, true);
        bench_norm(s, dtype, threads, true);
        bench_norm(s, dtype, threads, false);
      }
    }
    bench_adamw(1, 4 << 20, threads);
    bench_adamw(64, 65536, threads);
  }
  return 0;
}
