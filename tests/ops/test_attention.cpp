// The CPU flash attention (kernels/cpu/flash_attention.isa.cpp behind scaled_dot_product_attention)
// against the composite written here with public ops (matmul, masked_fill, softmax, matmul: the
// spec, differentiated by autograd op by op): values and gradients in float64 on odd sizes
// (L, S in 1, 7, 33, 100, 257 across the 64-row/64-key tiles; E 32, 33, 64, 128; 4/4, 4/2, 4/1
// heads), causal with L != S, bool and float masks of broadcast shapes, fully masked rows (NaN as
// PyTorch 1.13's composite), non-contiguous q/k/v (transposed from (B, T, H, E)), f32 on every ISA
// path this machine runs, bf16; gradcheck and gradgradcheck in float64; errors.
#include <cmath>
#include <limits>

#include <omp.h>

#include "keel/autograd/gradcheck.h"
#include "keel/kernels/cpu/cpu_features.h"
#include "test_util.h"

using namespace keel;
using namespace keel::test;
using autograd::TensorList;

namespace {

enum class Mask { none, causal, boolean, additive };

const char* mask_name(Mask m) {
  switch (m) {
    case Mask::none: return "no mask";
    case Mask::causal: return "causal";
    case Mask::boolean: return "bool mask";
    case Mask::additive: return "float mask";
  }
  return "";
}

// The spec: softmax(q k^T * scale + mask) v with k, v heads repeated for grouped-query attention.
Tensor composite_attention(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaOptions& options) {
  const int64_t heads = q.shape()[1], key_heads = k.shape()[1], groups = heads / key_heads;
  auto repeat = [&](const Tensor& x) {
    if (groups == 1) return x;
    const Shape s = x.shape();
    return x.unsqueeze(2).expand({s[0], s[1], groups, s[2], s[3]}).reshape({s[0], s[1] * groups, s[2], s[3]});
  };
  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(q.shape()[3])));
  Tensor scores = matmul(q, repeat(k).transpose(-1, -2)) * scale;
  const double minus_inf = -std::numeric_limits<double>::infinity();
  if (options.is_causal) {
    const Tensor allowed = tril(ones({q.shape()[2], k.shape()[2]}, {.dtype = DType::bool_}));
    scores = masked_fill(scores, logical_not(allowed), minus_inf);
  } else if (options.attn_mask.defined()) {
    scores = options.attn_mask.dtype() == DType::bool_ ? masked_fill(scores, logical_not(options.attn_mask), minus_inf)
                                                       : scores + options.attn_mask;
  }
  return matmul(softmax(scores, -1), repeat(v));
}

struct Result {
  Tensor out, grad_q, grad_k, grad_v;
};

// out = f(q, k, v) and the gradients of sum(out * g), from leaves copied from q, k, v (their
// layout kept: a non-contiguous input stays non-contiguous).
template <class F> Result run(F f, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g) {
  auto leaf_like = [](const Tensor& x) {
    Tensor y = x.detach();
    return y.requires_grad_();
  };
  const Tensor ql = leaf_like(q), kl = leaf_like(k), vl = leaf_like(v);
  Result r;
  r.out = f(ql, kl, vl);
  const TensorList grads = autograd::grad({r.out}, {ql, kl, vl}, {g});
  r.grad_q = grads[0];
  r.grad_k = grads[1];
  r.grad_v = grads[2];
  return r;
}

// Every element within atol + rtol |expected|; NaN where expected is NaN.
void expect_close(const Tensor& actual, const Tensor& expected, Tolerance tol, const std::string& what) {
  INFO(what);
  REQUIRE(actual.shape() == expected.shape());
  check_matches(actual, reference::from_tensor(expected.to(DType::f64)), tol, what);
}

void expect_results(const Result& got, const Result& want, Tolerance tol, const std::string& what) {
  expect_close(got.out, want.out, tol, what + ": out");
  expect_close(got.grad_q, want.grad_q, tol, what + ": grad q");
  expect_close(got.grad_k, want.grad_k, tol, what + ": grad k");
  expect_close(got.grad_v, want.grad_v, tol, what + ": grad v");
}

// (B, H, T, E) with the memory layout of (B, T, H, E) when `strided` (a transposed view).
Tensor attention_input(int64_t batch, int64_t heads, int64_t length, int64_t embed, DType dtype, bool strided) {
  if (!strided) return random_tensor({batch, heads, length, embed}, dtype);
  return random_tensor({batch, length, heads, embed}, dtype).transpose(1, 2);
}

struct Case {
  int64_t batch, heads, key_heads, length, positions, embed;
  Mask mask;
  Shape mask_shape;  // for bool / float masks: broadcast to (B, H, L, S)
  bool strided;
  std::string name() const {
    return "B" + std::to_string(batch) + " H" + std::to_string(heads) + "/" + std::to_string(key_heads) + " L" +
           std::to_string(length) + " S" + std::to_string(positions) + " E" + std::to_string(embed) + " " +
           mask_name(mask) + (strided ? " strided" : "");
  }
};

SdpaOptions options_for(const Case& c, DType dtype) {
  SdpaOptions options;
  options.is_causal = c.mask == Mask::causal;
  if (c.mask == Mask::boolean) {
    // ~30% masked, key 0 always kept: no fully masked row here (those have their own test).
    Tensor mask = rand(c.mask_shape) > 0.3;
    options.attn_mask = logical_or(mask, arange(0, c.mask_shape.back(), 1) == 0);
  } else if (c.mask == Mask::additive) {
    options.attn_mask = random_tensor(c.mask_shape, dtype, -3.0, 1.0);
  }
  return options;
}

Shape mask_shape_for(int index, int64_t batch, int64_t heads, int64_t length, int64_t positions) {
  switch (index % 3) {
    case 0: return {length, positions};
    case 1: return {batch, 1, length, positions};
    default: return {1, heads, 1, positions};
  }
}

// The flash result vs the composite on the same values (in float64 unless `compute` says otherwise).
void check_case(const Case& c, DType dtype, Tolerance tol, const std::string& tag) {
  const Tensor q = attention_input(c.batch, c.heads, c.length, c.embed, dtype, c.strided);
  const Tensor k = attention_input(c.batch, c.key_heads, c.positions, c.embed, dtype, c.strided);
  const Tensor v = attention_input(c.batch, c.key_heads, c.positions, c.embed, dtype, c.strided);
  const Tensor g = random_tensor({c.batch, c.heads, c.length, c.embed}, dtype);
  const SdpaOptions options = options_for(c, dtype);
  const Result got = run([&](const Tensor& a, const Tensor& b, const Tensor& d) {
    return scaled_dot_product_attention(a, b, d, options);
  }, q, k, v, g);
  REQUIRE(got.out.grad_fn());
  CHECK(got.out.grad_fn()->name() == "scaled_dot_product_attention");  // the flash node, not the composite
  SdpaOptions options64 = options;
  if (options.attn_mask.defined() && options.attn_mask.dtype() != DType::bool_)
    options64.attn_mask = options.attn_mask.to(DType::f64);
  const Result want = run([&](const Tensor& a, const Tensor& b, const Tensor& d) {
    return composite_attention(a, b, d, options64);
  }, q.to(DType::f64), k.to(DType::f64), v.to(DType::f64), g.to(DType::f64));
  expect_results(got, want, tol, tag + " " + c.name());
}

Tensor leaf(const Shape& shape) { return random_tensor(shape, DType::f64).requires_grad_(); }

}  // namespace

TEST_CASE("flash attention matches the composite in float64: values and gradients", "[attention]") {
  const std::vector<int64_t> lengths = {1, 7, 33, 100, 257};
  const std::vector<int64_t> embeds = {32, 33, 64, 128};
  const std::vector<std::pair<int64_t, int64_t>> heads = {{4, 4}, {4, 2}, {4, 1}};
  const std::vector<Mask> masks = {Mask::none, Mask::causal, Mask::boolean, Mask::additive};
  int index = 0;
  for (int64_t length : lengths) {
    for (int64_t positions : lengths) {
      const int64_t embed = embeds[static_cast<size_t>(index) % embeds.size()];
      const auto [h, hkv] = heads[static_cast<size_t>(index) % heads.size()];
      const Mask mask = masks[static_cast<size_t>(index / 3) % masks.size()];
      // float64 runs plain loops: the largest cases with one batch entry.
      const int64_t batch = length * positions > 20000 ? 1 : 1 + index % 2;
      const int64_t h_used = h;
      Case c{batch, h_used, hkv, length, positions, embed, mask,
             mask_shape_for(index, batch, h_used, length, positions), index % 2 == 1};
      check_case(c, DType::f64, {1e-10, 1e-9}, "f64");
      ++index;
    }
  }
}

TEST_CASE("flash attention in float32 on every instruction-set path", "[attention]") {
  const std::vector<Case> cases = {
      {1, 4, 4, 100, 257, 64, Mask::none, {}, false},
      {2, 4, 2, 257, 100, 128, Mask::causal, {}, true},
      {1, 4, 1, 33, 33, 33, Mask::boolean, {1, 4, 33, 33}, false},
      {2, 4, 2, 70, 130, 32, Mask::additive, {70, 130}, true},
      {1, 2, 2, 1, 7, 128, Mask::causal, {}, false},
      {1, 2, 1, 129, 65, 64, Mask::causal, {}, false},
  };
  const std::vector<std::string> levels = {"avx512", "avx2", "baseline"};
  for (const std::string& level : levels) {
    cpu::set_cpu_isa(level);
    INFO("ISA " << cpu::active_isa());
    for (const Case& c : cases) check_case(c, DType::f32, {5e-5, 5e-4}, "f32 " + std::string(cpu::active_isa()));
  }
  cpu::set_cpu_isa("amx");
}

TEST_CASE("flash attention in bfloat16 (float32 compute) is within bf16 rounding", "[attention]") {
  const std::vector<Case> cases = {
      {1, 4, 2, 100, 257, 64, Mask::none, {}, false},
      {1, 4, 4, 65, 65, 128, Mask::causal, {}, true},
      {2, 4, 1, 33, 70, 32, Mask::additive, {2, 1, 33, 70}, false},
      {1, 4, 4, 33, 70, 33, Mask::boolean, {33, 70}, false},
  };
  // The inputs are the same bf16 values for both; the flash kernel rounds out and gradients to bf16
  // (2^-8 relative) once, after float32 sums.
  for (const Case& c : cases) check_case(c, DType::bf16, {2e-2, 2e-2}, "bf16");
}

TEST_CASE("flash attention on fully masked rows gives what PyTorch 1.13's composite gives", "[attention]") {
  // torch 1.13 (softmax(masked_fill(q k^T, ~mask, -inf)) @ v, then backward): the fully masked
  // query row is NaN in out; its grad q row is 0 and grad k stays finite (masked_fill's backward
  // drops the masked scores' gradient); grad v is NaN everywhere (the NaN weights meet every key).
  // With an additive -inf row the NaN reaches grad q and grad k too (add passes it on).
  const int64_t length = 70, positions = 75;
  const Tensor q = random_tensor({1, 2, length, 8}, DType::f64);
  const Tensor k = random_tensor({1, 2, positions, 8}, DType::f64);
  const Tensor v = random_tensor({1, 2, positions, 8}, DType::f64);
  const Tensor g = random_tensor({1, 2, length, 8}, DType::f64);
  Tensor keep = ones({length, positions}, {.dtype = DType::bool_});
  keep.select(0, 3).fill_(false);
  keep.select(0, 66).fill_(false);
  for (bool additive : {false, true}) {
    SdpaOptions options;
    options.attn_mask = additive ? where(keep, 0.0, -std::numeric_limits<double>::infinity()).to(DType::f64) : keep;
    const Result got = run([&](const Tensor& a, const Tensor& b, const Tensor& d) {
      return scaled_dot_product_attention(a, b, d, options);
    }, q, k, v, g);
    const Result want = run([&](const Tensor& a, const Tensor& b, const Tensor& d) {
      return composite_attention(a, b, d, options);
    }, q, k, v, g);
    const std::string what = additive ? "additive -inf rows" : "bool rows";
    expect_results(got, want, {1e-10, 1e-9}, what);
    CHECK(std::isnan(sum(got.out.select(2, 3)).item<double>()));
    CHECK(!std::isnan(sum(got.out.select(2, 4)).item<double>()));
    CHECK(std::isnan(sum(got.grad_v).item<double>()));
    if (!additive) {
      CHECK(sum(abs(got.grad_q.select(2, 66))).item<double>() == 0.0);
      CHECK(std::isfinite(sum(got.grad_k).item<double>()));
    }
  }
}

TEST_CASE("flash attention passes gradcheck and gradgradcheck in float64", "[attention][autograd]") {
  using Fn = autograd::SingleOutputFn;
  auto check = [](const Fn& fn, const TensorList& inputs, const std::string& what, bool second_order) {
    INFO(what);
    CHECK_NOTHROW(autograd::gradcheck(fn, inputs));
    if (second_order) CHECK_NOTHROW(autograd::gradgradcheck(fn, inputs));
  };
  const Fn plain = [](const TensorList& x) { return scaled_dot_product_attention(x[0], x[1], x[2]); };
  const Fn causal = [](const TensorList& x) {
    return scaled_dot_product_attention(x[0], x[1], x[2], {.is_causal = true, .scale = 0.7});
  };
  const Fn masked = [](const TensorList& x) { return scaled_dot_product_attention(x[0], x[1], x[2], {.attn_mask = x[3]}); };
  check(plain, {leaf({1, 4, 5, 3}), leaf({1, 2, 7, 3}), leaf({1, 2, 7, 3})}, "GQA 4/2", true);
  check(causal, {leaf({2, 2, 6, 3}), leaf({2, 1, 4, 3}), leaf({2, 1, 4, 2})}, "causal L > S, Ev != E", true);
  check(causal, {leaf({1, 1, 3, 2}), leaf({1, 1, 5, 2}), leaf({1, 1, 5, 2})}, "causal L < S", true);
  const Tensor bool_mask = logical_or(rand({1, 2, 5, 7}) > 0.5, arange(0, 7, 1) == 0);
  check(masked, {leaf({1, 2, 5, 3}), leaf({1, 2, 7, 3}), leaf({1, 2, 7, 3}), bool_mask}, "bool mask", true);
  check(masked, {leaf({1, 2, 5, 3}), leaf({1, 1, 7, 3}), leaf({1, 1, 7, 3}), random_tensor({5, 7}, DType::f64)},
        "float mask (constant)", true);
  // Across the 64 x 64 tiles (first order only: gradgradcheck here would take long).
  check(causal, {leaf({1, 2, 67, 2}), leaf({1, 1, 70, 2}), leaf({1, 1, 70, 2})}, "causal over tiles", false);
}

TEST_CASE("scaled_dot_product_attention_backward is the gradient of the flash forward", "[attention]") {
  // Called directly (no recording): the kernel's dq, dk, dv against the composite's autograd.
  const Tensor q = random_tensor({2, 4, 40, 16}, DType::f32), k = random_tensor({2, 2, 90, 16}, DType::f32),
               v = random_tensor({2, 2, 90, 16}, DType::f32), g = random_tensor({2, 4, 40, 16}, DType::f32);
  // out and lse as the forward kernel makes them (through the recorded forward's saved values is
  // not public): recompute them with public ops.
  const double scale = 0.25;
  const Tensor keys = k.unsqueeze(2).expand({2, 2, 2, 90, 16}).reshape({2, 4, 90, 16});
  const Tensor scores = matmul(q, keys.transpose(-1, -2)) * scale;
  const Tensor lse = logsumexp(scores, {-1});
  const Tensor out = scaled_dot_product_attention(q, k, v, {.scale = scale});
  const SdpaGrads grads = scaled_dot_product_attention_backward(g, q, k, v, out, lse, {.scale = scale});
  const Result want = run([&](const Tensor& a, const Tensor& b, const Tensor& d) {
    return composite_attention(a, b, d, {.scale = scale});
  }, q.to(DType::f64), k.to(DType::f64), v.to(DType::f64), g.to(DType::f64));
  expect_close(grads.grad_q, want.grad_q, {5e-5, 5e-4}, "grad q");
  expect_close(grads.grad_k, want.grad_k, {5e-5, 5e-4}, "grad k");
  expect_close(grads.grad_v, want.grad_v, {5e-5, 5e-4}, "grad v");
  check_error([&] { scaled_dot_product_attention_backward(g, q, k.narrow(3, 0, 8), v, out, lse); },
              {"[scaled_dot_product_attention_backward]", "[2, 2, 90, 8]"});
  check_error([&] { scaled_dot_product_attention_backward(g.narrow(2, 0, 39), q, k, v, out, lse); },
              {"[scaled_dot_product_attention_backward]", "grad_out", "[2, 4, 39, 16]"});
}

TEST_CASE("scaled_dot_product_attention errors name the op and the shapes", "[attention]") {
  const Tensor q = empty({1, 4, 5, 8}), k = empty({1, 3, 7, 8}), v = empty({1, 3, 7, 8});
  check_error([&] { scaled_dot_product_attention(q, k, v); },
              {"[scaled_dot_product_attention]", "heads", "[1, 4, 5, 8]", "[1, 3, 7, 8]"});
  check_error([&] { scaled_dot_product_attention(q, empty({1, 4, 7, 6}), empty({1, 4, 7, 8})); },
              {"[scaled_dot_product_attention]", "last dim", "[1, 4, 5, 8]", "[1, 4, 7, 6]"});
  check_error([&] {
    scaled_dot_product_attention(q, empty({1, 2, 7, 8}), empty({1, 2, 7, 8}), {.attn_mask = ones({5, 6}, {.dtype = DType::bool_})});
  }, {"[scaled_dot_product_attention]", "attn_mask", "[5, 6]", "[1, 4, 5, 7]"});
  check_error([&] {
    scaled_dot_product_attention(q, empty({1, 2, 7, 8}), empty({1, 2, 7, 8}), {.attn_mask = ones({3, 5, 7})});
  }, {"[scaled_dot_product_attention]", "attn_mask", "[3, 5, 7]"});
  check_error([&] { scaled_dot_product_attention(q, empty({1, 2, 7, 8}), empty({1, 2, 6, 8})); },
              {"[scaled_dot_product_attention]", "positions"});
}

TEST_CASE("flash attention takes 2-D and 3-D inputs and leaves the other cases to the composite", "[attention]") {
  // 3-D (H, L, E) with grouped key heads, and 2-D (L, E): the flash node, same numbers as 4-D.
  const Tensor q = random_tensor({4, 9, 16}, DType::f64), k = random_tensor({2, 70, 16}, DType::f64),
               v = random_tensor({2, 70, 5}, DType::f64), g3 = random_tensor({4, 9, 5}, DType::f64);
  const Result got3 = run([](const Tensor& a, const Tensor& b, const Tensor& d) {
    return scaled_dot_product_attention(a, b, d, {.is_causal = true});
  }, q, k, v, g3);
  CHECK(got3.out.grad_fn()->name() == "scaled_dot_product_attention");
  const Result want3 = run([](const Tensor& a, const Tensor& b, const Tensor& d) {
    return composite_attention(a.unsqueeze(0), b.unsqueeze(0), d.unsqueeze(0), {.is_causal = true}).squeeze(0);
  }, q, k, v, g3);
  expect_results(got3, want3, {1e-10, 1e-9}, "3-D GQA causal");

  const Tensor q2 = q.select(0, 1), k2 = k.select(0, 0), v2 = v.select(0, 0), g2 = g3.select(0, 0);
  const Result got2 = run([](const Tensor& a, const Tensor& b, const Tensor& d) {
    return scaled_dot_product_attention(a, b, d, {.scale = 0.3});
  }, q2, k2, v2, g2);
  CHECK(got2.out.grad_fn()->name() == "scaled_dot_product_attention");
  const Result want2 = run([](const Tensor& a, const Tensor& b, const Tensor& d) {
    return composite_attention(a.view({1, 1, 9, 16}), b.view({1, 1, 70, 16}), d.view({1, 1, 70, 5}), {.scale = 0.3})
        .view({9, 5});
  }, q2, k2, v2, g2);
  expect_results(got2, want2, {1e-10, 1e-9}, "2-D");

  // Composite cases: dropout, a float mask that requires grad, broadcast batch dims, f16.
  Tensor ql = q.detach().requires_grad_();
  CHECK(scaled_dot_product_attention(ql, k, v, {.dropout_p = 0.5}).grad_fn()->name() != "scaled_dot_product_attention");
  const Tensor mask = random_tensor({9, 70}, DType::f64).requires_grad_();
  CHECK(scaled_dot_product_attention(ql, k, v, {.attn_mask = mask}).grad_fn()->name() != "scaled_dot_product_attention");
  CHECK(scaled_dot_product_attention(ql.unsqueeze(0).expand({2, 4, 9, 16}), k, v).grad_fn()->name() !=
        "scaled_dot_product_attention");
  // Empty lengths: the composite's shapes (S = 0 gives zeros, as torch's matmul over an empty sum).
  CHECK(scaled_dot_product_attention(empty({1, 2, 0, 8}), empty({1, 2, 5, 8}), empty({1, 2, 5, 3})).shape() ==
        Shape{1, 2, 0, 3});
  const Tensor no_keys = scaled_dot_product_attention(ones({1, 2, 4, 8}), empty({1, 2, 0, 8}), empty({1, 2, 0, 3}));
  REQUIRE(no_keys.shape() == Shape{1, 2, 4, 3});
}

TEST_CASE("flash attention gives the same result on one thread and on all", "[attention]") {
  // dQ is summed over key-block segments whose number follows the thread count: the values must
  // not change beyond float rounding.
  const Tensor q = random_tensor({1, 4, 200, 64}, DType::f32), k = random_tensor({1, 2, 300, 64}, DType::f32),
               v = random_tensor({1, 2, 300, 64}, DType::f32), g = random_tensor({1, 4, 200, 64}, DType::f32);
  auto f = [](const Tensor& a, const Tensor& b, const Tensor& d) { return scaled_dot_product_attention(a, b, d); };
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const Result one = run(f, q, k, v, g);
  omp_set_num_threads(threads);
  const Result all = run(f, q, k, v, g);
  expect_results(all, one, {1e-6, 1e-5}, "threads");
}
