// conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d and batch_norm against float64 references
// written here as plain loops (independent of kernels/cpu/conv_direct.cpp and pooling.cpp), on odd
// sizes, strides, paddings, dilations and groups (depthwise too), non-contiguous (channels-last)
// and empty inputs, f64 (direct loops), f32 and bf16 (oneDNN); values pasted from torch 1.13 for
// the pooling edge cases (ceil_mode, count_include_pad, divisor_override, NaN) and the running
// statistics of batch_norm (made by tests/parity/conv_torch_cases.py); gradcheck and
// gradgradcheck in f64; the f32 oneDNN gradients against the f64 ones; error messages.
#include <cmath>
#include <optional>

#include "keel/autograd/gradcheck.h"
#include "keel/kernels/cpu/conv_kernels.h"
#include "test_util.h"

using namespace keel;
using namespace keel::test;
using autograd::TensorList;
using reference::RefTensor;

namespace {

RefTensor ref_of(const Tensor& x) { return reference::from_tensor(x); }

// ---- float64 references ------------------------------------------------------------------------
// y[n,o,i,j] = b[o] + sum_{c,p,q} x[n, g Cg + c, i s - pad + p d, j s - pad + q d] w[o,c,p,q];
// with `absolute`, every term is |x| |w| (the scale of the rounding error of a float sum).
RefTensor ref_conv2d(const RefTensor& x, const RefTensor& w, const RefTensor* b, const Conv2dOptions& o,
                     bool absolute = false) {
  const int64_t n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3];
  const int64_t oc = w.shape[0], cg = w.shape[1], kh = w.shape[2], kw = w.shape[3];
  const int64_t og = oc / o.groups;
  const int64_t oh = (h + 2 * o.padding[0] - o.dilation[0] * (kh - 1) - 1) / o.stride[0] + 1;
  const int64_t ow = (wd + 2 * o.padding[1] - o.dilation[1] * (kw - 1) - 1) / o.stride[1] + 1;
  RefTensor y{{n, oc, oh, ow}, std::vector<double>(static_cast<size_t>(n * oc * oh * ow))};
  for (int64_t in = 0; in < n; ++in)
    for (int64_t io = 0; io < oc; ++io)
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          double total = b ? (absolute ? std::fabs(b->values[io]) : b->values[io]) : 0.0;
          for (int64_t ic = 0; ic < cg; ++ic)
            for (int64_t p = 0; p < kh; ++p)
              for (int64_t q = 0; q < kw; ++q) {
                const int64_t r = i * o.stride[0] - o.padding[0] + p * o.dilation[0];
                const int64_t s = j * o.stride[1] - o.padding[1] + q * o.dilation[1];
                if (r < 0 || r >= h || s < 0 || s >= wd) continue;
                const double xv = x.values[((in * c + (io / og) * cg + ic) * h + r) * wd + s];
                const double wv = w.values[((io * cg + ic) * kh + p) * kw + q];
                total += absolute ? std::fabs(xv * wv) : xv * wv;
              }
          y.values[((in * oc + io) * oh + i) * ow + j] = total;
        }
  return y;
}

// PyTorch's pooling output size.
int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t pad, int64_t d, bool ceil_mode) {
  const int64_t num = in + 2 * pad - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = static_cast<int64_t>(std::floor(static_cast<double>(num) / static_cast<double>(s))) + 1;
  if (ceil_mode && (out - 1) * s >= in + pad) --out;
  return out;
}

struct RefPool {
  RefTensor values, indices;
};
RefPool ref_max_pool2d(const RefTensor& x, const MaxPool2dOptions& o) {
  const Size2 st = o.stride.value_or(o.kernel_size);
  const int64_t planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3];
  const int64_t oh = pool_out(h, o.kernel_size[0], st[0], o.padding[0], o.dilation[0], o.ceil_mode);
  const int64_t ow = pool_out(w, o.kernel_size[1], st[1], o.padding[1], o.dilation[1], o.ceil_mode);
  const Shape shape{x.shape[0], x.shape[1], oh, ow};
  RefPool out{{shape, std::vector<double>(static_cast<size_t>(planes * oh * ow))}, {shape, {}}};
  out.indices.values.resize(out.values.values.size());
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        double best = -INFINITY;
        int64_t best_index = -1;
        for (int64_t p = 0; p < o.kernel_size[0]; ++p)
          for (int64_t q = 0; q < o.kernel_size[1]; ++q) {
            const int64_t r = i * st[0] - o.padding[0] + p * o.dilation[0];
            const int64_t s = j * st[1] - o.padding[1] + q * o.dilation[1];
            if (r < 0 || r >= h || s < 0 || s >= w) continue;
            const double v = x.values[(pl * h + r) * w + s];
            if (best_index < 0 || v > best || std::isnan(v)) {
              best = v;
              best_index = r * w + s;
            }
          }
        out.values.values[(pl * oh + i) * ow + j] = best;
        out.indices.values[(pl * oh + i) * ow + j] = static_cast<double>(best_index);
      }
  return out;
}

RefTensor ref_avg_pool2d(const RefTensor& x, const AvgPool2dOptions& o) {
  const Size2 st = o.stride.value_or(o.kernel_size);
  const int64_t planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3];
  const int64_t oh = pool_out(h, o.kernel_size[0], st[0], o.padding[0], 1, o.ceil_mode);
  const int64_t ow = pool_out(w, o.kernel_size[1], st[1], o.padding[1], 1, o.ceil_mode);
  RefTensor y{{x.shape[0], x.shape[1], oh, ow}, std::vector<double>(static_cast<size_t>(planes * oh * ow))};
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        // The window in padded coordinates, cut at in + padding (ceil_mode's overhang never counts).
        const int64_t r0 = i * st[0] - o.padding[0], s0 = j * st[1] - o.padding[1];
        const int64_t r1 = std::min(r0 + o.kernel_size[0], h + o.padding[0]);
        const int64_t s1 = std::min(s0 + o.kernel_size[1], w + o.padding[1]);
        double total = 0;
        int64_t inside = 0;
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t s = s0; s < s1; ++s)
            if (r >= 0 && r < h && s >= 0 && s < w) {
              total += x.values[(pl * h + r) * w + s];
              ++inside;
            }
        const double divisor = o.divisor_override ? static_cast<double>(*o.divisor_override)
                               : o.count_include_pad ? static_cast<double>((r1 - r0) * (s1 - s0))
                                                     : static_cast<double>(inside);
        y.values[(pl * oh + i) * ow + j] = inside == 0 ? 0.0 : total / divisor;
      }
  return y;
}

RefTensor ref_adaptive_avg_pool2d(const RefTensor& x, Size2 out) {
  const int64_t planes = x.shape[0] * x.shape[1], h = x.shape[2], w = x.shape[3];
  RefTensor y{{x.shape[0], x.shape[1], out[0], out[1]}, std::vector<double>(static_cast<size_t>(planes * out[0] * out[1]))};
  for (int64_t pl = 0; pl < planes; ++pl)
    for (int64_t i = 0; i < out[0]; ++i)
      for (int64_t j = 0; j < out[1]; ++j) {
        const auto r0 = static_cast<int64_t>(std::floor(double(i * h) / double(out[0])));
        const auto r1 = static_cast<int64_t>(std::ceil(double((i + 1) * h) / double(out[0])));
        const auto s0 = static_cast<int64_t>(std::floor(double(j * w) / double(out[1])));
        const auto s1 = static_cast<int64_t>(std::ceil(double((j + 1) * w) / double(out[1])));
        double total = 0;
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t s = s0; s < s1; ++s) total += x.values[(pl * h + r) * w + s];
        y.values[(pl * out[0] + i) * out[1] + j] = total / double((r1 - r0) * (s1 - s0));
      }
  return y;
}

// batch_norm per channel over every dim but 1; stats = the batch's (biased) or given.
RefTensor ref_batch_norm(const RefTensor& x, const std::vector<double>* mean_in, const std::vector<double>* var_in,
                         const RefTensor* weight, const RefTensor* bias, double eps, std::vector<double>* mean_out,
                         std::vector<double>* var_out) {
  const int64_t n = x.shape[0], c = x.shape[1];
  int64_t inner = 1;
  for (size_t d = 2; d < x.shape.size(); ++d) inner *= x.shape[d];
  RefTensor y{x.shape, std::vector<double>(x.values.size())};
  for (int64_t ic = 0; ic < c; ++ic) {
    double mu = 0, var = 0;
    if (mean_in) {
      mu = (*mean_in)[ic];
      var = (*var_in)[ic];
    } else {
      for (int64_t in = 0; in < n; ++in)
        for (int64_t k = 0; k < inner; ++k) mu += x.values[(in * c + ic) * inner + k];
      mu /= double(n * inner);
      for (int64_t in = 0; in < n; ++in)
        for (int64_t k = 0; k < inner; ++k) var += std::pow(x.values[(in * c + ic) * inner + k] - mu, 2);
      var /= double(n * inner);
    }
    if (mean_out) (*mean_out)[ic] = mu;
    if (var_out) (*var_out)[ic] = var;
    for (int64_t in = 0; in < n; ++in)
      for (int64_t k = 0; k < inner; ++k) {
        const int64_t e = (in * c + ic) * inner + k;
        double v = (x.values[e] - mu) / std::sqrt(var + eps);
        if (weight) v *= weight->values[ic];
        if (bias) v += bias->values[ic];
        y.values[e] = v;
      }
  }
  return y;
}

// |got - ref| <= factor * scale + atol everywhere (scale: the sum of |terms| of each element).
void check_scaled(const Tensor& got, const RefTensor& ref, const RefTensor& scale, double factor, double atol,
                  const std::string& what) {
  INFO(what);
  REQUIRE(got.shape() == ref.shape);
  const RefTensor g = ref_of(got);
  for (int64_t i = 0; i < g.numel(); ++i) {
    if (!(std::fabs(g.values[i] - ref.values[i]) <= factor * scale.values[i] + atol)) {
      FAIL_CHECK("element " << i << ": got " << g.values[i] << ", expected " << ref.values[i] << " (scale "
                            << scale.values[i] << ")");
      return;
    }
  }
  SUCCEED();
}

// ---- convolution configurations -----------------------------------------------------------------
struct ConvCase {
  int64_t n, c, h, w, o, k;
  Conv2dOptions options;
};
std::string describe(const ConvCase& t) {
  return "x [" + std::to_string(t.n) + "," + std::to_string(t.c) + "," + std::to_string(t.h) + "," +
         std::to_string(t.w) + "] o " + std::to_string(t.o) + " k " + std::to_string(t.k) + " stride " +
         std::to_string(t.options.stride[0]) + "," + std::to_string(t.options.stride[1]) + " pad " +
         std::to_string(t.options.padding[0]) + "," + std::to_string(t.options.padding[1]) + " dil " +
         std::to_string(t.options.dilation[0]) + "," + std::to_string(t.options.dilation[1]) + " groups " +
         std::to_string(t.options.groups);
}

// A deterministic sweep over N 1-3, C 1/3/5 (and 4, 6 for groups 2), H, W 1/7/13, kernels 1/3/5,
// stride 1/2, padding 0/1/2, dilation 1/2, groups 1 / C (depthwise) / 2; cases whose dilated
// kernel exceeds the padded input are skipped (the error test covers them).
std::vector<ConvCase> conv_cases() {
  std::vector<ConvCase> cases;
  const int64_t sizes[] = {1, 7, 13};
  const int64_t kernels[] = {1, 3, 5};
  int counter = 0;
  for (int64_t c : {1, 3, 5, 4, 6})
    for (int64_t h : sizes)
      for (int64_t k : kernels) {
        ++counter;
        ConvCase t;
        t.n = 1 + counter % 3;
        t.c = c;
        t.h = h;
        t.w = sizes[(counter + 1) % 3];
        t.k = k;
        const int64_t group_mode = counter % 3;  // 0: groups 1, 1: depthwise, 2: groups 2 (even C)
        t.options.groups = group_mode == 1 ? c : (group_mode == 2 && c % 2 == 0 ? 2 : 1);
        t.o = t.options.groups * (1 + counter % 2) + (t.options.groups == 1 ? counter % 3 : 0);
        t.options.stride = {1 + counter % 2, 1 + (counter / 2) % 2};
        t.options.padding = {counter % 3, (counter / 3) % 3};
        t.options.dilation = {1 + (counter / 5) % 2, 1 + (counter / 7) % 2};
        const int64_t ext0 = t.options.dilation[0] * (k - 1) + 1, ext1 = t.options.dilation[1] * (k - 1) + 1;
        if (ext0 > t.h + 2 * t.options.padding[0] || ext1 > t.w + 2 * t.options.padding[1]) {
          t.options.dilation = {1, 1};  // try without dilation, then with more padding
          if (k > t.h + 2 * t.options.padding[0] || k > t.w + 2 * t.options.padding[1]) t.options.padding = {k / 2, k / 2};
          if (k > t.h + 2 * t.options.padding[0] || k > t.w + 2 * t.options.padding[1]) continue;
        }
        cases.push_back(t);
      }
  return cases;
}

struct ConvInputs {
  Tensor x, w, b;
};
ConvInputs conv_inputs(const ConvCase& t, DType dtype, bool with_bias = true) {
  return {random_tensor({t.n, t.c, t.h, t.w}, dtype), random_tensor({t.o, t.c / t.options.groups, t.k, t.k}, dtype),
          with_bias ? random_tensor({t.o}, dtype) : Tensor()};
}

// An NHWC-stored tensor seen as NCHW (a permuted view, not contiguous).
Tensor channels_last(const Tensor& x) {
  Tensor stored = x.permute({0, 2, 3, 1}).contiguous();
  return stored.permute({0, 3, 1, 2});
}

// The dtypes convolution and batch_norm run here: f32 and bf16 need oneDNN (a build without it
// throws for them, checked in "without oneDNN ..." below).
std::vector<DType> conv_dtypes() {
  if (cpu::onednn::available()) return {DType::f64, DType::f32, DType::bf16};
  return {DType::f64};
}
std::vector<DType> onednn_dtypes() {
  if (cpu::onednn::available()) return {DType::f32, DType::bf16};
  return {};
}

Tensor leaf(const Shape& shape, double low = -2.0, double high = 2.0) {
  return random_tensor(shape, DType::f64, low, high).requires_grad_();
}

}  // namespace

// ---- conv2d forward ------------------------------------------------------------------------------
TEST_CASE("conv2d matches the float64 reference (f64 loops, f32 and bf16 oneDNN)", "[conv][conv2d]") {
  const std::vector<ConvCase> cases = conv_cases();
  REQUIRE(cases.size() >= 30);
  for (const ConvCase& t : cases) {
    for (DType dtype : conv_dtypes()) {
      const ConvInputs in = conv_inputs(t, dtype);
      const RefTensor rx = ref_of(in.x), rw = ref_of(in.w), rb = ref_of(in.b);
      const RefTensor expected = ref_conv2d(rx, rw, &rb, t.options);
      const RefTensor scale = ref_conv2d(rx, rw, &rb, t.options, true);
      const double factor = dtype == DType::f64 ? 1e-13 : dtype == DType::f32 ? 1e-5 : 1e-2;
      const std::string what = describe(t) + " " + std::string(dtype_name(dtype));
      check_scaled(conv2d(in.x, in.w, in.b, t.options), expected, scale, factor, 1e-12, what);
      // No bias; and a channels-last (permuted) input with a transposed-storage weight.
      check_scaled(conv2d(in.x, in.w, {}, t.options), ref_conv2d(rx, rw, nullptr, t.options), scale, factor, 1e-12,
                   what + " no bias");
      check_scaled(conv2d(channels_last(in.x), non_contiguous(in.w), in.b, t.options), expected, scale, factor, 1e-12,
                   what + " channels-last");
    }
  }
}

TEST_CASE("conv2d handles f16, unbatched input, empty batches and zero-sized outputs", "[conv][conv2d]") {
  if (!cpu::onednn::available()) return;
  const ConvCase t{2, 3, 7, 7, 4, 3, {.stride = {2, 1}, .padding = {1, 0}}};
  const ConvInputs in = conv_inputs(t, DType::f16);
  const RefTensor rx = ref_of(in.x), rw = ref_of(in.w), rb = ref_of(in.b);
  check_scaled(conv2d(in.x, in.w, in.b, t.options), ref_conv2d(rx, rw, &rb, t.options),
               ref_conv2d(rx, rw, &rb, t.options, true), 2e-3, 0, "f16");
  // Unbatched (C, H, W).
  const Tensor x3 = random_tensor({3, 7, 7}, DType::f32);
  const Tensor w3 = random_tensor({4, 3, 3, 3}, DType::f32);
  const Tensor y3 = conv2d(x3, w3, {}, t.options);
  REQUIRE(y3.shape() == Shape{4, 4, 5});
  check_matches(y3, ref_of(conv2d(x3.unsqueeze(0), w3, {}, t.options).squeeze(0)), Tolerance{0, 0});
  // Empty batch: shapes follow, values are empty; gradients flow as zeros.
  for (DType dtype : {DType::f32, DType::f64}) {
    Tensor x0 = zeros({0, 3, 7, 7}, {.dtype = dtype}).requires_grad_();
    Tensor w0 = random_tensor({4, 3, 3, 3}, dtype).requires_grad_();
    Tensor b0 = random_tensor({4}, dtype).requires_grad_();
    Tensor y0 = conv2d(x0, w0, b0, t.options);
    REQUIRE(y0.shape() == Shape{0, 4, 4, 5});
    sum(y0).backward();
    REQUIRE(w0.grad().shape() == w0.shape());
    CHECK(sum(abs(w0.grad())).item<double>() == 0);
    CHECK(sum(abs(b0.grad())).item<double>() == 0);
  }
}

TEST_CASE("conv2d reuses cached oneDNN primitives for repeated shapes", "[conv][conv2d]") {
  if (!cpu::onednn::available()) return;
  const Tensor x = random_tensor({2, 3, 9, 9}, DType::f32), w = random_tensor({5, 3, 3, 3}, DType::f32);
  conv2d(x, w, {}, {.padding = {1, 1}});
  const size_t cached = cpu::onednn::cached_primitives();
  for (int i = 0; i < 3; ++i) conv2d(x, w, {}, {.padding = {1, 1}});
  CHECK(cpu::onednn::cached_primitives() == cached);
  conv2d(x, w, {}, {.padding = {2, 2}});
  CHECK(cpu::onednn::cached_primitives() == cached + 1);
}

// ---- conv2d gradients ------------------------------------------------------------------------------
TEST_CASE("conv2d gradcheck and gradgradcheck in f64", "[conv][conv2d][autograd]") {
  const std::vector<ConvCase> cases = {
      {2, 2, 5, 4, 3, 3, {.stride = {1, 2}, .padding = {1, 0}}},
      {1, 4, 5, 5, 4, 3, {.stride = {2, 2}, .padding = {1, 1}, .dilation = {1, 2}, .groups = 4}},  // depthwise
      {2, 4, 4, 5, 2, 2, {.padding = {0, 1}, .groups = 2}},
  };
  for (const ConvCase& t : cases) {
    INFO(describe(t));
    const Tensor x = leaf({t.n, t.c, t.h, t.w}), w = leaf({t.o, t.c / t.options.groups, t.k, t.k}), b = leaf({t.o});
    auto fn = [&](const TensorList& in) { return conv2d(in[0], in[1], in[2], t.options); };
    CHECK(autograd::gradcheck(fn, {x, w, b}));
    CHECK(autograd::gradgradcheck(fn, {x, w, b}));
    // A channels-last view as the input.
    const Tensor xl = channels_last(random_tensor({t.n, t.c, t.h, t.w}, DType::f64)).requires_grad_();
    CHECK(autograd::gradcheck(fn, {xl, w, b}));
    // The backward ops on their own, differentiated again.
    const Shape y_shape = conv2d(x, w, {}, t.options).shape();
    const Tensor dy = leaf(y_shape);
    auto input_fn = [&](const TensorList& in) { return conv2d_backward_input(in[0], in[1], x.shape(), t.options); };
    CHECK(autograd::gradcheck(input_fn, {dy, w}));
    CHECK(autograd::gradgradcheck(input_fn, {dy, w}));
    auto weight_fn = [&](const TensorList& in) { return conv2d_backward_weight(in[0], in[1], w.shape(), t.options); };
    CHECK(autograd::gradcheck(weight_fn, {dy, x}));
    CHECK(autograd::gradgradcheck(weight_fn, {dy, x}));
  }
}

TEST_CASE("conv2d f32 (oneDNN) and bf16 gradients match the f64 gradients", "[conv][conv2d][autograd]") {
  for (const ConvCase& t : conv_cases()) {
    const ConvInputs in64 = conv_inputs(t, DType::f64);
    const Tensor y64 = conv2d(in64.x, in64.w, in64.b, t.options);
    const Tensor dy64 = random_tensor(y64.shape(), DType::f64);
    const Tensor dx64 = conv2d_backward_input(dy64, in64.w, in64.x.shape(), t.options);
    const Tensor dw64 = conv2d_backward_weight(dy64, in64.x, in64.w.shape(), t.options);
    // Scales: the same sums with |values|.
    const Tensor dx_scale = conv2d_backward_input(abs(dy64), abs(in64.w), in64.x.shape(), t.options);
    const Tensor dw_scale = conv2d_backward_weight(abs(dy64), abs(in64.x), in64.w.shape(), t.options);
    for (DType dtype : onednn_dtypes()) {
      const std::string what = describe(t) + " " + std::string(dtype_name(dtype));
      // Inputs rounded to dtype first, so the references see the same numbers.
      Tensor x = in64.x.to(dtype).requires_grad_(), w = in64.w.to(dtype).requires_grad_(),
             b = in64.b.to(dtype).requires_grad_();
      const Tensor dy = dy64.to(dtype);
      const Tensor dx_ref = conv2d_backward_input(dy.to(DType::f64), w.detach().to(DType::f64), x.shape(), t.options);
      const Tensor dw_ref = conv2d_backward_weight(dy.to(DType::f64), x.detach().to(DType::f64), w.shape(), t.options);
      conv2d(x, w, b, t.options).backward(dy);
      const double factor = dtype == DType::f32 ? 1e-5 : 1.6e-2;
      check_scaled(x.grad(), ref_of(dx_ref), ref_of(dx_scale), factor, 1e-6, what + " dx");
      check_scaled(w.grad(), ref_of(dw_ref), ref_of(dw_scale), factor, 1e-6, what + " dw");
      check_scaled(b.grad(), ref_of(sum(dy.to(DType::f64), {0, 2, 3})), ref_of(sum(abs(dy64), {0, 2, 3})), factor,
                   1e-6, what + " db");
    }
  }
}

// ---- max_pool2d ------------------------------------------------------------------------------------
TEST_CASE("max_pool2d matches the reference and PyTorch's numbers", "[conv][pool]") {
  struct Case {
    Shape shape;
    MaxPool2dOptions options;
  };
  const std::vector<Case> cases = {
      {{2, 3, 7, 7}, {.kernel_size = {2, 2}}},
      {{1, 5, 13, 7}, {.kernel_size = {3, 3}, .stride = Size2{2, 2}, .padding = {1, 1}}},
      {{3, 1, 13, 13}, {.kernel_size = {3, 2}, .stride = Size2{2, 3}, .padding = {1, 1}, .ceil_mode = true}},
      {{1, 3, 7, 13}, {.kernel_size = {3, 3}, .stride = Size2{1, 2}, .padding = {1, 0}, .dilation = {2, 2}}},
      {{2, 2, 13, 7}, {.kernel_size = {5, 3}, .stride = Size2{2, 2}, .padding = {2, 1}, .dilation = {1, 2}, .ceil_mode = true}},
      {{1, 1, 1, 1}, {.kernel_size = {1, 1}}},
      {{2, 3, 7, 1}, {.kernel_size = {3, 1}, .stride = Size2{2, 1}, .ceil_mode = true}},
  };
  for (const Case& c : cases) {
    for (DType dtype : {DType::f64, DType::f32, DType::bf16, DType::f16}) {
      INFO("shape " << to_string(c.shape) << " dtype " << dtype_name(dtype));
      const Tensor x = random_tensor(c.shape, dtype);
      const RefPool expected = ref_max_pool2d(ref_of(x), c.options);
      auto [values, indices] = max_pool2d_with_indices(x, c.options);
      check_matches(values, expected.values, Tolerance{0, 0}, "values");
      check_matches(indices, expected.indices, Tolerance{0, 0}, "indices");
      check_matches(max_pool2d(non_contiguous(x), c.options), expected.values, Tolerance{0, 0}, "non-contiguous");
    }
  }
  // torch 1.13: F.max_pool2d(arange(25.).reshape(1,1,5,5), 3, 2, 1, ceil_mode=True, return_indices=True)
  const Tensor x = arange(0, 25, 1, {.dtype = DType::f64}).reshape({1, 1, 5, 5});
  auto [v1, i1] = max_pool2d_with_indices(x, {.kernel_size = {3, 3}, .stride = Size2{2, 2}, .padding = {1, 1}, .ceil_mode = true});
  check_matches(v1, {{1, 1, 3, 3}, {6, 8, 9, 16, 18, 19, 21, 23, 24}}, Tolerance{0, 0});
  check_matches(i1, {{1, 1, 3, 3}, {6, 8, 9, 16, 18, 19, 21, 23, 24}}, Tolerance{0, 0});
  // F.max_pool2d(-x, 2, 2, 1, dilation=2, ceil_mode=True, return_indices=True)
  auto [v2, i2] = max_pool2d_with_indices(-x, {.kernel_size = {2, 2}, .stride = Size2{2, 2}, .padding = {1, 1},
                                               .dilation = {2, 2}, .ceil_mode = true});
  check_matches(v2, {{1, 1, 3, 3}, {-6, -6, -8, -6, -6, -8, -16, -16, -18}}, Tolerance{0, 0});
  check_matches(i2, {{1, 1, 3, 3}, {6, 6, 8, 6, 6, 8, 16, 16, 18}}, Tolerance{0, 0});
  // NaN is the maximum; PyTorch's CPU kernel keeps the last NaN's index.
  const Tensor with_nan = tensor({{{{1.0, NAN, 3.0}, {NAN, 2.0, 0.0}}}});
  auto [v3, i3] = max_pool2d_with_indices(with_nan, {.kernel_size = {2, 3}});
  CHECK(std::isnan(v3.item<double>()));
  CHECK(i3.item<int64_t>() == 3);
  // Unbatched and empty batch.
  CHECK(max_pool2d(x.squeeze(0), {.kernel_size = {2, 2}}).shape() == Shape{1, 2, 2});
  CHECK(max_pool2d(zeros({0, 2, 5, 5}), {.kernel_size = {2, 2}}).shape() == Shape{0, 2, 2, 2});
}

// Distinct values (a scaled permutation of 0..n-1): central differences need unique maxima.
Tensor distinct_leaf(const Shape& shape) {
  const int64_t n = shape_numel(shape);
  std::vector<double> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[i] = static_cast<double>((i * 7919) % n) * 0.1 - 1.0;
  REQUIRE(n % 7919 != 0);
  return from_blob(values.data(), shape, {.dtype = DType::f64}).clone().requires_grad_();
}

TEST_CASE("max_pool2d gradients", "[conv][pool][autograd]") {
  const std::vector<MaxPool2dOptions> options = {
      {.kernel_size = {2, 2}},
      {.kernel_size = {3, 3}, .stride = Size2{2, 1}, .padding = {1, 1}, .ceil_mode = true},  // overlapping windows
      {.kernel_size = {2, 3}, .stride = Size2{1, 2}, .padding = {1, 0}, .dilation = {2, 1}},
  };
  for (const MaxPool2dOptions& o : options) {
    const Tensor x = distinct_leaf({2, 2, 7, 6});
    auto fn = [&](const TensorList& in) { return max_pool2d(in[0], o); };
    CHECK(autograd::gradcheck(fn, {x}));
    CHECK(autograd::gradgradcheck(fn, {x}));
    // f32 gradient equals the f64 one exactly (a scatter of the same values).
    const Tensor x32 = x.detach().to(DType::f32).requires_grad_();
    const Tensor y32 = max_pool2d(x32, o);
    const Tensor dy = random_tensor(y32.shape(), DType::f32);
    y32.backward(dy);
    const Tensor x64 = x.detach().requires_grad_();
    max_pool2d(x64, o).backward(dy.to(DType::f64));
    check_matches(x32.grad(), ref_of(x64.grad()), Tolerance{1e-6, 1e-6});
  }
}

// ---- avg_pool2d / adaptive_avg_pool2d ------------------------------------------------------------
TEST_CASE("avg_pool2d matches the reference and PyTorch's numbers", "[conv][pool]") {
  struct Case {
    Shape shape;
    AvgPool2dOptions options;
  };
  const std::vector<Case> cases = {
      {{2, 3, 7, 7}, {.kernel_size = {2, 2}}},
      {{1, 5, 13, 7}, {.kernel_size = {3, 3}, .stride = Size2{2, 2}, .padding = {1, 1}}},
      {{1, 5, 13, 7}, {.kernel_size = {3, 3}, .stride = Size2{2, 2}, .padding = {1, 1}, .count_include_pad = false}},
      {{3, 1, 13, 13}, {.kernel_size = {3, 2}, .stride = Size2{2, 3}, .padding = {1, 1}, .ceil_mode = true}},
      {{3, 1, 13, 13},
       {.kernel_size = {3, 2}, .stride = Size2{2, 3}, .padding = {1, 1}, .ceil_mode = true, .count_include_pad = false}},
      {{2, 2, 13, 7}, {.kernel_size = {5, 3}, .stride = Size2{3, 2}, .padding = {2, 1}, .ceil_mode = true,
                       .divisor_override = 4}},
      {{1, 1, 1, 1}, {.kernel_size = {1, 1}}},
      {{2, 3, 7, 1}, {.kernel_size = {3, 1}, .stride = Size2{2, 1}, .ceil_mode = true}},
  };
  for (const Case& c : cases) {
    for (DType dtype : {DType::f64, DType::f32, DType::bf16, DType::f16}) {
      INFO("shape " << to_string(c.shape) << " dtype " << dtype_name(dtype));
      const Tensor x = random_tensor(c.shape, dtype);
      const RefTensor expected = ref_avg_pool2d(ref_of(x), c.options);
      check_matches(avg_pool2d(x, c.options), expected);
      check_matches(avg_pool2d(non_contiguous(x), c.options), expected);
    }
  }
  // torch 1.13 on arange(25.).reshape(1,1,5,5) (and arange(49.) 7x7).
  const Tensor x = arange(0, 25, 1, {.dtype = DType::f64}).reshape({1, 1, 5, 5});
  const Tolerance tol{1e-9, 1e-9};
  check_matches(avg_pool2d(x, {.kernel_size = {2, 2}, .ceil_mode = true}),
                {{1, 1, 3, 3}, {3.0, 5.0, 6.5, 13.0, 15.0, 16.5, 20.5, 22.5, 24.0}}, tol);
  check_matches(avg_pool2d(x, {.kernel_size = {3, 3}, .stride = Size2{2, 2}, .padding = {1, 1}, .ceil_mode = true}),
                {{1, 1, 3, 3}, {4.0 / 3, 3.0, 8.0 / 3, 7.0, 12.0, 9.0, 8.0, 13.0, 28.0 / 3}}, tol);
  check_matches(avg_pool2d(x, {.kernel_size = {3, 3}, .stride = Size2{2, 2}, .padding = {1, 1}, .ceil_mode = true,
                               .count_include_pad = false}),
                {{1, 1, 3, 3}, {3.0, 4.5, 6.0, 10.5, 12.0, 13.5, 18.0, 19.5, 21.0}}, tol);
  check_matches(avg_pool2d(x, {.kernel_size = {3, 3}, .stride = Size2{2, 2}, .padding = {1, 1}, .divisor_override = 7}),
                {{1, 1, 3, 3}, {12.0 / 7, 27.0 / 7, 24.0 / 7, 9.0, 108.0 / 7, 81.0 / 7, 72.0 / 7, 117.0 / 7, 12.0}}, tol);
  check_matches(avg_pool2d(x, {.kernel_size = {2, 2}, .stride = Size2{3, 3}, .padding = {1, 1}, .ceil_mode = true}),
                {{1, 1, 2, 2}, {0.0, 1.25, 6.25, 15.0}}, tol);
  const Tensor x7 = arange(0, 49, 1, {.dtype = DType::f64}).reshape({1, 1, 7, 7});
  check_matches(avg_pool2d(x7, {.kernel_size = {2, 2}, .padding = {1, 1}, .ceil_mode = true, .count_include_pad = false}),
                {{1, 1, 4, 4}, {0.0, 1.5, 3.5, 5.5, 10.5, 12.0, 14.0, 16.0, 24.5, 26.0, 28.0, 30.0, 38.5, 40.0, 42.0, 44.0}},
                tol);
  check_matches(adaptive_avg_pool2d(x, {3, 2}), {{1, 1, 3, 2}, {3.5, 5.5, 11.0, 13.0, 18.5, 20.5}}, tol);
}

TEST_CASE("adaptive_avg_pool2d matches the reference", "[conv][pool]") {
  for (const Shape& shape : std::vector<Shape>{{2, 3, 7, 7}, {1, 5, 13, 1}, {3, 1, 1, 13}, {2, 2, 5, 8}})
    for (Size2 out : std::vector<Size2>{{1, 1}, {3, 2}, {7, 7}, {2, 5}})
      for (DType dtype : {DType::f64, DType::f32, DType::bf16}) {
        INFO("shape " << to_string(shape) << " out " << out[0] << "x" << out[1] << " " << dtype_name(dtype));
        const Tensor x = random_tensor(shape, dtype);
        check_matches(adaptive_avg_pool2d(x, out), ref_adaptive_avg_pool2d(ref_of(x), out));
        check_matches(adaptive_avg_pool2d(channels_last(x), out), ref_adaptive_avg_pool2d(ref_of(x), out));
      }
  CHECK(adaptive_avg_pool2d(zeros({0, 2, 5, 5}), {1, 1}).shape() == Shape{0, 2, 1, 1});
}

TEST_CASE("avg_pool2d and adaptive_avg_pool2d gradients", "[conv][pool][autograd]") {
  const std::vector<AvgPool2dOptions> options = {
      {.kernel_size = {2, 2}},
      {.kernel_size = {3, 3}, .stride = Size2{2, 1}, .padding = {1, 1}, .ceil_mode = true},
      {.kernel_size = {3, 2}, .stride = Size2{2, 2}, .padding = {1, 1}, .ceil_mode = true, .count_include_pad = false},
      {.kernel_size = {2, 3}, .stride = Size2{1, 2}, .padding = {1, 0}, .divisor_override = 5},
  };
  for (const AvgPool2dOptions& o : options) {
    const Tensor x = leaf({2, 2, 7, 6});
    auto fn = [&](const TensorList& in) { return avg_pool2d(in[0], o); };
    CHECK(autograd::gradcheck(fn, {x}));
    CHECK(autograd::gradgradcheck(fn, {x}));
    // bf16 forward, f32-accumulated backward against f64.
    const Tensor x16 = x.detach().to(DType::bf16).requires_grad_();
    const Tensor y16 = avg_pool2d(x16, o);
    const Tensor dy = random_tensor(y16.shape(), DType::bf16);
    y16.backward(dy);
    const Tensor x64 = x16.detach().to(DType::f64).requires_grad_();
    avg_pool2d(x64, o).backward(dy.to(DType::f64));
    check_matches(x16.grad(), ref_of(x64.grad()));
  }
  for (Size2 out : std::vector<Size2>{{3, 2}, {1, 1}, {4, 5}}) {
    const Tensor x = leaf({2, 2, 7, 6});
    auto fn = [&](const TensorList& in) { return adaptive_avg_pool2d(in[0], out); };
    CHECK(autograd::gradcheck(fn, {x}));
    CHECK(autograd::gradgradcheck(fn, {x}));
  }
}

// ---- batch_norm ------------------------------------------------------------------------------------
TEST_CASE("batch_norm matches the reference in training and eval mode", "[conv][batch_norm]") {
  // C >= 16 runs oneDNN's blocked (nChw16c) kernel with reorders; 17 pads the last block.
  for (const Shape& shape :
       std::vector<Shape>{{4, 3, 5, 7}, {3, 5}, {2, 3, 13}, {1, 1, 7, 7}, {5, 2, 1, 1}, {3, 17, 5, 3}, {2, 32, 4}}) {
    for (DType dtype : conv_dtypes()) {
      for (bool training : {true, false}) {
        for (bool affine : {true, false}) {
          INFO("shape " << to_string(shape) << " " << dtype_name(dtype) << " training " << training << " affine "
                        << affine);
          const int64_t c = shape[1];
          const Tensor x = random_tensor(shape, dtype);
          const Tensor weight = affine ? random_tensor({c}, dtype) : Tensor();
          const Tensor bias = affine ? random_tensor({c}, dtype) : Tensor();
          Tensor running_mean = random_tensor({c}, DType::f32, -0.5, 0.5);
          Tensor running_var = random_tensor({c}, DType::f32, 0.5, 1.5);
          const std::vector<double> rm = ref_of(running_mean).values, rv = ref_of(running_var).values;
          const RefTensor rw = affine ? ref_of(weight) : RefTensor{}, rb = affine ? ref_of(bias) : RefTensor{};
          std::vector<double> batch_mean(c), batch_var(c);
          const RefTensor expected =
              ref_batch_norm(ref_of(x), training ? nullptr : &rm, training ? nullptr : &rv, affine ? &rw : nullptr,
                             affine ? &rb : nullptr, 1e-5, &batch_mean, &batch_var);
          const Tensor y = batch_norm(non_contiguous(x), running_mean, running_var, weight, bias, training, 0.1, 1e-5);
          check_matches(y, expected, dtype == DType::f32 ? Tolerance{1e-4, 1e-4} : tolerance_for(dtype));
          // Running statistics: updated with the unbiased variance in training, untouched in eval.
          const double count = static_cast<double>(x.numel() / c);
          RefTensor new_mean{{c}, rm}, new_var{{c}, rv};
          if (training)
            for (int64_t i = 0; i < c; ++i) {
              new_mean.values[i] = 0.9 * rm[i] + 0.1 * batch_mean[i];
              new_var.values[i] = 0.9 * rv[i] + 0.1 * batch_var[i] * count / (count - 1);
            }
          check_matches(running_mean, new_mean, Tolerance{1e-5, 1e-5});
          check_matches(running_var, new_var, Tolerance{1e-5, 1e-5});
        }
      }
    }
  }
}

TEST_CASE("batch_norm running statistics follow PyTorch over several steps", "[conv][batch_norm]") {
  // torch 1.13: rm = zeros(3), rv = ones(3); for step in range(3):
  //   xb = arange(24.).reshape(2,3,2,2) * (step+1) * 0.1 + step; F.batch_norm(xb, rm, rv, None, None, True, 0.3)
  for (DType dtype : conv_dtypes()) {
    INFO(dtype_name(dtype));
    Tensor rm = zeros({3}), rv = ones({3});
    for (int step = 0; step < 3; ++step) {
      const Tensor xb = (arange(0, 24, 1, {.dtype = DType::f64}).reshape({2, 3, 2, 2}) * ((step + 1) * 0.1) + step).to(dtype);
      batch_norm(xb, rm, rv, {}, {}, true, 0.3, 1e-5);
    }
    const Tolerance tol = dtype == DType::bf16 ? Tolerance{2e-2, 2e-2} : Tolerance{1e-5, 1e-5};
    check_matches(rm, {{3}, {1.9102501869, 2.4970500469, 3.0838501453}}, tol, "running_mean");
    check_matches(rv, {{3}, {1.9126087427, 1.9126086235, 1.9126086235}}, tol, "running_var");
  }
  // No running statistics in training: batch statistics only.
  const Tensor x = random_tensor({4, 3, 2, 2}, cpu::onednn::available() ? DType::f32 : DType::f64);
  check_matches(batch_norm(x, {}, {}, {}, {}, true), ref_batch_norm(ref_of(x), nullptr, nullptr, nullptr, nullptr, 1e-5,
                                                                    nullptr, nullptr),
                Tolerance{1e-4, 1e-4});
  // Empty batch: an empty result, statistics untouched.
  Tensor rm = zeros({3}), rv = ones({3});
  CHECK(batch_norm(zeros({0, 3, 2, 2}), rm, rv, {}, {}, true).shape() == Shape{0, 3, 2, 2});
  CHECK(sum(rm).item<double>() == 0);
  CHECK(sum(rv).item<double>() == 3);
}

TEST_CASE("batch_norm gradients: gradcheck, gradgradcheck, oneDNN against f64", "[conv][batch_norm][autograd]") {
  for (bool training : {true, false}) {
    INFO("training " << training);
    const Tensor x = leaf({3, 2, 3, 2}), w = leaf({2}), b = leaf({2});
    const Tensor rm = random_tensor({2}, DType::f64, -0.5, 0.5), rv = random_tensor({2}, DType::f64, 0.5, 1.5);
    auto fn = [&](const TensorList& in) {
      Tensor m = rm.clone(), v = rv.clone();  // fresh statistics: every call sees the same ones
      return batch_norm(in[0], m, v, in[1], in[2], training, 0.1, 1e-5);
    };
    CHECK(autograd::gradcheck(fn, {x, w, b}));
    CHECK(autograd::gradgradcheck(fn, {x, w, b}));
    // 2-D and 3-D inputs, no affine parameters.
    const Tensor x2 = leaf({5, 3}), x3 = leaf({2, 3, 4});
    auto plain = [&](const TensorList& in) {
      Tensor m = zeros({in[0].shape()[1]}, {.dtype = DType::f64}), v = ones({in[0].shape()[1]}, {.dtype = DType::f64});
      return batch_norm(in[0], m, v, {}, {}, training);
    };
    CHECK(autograd::gradcheck(plain, {x2}));
    CHECK(autograd::gradcheck(plain, {x3}));
    // oneDNN's backward in f32 and bf16 against the f64 composite.
    for (const Shape& shape : std::vector<Shape>{{4, 3, 5, 7}, {3, 17, 5, 3}})
    for (DType dtype : onednn_dtypes()) {
      INFO(dtype_name(dtype) << " shape " << to_string(shape));
      const int64_t c = shape[1];
      const Tensor xs = random_tensor(shape, dtype).requires_grad_();
      const Tensor ws = random_tensor({c}, dtype).requires_grad_(), bs = random_tensor({c}, dtype).requires_grad_();
      const Tensor dy = random_tensor(shape, dtype);
      Tensor m = random_tensor({c}, DType::f32, -0.5, 0.5), v = random_tensor({c}, DType::f32, 0.5, 1.5);
      Tensor m64 = m.to(DType::f64), v64 = v.to(DType::f64);
      batch_norm(xs, m, v, ws, bs, training).backward(dy);
      const Tensor x64 = xs.detach().to(DType::f64).requires_grad_();
      const Tensor w64 = ws.detach().to(DType::f64).requires_grad_(), b64 = bs.detach().to(DType::f64).requires_grad_();
      batch_norm(x64, m64, v64, w64, b64, training).backward(dy.to(DType::f64));
      const Tolerance tol = dtype == DType::f32 ? Tolerance{1e-4, 1e-4} : Tolerance{5e-2, 3e-2};
      check_matches(xs.grad(), ref_of(x64.grad()), tol, "dx");
      check_matches(ws.grad(), ref_of(w64.grad()), dtype == DType::f32 ? tol : Tolerance{0.3, 3e-2}, "dw");
      check_matches(bs.grad(), ref_of(b64.grad()), dtype == DType::f32 ? tol : Tolerance{0.3, 3e-2}, "db");
    }
  }
}

TEST_CASE("without oneDNN, f32 convolution and batch_norm say what to build", "[conv][errors]") {
  if (cpu::onednn::available()) return;
  const Tensor x = random_tensor({2, 3, 7, 7}, DType::f32);
  check_error([&] { conv2d(x, random_tensor({4, 3, 3, 3}, DType::f32)); },
              {"[conv2d] needs oneDNN (build with KEEL_ONEDNN=ON)"});
  check_error([&] { conv2d_backward_input(zeros({2, 4, 5, 5}), zeros({4, 3, 3, 3}), {2, 3, 7, 7}); },
              {"[conv2d_backward_input] needs oneDNN"});
  check_error([&] { batch_norm(x, {}, {}, {}, {}, true); }, {"[batch_norm] needs oneDNN"});
  // Pooling and f64 need no oneDNN.
  CHECK(max_pool2d(x, {.kernel_size = {2, 2}}).shape() == Shape{2, 3, 3, 3});
  CHECK(conv2d(x.to(DType::f64), random_tensor({4, 3, 3, 3}, DType::f64)).shape() == Shape{2, 4, 5, 5});
}

// ---- errors ----------------------------------------------------------------------------------------
TEST_CASE("conv, pooling and batch_norm errors name the op and the shapes", "[conv][errors]") {
  const Tensor x = random_tensor({2, 3, 7, 7}, DType::f32);
  check_error([&] { conv2d(x, random_tensor({4, 2, 3, 3}, DType::f32)); },
              {"[conv2d]", "3 channels", "[4, 2, 3, 3]", "[2, 3, 7, 7]"});
  check_error([&] { conv2d(x, random_tensor({4, 1, 3, 3}, DType::f32), {}, {.groups = 2}); },
              {"[conv2d]", "groups = 2 does not divide", "[2, 3, 7, 7]"});
  check_error([&] { conv2d(random_tensor({2, 4, 7, 7}, DType::f32), random_tensor({3, 2, 3, 3}, DType::f32), {}, {.groups = 2}); },
              {"[conv2d]", "groups = 2 does not divide the weight's 3", "[3, 2, 3, 3]"});
  check_error([&] { conv2d(x, random_tensor({4, 3, 9, 9}, DType::f32), {}, {.padding = {0, 0}}); },
              {"[conv2d]", "larger than the padded input", "[2, 3, 7, 7]", "[4, 3, 9, 9]"});
  check_error([&] { conv2d(x, random_tensor({4, 3, 5, 5}, DType::f32), {}, {.dilation = {2, 2}}); },
              {"[conv2d]", "dilated size 9", "size 7"});
  check_error([&] { conv2d(random_tensor({3, 7}, DType::f32), random_tensor({4, 3, 3, 3}, DType::f32)); },
              {"[conv2d]", "4-D input", "[3, 7]"});
  check_error([&] { conv2d(x, random_tensor({4, 3, 3}, DType::f32)); }, {"[conv2d]", "4-D weight", "[4, 3, 3]"});
  check_error([&] { conv2d(x, random_tensor({4, 3, 3, 3}, DType::f64)); }, {"[conv2d]", "one dtype", "float64"});
  check_error([&] { conv2d(x, random_tensor({4, 3, 3, 3}, DType::f32), random_tensor({5}, DType::f32)); },
              {"[conv2d]", "bias must have shape [4]", "[5]"});
  check_error([&] { conv2d(x, random_tensor({4, 3, 3, 3}, DType::f32), {}, {.stride = {0, 1}}); },
              {"[conv2d]", "stride must be positive"});
  check_error([&] { conv2d(x.to(DType::i32), random_tensor({4, 3, 3, 3}, DType::i32)); }, {"[conv2d]", "floating"});
  check_error([&] { conv2d_backward_input(zeros({2, 4, 3, 3}), zeros({4, 3, 3, 3}), {2, 3, 7, 7}); },
              {"[conv2d_backward_input]", "grad_output has shape [2, 4, 3, 3]", "[2, 4, 5, 5]"});
  check_error([&] { max_pool2d(x, {.kernel_size = {2, 2}, .padding = {2, 2}}); },
              {"[max_pool2d]", "at most half the kernel size", "[2, 2]"});
  check_error([&] { max_pool2d(x, {.kernel_size = {9, 9}}); }, {"[max_pool2d]", "output would be empty", "[2, 3, 7, 7]"});
  check_error([&] { max_pool2d(zeros({7, 7}), {.kernel_size = {2, 2}}); }, {"[max_pool2d]", "4-D input", "[7, 7]"});
  check_error([&] { avg_pool2d(x, {.kernel_size = {0, 2}}); }, {"[avg_pool2d]", "kernel_size must be positive"});
  check_error([&] { avg_pool2d(x, {.kernel_size = {2, 2}, .divisor_override = 0}); }, {"[avg_pool2d]", "divisor_override"});
  check_error([&] { adaptive_avg_pool2d(x, {0, 2}); }, {"[adaptive_avg_pool2d]", "output_size must be positive"});
  check_error([&] { batch_norm(x, zeros({4}), ones({4})); }, {"[batch_norm]", "running_mean must have shape [3]", "[4]"});
  check_error([&] { batch_norm(x, {}, {}, {}, {}, false); }, {"[batch_norm]", "required in evaluation mode"});
  check_error([&] { batch_norm(zeros({1, 3}), {}, {}, {}, {}, true); },
              {"[batch_norm]", "more than 1 value per channel", "[1, 3]"});
  check_error([&] { batch_norm(zeros({3}), {}, {}, {}, {}, true); }, {"[batch_norm]", "at least 2 dims", "[3]"});
}
