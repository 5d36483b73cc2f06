// The tape: backward, accumulation, retain/create graph, grad(), guards, hooks, saved-tensor
// version checks, anomaly mode, custom functions, and the errors the issue lists.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "autograd/autograd_test_util.h"

using namespace keel;
using autograd::TensorList;
using test::check_error;

using namespace keel::autograd_test;

TEST_CASE("backward accumulates d(sum x^2)/dx = 2x into the leaf", "[autograd]") {
  Tensor x = leaf({1, -2, 3});
  CHECK(x.is_leaf());
  CHECK(x.requires_grad());
  Tensor y = sum((x * x));
  CHECK_FALSE(y.is_leaf());
  REQUIRE(y.grad_fn());
  CHECK(y.grad_fn()->name() == "sum");
  y.backward();
  check_values(x.grad(), {2, -4, 6});
  // A second graph accumulates into the same grad.
  sum((x * 3)).backward();
  check_values(x.grad(), {5, -1, 9});
  x.zero_grad(/*set_to_none=*/false);
  check_values(x.grad(), {0, 0, 0});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("a node reached by several paths runs once, after all of them", "[autograd]") {
  // z = y + y*y + exp(y), y = a*b: dz/da = (1 + 2y + e^y) b.
  Tensor a = leaf({0.5, -1.0}), b = leaf({2.0, 0.25});
  Tensor y = a * b;
  Tensor z = sum((y + y * y + exp(y)));
  z.backward();
  const std::vector<double> av = {0.5, -1.0}, bv = {2.0, 0.25};
  std::vector<double> expect_a, expect_b;
  for (int i = 0; i < 2; ++i) {
    const double yv = av[i] * bv[i], dz = 1 + 2 * yv + std::exp(yv);
    expect_a.push_back(dz * bv[i]);
    expect_b.push_back(dz * av[i]);
  }
  check_values(a.grad(), expect_a);
  check_values(b.grad(), expect_b);
}

TEST_CASE("non-scalar backward needs a gradient; a given gradient weights the outputs", "[autograd]") {
  Tensor x = leaf({1, 2, 3});
  Tensor y = x * 2;
  check_error([&] { y.backward(); }, {"[backward]", "one-element", "[3]"});
  y.backward(tensor({1.0, 0.5, -1.0}, DType::f64));
  check_values(x.grad(), {2, 1, -2});
  check_error([&] { (x * 2).backward(tensor({1.0, 2.0}, DType::f64)); }, {"[backward]", "[2]", "[3]"});
}

TEST_CASE("a second backward without retain_graph is an error; retain_graph allows it", "[autograd]") {
  Tensor x = leaf({1, 2});
  Tensor y = sum((x * x));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  check_values(x.grad(), {4, 8});
  check_error([&] { y.backward(); }, {"[backward]", "second time", "retain_graph"});
}

TEST_CASE("errors: grad of a tensor that does not require grad", "[autograd]") {
  Tensor c = tensor({1.0, 2.0});
  check_error([&] { sum(c).backward(); }, {"[backward]", "does not require grad"});
  Tensor x = leaf({1, 2});
  Tensor y = sum((x * 2));
  check_error([&] { autograd::grad({y}, {c}); }, {"[grad]", "input 0", "does not require grad"});
  check_error([&] { autograd::grad({y}, {leaf({1})}); }, {"[grad]", "not used", "allow_unused"});
  TensorList unused = autograd::grad({sum((x * 2))}, {x, leaf({1})}, {}, {.allow_unused = true});
  check_values(unused[0], {2, 2});
  CHECK_FALSE(unused[1].defined());
  check_error([&] { tensor({1, 2}).requires_grad_(); }, {"[requires_grad_]", "floating", "int64"});
}

TEST_CASE("in-place ops: refused on leaves that require grad, recorded on other tensors", "[autograd]") {
  Tensor x = leaf({1, 2, 3});
  check_error([&] { add_(x, 1); }, {"[add_]", "leaf", "requires grad", "NoGradGuard"});
  check_error([&] { mul_(x, tensor({2.0, 2.0, 2.0}, DType::f64)); }, {"[mul_]", "leaf"});
  {
    NoGradGuard no_grad;  // what an optimizer step does
    sub_(x, 1);
  }
  check_values(x, {0, 1, 2});
  // y = 2x, then y *= y (reads its old value), then y += x: dy/dx = 8x + 1.
  Tensor y = x * 2;
  mul_(y, y);
  add_(y, x);
  CHECK(y.grad_fn() != nullptr);
  sum(y).backward();
  check_values(x.grad(), {1, 9, 17});
  // In-place through a view rewrites the base's history (PyTorch's CopySlices).
  Tensor v = leaf({1, 2, 3});
  Tensor z = v * 1;
  Tensor head = z.slice(0, 0, 2);
  mul_(head, tensor({2.0, 3.0}, DType::f64));
  check_values(z, {2, 6, 3});
  sum(z * z).backward();  // d/dv of (2v0)^2 + (3v1)^2 + v2^2
  check_values(v.grad(), {8, 36, 6});
  // A view of a leaf that requires grad cannot be written in place.
  check_error([&] { Tensor view = v.slice(0, 0, 2); mul_(view, 2); }, {"[mul_]", "view", "leaf"});
  // An in-place op on a plain tensor from a tensor that requires grad gives it history.
  Tensor buffer = zeros({3}, {DType::f64});
  buffer.copy_(x);
  mul_(buffer, 3);
  sum(buffer).backward();
  check_values(x.grad(), {4, 12, 20});
}

TEST_CASE("modifying a saved tensor in place makes backward fail naming the op", "[autograd]") {
  Tensor x = leaf({1, 2});
  Tensor y = x * 1;
  Tensor z = sum((y * y));  // mul saves y
  add_(y, 1);
  check_error([&] { z.backward(); }, {"[backward]", "'mul'", "modified by an in-place op"});
  // exp saves its output: modifying the output afterwards is caught too.
  Tensor e = exp(x);
  Tensor w = sum(e);  // sum saves nothing
  mul_(e, 2);
  check_error([&] { w.backward(); }, {"'exp'", "in-place"});
}

TEST_CASE("create_graph gives differentiable gradients (second derivatives)", "[autograd]") {
  Tensor x = leaf({0.5, -1.5, 2.0});
  Tensor y = sum((x * x * x));
  TensorList g = autograd::grad({y}, {x}, {}, {.create_graph = true});
  check_values(g[0], {0.75, 6.75, 12.0});  // 3x^2
  REQUIRE(g[0].requires_grad());
  sum(g[0]).backward();
  check_values(x.grad(), {3, -9, 12});  // 6x
  // backward(create_graph) leaves a grad with history.
  Tensor u = leaf({1.0, 2.0});
  sum((sin(u) * u)).backward(Tensor(), false, /*create_graph=*/true);
  REQUIRE(u.grad().requires_grad());
  TensorList second = autograd::grad({sum(u.grad())}, {u});
  // d/du [cos(u) u + sin(u)] = 2 cos u - u sin u
  check_values(second[0], {2 * std::cos(1.0) - std::sin(1.0), 2 * std::cos(2.0) - 2 * std::sin(2.0)});
}

TEST_CASE("NoGradGuard and EnableGradGuard; detach", "[autograd]") {
  Tensor x = leaf({1, 2});
  {
    NoGradGuard no_grad;
    Tensor y = x * 2;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    {
      EnableGradGuard enable;
      CHECK((x * 2).requires_grad());
    }
    CHECK_FALSE((x * 2).requires_grad());
  }
  CHECK(autograd::GradMode::is_enabled());
  Tensor d = (x * 2).detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(d.storage() != nullptr);
  Tensor y = x * 2;
  check_error([&] { y.requires_grad_(false); }, {"[requires_grad_]", "leaf", "'mul'"});
}

TEST_CASE("hooks: tensor hooks change the gradient; post-accumulate hooks see the result", "[autograd]") {
  Tensor x = leaf({1, 2});
  Tensor y = x * 3;
  int calls = 0;
  y.register_hook([&](const Tensor& g) {
    ++calls;
    return g * 10;
  });
  Tensor seen;
  x.register_post_accumulate_grad_hook([&](const Tensor& param) { seen = param.grad().clone(); });
  x.register_hook([](const Tensor& g) { return g + 1; });
  sum(y).backward();
  CHECK(calls == 1);
  check_values(x.grad(), {31, 31});  // (1 * 10) * 3 + 1
  check_values(seen, {31, 31});
  // retain_grad keeps a non-leaf's gradient.
  Tensor h = x * 2;
  h.retain_grad();
  CHECK(h.retains_grad());
  sum((h * h)).backward();
  check_values(h.grad(), values_of(h * 2));
  check_error([&] { tensor({1.0}).register_hook([](const Tensor& g) { return g; }); }, {"[register_hook]"});
  check_error([&] { y.register_post_accumulate_grad_hook([](const Tensor&) {}); }, {"not a leaf"});
}

TEST_CASE("anomaly mode names the op whose backward made NaN or Inf", "[autograd]") {
  Tensor x = leaf({0.0, 1.0});
  {
    Tensor y = sum(log(x));
    y.backward();  // no check: grad is inf at 0, silently
    CHECK(std::isinf(values_of(x.grad())[0]));
  }
  autograd::DetectAnomalyGuard anomaly;
  x.zero_grad();
  Tensor y = sum((log(x) * 2));
  check_error([&] { y.backward(); }, {"anomaly", "'log'", "NaN or Inf"});
}

namespace {
struct CubePlus : autograd::Function<CubePlus> {
  static constexpr const char* name = "cube_plus";
  static Tensor forward(autograd::FunctionContext& ctx, const Tensor& x, const Tensor& shift, double scale) {
    ctx.save_for_backward({x});
    ctx.saved_data["scale"] = scale;
    return x * x * x * scale + shift;
  }
  static TensorList backward(autograd::FunctionContext& ctx, const TensorList& grads) {
    const double scale = std::any_cast<double>(ctx.saved_data["scale"]);
    const Tensor& x = ctx.saved()[0];
    return {ctx.needs_input_grad(0) ? grads[0] * x * x * (3 * scale) : Tensor(),
            ctx.needs_input_grad(1) ? grads[0] : Tensor()};
  }
};
}  // namespace

TEST_CASE("custom functions define forward and backward in C++", "[autograd]") {
  Tensor x = leaf({1, 2}), shift = leaf({0.5, 0.5});
  Tensor y = CubePlus::apply(x, shift, 2.0);
  REQUIRE(y.grad_fn());
  CHECK(y.grad_fn()->name() == "cube_plus");
  check_values(y, {2.5, 16.5});
  sum(y).backward();
  check_values(x.grad(), {6, 24});
  check_values(shift.grad(), {1, 1});
  CHECK(autograd::gradcheck(
      [](const TensorList& in) { return CubePlus::apply(in[0], in[1], 1.5); },
      {leaf({0.3, -0.7}), leaf({1.0, 2.0})}));
  // Its saved tensors are version-checked like the built-in ones.
  Tensor z = x * 1;
  Tensor w = sum(CubePlus::apply(z, shift, 1.0));
  add_(z, 1);
  check_error([&] { w.backward(); }, {"'cube_plus'", "in-place"});
}

TEST_CASE("the graph is freed with its outputs; saved outputs do not keep their node alive", "[autograd]") {
  Tensor x = leaf({1, 2});
  std::weak_ptr<autograd::Node> node;
  {
    Tensor y = exp(x);  // saves its own output
    node = y.grad_fn();
    CHECK_FALSE(node.expired());
  }
  CHECK(node.expired());
  {
    Tensor z = sum((exp(x) * sigmoid(x)));
    node = z.grad_fn();
    z.backward();
  }
  CHECK(node.expired());
}

TEST_CASE("views and in-place writes through them free their graph too", "[autograd]") {
  Tensor x = leaf({1, 2, 3, 4, 5, 6});
  std::weak_ptr<autograd::Node> node, base_node;
  {
    Tensor y = x * 2;
    Tensor grid = y.view({2, 3});
    Tensor column = grid.t().select(0, 1);
    mul_(column, 3);             // rewrites y's history through a view of a view
    base_node = y.grad_fn();
    Tensor z = sum(grid * grid);
    node = z.grad_fn();
    z.backward();
  }
  CHECK(node.expired());
  CHECK(base_node.expired());
  check_values(x.grad(), {8, 144, 24, 32, 360, 48});  // d(2x)^2/dx = 8x; d(6x)^2/dx = 72x in the column
}

TEST_CASE("gradients flow through views, conversions and copies", "[autograd]") {
  Tensor x = arange(0, 6, 1, {DType::f64}).view({2, 3}).clone().requires_grad_();
  Tensor y = x.t().slice(0, 0, 3, 2).select(1, 1) * 2;     // x[1, 0] and x[1, 2]
  Tensor z = sum(x.to(DType::f32)) + sum(x.expand({4, 2, 3})) * 0 + sum(y);
  z.backward();
  check_values(x.grad(), {1, 1, 1, 3, 1, 3});
  // f32 leaf through f64 math gets an f32 gradient.
  Tensor f = leaf({1, 2}).detach().to(DType::f32).requires_grad_();
  sum((f.to(DType::f64) * 2)).backward();
  CHECK(f.grad().dtype() == DType::f32);
  check_values(f.grad(), {2, 2});
}

TEST_CASE("multi-output ops: max values take the gradient, indices take none", "[autograd]") {
  Tensor x = tensor({{1.0, 5.0, 2.0}, {7.0, 0.0, 3.0}}, DType::f64).requires_grad_();
  ValuesIndices m = max(x, 1);
  CHECK_FALSE(m.indices.requires_grad());
  sum((m.values * tensor({1.0, 2.0}, DType::f64))).backward();
  check_values(x.grad(), {0, 1, 0, 2, 0, 0});
}
