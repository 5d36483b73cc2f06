// The "short tour" of README.md, compiled and run by the tests so that it stays true.
#include <cmath>
#include <iostream>

#include <keel/keel.h>

using namespace keel;

int main() {
  manual_seed(0);                                   // Philox: same numbers on CPU and CUDA
  Tensor x = randn({64, 784});                      // f32 on the CPU
  Tensor w = rand({784, 10}, {.dtype = bf16});      // options: dtype, device
  Tensor y = tensor({{1, 2, 3}, {4, 5, 6}});        // i64, shape [2, 3], like torch.tensor

  Tensor v = y.t();                                 // views share storage: t, permute, slice,
  Tensor s = x.slice(1, 0, 784, 2);                 // narrow, select, expand, squeeze, view...
  Tensor z = x.reshape({64, 28, 28}).contiguous();  // reshape copies only when it must

  Tensor a = gelu(x) * 0.5 + sigmoid(x);            // broadcasting and PyTorch's promotion
  Tensor m = where(x > 0, x, 0.0);                  // comparisons give bool
  x += 1.0;                                         // in-place forms: add_, mul_, exp_, clamp_...

  Tensor total = sum(x, {1}, /*keepdim=*/true);     // reductions over any dims
  auto [values, indices] = max(x, -1);
  Tensor lse = logsumexp(x, {-1});
  Tensor parts = cat({x, x}, 0);
  std::cout << y << "\n";                           // prints like PyTorch: tensor([[1, 2, 3], ...])

  Tensor W = randn({10, 784}).requires_grad_();     // autograd: ops on tensors that require grad
  Tensor b = zeros({10}).requires_grad_();          // record their backward rules on a tape
  Tensor labels = randint(0, 10, {64});             // i64 class indices
  Tensor loss = cross_entropy(linear(x, W, b), labels);
  loss.backward();                                  // W.grad(): [10, 784], b.grad(): [10]
  { NoGradGuard no_grad; W -= 0.1 * W.grad(); }     // an SGD step, not recorded
  Tensor u = tensor({0.5, 2.0}).requires_grad_();   // higher order: create_graph records the backward
  auto du = autograd::grad({sum(u * u * u)}, {u}, {}, {.create_graph = true});  // du[0] = 3u^2, differentiable

  if (cuda::is_available()) {
    Tensor g = x.to(Device::cuda(0));               // host <-> CUDA (in a CUDA build with a GPU)
    std::cout << "on " << g.device().str() << ": " << sum(g).cpu() << "\n";
  }

  // The shapes the tour promises.
  const bool ok = w.dtype() == bf16 && v.shape() == Shape{3, 2} && s.shape() == Shape{64, 392} &&
                  z.shape() == Shape{64, 28, 28} && a.shape() == Shape{64, 784} && m.dtype() == f32 &&
                  total.shape() == Shape{64, 1} && values.shape() == Shape{64} && indices.dtype() == i64 &&
                  lse.shape() == Shape{64} && parts.shape() == Shape{128, 784};
  // The autograd part: gradients of the promised shapes, W still a leaf after the step, and
  // du = 3u^2 = {0.75, 12} carrying a tape of its own.
  const Tensor du_expected = tensor({0.75, 12.0});
  const bool grad_ok = W.grad().shape() == Shape{10, 784} && b.grad().shape() == Shape{10} && W.is_leaf() &&
                       loss.dim() == 0 && std::isfinite(loss.item<double>()) && du.size() == 1 &&
                       du[0].requires_grad() && amax(abs(du[0] - du_expected)).item<double>() < 1e-5;
  std::cout << (ok && grad_ok ? "tour ok" : "tour FAILED") << "\n";
  return ok && grad_ok ? 0 : 1;
}
