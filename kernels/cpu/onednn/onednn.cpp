// The oneDNN binding: convolution (forward, backward data, backward weights) and batch
// normalization (forward training / inference, backward) as oneDNN 2.6 primitives on plain
// NCHW / OIHW (GOIHW for groups) memory. This is the one file with #ifdef KEEL_WITH_ONEDNN; a
// build without oneDNN compiles the stubs at the bottom, which throw "[op] needs oneDNN".
//
// Primitive creation costs far more than a small execution (tens of microseconds to
// milliseconds: JIT code generation), so primitives are cached by a key of every field of their
// descriptor (kind, dtypes, shapes, options). One CPU engine; one stream per thread. oneDNN's
// threads are the process's OpenMP threads (it is built with libgomp, as Keel), so
// omp_set_num_threads governs both.
//
// Dtypes: f32 and bf16 data (bf16 accumulates in f32 inside oneDNN); batch-norm statistics,
// scale and shift are f32. oneDNN has no f64: the ops route f64 to the direct loops.
#include "keel/kernels/cpu/conv_kernels.h"

#ifdef KEEL_WITH_ONEDNN

#include <oneapi/dnnl/dnnl.hpp>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <list>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace keel::cpu::onednn {

namespace {

using dnnl::memory;
using tag = memory::format_tag;

dnnl::engine& engine() {
  static dnnl::engine cpu_engine(dnnl::engine::kind::cpu, 0);
  return cpu_engine;
}
dnnl::stream& stream() {
  thread_local dnnl::stream cpu_stream(engine());
  return cpu_stream;
}

memory::data_type data_type(const char* op, DType dtype) {
  switch (dtype) {
    case DType::f32: return memory::data_type::f32;
    case DType::bf16: return memory::data_type::bf16;
    default: fail("[", op, "] oneDNN takes float32 or bfloat16 tensors, got ", dtype_name(dtype));
  }
}

memory::dims dims_of(const Tensor& t) { return memory::dims(t.shape().begin(), t.shape().end()); }

memory::desc plain_desc(const char* op, const Tensor& t, tag format) {
  KEEL_ASSERT(t.is_contiguous());
  return memory::desc(dims_of(t), data_type(op, t.dtype()), format);
}

// Weights (O, C/G, kH, kW) as oneDNN wants them: OIHW, or GOIHW (G, O/G, C/G, kH, kW) with groups.
memory::desc weights_desc(const char* op, const Tensor& w, int64_t groups) {
  KEEL_ASSERT(w.is_contiguous());
  const Shape& s = w.shape();
  if (groups == 1) return memory::desc(dims_of(w), data_type(op, w.dtype()), tag::oihw);
  return memory::desc({groups, s[0] / groups, s[1], s[2], s[3]}, data_type(op, w.dtype()), tag::goihw);
}

memory make_memory(const memory::desc& desc, const Tensor& t) { return memory(desc, engine(), t.raw_data()); }

// A small LRU cache of primitives (and the descriptors their arguments need), keyed by a string
// of everything that went into the descriptor.
// An argument whose layout the primitive chose (format_tag::any) differs from the user's plain
// one: a reorder into (inputs) or out of (outputs) a per-thread buffer around the execution.
struct Relayout {
  int arg;
  memory::desc wanted;
  bool is_output;
  dnnl::reorder reorder;
};
struct Cached {
  dnnl::primitive primitive;
  memory::desc scratchpad;
  std::vector<Relayout> relayouts;
};
class PrimitiveCache {
 public:
  static constexpr size_t kCapacity = 256;
  // oneDNN sizes and splits the work of a primitive for the thread count at its creation, so the
  // count is part of the key (omp_set_num_threads between calls gets a primitive of its own).
  template <typename Make> Cached get(const std::string& key_without_threads, Make&& make) {
    const std::string key = std::to_string(omp_get_max_threads()) + ";" + key_without_threads;
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = index_.find(key);
    if (found != index_.end()) {
      order_.splice(order_.begin(), order_, found->second);
      return found->second->second;
    }
    Cached made = make();
    order_.emplace_front(key, made);
    index_[key] = order_.begin();
    if (order_.size() > kCapacity) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    return made;
  }
  size_t size() {
    std::lock_guard<std::mutex> lock(mutex_);
    return order_.size();
  }

 private:
  std::mutex mutex_;
  std::list<std::pair<std::string, Cached>> order_;
  std::unordered_map<std::string, std::list<std::pair<std::string, Cached>>::iterator> index_;
};
PrimitiveCache& cache() {
  static PrimitiveCache instance;
  return instance;
}

std::string key_of(const Tensor& t) {
  std::string key(dtype_name(t.dtype()));
  for (int64_t s : t.shape()) {
    key.push_back(',');
    key.append(std::to_string(s));
  }
  key.push_back(';');
  return key;
}
std::string key_of(const Conv2dParams& p) {
  return std::to_string(p.stride[0]) + "," + std::to_string(p.stride[1]) + "," + std::to_string(p.padding[0]) + "," +
         std::to_string(p.padding[1]) + "," + std::to_string(p.dilation[0]) + "," + std::to_string(p.dilation[1]) +
         "," + std::to_string(p.groups) + ";";
}

// A per-thread buffer that only grows (64-byte aligned, never zeroed): slot 0 is the scratchpad,
// slots 1.. hold arguments in the primitive's own layouts.
void* thread_buffer(size_t slot, size_t bytes) {
  struct Buffer {
    void* data = nullptr;
    size_t size = 0;
    Buffer() = default;
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer() { std::free(data); }
  };
  thread_local std::array<Buffer, 8> buffers;  // a scratchpad and at most 3 relayouts per primitive
  KEEL_ASSERT(slot < buffers.size());
  Buffer& buffer = buffers[slot];
  if (bytes > buffer.size) {
    std::free(buffer.data);
    buffer.size = (bytes + 63) / 64 * 64;
    buffer.data = std::aligned_alloc(64, buffer.size);
    if (buffer.data == nullptr) {
      buffer.size = 0;
      fail("[onednn] out of memory for a buffer of ", bytes, " bytes");
    }
  }
  return buffer.data;
}

// Runs a primitive on the user's (plain) memory: arguments the primitive wants in other layouts
// go through reorders; the scratchpad is the caller's (user mode), so that one cached primitive
// may run on several threads at once.
void execute(const Cached& cached, std::unordered_map<int, memory> args) {
  args.insert({DNNL_ARG_SCRATCHPAD, memory(cached.scratchpad, engine(), thread_buffer(0, cached.scratchpad.get_size()))});
  std::vector<std::pair<const Relayout*, memory>> outputs;
  size_t slot = 1;
  for (const Relayout& relayout : cached.relayouts) {
    auto found = args.find(relayout.arg);
    if (found == args.end()) continue;
    memory user = found->second;
    memory own(relayout.wanted, engine(), thread_buffer(slot++, relayout.wanted.get_size()));
    if (relayout.is_output) {
      outputs.emplace_back(&relayout, user);
    } else {
      relayout.reorder.execute(stream(), {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, own}});
    }
    found->second = own;
  }
  cached.primitive.execute(stream(), args);
  for (auto& [relayout, user] : outputs)
    relayout->reorder.execute(stream(), {{DNNL_ARG_FROM, args.at(relayout->arg)}, {DNNL_ARG_TO, user}});
  stream().wait();
}

// The relayouts a primitive descriptor needs for the user's plain descriptors of `args`.
template <typename PrimitiveDesc>
std::vector<Relayout> relayouts_of(const PrimitiveDesc& pd, const std::vector<std::tuple<int, memory::desc, bool>>& args) {
  std::vector<Relayout> result;
  for (const auto& [arg, user, is_output] : args) {
    const memory::desc wanted = pd.query_md(dnnl::query::exec_arg_md, arg);
    if (wanted == user) continue;
    dnnl::reorder reorder = is_output ? dnnl::reorder(dnnl::reorder::primitive_desc(engine(), wanted, engine(), user))
                                      : dnnl::reorder(dnnl::reorder::primitive_desc(engine(), user, engine(), wanted));
    result.push_back({arg, wanted, is_output, reorder});
  }
  return result;
}

// Whether convolutions let oneDNN choose blocked layouts (nChw16c, OIhw16i16o, ...), paying a
// reorder of each argument per call: on AVX-512 its blocked kernels run about twice as fast as on
// plain NCHW (bench/kernels/conv_bench.cpp), except backward-data with few input channels.
// KEEL_ONEDNN_LAYOUT=plain keeps every convolution on plain NCHW (for comparisons).
bool blocked_layouts(int64_t channels_per_group, bool backward_data) {
  static const bool plain_only = [] {
    const char* value = std::getenv("KEEL_ONEDNN_LAYOUT");
    return value != nullptr && std::string(value) == "plain";
  }();
  if (plain_only) return false;
  return !backward_data || channels_per_group >= 16;
}

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

// oneDNN's geometry: dilation counts the gaps (PyTorch's dilation - 1); right padding as PyTorch's.
struct ConvGeometry {
  memory::dims strides, dilates, padding_l, padding_r;
};
ConvGeometry geometry(const Conv2dParams& p) {
  return {{p.stride[0], p.stride[1]},
          {p.dilation[0] - 1, p.dilation[1] - 1},
          {p.padding[0], p.padding[1]},
          {p.padding[0], p.padding[1]}};
}

// The descriptors a convolution primitive is created with: the plain ones, or `any` (oneDNN picks).
memory::desc conv_desc(const memory::desc& plain, bool blocked) {
  return blocked ? memory::desc(plain.dims(), plain.data_type(), tag::any) : plain;
}

dnnl::convolution_forward::primitive_desc forward_desc(const char* op, const Tensor& y, const Tensor& x,
                                                       const Tensor& w, const Tensor& b, const Conv2dParams& p,
                                                       dnnl::prop_kind kind, bool blocked) {
  const ConvGeometry g = geometry(p);
  const memory::desc src = conv_desc(plain_desc(op, x, tag::nchw), blocked);
  const memory::desc dst = conv_desc(plain_desc(op, y, tag::nchw), blocked);
  const memory::desc weights = conv_desc(weights_desc(op, w, p.groups), blocked);
  if (b.defined()) {
    dnnl::convolution_forward::desc desc(kind, dnnl::algorithm::convolution_direct, src, weights,
                                         plain_desc(op, b, tag::a), dst, g.strides, g.dilates, g.padding_l,
                                         g.padding_r);
    return {desc, user_scratchpad(), engine()};
  }
  dnnl::convolution_forward::desc desc(kind, dnnl::algorithm::convolution_direct, src, weights, dst, g.strides,
                                       g.dilates, g.padding_l, g.padding_r);
  return {desc, user_scratchpad(), engine()};
}

template <typename Body> void translate_errors(const char* op, Body&& body) {
  try {
    body();
  } catch (const dnnl::error& error) {
    fail("[", op, "] oneDNN failed: ", error.what(), " (status ", static_cast<int>(error.status), ")");
  }
}

}  // namespace

bool available() { return true; }
size_t cached_primitives() { return cache().size(); }

void conv2d_forward(const char* op, const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b,
                    const Conv2dParams& params) {
  translate_errors(op, [&] {
    const std::string key = "conv_fwd;" + key_of(x) + key_of(w) + (b.defined() ? key_of(b) : "-;") + key_of(y) +
                            key_of(params);
    const Cached cached = cache().get(key, [&] {
      const bool blocked = blocked_layouts(w.shape()[1], false);
      auto pd = forward_desc(op, y, x, w, b, params, dnnl::prop_kind::forward_training, blocked);
      return Cached{dnnl::convolution_forward(pd), pd.scratchpad_desc(),
                    relayouts_of(pd, {{DNNL_ARG_SRC, plain_desc(op, x, tag::nchw), false},
                                      {DNNL_ARG_WEIGHTS, weights_desc(op, w, params.groups), false},
                                      {DNNL_ARG_DST, plain_desc(op, y, tag::nchw), true}})};
    });
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, make_memory(plain_desc(op, x, tag::nchw), x)},
                                         {DNNL_ARG_WEIGHTS, make_memory(weights_desc(op, w, params.groups), w)},
                                         {DNNL_ARG_DST, make_memory(plain_desc(op, y, tag::nchw), y)}};
    if (b.defined()) args.insert({DNNL_ARG_BIAS, make_memory(plain_desc(op, b, tag::a), b)});
    execute(cached, std::move(args));
  });
}

void conv2d_backward_input(const char* op, const Tensor& grad_x, const Tensor& grad_y, const Tensor& w,
                           const Conv2dParams& params) {
  translate_errors(op, [&] {
    const std::string key = "conv_bwd_data;" + key_of(grad_x) + key_of(w) + key_of(grad_y) + key_of(params);
    const Cached cached = cache().get(key, [&] {
      const ConvGeometry g = geometry(params);
      const bool blocked = blocked_layouts(w.shape()[1], true);
      const auto hint =
          forward_desc(op, grad_y, grad_x, w, Tensor(), params, dnnl::prop_kind::forward_training, blocked);
      const memory::desc diff_src = plain_desc(op, grad_x, tag::nchw), diff_dst = plain_desc(op, grad_y, tag::nchw);
      const memory::desc weights = weights_desc(op, w, params.groups);
      dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, conv_desc(diff_src, blocked),
                                                 conv_desc(weights, blocked), conv_desc(diff_dst, blocked), g.strides,
                                                 g.dilates, g.padding_l, g.padding_r);
      dnnl::convolution_backward_data::primitive_desc pd(desc, user_scratchpad(), engine(), hint);
      return Cached{dnnl::convolution_backward_data(pd), pd.scratchpad_desc(),
                    relayouts_of(pd, {{DNNL_ARG_DIFF_DST, diff_dst, false},
                                      {DNNL_ARG_WEIGHTS, weights, false},
                                      {DNNL_ARG_DIFF_SRC, diff_src, true}})};
    });
    execute(cached, {{DNNL_ARG_DIFF_SRC, make_memory(plain_desc(op, grad_x, tag::nchw), grad_x)},
                     {DNNL_ARG_WEIGHTS, make_memory(weights_desc(op, w, params.groups), w)},
                     {DNNL_ARG_DIFF_DST, make_memory(plain_desc(op, grad_y, tag::nchw), grad_y)}});
  });
}

void conv2d_backward_weight(const char* op, const Tensor& grad_w, const Tensor& grad_bias, const Tensor& grad_y,
                            const Tensor& x, const Conv2dParams& params) {
  translate_errors(op, [&] {
    const std::string key = "conv_bwd_weights;" + key_of(x) + key_of(grad_w) +
                            (grad_bias.defined() ? key_of(grad_bias) : "-;") + key_of(grad_y) + key_of(params);
    const Cached cached = cache().get(key, [&] {
      const ConvGeometry g = geometry(params);
      const bool blocked = blocked_layouts(grad_w.shape()[1], false);
      const auto hint =
          forward_desc(op, grad_y, x, grad_w, grad_bias, params, dnnl::prop_kind::forward_training, blocked);
      const memory::desc src = plain_desc(op, x, tag::nchw), diff_dst = plain_desc(op, grad_y, tag::nchw);
      const memory::desc diff_weights = weights_desc(op, grad_w, params.groups);
      auto make = [&](const dnnl::convolution_backward_weights::desc& desc) {
        dnnl::convolution_backward_weights::primitive_desc pd(desc, user_scratchpad(), engine(), hint);
        return Cached{dnnl::convolution_backward_weights(pd), pd.scratchpad_desc(),
                      relayouts_of(pd, {{DNNL_ARG_SRC, src, false},
                                        {DNNL_ARG_DIFF_DST, diff_dst, false},
                                        {DNNL_ARG_DIFF_WEIGHTS, diff_weights, true}})};
      };
      if (grad_bias.defined())
        return make({dnnl::algorithm::convolution_direct, conv_desc(src, blocked), conv_desc(diff_weights, blocked),
                     plain_desc(op, grad_bias, tag::a), conv_desc(diff_dst, blocked), g.strides, g.dilates,
                     g.padding_l, g.padding_r});
      return make({dnnl::algorithm::convolution_direct, conv_desc(src, blocked), conv_desc(diff_weights, blocked),
                   conv_desc(diff_dst, blocked), g.strides, g.dilates, g.padding_l, g.padding_r});
    });
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, make_memory(plain_desc(op, x, tag::nchw), x)},
        {DNNL_ARG_DIFF_WEIGHTS, make_memory(weights_desc(op, grad_w, params.groups), grad_w)},
        {DNNL_ARG_DIFF_DST, make_memory(plain_desc(op, grad_y, tag::nchw), grad_y)}};
    if (grad_bias.defined()) args.insert({DNNL_ARG_DIFF_BIAS, make_memory(plain_desc(op, grad_bias, tag::a), grad_bias)});
    execute(cached, std::move(args));
  });
}

// ---- batch normalization ----------------------------------------------------------------------
namespace {
dnnl::normalization_flags bn_flags(bool training, bool has_weight, bool has_bias) {
  auto flags = static_cast<dnnl::normalization_flags>(0);
  if (!training) flags |= dnnl::normalization_flags::use_global_stats;
  if (has_weight) flags |= dnnl::normalization_flags::use_scale;
  if (has_bias) flags |= dnnl::normalization_flags::use_shift;
  return flags;
}
// oneDNN 2.6 normalizes NCHW with a generic kernel (ncsp_bnorm, ~5 GB/s here); its JIT kernel
// wants nChw16c. With >= 16 channels the data is reordered in and out around the call: about 2x
// faster in all (conv_bench's batch_norm rows; KEEL_ONEDNN_LAYOUT=plain keeps NCHW).
memory::desc bn_data_desc(const Tensor& x) {
  const memory::desc plain = plain_desc("batch_norm", x, tag::nchw);
  if (!blocked_layouts(x.shape()[1], false) || x.shape()[1] < 16) return plain;
  return memory::desc(plain.dims(), plain.data_type(), tag::nChw16c);
}
dnnl::batch_normalization_forward::primitive_desc bn_forward_desc(const Tensor& x, bool training, bool has_weight,
                                                                  bool has_bias, double eps) {
  dnnl::batch_normalization_forward::desc desc(
      training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference, bn_data_desc(x),
      static_cast<float>(eps), bn_flags(training, has_weight, has_bias));
  return {desc, user_scratchpad(), engine()};
}
memory::desc stats_desc(const Tensor& t) { return plain_desc("batch_norm", t, tag::a); }
}  // namespace

void batch_norm_forward(const Tensor& y, const Tensor& mean, const Tensor& var, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, bool training, double eps) {
  translate_errors("batch_norm", [&] {
    const std::string key = "bn_fwd;" + key_of(x) + std::to_string(training) + std::to_string(weight.defined()) +
                            std::to_string(bias.defined()) + std::to_string(eps);
    const Cached cached = cache().get(key, [&] {
      auto pd = bn_forward_desc(x, training, weight.defined(), bias.defined(), eps);
      return Cached{dnnl::batch_normalization_forward(pd), pd.scratchpad_desc(),
                    relayouts_of(pd, {{DNNL_ARG_SRC, plain_desc("batch_norm", x, tag::nchw), false},
                                      {DNNL_ARG_DST, plain_desc("batch_norm", y, tag::nchw), true}})};
    });
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, make_memory(plain_desc("batch_norm", x, tag::nchw), x)},
                                         {DNNL_ARG_DST, make_memory(plain_desc("batch_norm", y, tag::nchw), y)},
                                         {DNNL_ARG_MEAN, make_memory(stats_desc(mean), mean)},
                                         {DNNL_ARG_VARIANCE, make_memory(stats_desc(var), var)}};
    if (weight.defined()) args.insert({DNNL_ARG_SCALE, make_memory(stats_desc(weight), weight)});
    if (bias.defined()) args.insert({DNNL_ARG_SHIFT, make_memory(stats_desc(bias), bias)});
    execute(cached, std::move(args));
  });
}

void batch_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                         const Tensor& grad_y, const Tensor& x, const Tensor& mean, const Tensor& var,
                         const Tensor& weight, bool training, double eps) {
  translate_errors("batch_norm_backward", [&] {
    // prop_kind::backward computes the scale/shift gradients too; they need use_scale/use_shift
    // in the flags, so both are always on here (a missing weight is passed as ones by the op).
    const bool want_params = grad_weight.defined() || grad_bias.defined();
    const std::string key = "bn_bwd;" + key_of(x) + std::to_string(training) + std::to_string(want_params) +
                            std::to_string(eps);
    const Cached cached = cache().get(key, [&] {
      const auto hint = bn_forward_desc(x, training, true, want_params, eps);
      dnnl::batch_normalization_backward::desc desc(
          want_params ? dnnl::prop_kind::backward : dnnl::prop_kind::backward_data, bn_data_desc(grad_y),
          bn_data_desc(x), static_cast<float>(eps), bn_flags(training, true, want_params));
      dnnl::batch_normalization_backward::primitive_desc pd(desc, user_scratchpad(), engine(), hint);
      return Cached{dnnl::batch_normalization_backward(pd), pd.scratchpad_desc(),
                    relayouts_of(pd, {{DNNL_ARG_SRC, plain_desc("batch_norm_backward", x, tag::nchw), false},
                                      {DNNL_ARG_DIFF_DST, plain_desc("batch_norm_backward", grad_y, tag::nchw), false},
                                      {DNNL_ARG_DIFF_SRC, plain_desc("batch_norm_backward", grad_x, tag::nchw), true}})};
    });
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, make_memory(plain_desc("batch_norm_backward", x, tag::nchw), x)},
        {DNNL_ARG_DIFF_DST, make_memory(plain_desc("batch_norm_backward", grad_y, tag::nchw), grad_y)},
        {DNNL_ARG_MEAN, make_memory(stats_desc(mean), mean)},
        {DNNL_ARG_VARIANCE, make_memory(stats_desc(var), var)},
        {DNNL_ARG_SCALE, make_memory(stats_desc(weight), weight)},
        {DNNL_ARG_DIFF_SRC, make_memory(plain_desc("batch_norm_backward", grad_x, tag::nchw), grad_x)}};
    Tensor shift;
    if (want_params) {
      KEEL_ASSERT(grad_weight.defined() && grad_bias.defined());
      args.insert({DNNL_ARG_DIFF_SCALE, make_memory(stats_desc(grad_weight), grad_weight)});
      args.insert({DNNL_ARG_DIFF_SHIFT, make_memory(stats_desc(grad_bias), grad_bias)});
      // oneDNN 2.6 insists on the shift as an input of the backward pass when use_shift is set,
      // although no gradient depends on it: give it zeros.
      shift = Tensor(empty(grad_bias.shape(), grad_bias.options()));
      std::fill_n(shift.data_ptr<float>(), shift.numel(), 0.0f);
      args.insert({DNNL_ARG_SHIFT, make_memory(stats_desc(shift), shift)});
    }
    execute(cached, std::move(args));
  });
}

}  // namespace keel::cpu::onednn

#else  // no oneDNN: every entry point throws a clear error

namespace keel::cpu::onednn {

namespace {
[[noreturn]] void no_onednn(const char* op) { fail("[", op, "] needs oneDNN (build with KEEL_ONEDNN=ON)"); }
}  // namespace

bool available() { return false; }
size_t cached_primitives() { return 0; }
void conv2d_forward(const char* op, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Conv2dParams&) {
  no_onednn(op);
}
void conv2d_backward_input(const char* op, const Tensor&, const Tensor&, const Tensor&, const Conv2dParams&) {
  no_onednn(op);
}
void conv2d_backward_weight(const char* op, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                            const Conv2dParams&) {
  no_onednn(op);
}
void batch_norm_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, bool,
                        double) {
  no_onednn("batch_norm");
}
void batch_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                         const Tensor&, const Tensor&, bool, double) {
  no_onednn("batch_norm_backward");
}

}  // namespace keel::cpu::onednn

#endif
