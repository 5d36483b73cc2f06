// PyTorch gradient parity, step 1 of 2: runs every differentiable Keel op on fixed-seed random
// f64 and f32 inputs that require grad, back-propagates L = sum_k sum(output_k * weight_k) with
// fixed random weights, and writes inputs, outputs, weights and the inputs' gradients to a folder
// for tests/parity/compare_torch_grad.py to recompute with torch.autograd.
//
//   <dir>/index.json  {"cases": [{"id", "op", "args", "inputs": [t...], "outputs": [t...],
//                                 "weights": [t | null per output], "grads": [t | null per input]}
//                                | {..., "error": message}]}
//                     tensor t = {"dtype", "shape", "offset": bytes, "strided": bool,
//                                 "layout": "contiguous" | "transposed" | "every_other",
//                                 "requires_grad": bool}
//   <dir>/data.bin    the tensors' values, contiguous, little-endian, one after another
//
// The format is parity_dump's (index.json + data.bin), plus the layout of each input (as_strided
// reads the storage, so PyTorch must rebuild the same one) and the autograd fields. A weight is
// null for an output that does not require grad (integer indices); a grad is null for an input
// that does not require grad, or that got no gradient. Inputs are kept away from the kinks of
// their op (|x| = 0 for abs/relu/L1, clamp bounds, ties of max), where gradients are a choice.
//
// Usage: grad_parity_dump <output folder>
#include <keel/keel.h>

#include "dump_json.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using namespace keel;

using namespace keel::parity;


// ---- inputs ------------------------------------------------------------------------------------
enum class Values {
  general,   // U(-3, 3)
  away,      // U(-3, 3) with |x| >= 0.2: away from the kink of abs / relu / sign at 0
  positive,  // U(0.1, 4)
  near_one,  // U(0.5, 1.5): products stay moderate
  unit,      // U(0.05, 0.95): probabilities, binary targets
};

// How an input's elements lie in memory. PyTorch rebuilds the same storage (as_strided reads it).
enum class Layout {
  contiguous,
  transposed,   // a contiguous buffer of the last two dims swapped, viewed transposed (>= 2-D)
  every_other,  // every second element of a zero buffer twice as long (1-D)
};

const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::contiguous: return "contiguous";
    case Layout::transposed: return "transposed";
    case Layout::every_other: return "every_other";
  }
  return "?";
}

std::mt19937_64 rng(0x6b65656c + 1);  // fixed seed: the dump is the same on every run

double draw(Values kind) {
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  switch (kind) {
    case Values::general: return u * 6 - 3;
    case Values::away: return (u < 0.5 ? -1 : 1) * (0.2 + std::fabs(u - 0.5) * 2 * 2.8);
    case Values::positive: return 0.1 + u * 3.9;
    case Values::near_one: return 0.5 + u;
    case Values::unit: return 0.05 + u * 0.9;
  }
  return 0;
}

// `values` (f64, contiguous) as `dtype` in `layout`.
Tensor arrange(const Tensor& values, DType dtype, Layout layout) {
  const Tensor base = values.to(dtype).contiguous().clone();
  const Shape& shape = base.shape();
  if (layout == Layout::transposed) {
    Shape swapped = shape;
    std::swap(swapped[swapped.size() - 1], swapped[swapped.size() - 2]);
    Tensor out = empty(swapped, {dtype}).transpose(-1, -2);
    out.copy_(base);
    return out;
  }
  if (layout == Layout::every_other) {
    // the gaps hold zeros (PyTorch builds the same buffer): as_strided may read them
    Tensor out = zeros({shape[0] * 2}, {dtype}).slice(0, 0, shape[0] * 2, 2);
    out.copy_(base);
    return out;
  }
  return base;
}

// Random values; each within 0.1 of a kink is moved 0.25 up (kinks closer than 0.4 apart would
// need more care: callers do not pass such).
Tensor make(const Shape& shape, DType dtype, Values kind = Values::general, Layout layout = Layout::contiguous,
            const std::vector<double>& kinks = {}) {
  std::vector<double> values(static_cast<size_t>(shape_numel(shape)));
  for (auto& v : values) {
    v = draw(kind);
    for (double k : kinks)
      if (std::fabs(v - k) < 0.1) v += 0.25;
  }
  return arrange(from_blob(values.data(), shape, {.dtype = DType::f64}).clone(), dtype, layout);
}

// A leaf that requires grad.
Tensor leaf(Tensor t) {
  t.requires_grad_();
  return t;
}
Tensor param(const Shape& shape, DType dtype, Values kind = Values::general, Layout layout = Layout::contiguous,
             const std::vector<double>& kinks = {}) {
  return leaf(make(shape, dtype, kind, layout, kinks));
}

// Indices in [0, bound) (i64). distinct: along `dim`, each line is a prefix of a permutation
// (scatter needs distinct targets for a defined result).
Tensor make_index(const Shape& shape, int64_t bound, int64_t dim = 0, bool distinct = false) {
  std::vector<int64_t> values(static_cast<size_t>(shape_numel(shape)));
  std::uniform_int_distribution<int64_t> pick(0, bound - 1);
  for (auto& v : values) v = pick(rng);
  Tensor index = from_blob(values.data(), shape, {.dtype = DType::i64}).clone();
  if (!distinct) return index;
  const int64_t lines = index.numel() / shape[dim];
  Tensor moved = index.transpose(dim, -1).contiguous();
  int64_t* data = moved.data_ptr<int64_t>();
  std::vector<int64_t> permutation(static_cast<size_t>(bound));
  for (int64_t line = 0; line < lines; ++line) {
    for (int64_t i = 0; i < bound; ++i) permutation[i] = i;
    std::shuffle(permutation.begin(), permutation.end(), rng);
    for (int64_t i = 0; i < shape[dim]; ++i) data[line * shape[dim] + i] = permutation[i];
  }
  return moved.transpose(dim, -1).contiguous();
}

Tensor make_mask(const Shape& shape, double p_true = 0.5) {
  std::vector<uint8_t> values(static_cast<size_t>(shape_numel(shape)));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (auto& v : values) v = unit(rng) < p_true ? 1 : 0;
  return from_blob(values.data(), shape, {.dtype = DType::u8}).to(DType::bool_).clone();
}

// Rows of probabilities along dim 1 (f64), from a softmax of random logits.
Tensor make_probabilities(const Shape& shape) { return softmax(make(shape, DType::f64), 1); }

// ---- the dump ----------------------------------------------------------------------------------
using Run = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;

class Dump {
 public:
  explicit Dump(const std::filesystem::path& dir) : dir_(dir) {
    std::filesystem::create_directories(dir_);
    data_.open(dir_ / "data.bin", std::ios::binary | std::ios::trunc);
    if (!data_) throw std::runtime_error("cannot write " + (dir_ / "data.bin").string());
  }

  // Runs `run` on `inputs` (those that should get a gradient already require grad), then
  // backward of sum_k sum(output_k * weight_k) over the outputs that require grad.
  void add(const std::string& op, const std::vector<Tensor>& inputs, const Run& run, const Args& args = Args(),
           const std::vector<Layout>& layouts = {}) {
    std::string entry = "{\"id\": " + std::to_string(count_) + ", \"op\": " + json_string(op) +
                        ", \"args\": " + args.str() + ", \"inputs\": [";
    for (size_t i = 0; i < inputs.size(); ++i)
      entry += (i ? ", " : "") + write_tensor(inputs[i], i < layouts.size() ? layouts[i] : layout_of(inputs[i]));
    entry += "]";
    try {
      const std::vector<Tensor> outputs = run(inputs);
      std::vector<Tensor> roots, weights(outputs.size());
      for (size_t k = 0; k < outputs.size(); ++k) {
        if (!outputs[k].requires_grad()) continue;
        weights[k] = make(outputs[k].shape(), outputs[k].dtype());
        roots.push_back(outputs[k]);
      }
      std::vector<Tensor> root_weights;
      for (const Tensor& w : weights)
        if (w.defined()) root_weights.push_back(w);
      if (!roots.empty()) autograd::backward(roots, root_weights);
      std::string outs = ", \"outputs\": [", ws = ", \"weights\": [", grads = ", \"grads\": [";
      for (size_t k = 0; k < outputs.size(); ++k) {
        outs += (k ? ", " : "") + write_tensor(outputs[k], Layout::contiguous);
        ws += (k ? ", " : "") + (weights[k].defined() ? write_tensor(weights[k], Layout::contiguous) : "null");
      }
      for (size_t i = 0; i < inputs.size(); ++i) {
        const Tensor g = inputs[i].requires_grad() ? inputs[i].grad() : Tensor();
        grads += (i ? ", " : "") + (g.defined() ? write_tensor(g, Layout::contiguous) : "null");
      }
      entry += outs + "]" + ws + "]" + grads + "]";
    } catch (const keel::Error& error) {
      entry += ", \"error\": " + json_string(error.what());
    }
    entries_.push_back(entry + "}");
    ++count_;
  }

  void finish() {
    data_.close();
    std::ofstream index(dir_ / "index.json", std::ios::trunc);
    index << "{\"cases\": [\n";
    for (size_t i = 0; i < entries_.size(); ++i) index << entries_[i] << (i + 1 < entries_.size() ? ",\n" : "\n");
    index << "]}\n";
    std::cout << "grad_parity_dump: wrote " << count_ << " cases (" << offset_ << " bytes of data) to "
              << dir_.string() << "\n";
  }

 private:
  // The layouts arrange() makes, recognised from the strides.
  static Layout layout_of(const Tensor& t) {
    if (t.is_contiguous()) return Layout::contiguous;
    if (t.dim() == 1 && t.stride(0) == 2) return Layout::every_other;
    return Layout::transposed;
  }

  std::string write_tensor(const Tensor& t, Layout layout) {
    const Tensor packed = t.detach().contiguous();
    const size_t nbytes = packed.nbytes();
    if (nbytes) data_.write(static_cast<const char*>(packed.raw_data()), static_cast<std::streamsize>(nbytes));
    std::string out = R"({"dtype": ")" + std::string(dtype_name(t.dtype())) + R"(", "shape": )" +
                      json_list(t.shape()) + R"(, "offset": )" + std::to_string(offset_) +
                      R"(, "strided": )" + (layout == Layout::transposed ? "true" : "false") +
                      R"(, "layout": ")" + layout_name(layout) + R"(", "requires_grad": )" +
                      (t.requires_grad() ? "true" : "false") + "}";
    offset_ += nbytes;
    return out;
  }

  std::filesystem::path dir_;
  std::ofstream data_;
  std::vector<std::string> entries_;
  size_t offset_ = 0;
  int count_ = 0;
};

const std::vector<DType> kDTypes = {DType::f64, DType::f32};
const Layout kT = Layout::transposed;
const Layout kC = Layout::contiguous;
const Layout kEvery = Layout::every_other;

std::vector<Tensor> one(const Tensor& t) { return {t}; }

// ---- elementwise -------------------------------------------------------------------------------
void elementwise_cases(Dump& dump) {
  using Unary = std::function<Tensor(const Tensor&)>;
  const std::vector<std::tuple<std::string, Unary, Values>> unary_ops = {
      {"neg", [](const Tensor& x) { return neg(x); }, Values::general},
      {"abs", [](const Tensor& x) { return abs(x); }, Values::away},
      {"exp", [](const Tensor& x) { return exp(x); }, Values::general},
      {"log", [](const Tensor& x) { return log(x); }, Values::positive},
      {"log1p", [](const Tensor& x) { return log1p(x); }, Values::positive},
      {"expm1", [](const Tensor& x) { return expm1(x); }, Values::general},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, Values::positive},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, Values::positive},
      {"sin", [](const Tensor& x) { return sin(x); }, Values::general},
      {"cos", [](const Tensor& x) { return cos(x); }, Values::general},
      {"tanh", [](const Tensor& x) { return tanh(x); }, Values::general},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, Values::general},
      {"relu", [](const Tensor& x) { return relu(x); }, Values::away},
      {"gelu", [](const Tensor& x) { return gelu(x); }, Values::general},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, GeluApproximation::tanh); }, Values::general},
      {"silu", [](const Tensor& x) { return silu(x); }, Values::general},
      {"erf", [](const Tensor& x) { return erf(x); }, Values::general},
  };
  // odd 2-D, transposed, every other element of a buffer, 0-D
  const std::vector<std::pair<Shape, Layout>> unary_shapes = {{{3, 5}, kC}, {{4, 7}, kT}, {{9}, kEvery}, {{}, kC}};
  for (const auto& [name, fn, kind] : unary_ops) {
    for (DType dtype : kDTypes) {
      for (const auto& [shape, layout] : unary_shapes) {
        dump.add(name, {param(shape, dtype, kind, layout)}, [&](const auto& in) { return one(fn(in[0])); });
      }
    }
  }

  using Binary = std::function<Tensor(const Tensor&, const Tensor&)>;
  using BinaryTS = std::function<Tensor(const Tensor&, const Scalar&)>;
  using BinaryST = std::function<Tensor(const Scalar&, const Tensor&)>;
  struct BinaryEntry {
    std::string name;
    Binary tt;
    BinaryTS ts;  // empty: PyTorch has no scalar form
    BinaryST st;
    Values a_kind, b_kind;
    std::vector<Scalar> scalars;  // right-hand scalars (left-hand: the first)
  };
#define KEEL_GRAD_BINARY(op, with_scalar, a_kind, b_kind, ...)                                         \
  BinaryEntry {                                                                                         \
    #op, [](const Tensor& a, const Tensor& b) { return op(a, b); },                                     \
        with_scalar ? BinaryTS([](const Tensor& a, const Scalar& b) { return op(a, b); }) : BinaryTS(), \
        with_scalar ? BinaryST([](const Scalar& a, const Tensor& b) { return op(a, b); }) : BinaryST(), \
        Values::a_kind, Values::b_kind, __VA_ARGS__                                                     \
  }
  const std::vector<BinaryEntry> binary_ops = {
      KEEL_GRAD_BINARY(add, true, general, general, {Scalar(2.5), Scalar(-3)}),
      KEEL_GRAD_BINARY(sub, true, general, general, {Scalar(2.5), Scalar(-3)}),
      KEEL_GRAD_BINARY(mul, true, general, general, {Scalar(2.5), Scalar(-3)}),
      KEEL_GRAD_BINARY(div, true, general, positive, {Scalar(2.5), Scalar(-3)}),
      // base > 0: the gradient w.r.t. the exponent is a^b log a
      KEEL_GRAD_BINARY(pow, true, positive, general, {Scalar(2.5), Scalar(3), Scalar(-1.5)}),
      KEEL_GRAD_BINARY(maximum, false, general, general, {}),
      KEEL_GRAD_BINARY(minimum, false, general, general, {}),
  };
#undef KEEL_GRAD_BINARY
  // same shape; broadcasting both ways; transposed a with broadcast b; 0-D a; strided 1-D a
  const std::vector<std::tuple<Shape, Shape, Layout>> binary_shapes = {
      {{3, 5}, {3, 5}, kC}, {{4, 1, 5}, {3, 1}, kC}, {{3, 5}, {5}, kT}, {{}, {2, 3}, kC}, {{7}, {7}, kEvery}};
  for (const auto& entry : binary_ops) {
    for (DType dtype : kDTypes) {
      for (const auto& [shape_a, shape_b, layout] : binary_shapes) {
        dump.add(entry.name, {param(shape_a, dtype, entry.a_kind, layout), param(shape_b, dtype, entry.b_kind)},
                 [&](const auto& in) { return one(entry.tt(in[0], in[1])); });
      }
      if (!entry.ts) continue;
      for (const Scalar& s : entry.scalars) {
        dump.add(entry.name, {param({3, 5}, dtype, entry.a_kind, kT)},
                 [&](const auto& in) { return one(entry.ts(in[0], s)); },
                 Args().set("scalar", s).set("side", "right"));
      }
      // scalar on the left: pow's base must stay positive
      const Scalar s = entry.name == "pow" ? Scalar(1.7) : entry.scalars[0];
      dump.add(entry.name, {param({3, 5}, dtype, entry.b_kind)}, [&](const auto& in) { return one(entry.st(s, in[0])); },
               Args().set("scalar", s).set("side", "left"));
    }
  }

  for (DType dtype : kDTypes) {
    // where: broadcast condition and operands; a scalar operand
    dump.add("where", {make_mask({4, 1, 5}), param({3, 5}, dtype, Values::general, kT), param({4, 3, 1}, dtype)},
             [](const auto& in) { return one(where(in[0], in[1], in[2])); });
    dump.add("where", {make_mask({3, 5}), param({3, 5}, dtype)},
             [](const auto& in) { return one(where(in[0], in[1], Scalar(0.5))); }, Args().set("b_scalar", Scalar(0.5)));
    dump.add("where", {make_mask({3, 5}), param({5}, dtype)},
             [](const auto& in) { return one(where(in[0], Scalar(-2), in[1])); }, Args().set("a_scalar", Scalar(-2)));

    // clamp with scalar bounds, x away from them
    dump.add("clamp", {param({5, 7}, dtype, Values::general, kT, {-1.0, 2.0})},
             [](const auto& in) { return one(clamp(in[0], Scalar(-1), Scalar(2))); },
             Args().set("min", Scalar(-1)).set("max", Scalar(2)));
    dump.add("clamp", {param({5, 7}, dtype, Values::general, kC, {0.0})},
             [](const auto& in) { return one(clamp_min(in[0], Scalar(0))); }, Args().set("min", Scalar(0)));
    dump.add("clamp", {param({5, 7}, dtype, Values::general, kC, {1.0})},
             [](const auto& in) { return one(clamp_max(in[0], Scalar(1.0))); }, Args().set("max", Scalar(1.0)));
    // clamp with tensor bounds (broadcast) low < -0.5 < 0.5 < high; x moved 0.25 off any bound it
    // falls within 0.1 of (the bounds are more than 0.4 apart, so it lands near neither)
    {
      const Tensor low = make({7}, DType::f64) * (2.5 / 6) - 1.75;   // U(-3, -0.5)
      const Tensor high = make({5, 1}, DType::f64) * (2.5 / 6) + 1.75;  // U(0.5, 3)
      Tensor x = make({5, 7}, DType::f64);
      x = where(lt(abs(x - low), 0.1) || lt(abs(x - high), 0.1), x + 0.25, x);
      dump.add("clamp_tensor", {leaf(arrange(x, dtype, kT)), leaf(low.to(dtype)), leaf(high.to(dtype))},
               [](const auto& in) { return one(clamp(in[0], in[1], in[2])); });
    }
  }
}

// ---- reductions --------------------------------------------------------------------------------
void reduction_cases(Dump& dump) {
  const Shape shape = {3, 4, 5};
  const std::vector<std::tuple<Dims, bool, Layout>> dim_sets = {
      {{}, false, kC}, {{1}, false, kT}, {{0, 2}, true, kC}, {{-1}, true, kT}, {{2, 0}, false, kT}};
  using Reduce = std::function<Tensor(const Tensor&, const Dims&, bool)>;
  const std::vector<std::tuple<std::string, Reduce, Values>> plain = {
      {"sum", [](const Tensor& x, const Dims& d, bool k) { return sum(x, d, k); }, Values::general},
      {"mean", [](const Tensor& x, const Dims& d, bool k) { return mean(x, d, k); }, Values::general},
      {"prod", [](const Tensor& x, const Dims& d, bool k) { return prod(x, d, k); }, Values::near_one},
      {"amax", [](const Tensor& x, const Dims& d, bool k) { return amax(x, d, k); }, Values::general},
      {"amin", [](const Tensor& x, const Dims& d, bool k) { return amin(x, d, k); }, Values::general},
      {"logsumexp", [](const Tensor& x, const Dims& d, bool k) { return logsumexp(x, d, k); }, Values::general},
  };
  for (DType dtype : kDTypes) {
    for (const auto& [name, fn, kind] : plain) {
      for (const auto& [dims, keepdim, layout] : dim_sets) {
        if (name == "logsumexp" && dims.empty()) continue;  // torch.logsumexp needs the dims
        dump.add(name, {param(shape, dtype, kind, layout)}, [&](const auto& in) { return one(fn(in[0], dims, keepdim)); },
                 Args().set("dims", dims).set("keepdim", keepdim));
      }
    }
    // prod with zeros: slice (0, 1, :) has one (the product of the others), (2, 0, :) has two (0)
    {
      Tensor x = make(shape, DType::f64, Values::near_one);
      x.select(0, 0).select(0, 1).select(0, 2).fill_(0);
      x.select(0, 2).select(0, 0).select(0, 0).fill_(0);
      x.select(0, 2).select(0, 0).select(0, 3).fill_(0);
      dump.add("prod", {leaf(arrange(x, dtype, kC))}, [](const auto& in) { return one(prod(in[0], {-1}, false)); },
               Args().set("dims", Dims{-1}).set("keepdim", false));
    }
    for (const auto& [dims, keepdim, layout] : dim_sets) {
      for (double correction : {0.0, 1.0}) {
        dump.add("var", {param(shape, dtype, Values::general, layout)},
                 [&](const auto& in) { return one(var(in[0], dims, correction, keepdim)); },
                 Args().set("dims", dims).set("keepdim", keepdim).set("correction", correction));
        dump.add("std", {param(shape, dtype, Values::general, layout)},
                 [&](const auto& in) { return one(keel::std(in[0], dims, correction, keepdim)); },
                 Args().set("dims", dims).set("keepdim", keepdim).set("correction", correction));
      }
      for (double p : {1.0, 2.0, 3.0, std::numeric_limits<double>::infinity()}) {
        dump.add("norm", {param(shape, dtype, Values::away, layout)},
                 [&](const auto& in) { return one(norm(in[0], p, dims, keepdim)); },
                 Args().set("p", p).set("dims", dims).set("keepdim", keepdim));
      }
    }
    // values (and indices) along one dim
    for (const auto& [dim, keepdim, layout] : std::vector<std::tuple<int64_t, bool, Layout>>{
             {1, false, kC}, {-1, true, kC}, {0, false, kT}, {2, false, kT}}) {
      dump.add("max_dim", {param(shape, dtype, Values::general, layout)},
               [&](const auto& in) { auto r = max(in[0], dim, keepdim); return std::vector<Tensor>{r.values, r.indices}; },
               Args().set("dim", dim).set("keepdim", keepdim));
      dump.add("min_dim", {param(shape, dtype, Values::general, layout)},
               [&](const auto& in) { auto r = min(in[0], dim, keepdim); return std::vector<Tensor>{r.values, r.indices}; },
               Args().set("dim", dim).set("keepdim", keepdim));
    }
    dump.add("max_all", {param({4, 5}, dtype, Values::general, kT)}, [](const auto& in) { return one(max(in[0])); });
    dump.add("min_all", {param({4, 5}, dtype)}, [](const auto& in) { return one(min(in[0])); });
  }
}

// ---- views -------------------------------------------------------------------------------------
void view_cases(Dump& dump) {
  using View = std::function<Tensor(const Tensor&)>;
  // (op, input shape, layout, view, args)
  const std::vector<std::tuple<std::string, Shape, Layout, View, Args>> views = {
      {"view", {3, 4, 5}, kC, [](const Tensor& x) { return x.view({12, 5}); }, Args().set("shape", Shape{12, 5})},
      {"view", {3, 4, 5}, kC, [](const Tensor& x) { return x.view({3, -1}); }, Args().set("shape", Shape{3, -1})},
      {"reshape", {3, 4, 5}, kC, [](const Tensor& x) { return x.reshape({5, 12}); }, Args().set("shape", Shape{5, 12})},
      {"reshape", {3, 4, 5}, kT, [](const Tensor& x) { return x.reshape({-1}); }, Args().set("shape", Shape{-1})},
      {"permute", {3, 4, 5}, kC, [](const Tensor& x) { return x.permute({2, 0, 1}); }, Args().set("dims", Shape{2, 0, 1})},
      {"permute", {3, 4, 5}, kT, [](const Tensor& x) { return x.permute({1, 2, 0}); }, Args().set("dims", Shape{1, 2, 0})},
      {"transpose", {3, 4, 5}, kC, [](const Tensor& x) { return x.transpose(0, 2); },
       Args().set("dim0", int64_t{0}).set("dim1", int64_t{2})},
      {"transpose", {3, 4, 5}, kT, [](const Tensor& x) { return x.transpose(-1, -2); },
       Args().set("dim0", int64_t{-1}).set("dim1", int64_t{-2})},
      {"slice", {3, 4, 5}, kC, [](const Tensor& x) { return x.slice(1, 0, 4, 2); },
       Args().set("dim", int64_t{1}).set("start", int64_t{0}).set("end", int64_t{4}).set("step", int64_t{2})},
      {"slice", {3, 4, 5}, kT, [](const Tensor& x) { return x.slice(2, 1, 5, 3); },
       Args().set("dim", int64_t{2}).set("start", int64_t{1}).set("end", int64_t{5}).set("step", int64_t{3})},
      {"slice", {3, 4, 5}, kC, [](const Tensor& x) { return x.slice(0, -2, 100, 1); },
       Args().set("dim", int64_t{0}).set("start", int64_t{-2}).set("end", int64_t{100}).set("step", int64_t{1})},
      {"select", {3, 4, 5}, kC, [](const Tensor& x) { return x.select(1, 2); },
       Args().set("dim", int64_t{1}).set("index", int64_t{2})},
      {"select", {3, 4, 5}, kT, [](const Tensor& x) { return x.select(-1, -1); },
       Args().set("dim", int64_t{-1}).set("index", int64_t{-1})},
      {"expand", {3, 1, 5}, kC, [](const Tensor& x) { return x.expand({2, 3, 4, 5}); }, Args().set("shape", Shape{2, 3, 4, 5})},
      {"expand", {5, 1}, kT, [](const Tensor& x) { return x.expand({-1, 3}); }, Args().set("shape", Shape{-1, 3})},
      {"squeeze", {3, 1, 5, 1}, kC, [](const Tensor& x) { return x.squeeze(); }, Args()},
      {"squeeze", {3, 1, 5, 1}, kC, [](const Tensor& x) { return x.squeeze(1); }, Args().set("dim", int64_t{1})},
      {"squeeze", {3, 5, 1}, kT, [](const Tensor& x) { return x.squeeze(-1); }, Args().set("dim", int64_t{-1})},
      {"unsqueeze", {3, 5}, kC, [](const Tensor& x) { return x.unsqueeze(0); }, Args().set("dim", int64_t{0})},
      {"unsqueeze", {3, 5}, kT, [](const Tensor& x) { return x.unsqueeze(-1); }, Args().set("dim", int64_t{-1})},
      {"flatten", {3, 4, 5}, kC, [](const Tensor& x) { return x.flatten(1); },
       Args().set("start", int64_t{1}).set("end", int64_t{-1})},
      {"flatten", {3, 4, 5}, kT, [](const Tensor& x) { return x.flatten(0, 1); },
       Args().set("start", int64_t{0}).set("end", int64_t{1})},
      {"flatten", {3, 4, 5}, kT, [](const Tensor& x) { return x.flatten(); },
       Args().set("start", int64_t{0}).set("end", int64_t{-1})},
      // overlapping windows (the gradient adds up where they overlap); a transposed input whose
      // storage is read in another order; a strided 1-D input
      {"as_strided", {10}, kC, [](const Tensor& x) { return x.as_strided({3, 4}, {2, 1}, 1); },
       Args().set("size", Shape{3, 4}).set("stride", Shape{2, 1}).set("offset", int64_t{1})},
      {"as_strided", {4, 5}, kT, [](const Tensor& x) { return x.as_strided({3, 3}, {1, 4}, 2); },
       Args().set("size", Shape{3, 3}).set("stride", Shape{1, 4}).set("offset", int64_t{2})},
      {"as_strided", {6}, kEvery, [](const Tensor& x) { return x.as_strided({4, 2}, {2, 3}, 1); },
       Args().set("size", Shape{4, 2}).set("stride", Shape{2, 3}).set("offset", int64_t{1})},
  };
  for (DType dtype : kDTypes) {
    for (const auto& [name, shape, layout, fn, args] : views) {
      dump.add(name, {param(shape, dtype, Values::general, layout)}, [&](const auto& in) { return one(fn(in[0])); }, args);
    }
  }
}

// ---- shape and indexing ------------------------------------------------------------------------
void shape_cases(Dump& dump) {
  for (DType dtype : kDTypes) {
    dump.add("cat", {param({2, 3, 4}, dtype, Values::general, kT), param({2, 5, 4}, dtype), param({2, 1, 4}, dtype)},
             [](const auto& in) { return one(cat(in, 1)); }, Args().set("dim", int64_t{1}));
    dump.add("cat", {param({2, 3}, dtype), param({2, 3}, dtype, Values::general, kT)},
             [](const auto& in) { return one(cat(in, -1)); }, Args().set("dim", int64_t{-1}));
    for (int64_t dim : {0, 2, -1}) {
      dump.add("stack", {param({3, 4}, dtype, Values::general, kT), param({3, 4}, dtype)},
               [dim](const auto& in) { return one(stack(in, dim)); }, Args().set("dim", dim));
    }
    dump.add("split", {param({7, 10}, dtype, Values::general, kT)}, [](const auto& in) { return split(in[0], 3, 1); },
             Args().set("split_size", int64_t{3}).set("dim", int64_t{1}));
    dump.add("split", {param({7, 10}, dtype)}, [](const auto& in) { return split(in[0], std::vector<int64_t>{2, 0, 5}, 0); },
             Args().set("sizes", std::vector<int64_t>{2, 0, 5}).set("dim", int64_t{0}));
    dump.add("chunk", {param({7, 10}, dtype, Values::general, kT)}, [](const auto& in) { return chunk(in[0], 3, 0); },
             Args().set("chunks", int64_t{3}).set("dim", int64_t{0}));
    dump.add("chunk", {param({7, 10}, dtype)}, [](const auto& in) { return chunk(in[0], 4, 1); },
             Args().set("chunks", int64_t{4}).set("dim", int64_t{1}));

    for (int64_t dim : {0, 1}) {
      const Shape index_shape = dim == 0 ? Shape{4, 3} : Shape{3, 4};
      const Layout layout = dim == 0 ? kT : kC;
      // gather with repeated indices: their gradients add up
      dump.add("gather", {param({5, 6}, dtype, Values::general, layout), make_index(index_shape, dim == 0 ? 5 : 6, dim)},
               [dim](const auto& in) { return one(gather(in[0], dim, in[1])); }, Args().set("dim", dim));
      dump.add("scatter",
               {param({5, 6}, dtype, Values::general, layout), make_index(index_shape, dim == 0 ? 5 : 6, dim, true),
                param(index_shape, dtype)},
               [dim](const auto& in) { return one(scatter(in[0], dim, in[1], in[2])); }, Args().set("dim", dim));
      dump.add("scatter",
               {param({5, 6}, dtype, Values::general, layout), make_index(index_shape, dim == 0 ? 5 : 6, dim, true)},
               [dim](const auto& in) { return one(scatter(in[0], dim, in[1], Scalar(1.5))); },
               Args().set("dim", dim).set("value", Scalar(1.5)));
      dump.add("scatter_add",
               {param({5, 6}, dtype, Values::general, layout), make_index(index_shape, dim == 0 ? 5 : 6, dim),
                param(index_shape, dtype, Values::general, dim == 0 ? kC : kT)},
               [dim](const auto& in) { return one(scatter_add(in[0], dim, in[1], in[2])); }, Args().set("dim", dim));
      dump.add("index_select", {param({5, 6}, dtype, Values::general, layout), make_index({7}, dim == 0 ? 5 : 6)},
               [dim](const auto& in) { return one(index_select(in[0], dim, in[1])); }, Args().set("dim", dim));
      dump.add("index_select", {param({5, 6}, dtype), make_index({4}, dim == 0 ? 5 : 6).to(DType::i32)},
               [dim](const auto& in) { return one(index_select(in[0], dim, in[1])); }, Args().set("dim", dim));
    }
    dump.add("masked_fill", {param({5, 6}, dtype, Values::general, kT), make_mask({1, 6})},
             [](const auto& in) { return one(masked_fill(in[0], in[1], Scalar(0.5))); }, Args().set("value", Scalar(0.5)));
    dump.add("masked_fill", {param({5, 6}, dtype), make_mask({5, 6})},
             [](const auto& in) { return one(masked_fill(in[0], in[1], Scalar(-2))); }, Args().set("value", Scalar(-2)));
    for (int64_t diagonal : {0, 1, -2}) {
      dump.add("tril", {param({2, 5, 7}, dtype, Values::general, kT)},
               [diagonal](const auto& in) { return one(tril(in[0], diagonal)); }, Args().set("diagonal", diagonal));
      dump.add("triu", {param({5, 4}, dtype)}, [diagonal](const auto& in) { return one(triu(in[0], diagonal)); },
               Args().set("diagonal", diagonal));
    }
  }
}

// ---- nn functions ------------------------------------------------------------------------------
void nn_cases(Dump& dump) {
  for (DType dtype : kDTypes) {
    for (const auto& [shape, dim, layout] : std::vector<std::tuple<Shape, int64_t, Layout>>{
             {{3, 4, 5}, -1, kC}, {{3, 4, 5}, 1, kT}, {{3, 4, 5}, 0, kC}, {{6}, 0, kC}}) {
      dump.add("softmax", {param(shape, dtype, Values::general, layout)},
               [dim](const auto& in) { return one(softmax(in[0], dim)); }, Args().set("dim", dim));
      dump.add("log_softmax", {param(shape, dtype, Values::general, layout)},
               [dim](const auto& in) { return one(log_softmax(in[0], dim)); }, Args().set("dim", dim));
    }
    // layer_norm: weight and bias; two normalized dims on a transposed input; none; weight only
    dump.add("layer_norm", {param({3, 4, 5}, dtype), param({5}, dtype), param({5}, dtype)},
             [](const auto& in) { return one(layer_norm(in[0], {5}, in[1], in[2])); },
             Args().set("normalized_shape", Shape{5}).set("eps", 1e-5));
    dump.add("layer_norm", {param({3, 4, 5}, dtype, Values::general, kT), param({4, 5}, dtype), param({4, 5}, dtype)},
             [](const auto& in) { return one(layer_norm(in[0], {4, 5}, in[1], in[2], 1e-3)); },
             Args().set("normalized_shape", Shape{4, 5}).set("eps", 1e-3));
    dump.add("layer_norm", {param({6, 7}, dtype, Values::general, kT)},
             [](const auto& in) { return one(layer_norm(in[0], {7})); },
             Args().set("normalized_shape", Shape{7}).set("eps", 1e-5));
    dump.add("layer_norm", {param({2, 7}, dtype), param({7}, dtype)},
             [](const auto& in) { return one(layer_norm(in[0], {7}, in[1])); },
             Args().set("normalized_shape", Shape{7}).set("eps", 1e-5));
    // rms_norm: eps given; default eps (finfo(dtype).eps, written by the script); no weight
    dump.add("rms_norm", {param({3, 4, 5}, dtype), param({5}, dtype)},
             [](const auto& in) { return one(rms_norm(in[0], {5}, in[1], 1e-6)); },
             Args().set("normalized_shape", Shape{5}).set("eps", 1e-6));
    dump.add("rms_norm", {param({3, 4, 5}, dtype, Values::general, kT), param({4, 5}, dtype)},
             [](const auto& in) { return one(rms_norm(in[0], {4, 5}, in[1])); },
             Args().set("normalized_shape", Shape{4, 5}));
    dump.add("rms_norm", {param({6, 7}, dtype, Values::general, kT)},
             [](const auto& in) { return one(rms_norm(in[0], {7}, Tensor(), 1e-5)); },
             Args().set("normalized_shape", Shape{7}).set("eps", 1e-5));
    // dropout: only where it draws nothing (its random stream is not PyTorch's)
    dump.add("dropout", {param({4, 5}, dtype, Values::general, kT)},
             [](const auto& in) { return one(dropout(in[0], 0.0, true)); }, Args().set("p", 0.0).set("training", true));
    dump.add("dropout", {param({4, 5}, dtype)}, [](const auto& in) { return one(dropout(in[0], 0.5, false)); },
             Args().set("p", 0.5).set("training", false));
    // embedding: repeated rows add up; the padding row gets no gradient
    {
      Tensor indices = make_index({2, 3}, 7);
      indices.select(0, 0).select(0, 1).fill_(2);
      indices.select(0, 1).select(0, 2).fill_(2);
      dump.add("embedding", {indices, param({7, 4}, dtype)},
               [](const auto& in) { return one(embedding(in[0], in[1])); });
      dump.add("embedding", {indices, param({7, 4}, dtype, Values::general, kT)},
               [](const auto& in) { return one(embedding(in[0], in[1], 2)); }, Args().set("padding_idx", int64_t{2}));
      dump.add("embedding", {make_index({5}, 7).to(DType::i32), param({7, 3}, dtype)},
               [](const auto& in) { return one(embedding(in[0], in[1], -1)); }, Args().set("padding_idx", int64_t{-1}));
    }
  }
}

// ---- matrix products ---------------------------------------------------------------------------
void linalg_cases(Dump& dump) {
  for (DType dtype : kDTypes) {
    const std::vector<std::tuple<Shape, Shape, Layout, Layout>> matmul_shapes = {
        {{4}, {4}, kC, kC},       {{3, 4}, {4, 5}, kC, kC},       {{4}, {4, 5}, kC, kT},
        {{3, 4}, {4}, kT, kC},    {{2, 1, 3, 4}, {5, 4, 6}, kC, kT}, {{3, 4}, {4, 5}, kT, kT},
        {{2, 3, 4}, {4}, kC, kEvery}, {{4}, {2, 4, 5}, kC, kC},    {{2, 3, 4}, {4, 5}, kT, kC},
    };
    for (const auto& [shape_a, shape_b, layout_a, layout_b] : matmul_shapes) {
      dump.add("matmul", {param(shape_a, dtype, Values::general, layout_a), param(shape_b, dtype, Values::general, layout_b)},
               [](const auto& in) { return one(matmul(in[0], in[1])); });
    }
    dump.add("linear", {param({2, 3, 4}, dtype), param({5, 4}, dtype), param({5}, dtype)},
             [](const auto& in) { return one(linear(in[0], in[1], in[2])); });
    dump.add("linear", {param({4}, dtype), param({5, 4}, dtype, Values::general, kT)},
             [](const auto& in) { return one(linear(in[0], in[1])); });
    dump.add("linear", {param({3, 4}, dtype, Values::general, kT), param({5, 4}, dtype, Values::general, kT), param({5}, dtype)},
             [](const auto& in) { return one(linear(in[0], in[1], in[2])); });

    // attention: q [B, H, L, E], k [B, H, S, E], v [B, H, S, Ev]
    const Shape q_shape = {2, 3, 4, 8}, k_shape = {2, 3, 5, 8}, v_shape = {2, 3, 5, 6};
    auto qkv = [&](Layout q_layout = kC) {
      return std::vector<Tensor>{param(q_shape, dtype, Values::general, q_layout), param(k_shape, dtype),
                                 param(v_shape, dtype)};
    };
    dump.add("sdpa", qkv(), [](const auto& in) { return one(scaled_dot_product_attention(in[0], in[1], in[2])); });
    dump.add("sdpa", qkv(kT),
             [](const auto& in) { return one(scaled_dot_product_attention(in[0], in[1], in[2], {.is_causal = true})); },
             Args().set("is_causal", true));
    dump.add("sdpa", qkv(), [](const auto& in) { return one(scaled_dot_product_attention(in[0], in[1], in[2], {.scale = 0.3})); },
             Args().set("scale", 0.3));
    {
      // a bool mask broadcast over batch and heads; every query keeps key 0 (no all-masked row)
      Tensor mask = make_mask({4, 5}, 0.6);
      mask.select(1, 0).fill_(true);
      std::vector<Tensor> in = qkv();
      in.push_back(mask);
      dump.add("sdpa", in, [](const auto& in) {
        return one(scaled_dot_product_attention(in[0], in[1], in[2], {.attn_mask = in[3]}));
      }, Args().set("mask", "bool"));
      std::vector<Tensor> in_float = qkv();
      in_float.push_back(make({1, 3, 4, 5}, dtype));
      dump.add("sdpa", in_float, [](const auto& in) {
        return one(scaled_dot_product_attention(in[0], in[1], in[2], {.attn_mask = in[3]}));
      }, Args().set("mask", "float"));
    }
    // grouped-query attention: 4 query heads over 2 key/value heads
    dump.add("sdpa", {param({1, 4, 3, 8}, dtype), param({1, 2, 5, 8}, dtype), param({1, 2, 5, 6}, dtype)},
             [](const auto& in) { return one(scaled_dot_product_attention(in[0], in[1], in[2])); });
  }
}

// ---- losses ------------------------------------------------------------------------------------
const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::none: return "none";
    case Reduction::mean: return "mean";
    case Reduction::sum: return "sum";
    case Reduction::batchmean: return "batchmean";
  }
  return "?";
}

void loss_cases(Dump& dump) {
  for (DType dtype : kDTypes) {
    // ---- cross_entropy with class indices: input [N, C] = [5, 4]. Targets hold the ignore_index
    // of the case (-100 or 1) once or twice; -100 is out of range where it is not ignored.
    Tensor targets = make_index({5}, 4);
    targets.select(0, 3).fill_(-100);
    Tensor targets_1 = make_index({5}, 4);
    targets_1.select(0, 1).fill_(1);
    targets_1.select(0, 4).fill_(1);
    auto targets_for = [&](int64_t ignore_index) { return ignore_index == -100 ? targets : targets_1; };
    const Tensor class_weight = make({4}, dtype, Values::positive);
    struct CeCase {
      bool weighted;
      int64_t ignore_index;
      Reduction reduction;
      double smoothing;
      Layout layout;
    };
    for (const CeCase& c : std::vector<CeCase>{{false, -100, Reduction::mean, 0.0, kC},
                                               {true, -100, Reduction::sum, 0.0, kT},
                                               {true, 1, Reduction::mean, 0.0, kC},
                                               {false, 1, Reduction::none, 0.0, kC},
                                               {true, -100, Reduction::mean, 0.1, kT},
                                               {false, 1, Reduction::mean, 0.2, kC},
                                               {true, -100, Reduction::none, 0.1, kC},
                                               {true, 1, Reduction::mean, 0.1, kT},
                                               {true, 1, Reduction::sum, 0.3, kC},
                                               {false, 1, Reduction::none, 0.3, kT}}) {
      std::vector<Tensor> in = {param({5, 4}, dtype, Values::general, c.layout), targets_for(c.ignore_index)};
      if (c.weighted) in.push_back(class_weight);
      dump.add("cross_entropy", in, [c](const auto& in) {
        CrossEntropyOptions o{.weight = c.weighted ? in[2] : Tensor(), .ignore_index = c.ignore_index,
                              .reduction = c.reduction, .label_smoothing = c.smoothing};
        return one(cross_entropy(in[0], in[1], o));
      }, Args().set("ignore_index", c.ignore_index).set("reduction", reduction_name(c.reduction))
                 .set("label_smoothing", c.smoothing).set("weighted", c.weighted));
    }
    // [N, C, d] = [3, 4, 2] with weights and smoothing; [C] with a 0-D target
    dump.add("cross_entropy", {param({3, 4, 2}, dtype), make_index({3, 2}, 4), class_weight},
             [](const auto& in) {
               return one(cross_entropy(in[0], in[1], {.weight = in[2], .label_smoothing = 0.15}));
             }, Args().set("ignore_index", int64_t{-100}).set("reduction", "mean").set("label_smoothing", 0.15)
                    .set("weighted", true));
    dump.add("cross_entropy", {param({4}, dtype), make_index({}, 4)},
             [](const auto& in) { return one(cross_entropy(in[0], in[1])); },
             Args().set("ignore_index", int64_t{-100}).set("reduction", "mean").set("label_smoothing", 0.0)
                 .set("weighted", false));
    // class probabilities (they get a gradient too)
    for (const auto& [reduction, smoothing, weighted] : std::vector<std::tuple<Reduction, double, bool>>{
             {Reduction::mean, 0.0, false}, {Reduction::sum, 0.2, false}, {Reduction::mean, 0.1, true},
             {Reduction::none, 0.0, true}}) {
      std::vector<Tensor> in = {param({5, 4}, dtype, Values::general, kT), leaf(make_probabilities({5, 4}).to(dtype))};
      if (weighted) in.push_back(class_weight);
      dump.add("cross_entropy", in, [reduction, smoothing, weighted](const auto& in) {
        CrossEntropyOptions o{.weight = weighted ? in[2] : Tensor(), .reduction = reduction, .label_smoothing = smoothing};
        return one(cross_entropy(in[0], in[1], o));
      }, Args().set("ignore_index", int64_t{-100}).set("reduction", reduction_name(reduction))
                 .set("label_smoothing", smoothing).set("weighted", weighted));
    }
    dump.add("cross_entropy", {param({3, 4, 2}, dtype), leaf(make_probabilities({3, 4, 2}).to(dtype))},
             [](const auto& in) { return one(cross_entropy(in[0], in[1], {.label_smoothing = 0.1})); },
             Args().set("ignore_index", int64_t{-100}).set("reduction", "mean").set("label_smoothing", 0.1)
                 .set("weighted", false));

    // ---- nll_loss (the input as log-probabilities or any values: nll only picks them)
    for (const auto& [weighted, ignore_index, reduction] : std::vector<std::tuple<bool, int64_t, Reduction>>{
             {false, -100, Reduction::mean}, {true, -100, Reduction::mean}, {true, 1, Reduction::sum},
             {false, 1, Reduction::none}}) {
      std::vector<Tensor> in = {param({5, 4}, dtype, Values::general, kT), targets_for(ignore_index)};
      if (weighted) in.push_back(class_weight);
      dump.add("nll_loss", in, [weighted, ignore_index, reduction](const auto& in) {
        return one(nll_loss(in[0], in[1], {.weight = weighted ? in[2] : Tensor(), .ignore_index = ignore_index,
                                           .reduction = reduction}));
      }, Args().set("ignore_index", ignore_index).set("reduction", reduction_name(reduction)).set("weighted", weighted));
    }
    dump.add("nll_loss", {param({3, 4, 2}, dtype), make_index({3, 2}, 4), class_weight},
             [](const auto& in) { return one(nll_loss(in[0], in[1], {.weight = in[2]})); },
             Args().set("ignore_index", int64_t{-100}).set("reduction", "mean").set("weighted", true));

    // ---- regression losses: input and target both get gradients
    for (Reduction reduction : {Reduction::mean, Reduction::sum, Reduction::none}) {
      const Layout layout = reduction == Reduction::sum ? kT : kC;
      const Args args = Args().set("reduction", reduction_name(reduction));
      dump.add("mse_loss", {param({4, 5}, dtype, Values::general, layout), param({4, 5}, dtype)},
               [reduction](const auto& in) { return one(mse_loss(in[0], in[1], reduction)); }, args);
      // l1 has its kink where input == target: the target is the input moved by 0.2 .. 3
      {
        Tensor input = make({4, 5}, DType::f64), offset = make({4, 5}, DType::f64, Values::away);
        dump.add("l1_loss", {leaf(arrange(input, dtype, layout)), leaf((input + offset).to(dtype))},
                 [reduction](const auto& in) { return one(l1_loss(in[0], in[1], reduction)); }, args);
      }
      for (double beta : {1.0, 0.5}) {
        Tensor input = make({4, 5}, DType::f64), offset = make({4, 5}, DType::f64, Values::away);
        dump.add("smooth_l1_loss", {leaf(arrange(input, dtype, layout)), leaf((input + offset).to(dtype))},
                 [reduction, beta](const auto& in) { return one(smooth_l1_loss(in[0], in[1], reduction, beta)); },
                 Args().set("reduction", reduction_name(reduction)).set("beta", beta));
        Tensor input2 = make({4, 5}, DType::f64), offset2 = make({4, 5}, DType::f64, Values::away);
        dump.add("huber_loss", {leaf(arrange(input2, dtype, layout)), leaf((input2 + offset2).to(dtype))},
                 [reduction, beta](const auto& in) { return one(huber_loss(in[0], in[1], reduction, beta)); },
                 Args().set("reduction", reduction_name(reduction)).set("delta", beta));
      }
    }

    // ---- binary_cross_entropy_with_logits: weight (broadcast or full), pos_weight per class
    for (const auto& [weight_shape, pos_weight, reduction] : std::vector<std::tuple<Shape, bool, Reduction>>{
             {{}, false, Reduction::mean}, {{4}, false, Reduction::sum}, {{}, true, Reduction::mean},
             {{5, 4}, true, Reduction::none}, {{5, 1}, true, Reduction::mean}}) {
      const bool weighted = weight_shape.size() > 0;
      std::vector<Tensor> in = {param({5, 4}, dtype, Values::general, weighted ? kT : kC), param({5, 4}, dtype, Values::unit)};
      if (weighted) in.push_back(make(weight_shape, dtype, Values::positive));
      if (pos_weight) in.push_back(make({4}, dtype, Values::positive));
      dump.add("bce_with_logits", in, [weighted, pos_weight, reduction](const auto& in) {
        return one(binary_cross_entropy_with_logits(in[0], in[1], weighted ? in[2] : Tensor(), reduction,
                                                    pos_weight ? in[weighted ? 3 : 2] : Tensor()));
      }, Args().set("reduction", reduction_name(reduction)).set("weighted", weighted).set("pos_weight", pos_weight));
    }

    // ---- kl_div: input log q; target p, or log p with log_target
    for (const auto& [reduction, log_target] : std::vector<std::tuple<Reduction, bool>>{
             {Reduction::batchmean, false}, {Reduction::sum, false}, {Reduction::mean, false},
             {Reduction::none, false}, {Reduction::batchmean, true}, {Reduction::sum, true}}) {
      const Tensor input = log_softmax(make({5, 4}, DType::f64), 1);
      const Tensor p = make_probabilities({5, 4});
      dump.add("kl_div", {leaf(arrange(input, dtype, log_target ? kT : kC)), leaf((log_target ? log(p) : p).to(dtype))},
               [reduction, log_target](const auto& in) { return one(kl_div(in[0], in[1], reduction, log_target)); },
               Args().set("reduction", reduction_name(reduction)).set("log_target", log_target));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: grad_parity_dump <output folder>\n";
    return 2;
  }
  try {
    Dump dump(argv[1]);
    elementwise_cases(dump);
    reduction_cases(dump);
    view_cases(dump);
    shape_cases(dump);
    nn_cases(dump);
    loss_cases(dump);
    linalg_cases(dump);
    dump.finish();
  } catch (const std::exception& error) {
    std::cerr << "grad_parity_dump: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
