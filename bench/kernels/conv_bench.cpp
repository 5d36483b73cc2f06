// Convolution, pooling and batch-norm benchmarks: Keel's ops (ops/conv.h: argument checks, the
// cached oneDNN primitive, output allocation) against the same oneDNN primitive called directly on
// preallocated plain NCHW memory (the overhead of Keel's binding), and against oneDNN with the
// blocked layouts it prefers (format_tag::any, data already reordered: the primitive alone, an
// upper bound that a NCHW API only reaches by paying reorders).
//
// Shapes: the Fashion-MNIST CNN (N = 64: 1x28x28 -> conv 3x3 -> 32x26x26 -> conv 3x3 -> 64x24x24
// -> max_pool 2x2), and a ResNet-like 3x3 layer 64 -> 64 channels at 56x56 (N = 8, padding 1).
//   conv FLOPs per call = 2 N O OH OW (C / G) kH kW (forward, backward data, backward weights alike)
//   pooling / batch_norm bytes per call: read x, write y (bn backward: read x, dy, write dx)
// Groups: conv2d_{fwd,bwd_data,bwd_weights}_{f32,bf16}, max_pool2d_f32, max_pool2d_bwd_f32,
// avg_pool2d_{f32,bwd_f32}, batch_norm_{fwd,bwd}_f32.
// Run: flock /tmp/keel-build.lock build-h/bench/kernel_bench_conv   (one JSON line per row)
#include <oneapi/dnnl/dnnl.hpp>

#include <string>
#include <unordered_map>

#include "bench_util.h"
#include "keel/keel.h"

using namespace keel;
using keel::bench::emit;
using keel::bench::median_seconds;

namespace {

using dnnl::memory;
using tag = memory::format_tag;

struct ConvShape {
  std::string name;
  int64_t n, c, h, w, o, k, pad;
  int64_t oh() const { return h + 2 * pad - k + 1; }
  int64_t ow() const { return w + 2 * pad - k + 1; }
  double flops() const { return 2.0 * n * o * oh() * ow() * c * k * k; }
};

memory::data_type dnnl_type(DType dtype) {
  return dtype == DType::bf16 ? memory::data_type::bf16 : memory::data_type::f32;
}

// The oneDNN peer of one convolution: the three primitives on given layouts (plain or any).
struct DnnlConv {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
  memory src, weights, bias, dst, diff_src, diff_weights, diff_bias, diff_dst;

  DnnlConv(const ConvShape& s, DType dtype, bool blocked) {
    const auto dt = dnnl_type(dtype);
    const memory::dims strides{1, 1}, dil{0, 0}, pad{s.pad, s.pad};
    const memory::desc src_md({s.n, s.c, s.h, s.w}, dt, blocked ? tag::any : tag::nchw);
    const memory::desc w_md({s.o, s.c, s.k, s.k}, dt, blocked ? tag::any : tag::oihw);
    const memory::desc b_md({s.o}, dt, tag::a);
    const memory::desc dst_md({s.n, s.o, s.oh(), s.ow()}, dt, blocked ? tag::any : tag::nchw);
    fwd_pd = {{dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src_md, w_md, b_md, dst_md,
               strides, dil, pad, pad},
              engine};
    bwd_data_pd = {{dnnl::algorithm::convolution_direct, src_md, w_md, dst_md, strides, dil, pad, pad}, engine, fwd_pd};
    bwd_weights_pd = {
        {dnnl::algorithm::convolution_direct, src_md, w_md, b_md, dst_md, strides, dil, pad, pad}, engine, fwd_pd};
    // The data: Keel's random tensors in plain layouts, reordered into what each primitive wants
    // (bytes of random bits would be denormals and time the slow path).
    const Tensor x = randn({s.n, s.c, s.h, s.w}).to(dtype), w = randn({s.o, s.c, s.k, s.k}).to(dtype);
    const Tensor b = randn({s.o}).to(dtype), dy = randn({s.n, s.o, s.oh(), s.ow()}).to(dtype);
    const memory::desc plain_src({s.n, s.c, s.h, s.w}, dt, tag::nchw), plain_w({s.o, s.c, s.k, s.k}, dt, tag::oihw);
    const memory::desc plain_dst({s.n, s.o, s.oh(), s.ow()}, dt, tag::nchw);
    auto from = [&](const Tensor& t, const memory::desc& plain, const memory::desc& want) {
      memory source(plain, engine, t.raw_data());
      memory target(want, engine);
      dnnl::reorder(source, target).execute(stream, source, target);
      stream.wait();
      return target;
    };
    src = from(x, plain_src, fwd_pd.src_desc());
    weights = from(w, plain_w, fwd_pd.weights_desc());
    bias = from(b, b_md, fwd_pd.bias_desc());
    dst = memory(fwd_pd.dst_desc(), engine);
    diff_src = memory(bwd_data_pd.diff_src_desc(), engine);
    diff_dst = from(dy, plain_dst, bwd_data_pd.diff_dst_desc());
    diff_weights = memory(bwd_weights_pd.diff_weights_desc(), engine);
    diff_bias = memory(bwd_weights_pd.diff_bias_desc(), engine);
    weights_for_data = from(w, plain_w, bwd_data_pd.weights_desc());
    src_for_weights = from(x, plain_src, bwd_weights_pd.src_desc());
    diff_dst_for_weights = from(dy, plain_dst, bwd_weights_pd.diff_dst_desc());
    fwd = dnnl::convolution_forward(fwd_pd);
    bwd_data = dnnl::convolution_backward_data(bwd_data_pd);
    bwd_weights = dnnl::convolution_backward_weights(bwd_weights_pd);
  }
  memory weights_for_data, src_for_weights, diff_dst_for_weights;
  dnnl::primitive fwd, bwd_data, bwd_weights;

  void forward() {
    fwd.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}});
    stream.wait();
  }
  void backward_data() {
    bwd_data.execute(stream,
                     {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_WEIGHTS, weights_for_data}, {DNNL_ARG_DIFF_SRC, diff_src}});
    stream.wait();
  }
  void backward_weights() {
    bwd_weights.execute(stream, {{DNNL_ARG_SRC, src_for_weights},
                                 {DNNL_ARG_DIFF_DST, diff_dst_for_weights},
                                 {DNNL_ARG_DIFF_WEIGHTS, diff_weights},
                                 {DNNL_ARG_DIFF_BIAS, diff_bias}});
    stream.wait();
  }
};

void bench_conv(const ConvShape& s, DType dtype, int threads) {
  const std::string suffix = dtype == DType::bf16 ? "_bf16" : "_f32";
  const std::string limit = dtype == DType::bf16 ? "dot_bf16" : "fma_f32";
  const double flops = s.flops();
  autograd::NoGradGuard no_grad;
  const Tensor x = randn({s.n, s.c, s.h, s.w}).to(dtype), w = randn({s.o, s.c, s.k, s.k}).to(dtype);
  const Tensor b = randn({s.o}).to(dtype), dy = randn({s.n, s.o, s.oh(), s.ow()}).to(dtype);
  const Conv2dOptions options{.padding = {s.pad, s.pad}};
  const Shape w_shape = w.shape(), x_shape = x.shape();
  emit("conv2d_fwd" + suffix, s.name, "keel", threads, median_seconds([&] { conv2d(x, w, b, options); }), flops, 0, limit);
  emit("conv2d_bwd_data" + suffix, s.name, "keel", threads,
       median_seconds([&] { conv2d_backward_input(dy, w, x_shape, options); }), flops, 0, limit);
  // Keel's backward of the weights plus the bias gradient (what conv2d's vjp computes).
  emit("conv2d_bwd_weights" + suffix, s.name, "keel", threads, median_seconds([&] {
         conv2d_backward_weight(dy, x, w_shape, options);
         sum(dy, {0, 2, 3});
       }),
       flops, 0, limit);
  for (bool blocked : {false, true}) {
    DnnlConv peer(s, dtype, blocked);
    const std::string impl = blocked ? "onednn_blocked" : "onednn";
    emit("conv2d_fwd" + suffix, s.name, impl, threads, median_seconds([&] { peer.forward(); }), flops, 0, limit);
    emit("conv2d_bwd_data" + suffix, s.name, impl, threads, median_seconds([&] { peer.backward_data(); }), flops, 0,
         limit);
    emit("conv2d_bwd_weights" + suffix, s.name, impl, threads, median_seconds([&] { peer.backward_weights(); }),
         flops, 0, limit);
  }
}

// Max pooling 2x2 / stride 2, forward (with the indices the backward needs) and backward. Bytes
// per call are each implementation's own traffic: Keel reads x and writes y and i64 indices
// (forward), reads dy and the indices and writes dx (backward); oneDNN writes/reads its workspace
// (its size from the primitive) in place of the indices.
void bench_max_pool(int64_t n, int64_t c, int64_t h, int64_t w, int threads) {
  autograd::NoGradGuard no_grad;
  const std::string name = std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) + "x" +
                           std::to_string(w) + "_k2";
  const Tensor x = randn({n, c, h, w});
  const double in = double(n * c * h * w), out = double(n * c * (h / 2) * (w / 2));
  const MaxPool2dOptions options{.kernel_size = {2, 2}};
  emit("max_pool2d_f32", name, "keel", threads, median_seconds([&] { max_pool2d_with_indices(x, options); }), 0,
       4 * in + 12 * out, "copy_bw");
  const auto [values, indices] = max_pool2d_with_indices(x, options);
  const Tensor dy = randn(values.shape());
  emit("max_pool2d_bwd_f32", name, "keel", threads,
       median_seconds([&] { max_pool2d_backward(dy, indices, x.shape()); }), 0, 4 * in + 12 * out, "copy_bw");
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::desc src_md({n, c, h, w}, memory::data_type::f32, tag::nchw);
  const memory::desc dst_md({n, c, h / 2, w / 2}, memory::data_type::f32, tag::nchw);
  dnnl::pooling_v2_forward::primitive_desc pd(
      {dnnl::prop_kind::forward_training, dnnl::algorithm::pooling_max, src_md, dst_md, {2, 2}, {2, 2}, {0, 0}, {0, 0},
       {0, 0}},
      engine);
  dnnl::pooling_v2_backward::primitive_desc bpd(
      {dnnl::algorithm::pooling_max, src_md, dst_md, {2, 2}, {2, 2}, {0, 0}, {0, 0}, {0, 0}}, engine, pd);
  memory src(src_md, engine, x.raw_data()), dst(dst_md, engine), workspace(pd.workspace_desc(), engine);
  memory diff_dst(dst_md, engine, dy.raw_data()), diff_src(src_md, engine);
  const double ws = double(pd.workspace_desc().get_size());
  dnnl::pooling_v2_forward pool(pd);
  dnnl::pooling_v2_backward pool_bwd(bpd);
  emit("max_pool2d_f32", name, "onednn", threads, median_seconds([&] {
         pool.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_WORKSPACE, workspace}});
         stream.wait();
       }),
       0, 4 * in + 4 * out + ws, "copy_bw");
  emit("max_pool2d_bwd_f32", name, "onednn", threads, median_seconds([&] {
         pool_bwd.execute(stream,
                          {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, diff_src}, {DNNL_ARG_WORKSPACE, workspace}});
         stream.wait();
       }),
       0, 4 * in + 4 * out + ws, "copy_bw");
}

// Average pooling 2x2 / stride 2: read x, write y (forward); read dy, write dx (backward).
void bench_avg_pool(int64_t n, int64_t c, int64_t h, int64_t w, int threads) {
  autograd::NoGradGuard no_grad;
  const std::string name = std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) + "x" +
                           std::to_string(w) + "_k2";
  const Tensor x = randn({n, c, h, w});
  const double bytes = 4.0 * (n * c * h * w + n * c * (h / 2) * (w / 2));
  const AvgPool2dOptions options{.kernel_size = {2, 2}};
  const Tensor dy = randn({n, c, h / 2, w / 2});
  emit("avg_pool2d_f32", name, "keel", threads, median_seconds([&] { avg_pool2d(x, options); }), 0, bytes,
       "copy_bw");
  emit("avg_pool2d_bwd_f32", name, "keel", threads,
       median_seconds([&] { avg_pool2d_backward(dy, x.shape(), options); }), 0, bytes, "copy_bw");
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::desc src_md({n, c, h, w}, memory::data_type::f32, tag::nchw);
  const memory::desc dst_md({n, c, h / 2, w / 2}, memory::data_type::f32, tag::nchw);
  const auto algorithm = dnnl::algorithm::pooling_avg_exclude_padding;
  dnnl::pooling_v2_forward::primitive_desc pd(
      {dnnl::prop_kind::forward_training, algorithm, src_md, dst_md, {2, 2}, {2, 2}, {0, 0}, {0, 0}, {0, 0}}, engine);
  dnnl::pooling_v2_backward::primitive_desc bpd({algorithm, src_md, dst_md, {2, 2}, {2, 2}, {0, 0}, {0, 0}, {0, 0}},
                                                engine, pd);
  memory src(src_md, engine, x.raw_data()), dst(dst_md, engine);
  memory diff_dst(dst_md, engine, dy.raw_data()), diff_src(src_md, engine);
  dnnl::pooling_v2_forward pool(pd);
  dnnl::pooling_v2_backward pool_bwd(bpd);
  emit("avg_pool2d_f32", name, "onednn", threads, median_seconds([&] {
         pool.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
         stream.wait();
       }),
       0, bytes, "copy_bw");
  emit("avg_pool2d_bwd_f32", name, "onednn", threads, median_seconds([&] {
         pool_bwd.execute(stream, {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, diff_src}});
         stream.wait();
       }),
       0, bytes, "copy_bw");
}

void bench_batch_norm(int64_t n, int64_t c, int64_t h, int64_t w, int threads) {
  const std::string name = std::to_string(n) + "x" + std::to_string(c) + "x" + std::to_string(h) + "x" +
                           std::to_string(w);
  const Tensor x = randn({n, c, h, w}), weight = randn({c}), bias = randn({c});
  Tensor running_mean = zeros({c}), running_var = ones({c});
  const double bytes = 4.0 * 2 * n * c * h * w, bwd_bytes = 4.0 * 3 * n * c * h * w;
  {
    autograd::NoGradGuard no_grad;
    emit("batch_norm_fwd_f32", name, "keel", threads, median_seconds([&] {
           batch_norm(x, running_mean, running_var, weight, bias, true);
         }),
         0, bytes, "copy_bw");
  }
  // Keel's backward: the recorded vjp (oneDNN's backward primitive) run by the engine.
  {
    const Tensor xg = x.detach().requires_grad_(), wg = weight.detach().requires_grad_(),
                 bg = bias.detach().requires_grad_();
    const Tensor dy = randn({n, c, h, w});
    const Tensor y = batch_norm(xg, running_mean, running_var, wg, bg, true);
    emit("batch_norm_bwd_f32", name, "keel", threads, median_seconds([&] {
           autograd::grad({y}, {xg, wg, bg}, {dy}, {.retain_graph = true});
         }),
         0, bwd_bytes, "copy_bw");
  }
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  const memory::desc md({n, c, h, w}, memory::data_type::f32, tag::nchw), cmd({c}, memory::data_type::f32, tag::a);
  const auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  dnnl::batch_normalization_forward::primitive_desc fpd({dnnl::prop_kind::forward_training, md, 1e-5f, flags}, engine);
  dnnl::batch_normalization_backward::primitive_desc bpd({dnnl::prop_kind::backward, md, md, 1e-5f, flags}, engine, fpd);
  memory src(md, engine, x.raw_data()), dst(md, engine), mean(cmd, engine), var(cmd, engine);
  memory scale(cmd, engine, weight.raw_data()), shift(cmd, engine, bias.raw_data());
  memory diff_dst(md, engine, dst.get_data_handle()), diff_src(md, engine), diff_scale(cmd, engine),
      diff_shift(cmd, engine);
  dnnl::batch_normalization_forward fwd(fpd);
  dnnl::batch_normalization_backward bwd(bpd);
  emit("batch_norm_fwd_f32", name, "onednn", threads, median_seconds([&] {
         fwd.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_MEAN, mean}, {DNNL_ARG_VARIANCE, var},
                              {DNNL_ARG_SCALE, scale}, {DNNL_ARG_SHIFT, shift}});
         stream.wait();
       }),
       0, bytes, "copy_bw");
  emit("batch_norm_bwd_f32", name, "onednn", threads, median_seconds([&] {
         bwd.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_MEAN, mean},
                              {DNNL_ARG_VARIANCE, var}, {DNNL_ARG_SCALE, scale}, {DNNL_ARG_SHIFT, shift},
                              {DNNL_ARG_DIFF_SRC, diff_src}, {DNNL_ARG_DIFF_SCALE, diff_scale},
                              {DNNL_ARG_DIFF_SHIFT, diff_shift}});
         stream.wait();
       }),
       0, bwd_bytes, "copy_bw");
}

}  // namespace

int main(int argc, char** argv) {
  // Optional filter: only groups whose name contains argv[1] ("conv", "pool", "norm", "bf16"...).
  const std::string filter = argc > 1 ? argv[1] : "";
  auto wanted = [&](const std::string& what) { return filter.empty() || what.find(filter) != std::string::npos; };
  const std::vector<ConvShape> convs = {
      {"mnist_conv1_64x1x28x28_o32_k3", 64, 1, 28, 28, 32, 3, 0},
      {"mnist_conv2_64x32x26x26_o64_k3", 64, 32, 26, 26, 64, 3, 0},
      {"resnet_8x64x56x56_o64_k3_p1", 8, 64, 56, 56, 64, 3, 1},
  };
  for (int threads : keel::bench::thread_counts()) {
    omp_set_num_threads(threads);
    for (const ConvShape& s : convs) {
      if (wanted("conv_f32")) bench_conv(s, DType::f32, threads);
      if (wanted("conv_bf16")) bench_conv(s, DType::bf16, threads);
    }
    if (wanted("pool")) {
      bench_max_pool(64, 64, 24, 24, threads);
      bench_max_pool(128, 32, 28, 28, threads);  // SmallCNN's pools (batch 128)
      bench_max_pool(128, 64, 14, 14, threads);
      bench_avg_pool(128, 32, 28, 28, threads);
    }
    if (wanted("norm")) {
      bench_batch_norm(64, 32, 26, 26, threads);
      bench_batch_norm(8, 64, 56, 56, threads);
    }
  }
}
