// Loss functions (torch.nn.functional semantics). Notation: x the input, t the target, C classes
// along the class dim (dim 1, or dim 0 for a [C] input), w the per-class weight (1 when absent),
// s the label smoothing, g the gradient of the (reduced) loss.
//
// cross_entropy (own node). logp = log_softmax(x). Every case is  loss_n = -sum_c q[n,c] logp[n,c]
// for a target distribution q:
//   class indices t:   q[n,c] = valid_n ((1 - s) w_t[n] [c == t_n] + (s / C) w_c),
//                      valid_n = (t_n != ignore_index), w_t[n] = w[t_n]
//   probabilities t:   q[n,c] = ((1 - s) t[n,c] + s / C) w_c
//   mean:  sum_n loss_n / sum_n valid_n w_t[n]   (class indices; all ignored gives 0/0 = nan)
//          sum_n loss_n / (numel(x) / C)         (probabilities)
// Since d logp[n,c] / d x[n,k] = [c == k] - softmax[n,k]:
//   dx[n,k] = g_n (softmax[n,k] sum_c q[n,c] - q[n,k])        (= g (softmax - target) unweighted)
//   dt[n,c] = -g_n (1 - s) w_c logp[n,c]                       (probabilities only)
// with g_n = g (none), g (sum), g / denominator (mean). The vjp recomputes softmax from the saved
// x with public ops, so the gradient is differentiable again (double backward).
//
// nll_loss:  loss_n = -w_t[n] x[n, t_n] for non-ignored n, 0 otherwise; mean as above. Composite
//            (gather): its vjp is gather's.
// mse_loss:  (x - t)^2                      l1_loss: |x - t|
// smooth_l1: d = |x - t|:  0.5 d^2 / beta (d < beta), d - 0.5 beta otherwise; beta = 0 is l1
// huber:     d = |x - t|:  0.5 d^2 (d < delta), delta (d - 0.5 delta) otherwise
// bce_with_logits: w ((1 - t) x + (1 + (pw - 1) t) softplus(-x)),
//            softplus(-x) = log(1 + exp(-x)) = max(-x, 0) + log1p(exp(-|x|))  (no overflow)
// kl_div:    t (log t - x), 0 where t = 0 (xlogy);  log_target: exp(t) (t - x)
// These are composites of public differentiable ops: their gradients come from those ops' vjps.
#include "keel/ops/loss.h"

#include "keel/autograd/grad_mode.h"
#include "keel/autograd/record.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
#include "keel/ops/nn_functional.h"
#include "keel/ops/reduce.h"
#include "keel/ops/shape.h"

namespace keel {

using autograd::TensorList;
using autograd::VjpArgs;

namespace {

void check_defined(const char* op, const Tensor& t, const char* name) {
  KEEL_CHECK(t.defined(), "[", op, "] ", name, " is undefined");
}

void check_floating(const char* op, const Tensor& t, const char* name) {
  KEEL_CHECK(is_floating(t.dtype()), "[", op, "] ", name, " must be floating, got ", dtype_name(t.dtype()));
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b, const char* name_b) {
  KEEL_CHECK(a.device() == b.device(), "[", op, "] ", name_b, " is on ", b.device().str(), " but input is on ",
             a.device().str());
}

void check_same_shape(const char* op, const Tensor& input, const Tensor& target) {
  KEEL_CHECK(input.shape() == target.shape(), "[", op, "] target shape ", target.shape(),
             " must equal input shape ", input.shape());
}

void check_reduction(const char* op, Reduction reduction) {
  KEEL_CHECK(reduction != Reduction::batchmean, "[", op, "] reduction batchmean is only valid for kl_div");
}

// The common front of the elementwise losses: defined, floating input, same shape and device.
void check_pointwise(const char* op, const Tensor& input, const Tensor& target, Reduction reduction,
                     bool floating_target) {
  check_defined(op, input, "input");
  check_defined(op, target, "target");
  check_floating(op, input, "input");
  if (floating_target) check_floating(op, target, "target");
  check_same_device(op, input, target, "target");
  check_same_shape(op, input, target);
  check_reduction(op, reduction);
}

// Whether `from` broadcasts to exactly `to` (NumPy rules, aligned at the trailing dims).
bool broadcasts_to(const Shape& from, const Shape& to) {
  if (from.size() > to.size()) return false;
  const size_t lead = to.size() - from.size();
  for (size_t k = 0; k < from.size(); ++k)
    if (from[k] != 1 && from[k] != to[lead + k]) return false;
  return true;
}

Tensor reduce_loss(const Tensor& loss, Reduction reduction) {
  switch (reduction) {
    case Reduction::none: return loss;
    case Reduction::sum: return sum(loss);
    default: return mean(loss);
  }
}

// ---- class-index targets (nll_loss and cross_entropy) ------------------------------------------

int64_t class_dim_of(const Tensor& input) { return input.dim() == 1 ? 0 : 1; }

// [1, C, 1, ...]: w broadcast along the class dim of the input.
Tensor weight_along_class_dim(const Tensor& weight, const Tensor& input) {
  Shape shape(static_cast<size_t>(input.dim()), 1);
  shape[static_cast<size_t>(class_dim_of(input))] = weight.numel();
  return weight.reshape(shape);
}

// Checks the weight ([C], floating, input's device) and returns it in the input's dtype.
Tensor checked_weight(const char* op, const Tensor& weight, const Tensor& input) {
  if (!weight.defined()) return weight;
  const int64_t num_classes = input.shape()[static_cast<size_t>(class_dim_of(input))];
  check_floating(op, weight, "weight");
  check_same_device(op, input, weight, "weight");
  KEEL_CHECK(weight.dim() == 1 && weight.numel() == num_classes, "[", op, "] weight must have shape [", num_classes,
             "] (one per class of input ", input.shape(), "), got ", weight.shape());
  return weight.to(input.dtype());
}

struct ClassTargets {
  Tensor valid;          // bool, target's shape: target != ignore_index
  Tensor safe_target;    // i64, target's shape: the target with ignored entries replaced by class 0
  Tensor target_weight;  // input dtype, target's shape: w[t] where valid, 0 where ignored
};

ClassTargets class_targets(const char* op, const Tensor& input, const Tensor& target, const Tensor& weight,
                           int64_t ignore_index) {
  const int64_t class_dim = class_dim_of(input);
  const int64_t num_classes = input.shape()[static_cast<size_t>(class_dim)];
  KEEL_CHECK(target.dtype() == DType::i64, "[", op, "] class-index target must be int64, got ",
             dtype_name(target.dtype()), " (a target of class probabilities must be floating, of the input's shape)");
  check_same_device(op, input, target, "target");
  Shape expected = input.shape();
  expected.erase(expected.begin() + class_dim);
  KEEL_CHECK(target.shape() == expected, "[", op, "] class-index target of shape ", target.shape(),
             " does not match input of shape ", input.shape(), " (expected target shape ", expected, ")");

  ClassTargets result;
  result.valid = target != ignore_index;
  if (target.numel() > 0) {
    Tensor out_of_range = logical_and(result.valid, logical_or(target < 0, target >= num_classes));
    if (any(out_of_range).item<bool>()) {
      // Error path only: find the first offending index on the host to name it.
      const Tensor host = target.cpu().contiguous();
      const int64_t* values = host.data_ptr<int64_t>();
      for (int64_t i = 0; i < host.numel(); ++i) {
        if (values[i] != ignore_index && (values[i] < 0 || values[i] >= num_classes))
          fail("[", op, "] target class ", values[i], " is out of range for ", num_classes,
               " classes (C = ", num_classes, "; ignore_index is ", ignore_index, ")");
      }
    }
  }
  result.safe_target = where(result.valid, target, Scalar(int64_t{0}));
  if (weight.defined()) {
    Tensor picked = index_select(weight, 0, result.safe_target.reshape({-1})).reshape(target.shape());
    result.target_weight = where(result.valid, picked, Scalar(0.0));
  } else {
    result.target_weight = result.valid.to(input.dtype());
  }
  return result;
}

// [class_dim] appended back: values of the target's shape broadcast against the input.
Tensor along_input(const Tensor& per_target, int64_t class_dim) { return per_target.unsqueeze(class_dim); }

}  // namespace

// ---- nll_loss --------------------------------------------------------------------------------

Tensor nll_loss(const Tensor& input, const Tensor& target, const NllLossOptions& options) {
  const char* op = "nll_loss";
  check_defined(op, input, "input");
  check_defined(op, target, "target");
  check_floating(op, input, "input");
  KEEL_CHECK(input.dim() >= 1, "[nll_loss] input must have at least 1 dim ([C], [N, C] or [N, C, d1, ...]), got ",
             input.shape());
  check_reduction(op, options.reduction);
  const Tensor weight = checked_weight(op, options.weight, input);
  const ClassTargets targets = class_targets(op, input, target, weight, options.ignore_index);
  const int64_t class_dim = class_dim_of(input);

  Tensor picked = gather(input, class_dim, along_input(targets.safe_target, class_dim)).squeeze(class_dim);
  // where (not a product with 0) so that an ignored row holding -inf or nan still adds exactly 0.
  Tensor loss = where(targets.valid, -(targets.target_weight * picked), Scalar(0.0));
  switch (options.reduction) {
    case Reduction::none: return loss;
    case Reduction::sum: return sum(loss);
    default: return sum(loss) / sum(targets.target_weight);
  }
}

// ---- cross_entropy ---------------------------------------------------------------------------

Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyOptions& options) {
  const char* op = "cross_entropy";
  check_defined(op, input, "input");
  check_defined(op, target, "target");
  check_floating(op, input, "input");
  KEEL_CHECK(input.dim() >= 1,
             "[cross_entropy] input must have at least 1 dim ([C], [N, C] or [N, C, d1, ...]), got ", input.shape());
  check_reduction(op, options.reduction);
  const double smoothing = options.label_smoothing;
  KEEL_CHECK(smoothing >= 0.0 && smoothing <= 1.0, "[cross_entropy] label_smoothing must be in [0, 1], got ",
             smoothing);
  KEEL_CHECK(!(options.weight.defined() && options.weight.requires_grad() && autograd::GradMode::is_enabled()),
             "[cross_entropy] weight takes no gradient (as in torch) but requires grad; pass weight.detach()");
  const Tensor weight = checked_weight(op, options.weight, input);
  const int64_t class_dim = class_dim_of(input);
  const int64_t num_classes = input.shape()[static_cast<size_t>(class_dim)];
  const Reduction reduction = options.reduction;
  const bool probabilities = is_floating(target.dtype());
  const Tensor weight_view = weight.defined() ? weight_along_class_dim(weight, input) : Tensor();

  if (probabilities) {
    check_same_device(op, input, target, "target");
    KEEL_CHECK(target.shape() == input.shape(), "[cross_entropy] target of class probabilities has shape ",
               target.shape(), " but input has shape ", input.shape(),
               " (they must be equal; class-index targets are i64 without the class dim)");
  }

  // The target distribution q (probabilities) or its pieces (class indices); see the top of the file.
  autograd::OpRecord record(op, input, target);
  const Tensor log_probs = log_softmax(input, class_dim);
  Tensor loss;
  Tensor denominator;  // mean over class indices: sum of the target weights
  ClassTargets targets;
  if (probabilities) {
    Tensor q = smoothing > 0 ? target * (1.0 - smoothing) + smoothing / static_cast<double>(num_classes) : target;
    if (weight.defined()) q = q * weight_view;
    loss = -sum(log_probs * q, {class_dim});
  } else {
    targets = class_targets(op, input, target, weight, options.ignore_index);
    Tensor picked =
        gather(log_probs, class_dim, along_input(targets.safe_target, class_dim)).squeeze(class_dim);
    loss = -(targets.target_weight * picked);
    if (smoothing > 0) {
      Tensor all_classes = sum(weight.defined() ? log_probs * weight_view : log_probs, {class_dim});
      loss = loss * (1.0 - smoothing) - all_classes * (smoothing / static_cast<double>(num_classes));
    }
    loss = where(targets.valid, loss, Scalar(0.0));
    denominator = sum(targets.target_weight);
  }
  // Probabilities: mean over the N * d1 * ... positions (nan when there are none, as torch).
  const double positions = num_classes > 0 ? static_cast<double>(input.numel() / num_classes) : 0.0;
  Tensor out;
  switch (reduction) {
    case Reduction::none: out = loss; break;
    case Reduction::sum: out = sum(loss); break;
    default: out = probabilities ? sum(loss) / positions : sum(loss) / denominator; break;
  }

  if (record) {
    TensorList saved = {input, probabilities ? target : targets.safe_target,
                        probabilities ? Tensor() : targets.target_weight,
                        probabilities ? Tensor() : targets.valid, weight, denominator};
    record.finish({out}, saved, [class_dim, num_classes, smoothing, reduction, probabilities,
                                 positions](const VjpArgs& a) {
      const Tensor& x = a.saved[0];
      const Tensor& weight = a.saved[4];
      const Tensor weight_view = weight.defined() ? weight_along_class_dim(weight, x) : Tensor();
      const double uniform = smoothing / static_cast<double>(num_classes);
      // g_n broadcast against x: [.., 1, ..] for none, 0-dim for sum and mean.
      Tensor g = a.grad();
      if (reduction == Reduction::none) g = along_input(g, class_dim);
      else if (reduction == Reduction::mean) g = probabilities ? g / positions : g / a.saved[5];

      Tensor grad_input, grad_target;
      if (probabilities) {
        const Tensor& t = a.saved[1];
        Tensor q = smoothing > 0 ? t * (1.0 - smoothing) + uniform : t;
        if (weight.defined()) q = q * weight_view;
        if (a.needs(0)) grad_input = g * (softmax(x, class_dim) * sum(q, {class_dim}, true) - q);
        if (a.needs(1)) {
          grad_target = g * log_softmax(x, class_dim) * (-(1.0 - smoothing));
          if (weight.defined()) grad_target = grad_target * weight_view;
        }
      } else if (a.needs(0)) {
        const Tensor& safe_target = a.saved[1];
        const Tensor& target_weight = a.saved[2];
        const Tensor valid = a.saved[3].to(x.dtype());
        // sum_c q[n,c] = (1 - s) w_t[n] + (s / C) valid_n sum_c w_c
        Tensor q_total = target_weight * (1.0 - smoothing);
        if (smoothing > 0) q_total = q_total + (weight.defined() ? valid * sum(weight) * uniform : valid * smoothing);
        Tensor grad = g * softmax(x, class_dim) * along_input(q_total, class_dim);
        // - g q: the one-hot part scattered at the targets, the smoothing part spread over all classes.
        Tensor one_hot_part = g * along_input(target_weight * (-(1.0 - smoothing)), class_dim);
        grad = scatter_add(grad, class_dim, along_input(safe_target, class_dim), one_hot_part);
        if (smoothing > 0) {
          Tensor spread = along_input(valid, class_dim) * (-uniform);
          if (weight.defined()) spread = spread * weight_view;
          grad = grad + g * spread;
        }
        grad_input = grad;
      }
      return TensorList{grad_input, grad_target};
    });
  }
  return out;
}

// ---- elementwise losses ----------------------------------------------------------------------

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pointwise("mse_loss", input, target, reduction, false);
  Tensor difference = input - target;
  return reduce_loss(difference * difference, reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pointwise("l1_loss", input, target, reduction, false);
  return reduce_loss(abs(input - target), reduction);
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, double beta) {
  check_pointwise("smooth_l1_loss", input, target, reduction, false);
  KEEL_CHECK(beta >= 0, "[smooth_l1_loss] beta must be non-negative, got ", beta);
  if (beta == 0) return l1_loss(input, target, reduction);
  Tensor distance = abs(input - target);
  Tensor loss = where(distance < beta, distance * distance * (0.5 / beta), distance - 0.5 * beta);
  return reduce_loss(loss, reduction);
}

Tensor huber_loss(const Tensor& input, const Tensor& target, Reduction reduction, double delta) {
  check_pointwise("huber_loss", input, target, reduction, false);
  KEEL_CHECK(delta > 0, "[huber_loss] delta must be positive, got ", delta);
  Tensor distance = abs(input - target);
  Tensor loss = where(distance < delta, distance * distance * 0.5, (distance - 0.5 * delta) * delta);
  return reduce_loss(loss, reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight,
                                        Reduction reduction, const Tensor& pos_weight) {
  const char* op = "binary_cross_entropy_with_logits";
  check_pointwise(op, input, target, reduction, true);
  for (const auto& [tensor, name] : {std::pair{weight, "weight"}, std::pair{pos_weight, "pos_weight"}}) {
    if (!tensor.defined()) continue;
    check_floating(op, tensor, name);
    check_same_device(op, input, tensor, name);
    KEEL_CHECK(broadcasts_to(tensor.shape(), input.shape()), "[", op, "] ", name,
               " of shape ", tensor.shape(), " does not broadcast to input shape ", input.shape());
  }
  // softplus(-x) = log(1 + exp(-x)), without overflow for large |x|.
  Tensor softplus_neg = clamp_min(-input, 0.0) + log1p(exp(-abs(input)));
  Tensor log_weight = pos_weight.defined() ? (pos_weight - 1.0) * target + 1.0 : Tensor();
  Tensor loss = (1.0 - target) * input + (log_weight.defined() ? log_weight * softplus_neg : softplus_neg);
  if (weight.defined()) loss = loss * weight;
  return reduce_loss(loss, reduction);
}

Tensor kl_div(const Tensor& input, const Tensor& target, Reduction reduction, bool log_target) {
  const char* op = "kl_div";
  check_defined(op, input, "input");
  check_defined(op, target, "target");
  check_floating(op, input, "input");
  check_floating(op, target, "target");
  check_same_device(op, input, target, "target");
  check_same_shape(op, input, target);
  Tensor loss;
  if (log_target) {
    loss = exp(target) * (target - input);
  } else {
    // xlogy(t, t) - t x: t log t is 0 at t = 0. log of 1 there (not of 0) keeps the gradient
    // finite; negative t still gives nan, as torch.
    Tensor log_target_safe = log(where(target == 0.0, Scalar(1.0), target));
    loss = target * (log_target_safe - input);
  }
  if (reduction == Reduction::batchmean) {
    Tensor total = sum(loss);
    return input.dim() == 0 ? total : total / static_cast<double>(input.shape()[0]);
  }
  return reduce_loss(loss, reduction);
}

}  // namespace keel
