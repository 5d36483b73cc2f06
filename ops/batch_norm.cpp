// batch_norm over x (N, C, *), per channel c, with R = N * prod(*) values per channel:
//   training: mean_c = mean x, var_c = mean (x - mean_c)^2 (biased) over N and *
//             running_mean = (1 - momentum) running_mean + momentum mean_c
//             running_var  = (1 - momentum) running_var  + momentum var_c R / (R - 1)   (unbiased)
//   eval:     mean_c, var_c = running_mean, running_var
//   rstd = 1 / sqrt(var + eps),  xhat = (x - mean) rstd,  y = xhat w + b
// Backward (g = dy w, sums and means over N and *):
//   training: dx = rstd (g - mean g - xhat mean(g xhat))       eval: dx = rstd g
//   dw = sum dy xhat,  db = sum dy
// Saved: x, w, and mean / var (the batch's, or a copy of the running statistics in eval).
// Backends: f32 / bf16 run oneDNN's batch_normalization primitives (kernels/cpu/onednn/), f16 runs
// them in f32; f64 (the gradcheck path) and every create_graph backward are the composite of public
// ops below, the spec the oneDNN path is tested against. Its second derivative recomputes the
// statistics from x with recorded ops, so gradgradcheck passes through batch_norm.
#include "keel/autograd/record.h"
#include "keel/kernels/cpu/conv_kernels.h"
#include "keel/ops/conv.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
#include "keel/ops/reduce.h"

namespace keel {

using autograd::OpRecord;
using autograd::TensorList;
using autograd::VjpArgs;

namespace {

// x viewed as (N, C, R, 1) for oneDNN's 4-D NCHW primitive.
Shape four_d(const Shape& s) {
  int64_t rest = 1;
  for (size_t i = 2; i < s.size(); ++i) rest *= s[i];
  return {s[0], s[1], rest, 1};
}

Dims reduce_dims(int64_t rank) {
  Dims dims{0};
  for (int64_t d = 2; d < rank; ++d) dims.push_back(d);
  return dims;
}

// A per-channel (C) tensor as (1, C, 1, ...) against x of the given rank.
Tensor per_channel(const Tensor& t, int64_t rank) {
  Shape s(rank, 1);
  s[1] = t.numel();
  return t.reshape(s);
}

void check_channel_tensor(const Tensor& t, const char* what, int64_t channels, const Tensor& x) {
  if (!t.defined()) return;
  KEEL_CHECK(is_floating(t.dtype()), "[batch_norm] ", what, " must be floating, got ", dtype_name(t.dtype()));
  KEEL_CHECK(t.is_cpu(), "[batch_norm] no CUDA kernel in this build yet: ", what, " is on ", t.device().str());
  KEEL_CHECK(t.dim() == 1 && t.shape()[0] == channels, "[batch_norm] ", what, " must have shape [", channels,
             "] (the input's channels), got ", t.shape(), " for input ", x.shape());
}

bool uses_onednn(DType dtype) { return dtype != DType::f64; }

// The composite: mean/var (biased) of x, or the given statistics; y in x's dtype.
struct Stats {
  Tensor mean, var;  // (C), in x's compute dtype
};
Stats batch_stats(const Tensor& x) {
  const Dims dims = reduce_dims(x.dim());
  return {mean(x, dims), var(x, dims, 0)};
}

// dx, dw, db with public ops (differentiable again). stats: recomputed from x when training.
TensorList composite_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Stats& eval_stats,
                              bool training, double eps, bool need_x, bool need_w, bool need_b) {
  const int64_t rank = x.dim();
  const Dims dims = reduce_dims(rank);
  const Stats s = training ? batch_stats(x) : eval_stats;
  const Tensor mu = per_channel(s.mean, rank), rstd = per_channel(rsqrt(s.var + eps), rank);
  const Tensor xhat = (x - mu) * rstd;
  Tensor dx, dw, db;
  if (need_x) {
    const Tensor g = weight.defined() ? dy * per_channel(weight, rank) : dy;
    if (training) {
      dx = rstd * (g - mean(g, dims, true) - xhat * mean(g * xhat, dims, true));
    } else {
      dx = rstd * g;
    }
  }
  if (need_w) dw = sum(dy * xhat, dims);
  if (need_b) db = sum(dy, dims);
  return {dx, dw, db};
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  KEEL_CHECK(x.defined(), "[batch_norm] input is undefined");
  KEEL_CHECK(is_floating(x.dtype()), "[batch_norm] input must be floating (f32, f64, f16, bf16), got ",
             dtype_name(x.dtype()), " of shape ", x.shape());
  KEEL_CHECK(x.is_cpu(), "[batch_norm] no CUDA kernel in this build yet: input is on ", x.device().str());
  KEEL_CHECK(x.dim() >= 2, "[batch_norm] expected an input (N, C, *) with at least 2 dims, got shape ", x.shape());
  const int64_t channels = x.shape()[1];
  check_channel_tensor(running_mean, "running_mean", channels, x);
  check_channel_tensor(running_var, "running_var", channels, x);
  check_channel_tensor(weight, "weight", channels, x);
  check_channel_tensor(bias, "bias", channels, x);
  KEEL_CHECK(running_mean.defined() == running_var.defined(),
             "[batch_norm] running_mean and running_var must be given together");
  KEEL_CHECK(training || running_mean.defined(),
             "[batch_norm] running_mean and running_var are required in evaluation mode (training = false)");
  const int64_t per_channel_count = channels > 0 ? x.numel() / channels : 0;
  KEEL_CHECK(!training || per_channel_count != 1, "[batch_norm] expected more than 1 value per channel when ",
             "training, got input of shape ", x.shape());
  const int64_t rank = x.dim();
  const DType compute = x.dtype() == DType::f64 ? DType::f64 : DType::f32;

  OpRecord record("batch_norm", x, weight, bias);
  record.trace_attr("running_mean", running_mean);
  record.trace_attr("running_var", running_var);
  record.trace_attr("training", training);
  record.trace_attr("eps", eps);
  Tensor y;
  Stats stats;  // the statistics y was normalized with, in `compute`
  if (x.numel() == 0) {
    y = empty(x.shape(), x.options());
    stats = {zeros({channels}, {.dtype = compute}), ones({channels}, {.dtype = compute})};
    if (!training) stats = {running_mean.to(compute).clone(), running_var.to(compute).clone()};
  } else if (uses_onednn(x.dtype())) {
    const Tensor xk = (x.dtype() == DType::f16 ? x.to(DType::f32) : x).contiguous().view(four_d(x.shape()));
    Tensor yk = empty(xk.shape(), xk.options());
    if (training) {
      stats = {empty({channels}), empty({channels})};
    } else {
      stats = {running_mean.to(DType::f32).contiguous().clone(), running_var.to(DType::f32).contiguous().clone()};
    }
    cpu::batch_norm_forward(yk, stats.mean, stats.var, xk, weight.defined() ? weight.to(DType::f32).contiguous() : Tensor(),
                            bias.defined() ? bias.to(DType::f32).contiguous() : Tensor(), training, eps);
    y = yk.view(x.shape()).to(x.dtype());
  } else {
    stats = training ? batch_stats(x) : Stats{running_mean.to(compute).clone(), running_var.to(compute).clone()};
    y = (x - per_channel(stats.mean, rank)) * per_channel(rsqrt(stats.var + eps), rank);
    if (weight.defined()) y = y * per_channel(weight.to(compute), rank);
    if (bias.defined()) y = y + per_channel(bias.to(compute), rank);
    y = y.to(x.dtype());
  }
  if (training && x.numel() > 0 && running_mean.defined()) {
    autograd::NoGradGuard no_grad;
    const double unbias = static_cast<double>(per_channel_count) / static_cast<double>(per_channel_count - 1);
    Tensor new_mean = running_mean * (1 - momentum) + stats.mean.to(running_mean.dtype()) * momentum;
    Tensor new_var = running_var * (1 - momentum) + stats.var.to(running_var.dtype()) * (momentum * unbias);
    const_cast<Tensor&>(running_mean).copy_(new_mean);
    const_cast<Tensor&>(running_var).copy_(new_var);
  }
  if (record) {
    record.finish({y}, {x, weight, stats.mean, stats.var}, [training, eps, bias_dtype = bias.defined() ? bias.dtype() : x.dtype()](const VjpArgs& a) {
      const Tensor& x_saved = a.saved[0];
      const Tensor& w_saved = a.saved[1];
      const Stats saved_stats{a.saved[2], a.saved[3]};
      const bool need_x = a.needs(0), need_w = a.needs(1), need_b = a.needs(2);
      const Tensor& dy = a.grad();
      const DType dtype = x_saved.dtype();
      if (autograd::GradMode::is_enabled() || !uses_onednn(dtype) || x_saved.numel() == 0) {
        // create_graph, f64 or empty: the composite, computed in f32 for 16-bit inputs.
        const DType compute = dtype == DType::f64 ? DType::f64 : DType::f32;
        TensorList grads =
            composite_backward(dy.to(compute), x_saved.to(compute), w_saved.defined() ? w_saved.to(compute) : w_saved,
                               saved_stats, training, eps, need_x, need_w, need_b);
        if (grads[0].defined()) grads[0] = grads[0].to(dtype);
        if (grads[1].defined()) grads[1] = grads[1].to(w_saved.dtype());
        if (grads[2].defined()) grads[2] = grads[2].to(bias_dtype);
        return grads;
      }
      // oneDNN: one pass for dx and (when wanted) dw, db.
      const int64_t channels = x_saved.shape()[1];
      const Shape shape4 = four_d(x_saved.shape());
      const DType kdtype = dtype == DType::f16 ? DType::f32 : dtype;
      const Tensor xk = x_saved.to(kdtype).contiguous().view(shape4);
      const Tensor dyk = dy.to(kdtype).contiguous().view(shape4);
      const Tensor wk = w_saved.defined() ? w_saved.to(DType::f32).contiguous() : ones({channels});
      Tensor dx = empty(shape4, {.dtype = kdtype});
      const bool want_params = need_w || need_b;
      Tensor dw = want_params ? empty({channels}) : Tensor();
      Tensor db = want_params ? empty({channels}) : Tensor();
      cpu::batch_norm_backward(dx, dw, db, dyk, xk, saved_stats.mean, saved_stats.var, wk, training, eps);
      Tensor grad_x = need_x ? dx.view(x_saved.shape()).to(dtype) : Tensor();
      Tensor grad_w = need_w ? dw.to(w_saved.dtype()) : Tensor();
      Tensor grad_b = need_b ? db.to(bias_dtype) : Tensor();
      return TensorList{grad_x, grad_w, grad_b};
    });
  }
  return y;
}

}  // namespace keel
