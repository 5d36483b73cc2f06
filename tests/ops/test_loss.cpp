// Loss functions: values against float64 loops written here and against numbers from PyTorch
// 1.13 for fixed inputs; every reduction, class weights, ignore_index (all ignored: nan mean),
// label smoothing, probability targets, K-dimensional inputs [N, C, d1, d2], errors; gradcheck
// and gradgradcheck of every loss w.r.t. its input (and target where torch differentiates it).
#include <cmath>
#include <limits>

#include "keel/autograd/gradcheck.h"
#include "test_util.h"

using namespace keel;
using namespace keel::test;
using reference::RefTensor;
using autograd::TensorList;

namespace {

const double kNan = std::numeric_limits<double>::quiet_NaN();

std::vector<double> values_of(const Tensor& t) { return reference::from_tensor(t.cpu()).values; }

// ---- float64 references --------------------------------------------------------------------
// An input [N, C, d1, ...] (or [C]) is read as [N, C, R] with R = d1 * d2 * ...: element
// (n, c, r) is at n * C * R + c * R + r, and the target position (n, r) at n * R + r.
struct Layout {
  int64_t batch, classes, rest;
};
Layout layout_of(const Shape& shape) {
  if (shape.size() == 1) return {1, shape[0], 1};
  int64_t rest = 1;
  for (size_t k = 2; k < shape.size(); ++k) rest *= shape[k];
  return {shape[0], shape[1], rest};
}
Shape without_class_dim(const Shape& shape) {
  Shape result = shape;
  result.erase(result.begin() + (shape.size() == 1 ? 0 : 1));
  return result;
}

RefTensor reduce_ref(const Shape& shape, const std::vector<double>& losses, Reduction reduction, double denominator) {
  if (reduction == Reduction::none) return {shape, losses};
  double total = 0;
  for (double v : losses) total += v;
  return {{}, {reduction == Reduction::sum ? total : total / denominator}};
}

// log_softmax along the class dim, in double.
std::vector<double> log_softmax_ref(const std::vector<double>& x, Layout l) {
  std::vector<double> out(x.size());
  for (int64_t n = 0; n < l.batch; ++n) {
    for (int64_t r = 0; r < l.rest; ++r) {
      double top = -INFINITY;
      for (int64_t c = 0; c < l.classes; ++c) top = std::max(top, x[(n * l.classes + c) * l.rest + r]);
      double total = 0;
      for (int64_t c = 0; c < l.classes; ++c) total += std::exp(x[(n * l.classes + c) * l.rest + r] - top);
      for (int64_t c = 0; c < l.classes; ++c) {
        const int64_t i = (n * l.classes + c) * l.rest + r;
        out[i] = x[i] - top - std::log(total);
      }
    }
  }
  return out;
}

// nll of log-probabilities `lp` with class-index targets, label smoothing s (0 for nll_loss).
RefTensor class_index_ref(const Tensor& input, const std::vector<double>& lp, const Tensor& target,
                          const Tensor& weight, int64_t ignore_index, Reduction reduction, double s) {
  const Layout l = layout_of(input.shape());
  const std::vector<double> t = values_of(target);
  const std::vector<double> w = weight.defined() ? values_of(weight) : std::vector<double>(l.classes, 1.0);
  std::vector<double> losses(t.size(), 0.0);
  double denominator = 0;
  for (int64_t n = 0; n < l.batch; ++n) {
    for (int64_t r = 0; r < l.rest; ++r) {
      const int64_t target_class = static_cast<int64_t>(t[n * l.rest + r]);
      if (target_class == ignore_index) continue;
      double smooth = 0;
      for (int64_t c = 0; c < l.classes; ++c) smooth -= w[c] * lp[(n * l.classes + c) * l.rest + r];
      const double picked = -w[target_class] * lp[(n * l.classes + target_class) * l.rest + r];
      losses[n * l.rest + r] = (1 - s) * picked + s / l.classes * smooth;
      denominator += w[target_class];
    }
  }
  return reduce_ref(target.shape(), losses, reduction, denominator);
}

RefTensor cross_entropy_ref(const Tensor& input, const Tensor& target, const CrossEntropyOptions& o) {
  const Layout l = layout_of(input.shape());
  const std::vector<double> lp = log_softmax_ref(values_of(input), l);
  if (target.dtype() == DType::i64)
    return class_index_ref(input, lp, target, o.weight, o.ignore_index, o.reduction, o.label_smoothing);
  const std::vector<double> p = values_of(target);
  const std::vector<double> w = o.weight.defined() ? values_of(o.weight) : std::vector<double>(l.classes, 1.0);
  std::vector<double> losses(static_cast<size_t>(l.batch * l.rest), 0.0);
  for (int64_t n = 0; n < l.batch; ++n) {
    for (int64_t r = 0; r < l.rest; ++r) {
      for (int64_t c = 0; c < l.classes; ++c) {
        const int64_t i = (n * l.classes + c) * l.rest + r;
        const double q = (1 - o.label_smoothing) * p[i] + o.label_smoothing / l.classes;
        losses[n * l.rest + r] -= w[c] * q * lp[i];
      }
    }
  }
  return reduce_ref(without_class_dim(input.shape()), losses, o.reduction, static_cast<double>(l.batch * l.rest));
}

RefTensor nll_ref(const Tensor& input, const Tensor& target, const NllLossOptions& o) {
  return class_index_ref(input, values_of(input), target, o.weight, o.ignore_index, o.reduction, 0.0);
}

// An elementwise loss f(x, t) reduced.
RefTensor pointwise_ref(const Tensor& input, const Tensor& target, Reduction reduction,
                        const std::function<double(double, double)>& f) {
  const std::vector<double> x = values_of(input), t = values_of(target);
  std::vector<double> losses(x.size());
  for (size_t i = 0; i < x.size(); ++i) losses[i] = f(x[i], t[i]);
  if (reduction == Reduction::batchmean) {
    double total = 0;
    for (double v : losses) total += v;
    return {{}, {input.dim() == 0 ? total : total / static_cast<double>(input.shape()[0])}};
  }
  return reduce_ref(input.shape(), losses, reduction, static_cast<double>(x.size()));
}

const std::vector<Reduction> kReductions = {Reduction::none, Reduction::mean, Reduction::sum};
const char* name_of(Reduction r) {
  return r == Reduction::none ? "none" : r == Reduction::mean ? "mean" : r == Reduction::sum ? "sum" : "batchmean";
}

// Class indices in [0, C) with about a quarter replaced by ignore_index.
Tensor class_targets(const Shape& shape, int64_t num_classes, int64_t ignore_index, bool with_ignored) {
  Tensor t = randint(0, num_classes, shape);
  if (!with_ignored) return t;
  return where(rand(shape, {.dtype = DType::f64}) < 0.25, scalar_tensor(ignore_index), t);
}

Tensor f64_leaf(const Tensor& values) { return values.to(DType::f64).clone().requires_grad_(); }

void check_gradients(const autograd::SingleOutputFn& fn, const TensorList& inputs, const std::string& what) {
  INFO(what);
  CHECK_NOTHROW(autograd::gradcheck(fn, inputs));
  CHECK_NOTHROW(autograd::gradgradcheck(fn, inputs));
}

}  // namespace

// ---- numbers from PyTorch ------------------------------------------------------------------
// Produced by this script (torch 1.13, float64); values printed rounded to 12 decimals:
//   import torch, torch.nn.functional as F
//   d = torch.float64
//   x = torch.tensor([[0.5, -1.2, 2.0, 0.3], [1.5, 0.1, -0.7, -2.2], [-0.4, 0.9, 0.0, 1.1]], dtype=d)
//   t = torch.tensor([2, 0, 3]); t2 = torch.tensor([2, -100, 3])
//   w = torch.tensor([0.5, 1.0, 2.0, 1.5], dtype=d)
//   p = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]], dtype=d)
//   y = torch.tensor([[0.4, -0.2, 1.0, 0.3], [0.5, 0.9, -0.6, -1.2], [0.4, 0.1, 0.2, 0.5]], dtype=d)
//   F.cross_entropy(x, t)                                           # ce_mean
//   F.cross_entropy(x, t, weight=w, reduction='none')               # ce_none_w
//   F.cross_entropy(x, t2, weight=w)                                # ce_mean_w_ign
//   F.cross_entropy(x, t2, weight=w, label_smoothing=0.2)           # ce_mean_w_ign_ls
//   F.cross_entropy(x, t, reduction='sum', label_smoothing=0.2)     # ce_sum_ls
//   F.cross_entropy(x, p, weight=w, label_smoothing=0.1)            # ce_prob_mean_w_ls
//   xg = x.clone().requires_grad_(); F.cross_entropy(xg, t2, weight=w, label_smoothing=0.2).backward()
//   xg.grad                                                         # ce_grad_w_ign_ls
//   F.nll_loss(x, t2, weight=w)                                     # nll_mean_w_ign
//   F.mse_loss(x, y); F.l1_loss(x, y, reduction='sum')
//   F.smooth_l1_loss(x, y, beta=0.5); F.huber_loss(x, y, delta=0.7)
//   tb = torch.tensor([[1., 0., 1., 0.5], [0., 0., 1., 1.], [0.2, 1., 0., 1.]], dtype=d)
//   F.binary_cross_entropy_with_logits(x * 10, tb, weight=torch.tensor([1.0, 2.0, 0.5, 1.0], dtype=d),
//                                      pos_weight=torch.tensor([3.0, 0.5, 1.0, 2.0], dtype=d))
//   F.kl_div(F.log_softmax(x, 1), torch.tensor([[0.1, 0.2, 0.7, 0.0], [0.5, 0.5, 0., 0.],
//            [0.25, 0.25, 0.25, 0.25]], dtype=d), reduction='batchmean')
//   F.kl_div(F.log_softmax(x, 1), F.log_softmax(y, 1), reduction='none', log_target=True)
TEST_CASE("losses match PyTorch on fixed inputs", "[loss]") {
  const DType d = DType::f64;
  const Tensor x = tensor({{0.5, -1.2, 2.0, 0.3}, {1.5, 0.1, -0.7, -2.2}, {-0.4, 0.9, 0.0, 1.1}}, d);
  const Tensor t = tensor({2, 0, 3});
  const Tensor t2 = tensor({2, -100, 3});
  const Tensor w = tensor({0.5, 1.0, 2.0, 1.5}, d);
  const Tensor p = tensor({{0.1, 0.2, 0.3, 0.4}, {0.7, 0.1, 0.1, 0.1}, {0.25, 0.25, 0.25, 0.25}}, d);
  const Tensor y = tensor({{0.4, -0.2, 1.0, 0.3}, {0.5, 0.9, -0.6, -1.2}, {0.4, 0.1, 0.2, 0.5}}, d);
  const Tolerance tol{1e-9, 1e-9};
  auto scalar = [](double v) { return RefTensor{{}, {v}}; };

  check_matches(cross_entropy(x, t), scalar(0.519235029108), tol, "ce_mean");
  check_matches(cross_entropy(x, t, {.weight = w, .reduction = Reduction::none}),
                RefTensor{{3}, {0.738398614738, 0.161810596118, 1.297326881579}}, tol, "ce_none_w");
  check_matches(cross_entropy(x, t2, {.weight = w}), scalar(0.58163585609), tol, "ce_mean_w_ign");
  check_matches(cross_entropy(x, t2, {.weight = w, .label_smoothing = 0.2}), scalar(0.691314677379), tol,
                "ce_mean_w_ign_ls");
  check_matches(cross_entropy(x, t, {.reduction = Reduction::sum, .label_smoothing = 0.2}), scalar(2.382705087324),
                tol, "ce_sum_ls");
  check_matches(cross_entropy(x, p, {.weight = w, .label_smoothing = 0.1}), scalar(1.899756883875), tol,
                "ce_prob_mean_w_ls");
  {
    Tensor xg = x.clone().requires_grad_();
    cross_entropy(xg, t2, {.weight = w, .label_smoothing = 0.2}).backward();
    REQUIRE(xg.grad().defined());
    check_matches(xg.grad(),
                  RefTensor{{3, 4},
                            {0.074387761797, 0.0006085865, -0.120319401913, 0.045323053615, 0.0, 0.0, 0.0, 0.0,
                             0.031783488186, 0.128546594912, 0.029499854779, -0.189829937877}},
                  tol, "ce_grad_w_ign_ls");
  }
  check_matches(nll_loss(x, t2, {.weight = w}), scalar(-1.614285714286), tol, "nll_mean_w_ign");
  check_matches(mse_loss(x, y), scalar(0.528333333333), tol, "mse");
  check_matches(l1_loss(x, y, Reduction::sum), scalar(7.4), tol, "l1_sum");
  check_matches(smooth_l1_loss(x, y, Reduction::mean, 0.5), scalar(0.421666666667), tol, "smooth_l1_b05");
  check_matches(huber_loss(x, y, Reduction::mean, 0.7), scalar(0.247916666667), tol, "huber_d07");
  const Tensor tb = tensor({{1., 0., 1., 0.5}, {0., 0., 1., 1.}, {0.2, 1., 0., 1.}}, d);
  check_matches(binary_cross_entropy_with_logits(x * 10, tb, tensor({1.0, 2.0, 0.5, 1.0}, d), Reduction::mean,
                                                 tensor({3.0, 0.5, 1.0, 2.0}, d)),
                scalar(5.791013255971), tol, "bce_w_pw");
  const Tensor kl_target = tensor({{0.1, 0.2, 0.7, 0.0}, {0.5, 0.5, 0., 0.}, {0.25, 0.25, 0.25, 0.25}}, d);
  check_matches(kl_div(log_softmax(x, 1), kl_target, Reduction::batchmean), scalar(0.2888149977), tol,
                "kl_batchmean");
  check_matches(kl_div(log_softmax(x, 1), log_softmax(y, 1), Reduction::none, true),
                RefTensor{{3, 4},
                          {0.097347568946, 0.194614808838, -0.20615623374, 0.109245709482, -0.258513398434,
                           0.50724182257, 0.035701610807, 0.074264039685, 0.290917918598, -0.107920563482,
                           0.104138153528, -0.100684488839}},
                tol, "kl_log_target_none");
}

// ---- cross_entropy and nll_loss against the float64 loops ----------------------------------
TEST_CASE("cross_entropy with class indices matches the float64 reference", "[loss]") {
  manual_seed(1);
  for (const Shape& shape : std::vector<Shape>{{7}, {5, 7}, {1, 3}, {33, 10}, {3, 4, 2, 3}, {2, 5, 4}}) {
    const int64_t classes = shape.size() == 1 ? shape[0] : shape[1];
    for (DType dtype : {DType::f64, DType::f32}) {
      for (bool with_weight : {false, true}) {
        for (bool with_ignored : {false, true}) {
          for (double smoothing : {0.0, 0.3}) {
            for (Reduction reduction : kReductions) {
              for (bool transposed : {false, true}) {
                const int64_t ignore_index = with_ignored && shape.size() > 1 ? 1 : -100;
                Tensor x = random_tensor(shape, dtype, -3, 3);
                if (transposed) x = non_contiguous(x);
                const Tensor target = class_targets(without_class_dim(shape), classes, ignore_index,
                                                    with_ignored && shape.size() > 1);
                CrossEntropyOptions options{.ignore_index = ignore_index, .reduction = reduction,
                                            .label_smoothing = smoothing};
                if (with_weight) options.weight = rand({classes}, {.dtype = dtype}) + 0.5;
                const Tensor out = cross_entropy(x, target, options);
                CHECK(out.dtype() == dtype);
                Tolerance tol = dtype == DType::f64 ? Tolerance{1e-12, 1e-10} : Tolerance{1e-5, 1e-5};
                check_matches(out, cross_entropy_ref(x, target, options), tol,
                              to_string(shape) + " " + std::string(dtype_name(dtype)) + (with_weight ? " weight" : "") +
                                  (with_ignored ? " ignore" : "") + " s=" + std::to_string(smoothing) + " " +
                                  name_of(reduction) + (transposed ? " transposed" : ""));
              }
            }
          }
        }
      }
    }
  }
}

TEST_CASE("cross_entropy with class probabilities matches the float64 reference", "[loss]") {
  manual_seed(2);
  for (const Shape& shape : std::vector<Shape>{{6}, {4, 6}, {3, 4, 2, 3}}) {
    const int64_t classes = shape.size() == 1 ? shape[0] : shape[1];
    for (bool with_weight : {false, true}) {
      for (double smoothing : {0.0, 0.25}) {
        for (Reduction reduction : kReductions) {
          const Tensor x = random_tensor(shape, DType::f64, -3, 3);
          const Tensor p = softmax(random_tensor(shape, DType::f64), shape.size() == 1 ? 0 : 1);
          CrossEntropyOptions options{.reduction = reduction, .label_smoothing = smoothing};
          if (with_weight) options.weight = rand({classes}, {.dtype = DType::f64}) + 0.5;
          check_matches(cross_entropy(x, p, options), cross_entropy_ref(x, p, options),
                        to_string(shape) + (with_weight ? " weight" : "") + " s=" + std::to_string(smoothing) +
                            " " + name_of(reduction));
        }
      }
    }
  }
}

TEST_CASE("cross_entropy edge cases: all targets ignored, empty batch, extreme logits", "[loss]") {
  const Tensor x = random_tensor({3, 4}, DType::f32);
  const Tensor ignored = full({3}, -100, {.dtype = DType::i64});
  // torch: mean over no target is 0/0 = nan, with and without weights and smoothing; sum is 0.
  CHECK(std::isnan(cross_entropy(x, ignored).item<double>()));
  CHECK(std::isnan(cross_entropy(x, ignored, {.weight = ones({4}), .label_smoothing = 0.1}).item<double>()));
  CHECK(cross_entropy(x, ignored, {.reduction = Reduction::sum}).item<double>() == 0.0);
  check_matches(cross_entropy(x, ignored, {.reduction = Reduction::none}), RefTensor{{3}, {0, 0, 0}});
  CHECK(std::isnan(nll_loss(x, ignored).item<double>()));
  // An empty batch: mean is nan (torch), sum is 0, none is empty.
  const Tensor empty_x = zeros({0, 4});
  CHECK(std::isnan(cross_entropy(empty_x, zeros({0}, {.dtype = DType::i64})).item<double>()));
  CHECK(std::isnan(cross_entropy(empty_x, zeros({0, 4})).item<double>()));
  CHECK(cross_entropy(empty_x, zeros({0}, {.dtype = DType::i64}), {.reduction = Reduction::sum}).item<double>() == 0);
  CHECK(cross_entropy(empty_x, zeros({0}, {.dtype = DType::i64}), {.reduction = Reduction::none}).shape() == Shape{0});
  // Logits of +-1e4 in f32: log-probabilities are computed stably (no inf, no nan).
  const Tensor big = tensor({{1e4f, -1e4f, 0.f}, {-1e4f, 1e4f, 1e4f}});
  check_matches(cross_entropy(big, tensor({1, 2}), {.reduction = Reduction::none}),
                RefTensor{{2}, {2e4, std::log(2.0)}}, Tolerance{2e-3, 1e-6});
  // A [C] input with a 0-dim target gives a 0-dim loss for every reduction.
  const Tensor row = tensor({0.2, -0.4, 1.5}, DType::f64);
  CHECK(cross_entropy(row, scalar_tensor(int64_t{2}), {.reduction = Reduction::none}).dim() == 0);
  check_matches(cross_entropy(row, scalar_tensor(int64_t{2})),
                cross_entropy_ref(row, scalar_tensor(int64_t{2}), {}), "[C] input");
}

TEST_CASE("nll_loss matches the float64 reference", "[loss]") {
  manual_seed(3);
  for (const Shape& shape : std::vector<Shape>{{5}, {6, 5}, {3, 4, 2, 3}}) {
    const int64_t classes = shape.size() == 1 ? shape[0] : shape[1];
    for (bool with_weight : {false, true}) {
      for (Reduction reduction : kReductions) {
        const bool with_ignored = shape.size() > 1;
        const Tensor x = random_tensor(shape, DType::f64);
        const Tensor target = class_targets(without_class_dim(shape), classes, 2, with_ignored);
        NllLossOptions options{.ignore_index = 2, .reduction = reduction};
        if (with_weight) options.weight = rand({classes}, {.dtype = DType::f64}) + 0.5;
        check_matches(nll_loss(x, target, options), nll_ref(x, target, options),
                      to_string(shape) + (with_weight ? " weight " : " ") + name_of(reduction));
        check_matches(nll_loss(non_contiguous(x), target, options), nll_ref(x, target, options),
                      to_string(shape) + " non-contiguous " + name_of(reduction));
      }
    }
  }
}

// ---- elementwise losses --------------------------------------------------------------------
TEST_CASE("mse, l1, smooth_l1, huber, bce_with_logits and kl_div match the float64 reference", "[loss]") {
  manual_seed(4);
  for (const Shape& shape : std::vector<Shape>{{}, {7}, {3, 5}, {2, 3, 4}}) {
    for (DType dtype : {DType::f64, DType::f32}) {
      for (Reduction reduction : kReductions) {
        const std::string what = to_string(shape) + " " + std::string(dtype_name(dtype)) + " " + name_of(reduction);
        const Tensor x = random_tensor(shape, dtype, -3, 3);
        const Tensor y = random_tensor(shape, dtype, -3, 3);
        const Tolerance tol = dtype == DType::f64 ? Tolerance{1e-12, 1e-10} : Tolerance{1e-5, 1e-5};
        check_matches(mse_loss(x, y, reduction),
                      pointwise_ref(x, y, reduction, [](double a, double b) { return (a - b) * (a - b); }), tol,
                      "mse " + what);
        check_matches(l1_loss(non_contiguous(x), y, reduction),
                      pointwise_ref(x, y, reduction, [](double a, double b) { return std::fabs(a - b); }), tol,
                      "l1 " + what);
        for (double beta : {0.0, 0.5, 1.0, 2.0}) {
          check_matches(smooth_l1_loss(x, y, reduction, beta),
                        pointwise_ref(x, y, reduction,
                                      [beta](double a, double b) {
                                        const double d = std::fabs(a - b);
                                        return d < beta ? 0.5 * d * d / beta : d - 0.5 * beta;
                                      }),
                        tol, "smooth_l1 beta " + std::to_string(beta) + " " + what);
        }
        for (double delta : {0.5, 1.0, 2.0}) {
          check_matches(huber_loss(x, y, reduction, delta),
                        pointwise_ref(x, y, reduction,
                                      [delta](double a, double b) {
                                        const double d = std::fabs(a - b);
                                        return d < delta ? 0.5 * d * d : delta * (d - 0.5 * delta);
                                      }),
                        tol, "huber delta " + std::to_string(delta) + " " + what);
        }
        // bce_with_logits: plain loops with a weight and a pos_weight broadcast along the last dim.
        const Tensor t = rand(shape, {.dtype = dtype});
        const Shape last = shape.empty() ? Shape{} : Shape{shape.back()};
        const Tensor weight = rand(last, {.dtype = dtype}) + 0.5;
        const Tensor pos_weight = rand(last, {.dtype = dtype}) * 3;
        {
          const std::vector<double> xv = values_of(x), tv = values_of(t), wv = values_of(weight),
                                    pv = values_of(pos_weight);
          const int64_t inner = shape.empty() ? 1 : shape.back();
          std::vector<double> plain(xv.size()), weighted(xv.size());
          for (size_t i = 0; i < xv.size(); ++i) {
            const double log_term = std::log1p(std::exp(-xv[i]));
            plain[i] = (1 - tv[i]) * xv[i] + log_term;
            const size_t c = i % static_cast<size_t>(inner);
            weighted[i] = wv[c] * ((1 - tv[i]) * xv[i] + (1 + (pv[c] - 1) * tv[i]) * log_term);
          }
          const double n = static_cast<double>(xv.size());
          check_matches(binary_cross_entropy_with_logits(x, t, {}, reduction), reduce_ref(shape, plain, reduction, n),
                        tol, "bce " + what);
          check_matches(binary_cross_entropy_with_logits(x, t, weight, reduction, pos_weight),
                        reduce_ref(shape, weighted, reduction, n), tol, "bce weight pos_weight " + what);
        }
        // kl_div: targets with exact zeros (xlogy(0, 0) = 0) and log targets.
        const Tensor p = where(rand(shape, {.dtype = DType::f64}) < 0.3, scalar_tensor(0.0), rand(shape, {.dtype = DType::f64})).to(dtype);
        for (Reduction kl_reduction : {reduction, Reduction::batchmean}) {
          check_matches(kl_div(x, p, kl_reduction),
                        pointwise_ref(x, p, kl_reduction,
                                      [](double a, double b) { return b == 0 ? 0.0 : b * (std::log(b) - a); }),
                        tol, std::string("kl_div ") + name_of(kl_reduction) + " " + what);
          check_matches(kl_div(x, y, kl_reduction, true),
                        pointwise_ref(x, y, kl_reduction, [](double a, double b) { return std::exp(b) * (b - a); }),
                        tol, std::string("kl_div log_target ") + name_of(kl_reduction) + " " + what);
        }
      }
    }
  }
}

TEST_CASE("bce_with_logits is stable for large logits", "[loss]") {
  // log(1 + exp(-x)) computed naively overflows for x = -100 in f32 (exp(100) > 3.4e38). Exact
  // values: loss(x, t) = (1 - t) x + log(1 + exp(-x)), so loss(-100, 1) = 100, loss(100, 0) = 100,
  // loss(-100, 0) = -100 + 100 = 0 and loss(100, 1) = log(1 + e^-100) ~ 0.
  const Tensor x = tensor({-100.f, 100.f, -100.f, 100.f});
  const Tensor t = tensor({1.f, 0.f, 0.f, 1.f});
  const Tensor loss = binary_cross_entropy_with_logits(x, t, {}, Reduction::none);
  check_matches(loss, RefTensor{{4}, {100, 100, 0, 0}}, Tolerance{1e-5, 1e-6});
  // mean of an empty input is nan, as torch.
  CHECK(std::isnan(mse_loss(zeros({0}), zeros({0})).item<double>()));
}

// ---- errors --------------------------------------------------------------------------------
TEST_CASE("losses reject wrong dtypes, shapes and arguments with clear errors", "[loss]") {
  const Tensor x = zeros({3, 4});
  check_error([&] { cross_entropy(x, tensor({1, 4, 0})); }, {"[cross_entropy]", "target class 4", "4 classes"});
  check_error([&] { cross_entropy(x, tensor({1, -1, 0})); }, {"[cross_entropy]", "-1", "out of range"});
  check_error([&] { nll_loss(x, tensor({1, 7, 0})); }, {"[nll_loss]", "7", "4 classes"});
  check_error([&] { cross_entropy(x, tensor({1, 0})); }, {"[cross_entropy]", "[2]", "[3, 4]", "[3]"});
  check_error([&] { cross_entropy(x, tensor({1, 0, 2}, DType::i32)); }, {"[cross_entropy]", "int64", "int32"});
  check_error([&] { cross_entropy(x, zeros({3, 5})); }, {"[cross_entropy]", "[3, 5]", "[3, 4]"});
  check_error([&] { cross_entropy(x, zeros({3})); }, {"[cross_entropy]", "[3]", "[3, 4]"});
  check_error([&] { cross_entropy(x, tensor({1, 0, 2}), {.weight = ones({3})}); }, {"[cross_entropy]", "weight", "[4]", "[3]"});
  check_error([&] { cross_entropy(x, tensor({1, 0, 2}), {.label_smoothing = 1.5}); }, {"label_smoothing", "1.5"});
  check_error([&] { cross_entropy(zeros({3, 4}, {.dtype = DType::i64}), tensor({1, 0, 2})); }, {"[cross_entropy]", "floating"});
  check_error([&] { cross_entropy(x, tensor({1, 0, 2}), {.reduction = Reduction::batchmean}); }, {"[cross_entropy]", "batchmean", "kl_div"});
  {
    Tensor w = ones({4}).requires_grad_();
    check_error([&] { cross_entropy(x, tensor({1, 0, 2}), {.weight = w}); }, {"[cross_entropy]", "weight", "detach"});
  }
  check_error([&] { mse_loss(x, zeros({3, 1})); }, {"[mse_loss]", "[3, 1]", "[3, 4]"});
  check_error([&] { l1_loss(x, zeros({4})); }, {"[l1_loss]", "[4]", "[3, 4]"});
  check_error([&] { mse_loss(x, zeros({3, 4}), Reduction::batchmean); }, {"[mse_loss]", "batchmean"});
  check_error([&] { smooth_l1_loss(x, zeros({3, 4}), Reduction::mean, -1.0); }, {"[smooth_l1_loss]", "beta"});
  check_error([&] { huber_loss(x, zeros({3, 4}), Reduction::mean, 0.0); }, {"[huber_loss]", "delta"});
  check_error([&] { l1_loss(zeros({3}, {.dtype = DType::i64}), zeros({3})); }, {"[l1_loss]", "floating"});
  check_error([&] { binary_cross_entropy_with_logits(x, zeros({3, 4}, {.dtype = DType::i64})); },
              {"[binary_cross_entropy_with_logits]", "target", "floating"});
  check_error([&] { binary_cross_entropy_with_logits(x, zeros({4})); }, {"[binary_cross_entropy_with_logits]", "[4]", "[3, 4]"});
  check_error([&] { binary_cross_entropy_with_logits(x, zeros({3, 4}), {}, Reduction::mean, ones({3})); },
              {"pos_weight", "[3]", "[3, 4]"});
  check_error([&] { kl_div(x, zeros({3, 4}, {.dtype = DType::i64})); }, {"[kl_div]", "target", "floating"});
  check_error([&] { kl_div(x, zeros({4, 3})); }, {"[kl_div]", "[4, 3]", "[3, 4]"});
  // An integer target is fine for mse / l1 (promoted, as torch).
  check_matches(mse_loss(tensor({1.5, 2.0}, DType::f64), tensor({1, 2})), RefTensor{{}, {0.125}});
}

// ---- gradients -----------------------------------------------------------------------------
TEST_CASE("cross_entropy passes gradcheck and gradgradcheck", "[loss][autograd]") {
  manual_seed(5);
  for (const Shape& shape : std::vector<Shape>{{5}, {3, 5}, {2, 3, 2, 2}}) {
    const int64_t classes = shape.size() == 1 ? shape[0] : shape[1];
    const int64_t class_dim = shape.size() == 1 ? 0 : 1;
    const bool with_ignored = shape.size() > 1;
    const Tensor target = class_targets(without_class_dim(shape), classes, 0, with_ignored);
    const Tensor probabilities = softmax(random_tensor(shape, DType::f64), class_dim);
    for (Reduction reduction : kReductions) {
      for (bool with_weight : {false, true}) {
        for (double smoothing : {0.0, 0.2}) {
          CrossEntropyOptions options{.ignore_index = with_ignored ? 0 : -100, .reduction = reduction,
                                      .label_smoothing = smoothing};
          if (with_weight) options.weight = rand({classes}, {.dtype = DType::f64}) + 0.5;
          const std::string what = to_string(shape) + " " + name_of(reduction) + (with_weight ? " weight" : "") +
                                   " s=" + std::to_string(smoothing);
          check_gradients([&](const TensorList& in) { return cross_entropy(in[0], target, options); },
                          {f64_leaf(random_tensor(shape, DType::f64))}, "indices " + what);
          // Probabilities: w.r.t. input and target (torch differentiates both).
          check_gradients([&](const TensorList& in) { return cross_entropy(in[0], in[1], options); },
                          {f64_leaf(random_tensor(shape, DType::f64)), f64_leaf(probabilities)},
                          "probabilities " + what);
        }
      }
    }
  }
  // A non-contiguous input.
  const Tensor target = tensor({0, 4, 2});
  check_gradients([&](const TensorList& in) { return cross_entropy(in[0], target, {.label_smoothing = 0.1}); },
                  {non_contiguous(random_tensor({3, 5}, DType::f64)).requires_grad_()}, "transposed input");
}

TEST_CASE("nll_loss passes gradcheck and gradgradcheck", "[loss][autograd]") {
  manual_seed(6);
  for (const Shape& shape : std::vector<Shape>{{5}, {3, 5}, {2, 3, 2, 2}}) {
    const int64_t classes = shape.size() == 1 ? shape[0] : shape[1];
    const Tensor target = class_targets(without_class_dim(shape), classes, 1, shape.size() > 1);
    for (Reduction reduction : kReductions) {
      NllLossOptions options{.weight = rand({classes}, {.dtype = DType::f64}) + 0.5, .ignore_index = 1,
                             .reduction = reduction};
      check_gradients([&](const TensorList& in) { return nll_loss(in[0], target, options); },
                      {f64_leaf(random_tensor(shape, DType::f64))}, to_string(shape) + " " + name_of(reduction));
    }
  }
  check_gradients([&](const TensorList& in) { return nll_loss(in[0], tensor({0, 4, 2})); },
                  {non_contiguous(random_tensor({3, 5}, DType::f64)).requires_grad_()}, "transposed input");
}

TEST_CASE("elementwise losses pass gradcheck and gradgradcheck", "[loss][autograd]") {
  manual_seed(7);
  const Shape shape = {3, 5};
  // |x - t| stays at least 0.2 away from 0 (l1's kink) and from beta / delta (smooth_l1 and
  // huber switch branches there): differences are drawn in +-[0.2, 0.4] or +-[1.25, 1.75].
  const Tensor target = random_tensor(shape, DType::f64);
  const Tensor magnitude = where(rand(shape, {.dtype = DType::f64}) < 0.5, rand(shape, {.dtype = DType::f64}) * 0.2 + 0.2,
                                 rand(shape, {.dtype = DType::f64}) * 0.5 + 1.25);
  const Tensor sign = where(rand(shape, {.dtype = DType::f64}) < 0.5, scalar_tensor(-1.0), scalar_tensor(1.0));
  const Tensor input = target + sign * magnitude;
  for (Reduction reduction : kReductions) {
    const std::string what = name_of(reduction);
    check_gradients([&](const TensorList& in) { return mse_loss(in[0], in[1], reduction); },
                    {f64_leaf(input), f64_leaf(target)}, "mse " + what);
    check_gradients([&](const TensorList& in) { return l1_loss(in[0], in[1], reduction); },
                    {f64_leaf(input), f64_leaf(target)}, "l1 " + what);
    check_gradients([&](const TensorList& in) { return smooth_l1_loss(in[0], in[1], reduction, 1.0); },
                    {f64_leaf(input), f64_leaf(target)}, "smooth_l1 " + what);
    check_gradients([&](const TensorList& in) { return huber_loss(in[0], in[1], reduction, 1.0); },
                    {f64_leaf(input), f64_leaf(target)}, "huber " + what);
    // bce: w.r.t. the logits, and the broadcast weight [5] and pos_weight [5].
    const Tensor probabilities = rand(shape, {.dtype = DType::f64});
    check_gradients(
        [&](const TensorList& in) {
          return binary_cross_entropy_with_logits(in[0], probabilities, in[1], reduction, in[2]);
        },
        {f64_leaf(random_tensor(shape, DType::f64, -4, 4)), f64_leaf(rand({5}, {.dtype = DType::f64}) + 0.5),
         f64_leaf(rand({5}, {.dtype = DType::f64}) * 3)},
        "bce " + what);
    // kl_div: w.r.t. input and target (positive, so log t is smooth), both forms.
    for (Reduction kl_reduction : {reduction, Reduction::batchmean}) {
      check_gradients([&](const TensorList& in) { return kl_div(in[0], in[1], kl_reduction); },
                      {f64_leaf(random_tensor(shape, DType::f64)), f64_leaf(rand(shape, {.dtype = DType::f64}) + 0.1)},
                      std::string("kl_div ") + name_of(kl_reduction));
      check_gradients([&](const TensorList& in) { return kl_div(in[0], in[1], kl_reduction, true); },
                      {f64_leaf(random_tensor(shape, DType::f64)), f64_leaf(random_tensor(shape, DType::f64))},
                      std::string("kl_div log_target ") + name_of(kl_reduction));
    }
  }
  // Non-contiguous inputs.
  check_gradients([&](const TensorList& in) { return mse_loss(in[0], in[1]); },
                  {non_contiguous(input).requires_grad_(), non_contiguous(target).requires_grad_()}, "mse transposed");
}
