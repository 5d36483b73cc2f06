// PyTorch parity, step 1 of 2: runs Keel's ops on fixed-seed random inputs and writes every
// input and output to a folder, for tests/parity/compare_torch.py to rerun in PyTorch.
//
//   <dir>/index.json  {"cases": [{"id", "op", "args", "inputs": [t...], "outputs": [t...] | "error"}],
//                      tensor t = {"dtype": "float32", "shape": [2, 3], "offset": bytes, "strided": bool}}
//   <dir>/data.bin    the tensors' values, contiguous, little-endian, one after another
//                     (bf16/f16 as their 16-bit patterns, bool as one byte)
//
// A case whose Keel op throws keel::Error is recorded with its message; the script then
// expects PyTorch to refuse it too. The writer lives here, not in the library, on purpose.
//
// Usage: parity_dump <output folder>
#include <keel/keel.h>

#include "dump_json.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
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


// ---- the dump ----------------------------------------------------------------------------------
class Dump {
 public:
  explicit Dump(const std::filesystem::path& dir) : dir_(dir) {
    std::filesystem::create_directories(dir_);
    data_.open(dir_ / "data.bin", std::ios::binary | std::ios::trunc);
    if (!data_) throw std::runtime_error("cannot write " + (dir_ / "data.bin").string());
  }

  // Runs `op` on `inputs` and records both; a keel::Error is recorded as the case's error.
  void add(const std::string& op, const std::vector<Tensor>& inputs,
           const std::function<std::vector<Tensor>()>& run, const Args& args = Args()) {
    std::string entry = "{\"id\": " + std::to_string(count_) + ", \"op\": " + json_string(op) +
                        ", \"args\": " + args.str() + ", \"inputs\": [";
    for (size_t i = 0; i < inputs.size(); ++i) entry += (i ? ", " : "") + write_tensor(inputs[i]);
    entry += "]";
    try {
      const std::vector<Tensor> outputs = run();
      entry += ", \"outputs\": [";
      for (size_t i = 0; i < outputs.size(); ++i) entry += (i ? ", " : "") + write_tensor(outputs[i]);
      entry += "]";
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
    std::cout << "parity_dump: wrote " << count_ << " cases (" << offset_ << " bytes of data) to "
              << dir_.string() << "\n";
  }

 private:
  std::string write_tensor(const Tensor& t) {
    const Tensor packed = t.contiguous();
    const size_t nbytes = packed.nbytes();
    if (nbytes) data_.write(static_cast<const char*>(packed.raw_data()), static_cast<std::streamsize>(nbytes));
    std::string out = R"({"dtype": ")" + std::string(dtype_name(t.dtype())) + R"(", "shape": )" +
                      json_list(t.shape()) + R"(, "offset": )" + std::to_string(offset_) +
                      R"(, "strided": )" + (t.is_contiguous() ? "false" : "true") + "}";
    offset_ += nbytes;
    return out;
  }

  std::filesystem::path dir_;
  std::ofstream data_;
  std::vector<std::string> entries_;
  size_t offset_ = 0;
  int count_ = 0;
};

// ---- inputs ------------------------------------------------------------------------------------
enum class Values {
  general,   // U(-3, 3); integers in [-9, 9]
  positive,  // U(0.1, 4); integers in [1, 9]
  near_one,  // U(0.5, 1.5), for products; integers in [1, 2]
  special,   // general with NaN, +-inf, +-0 sprinkled in (floating dtypes)
  small_int, // integers in [0, 3] in any dtype, for exponents and ties
};

std::mt19937_64 rng(0x6b65656c);  // fixed seed: the dump is the same on every run

Tensor make(const Shape& shape, DType dtype, Values kind = Values::general, bool strided = false) {
  const int64_t n = shape_numel(shape);
  std::vector<double> values(static_cast<size_t>(n));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (auto& v : values) {
    const double u = unit(rng);
    if (dtype == DType::bool_) {
      v = u < 0.5 ? 0.0 : 1.0;
      continue;
    }
    const bool integral = is_integral(dtype);
    switch (kind) {
      case Values::general: v = integral ? std::floor(u * 19) - 9 : u * 6 - 3; break;
      case Values::positive: v = integral ? 1 + std::floor(u * 9) : 0.1 + u * 3.9; break;
      case Values::near_one: v = integral ? 1 + std::floor(u * 2) : 0.5 + u; break;
      case Values::small_int: v = std::floor(u * 4); break;
      case Values::special: {
        v = integral ? std::floor(u * 19) - 9 : u * 6 - 3;
        if (!integral) {
          const double pick = unit(rng);
          if (pick < 0.06) v = std::numeric_limits<double>::quiet_NaN();
          else if (pick < 0.10) v = std::numeric_limits<double>::infinity();
          else if (pick < 0.14) v = -std::numeric_limits<double>::infinity();
          else if (pick < 0.17) v = 0.0;
          else if (pick < 0.20) v = -0.0;
        }
        break;
      }
    }
  }
  Tensor base = from_blob(values.data(), shape, {.dtype = DType::f64}).to(dtype);
  if (base.dtype() == DType::f64) base = base.clone();  // from_blob does not own `values`
  if (!strided || shape.empty()) return base;
  // The same values in a non-contiguous layout: a transposed buffer, or every second element.
  if (shape.size() >= 2) {
    Shape swapped = shape;
    std::swap(swapped[swapped.size() - 1], swapped[swapped.size() - 2]);
    Tensor wide = empty(swapped, {dtype}).transpose(-1, -2);
    wide.copy_(base);
    return wide;
  }
  Tensor wide = empty({shape[0] * 2}, {dtype}).slice(0, 0, shape[0] * 2, 2);
  wide.copy_(base);
  return wide;
}

// Indices in [0, bound) of the given shape (i64). distinct: along `dim`, each line holds
// distinct values (a prefix of a permutation), as scatter needs for a defined result.
Tensor make_index(const Shape& shape, int64_t bound, int64_t dim, bool distinct) {
  std::vector<int64_t> values(static_cast<size_t>(shape_numel(shape)));
  std::uniform_int_distribution<int64_t> pick(0, bound - 1);
  for (auto& v : values) v = pick(rng);
  Tensor index = from_blob(values.data(), shape, {.dtype = DType::i64}).clone();
  if (distinct) {
    // line j along dim: a shuffled 0..bound-1, cut to the dim's length
    const int64_t lines = index.numel() / shape[dim];
    Tensor moved = index.transpose(dim, -1).contiguous();
    int64_t* data = moved.data_ptr<int64_t>();
    std::vector<int64_t> permutation(static_cast<size_t>(bound));
    for (int64_t line = 0; line < lines; ++line) {
      for (int64_t i = 0; i < bound; ++i) permutation[i] = i;
      std::shuffle(permutation.begin(), permutation.end(), rng);
      for (int64_t i = 0; i < shape[dim]; ++i) data[line * shape[dim] + i] = permutation[i];
    }
    index = moved.transpose(dim, -1).contiguous();
  }
  return index;
}

const std::vector<DType> kFloats = {DType::f32, DType::f64, DType::f16, DType::bf16};
const std::vector<DType> kNumeric = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64};
const std::vector<DType> kAll = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i32, DType::i64, DType::bool_};

// ---- elementwise -------------------------------------------------------------------------------
void elementwise_cases(Dump& dump) {
  using Unary = std::function<Tensor(const Tensor&)>;
  const std::vector<std::tuple<std::string, Unary, Values>> unary_ops = {
      {"neg", [](const Tensor& x) { return neg(x); }, Values::general},
      {"abs", [](const Tensor& x) { return abs(x); }, Values::special},
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
      {"relu", [](const Tensor& x) { return relu(x); }, Values::special},
      {"gelu", [](const Tensor& x) { return gelu(x); }, Values::general},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, GeluApproximation::tanh); }, Values::general},
      {"silu", [](const Tensor& x) { return silu(x); }, Values::general},
      {"erf", [](const Tensor& x) { return erf(x); }, Values::general},
      {"logical_not", [](const Tensor& x) { return logical_not(x); }, Values::special},
      {"isnan", [](const Tensor& x) { return isnan(x); }, Values::special},
      {"isinf", [](const Tensor& x) { return isinf(x); }, Values::special},
  };
  const std::vector<std::pair<Shape, bool>> unary_shapes = {{{257}, false}, {{5, 33}, true}, {{}, false}, {{0, 3}, false}};
  for (const auto& [name, fn, kind] : unary_ops) {
    for (DType dtype : kAll) {
      for (const auto& [shape, strided] : unary_shapes) {
        const Tensor x = make(shape, dtype, kind, strided);
        dump.add(name, {x}, [&] { return std::vector<Tensor>{fn(x)}; });
      }
    }
  }

  using BinaryTT = std::function<Tensor(const Tensor&, const Tensor&)>;
  using BinaryTS = std::function<Tensor(const Tensor&, const Scalar&)>;
  using BinaryST = std::function<Tensor(const Scalar&, const Tensor&)>;
  struct BinaryEntry {
    std::string name;
    BinaryTT tt;
    BinaryTS ts;  // empty: PyTorch has no scalar form to compare with
    BinaryST st;
    Values a_kind, b_kind;
  };
#define KEEL_PARITY_BINARY(op, with_scalar, a_kind, b_kind)                                        \
  BinaryEntry {                                                                                     \
    #op, [](const Tensor& a, const Tensor& b) { return op(a, b); },                                 \
        with_scalar ? BinaryTS([](const Tensor& a, const Scalar& b) { return op(a, b); }) : BinaryTS(), \
        with_scalar ? BinaryST([](const Scalar& a, const Tensor& b) { return op(a, b); }) : BinaryST(), \
        Values::a_kind, Values::b_kind                                                              \
  }
  const std::vector<BinaryEntry> binary_ops = {
      KEEL_PARITY_BINARY(add, true, general, general),     KEEL_PARITY_BINARY(sub, true, general, general),
      KEEL_PARITY_BINARY(mul, true, general, general),     KEEL_PARITY_BINARY(div, true, general, positive),
      KEEL_PARITY_BINARY(pow, true, positive, small_int),  KEEL_PARITY_BINARY(maximum, false, special, special),
      KEEL_PARITY_BINARY(minimum, false, special, special), KEEL_PARITY_BINARY(eq, true, small_int, small_int),
      KEEL_PARITY_BINARY(ne, true, small_int, small_int),  KEEL_PARITY_BINARY(lt, true, small_int, small_int),
      KEEL_PARITY_BINARY(le, true, small_int, small_int),  KEEL_PARITY_BINARY(gt, true, small_int, small_int),
      KEEL_PARITY_BINARY(ge, true, small_int, small_int),  KEEL_PARITY_BINARY(logical_and, false, small_int, small_int),
      KEEL_PARITY_BINARY(logical_or, false, small_int, small_int),
      KEEL_PARITY_BINARY(logical_xor, false, small_int, small_int),
  };
#undef KEEL_PARITY_BINARY
  // (a shape, b shape, a strided, b strided): same shape, broadcasting both ways, odd sizes,
  // non-contiguous, 0-dim, empty.
  const std::vector<std::tuple<Shape, Shape, bool, bool>> binary_shapes = {
      {{257}, {257}, false, false}, {{4, 1, 6}, {5, 1}, false, false}, {{7, 33}, {7, 33}, true, false},
      {{3, 31}, {31}, false, true}, {{}, {6}, false, false},            {{0, 3}, {3}, false, false},
  };
  for (const auto& entry : binary_ops) {
    for (DType dtype : kAll) {
      for (const auto& [shape_a, shape_b, strided_a, strided_b] : binary_shapes) {
        const Tensor a = make(shape_a, dtype, entry.a_kind, strided_a);
        const Tensor b = make(shape_b, dtype, entry.b_kind, strided_b);
        dump.add(entry.name, {a, b}, [&] { return std::vector<Tensor>{entry.tt(a, b)}; });
      }
      if (!entry.ts) continue;
      const Tensor x = make({5, 6}, dtype, entry.a_kind);
      for (const Scalar& s : {Scalar(2), Scalar(2.5), Scalar(true)}) {
        dump.add(entry.name, {x}, [&] { return std::vector<Tensor>{entry.ts(x, s)}; },
                 Args().set("scalar", s).set("side", std::string("\"right\"")));
        const Tensor y = make({5, 6}, dtype, entry.b_kind);
        dump.add(entry.name, {y}, [&] { return std::vector<Tensor>{entry.st(s, y)}; },
                 Args().set("scalar", s).set("side", std::string("\"left\"")));
      }
    }
  }
  // Integer pow with a negative exponent: PyTorch refuses a negative scalar exponent.
  {
    const Tensor x = make({6}, DType::i64, Values::positive);
    dump.add("pow", {x}, [&] { return std::vector<Tensor>{pow(x, Scalar(-1))}; },
             Args().set("scalar", Scalar(-1)).set("side", std::string("\"right\"")));
  }

  // Type promotion of mixed-dtype operands (the output dtype is compared).
  const std::vector<std::pair<DType, DType>> mixed = {
      {DType::i32, DType::f16}, {DType::i64, DType::f32}, {DType::bool_, DType::i32}, {DType::f16, DType::bf16},
      {DType::f32, DType::f64}, {DType::i32, DType::i64}, {DType::bool_, DType::bf16}, {DType::i32, DType::i32},
      {DType::f16, DType::f32}, {DType::bf16, DType::f64}, {DType::i64, DType::bool_}, {DType::u8, DType::i64},
  };
  for (const auto& [da, db] : mixed) {
    const Tensor a = make({4, 5}, da, Values::positive);
    const Tensor b = make({5}, db, Values::positive);
    dump.add("add", {a, b}, [&] { return std::vector<Tensor>{add(a, b)}; });
    dump.add("mul", {a, b}, [&] { return std::vector<Tensor>{mul(a, b)}; });
    dump.add("div", {a, b}, [&] { return std::vector<Tensor>{div(a, b)}; });
    dump.add("maximum", {a, b}, [&] { return std::vector<Tensor>{maximum(a, b)}; });
    dump.add("lt", {a, b}, [&] { return std::vector<Tensor>{lt(a, b)}; });
    // 0-dim tensors rank below dimensioned ones of the same category.
    const Tensor zero_dim = make({}, db, Values::positive);
    dump.add("add", {a, zero_dim}, [&] { return std::vector<Tensor>{add(a, zero_dim)}; });
    dump.add("mul", {zero_dim, a}, [&] { return std::vector<Tensor>{mul(zero_dim, a)}; });
  }
  for (DType dtype : {DType::i32, DType::i64, DType::f16, DType::bf16, DType::bool_}) {
    const Tensor x = make({3, 4}, dtype, Values::positive);
    for (const Scalar& s : {Scalar(3), Scalar(0.5), Scalar(false)}) {
      dump.add("mul", {x}, [&] { return std::vector<Tensor>{mul(x, s)}; },
               Args().set("scalar", s).set("side", std::string("\"right\"")));
    }
  }

  // where: broadcast condition and operands, scalar operands, mixed dtypes.
  for (DType dtype : kAll) {
    const Tensor condition = make({4, 1, 5}, DType::bool_);
    const Tensor a = make({3, 5}, dtype, Values::general, true);
    const Tensor b = make({4, 3, 1}, dtype);
    dump.add("where", {condition, a, b}, [&] { return std::vector<Tensor>{where(condition, a, b)}; });
    const Tensor x = make({4, 5}, dtype);
    const Tensor c2 = make({4, 5}, DType::bool_);
    dump.add("where", {c2, x}, [&] { return std::vector<Tensor>{where(c2, x, Scalar(0.0))}; },
             Args().set("b_scalar", Scalar(0.0)));
    dump.add("where", {c2, x}, [&] { return std::vector<Tensor>{where(c2, Scalar(7), x)}; },
             Args().set("a_scalar", Scalar(7)));
  }
  {
    const Tensor condition = make({6}, DType::bool_);
    const Tensor a = make({6}, DType::f32), b = make({6}, DType::f64);
    dump.add("where", {condition, a, b}, [&] { return std::vector<Tensor>{where(condition, a, b)}; });
    const Tensor i = make({6}, DType::i32);
    dump.add("where", {condition, i, a}, [&] { return std::vector<Tensor>{where(condition, i, a)}; });
  }

  // clamp: scalar bounds (both, one), NaN kept, tensor bounds broadcast.
  for (DType dtype : kNumeric) {
    const Tensor x = make({7, 9}, dtype, Values::special, true);
    dump.add("clamp", {x}, [&] { return std::vector<Tensor>{clamp(x, Scalar(-1), Scalar(2))}; },
             Args().set("min", Scalar(-1)).set("max", Scalar(2)));
    dump.add("clamp", {x}, [&] { return std::vector<Tensor>{clamp(x, Scalar(-1.5), Scalar(0.5))}; },
             Args().set("min", Scalar(-1.5)).set("max", Scalar(0.5)));
    dump.add("clamp_min", {x}, [&] { return std::vector<Tensor>{clamp_min(x, Scalar(0))}; }, Args().set("min", Scalar(0)));
    dump.add("clamp_max", {x}, [&] { return std::vector<Tensor>{clamp_max(x, Scalar(1))}; }, Args().set("max", Scalar(1)));
    const Tensor low = make({9}, dtype, Values::general) - 1, high = make({7, 1}, dtype, Values::positive);
    dump.add("clamp_tensor", {x, low, high}, [&] { return std::vector<Tensor>{clamp(x, low, high)}; });
  }
}

// ---- reductions --------------------------------------------------------------------------------
void reduction_cases(Dump& dump) {
  const std::vector<std::pair<Dims, bool>> dim_sets = {
      {{}, false}, {{0}, false}, {{-1}, true}, {{0, 2}, false}, {{1}, true}, {{2, 0, 1}, false}};
  const Shape shape = {4, 5, 33};
  using Reduce = std::function<Tensor(const Tensor&, const Dims&, bool)>;
  const std::vector<std::tuple<std::string, Reduce, Values, std::vector<DType>>> plain = {
      {"sum", [](const Tensor& x, const Dims& d, bool k) { return sum(x, d, k); }, Values::general, kAll},
      {"mean", [](const Tensor& x, const Dims& d, bool k) { return mean(x, d, k); }, Values::general, kAll},
      {"prod", [](const Tensor& x, const Dims& d, bool k) { return prod(x, d, k); }, Values::near_one, kAll},
      {"amax", [](const Tensor& x, const Dims& d, bool k) { return amax(x, d, k); }, Values::general, kAll},
      {"amin", [](const Tensor& x, const Dims& d, bool k) { return amin(x, d, k); }, Values::general, kAll},
      {"all", [](const Tensor& x, const Dims& d, bool k) { return all(x, d, k); }, Values::small_int, kAll},
      {"any", [](const Tensor& x, const Dims& d, bool k) { return any(x, d, k); }, Values::small_int, kAll},
      {"logsumexp", [](const Tensor& x, const Dims& d, bool k) { return logsumexp(x, d, k); }, Values::general, kFloats},
  };
  for (const auto& [name, fn, kind, dtypes] : plain) {
    for (DType dtype : dtypes) {
      for (const auto& [dims, keepdim] : dim_sets) {
        if (name == "logsumexp" && dims.empty()) continue;  // PyTorch needs the dims
        const Tensor x = make(shape, dtype, kind, dims.size() == 1);
        dump.add(name, {x}, [&] { return std::vector<Tensor>{fn(x, dims, keepdim)}; },
                 Args().set("dims", dims).set("keepdim", keepdim));
      }
    }
  }
  // NaN propagation and empty inputs.
  for (const std::string name : {"sum", "amax", "amin", "prod"}) {
    const Tensor x = make({6, 17}, DType::f32, Values::special);
    const Tensor e = make({0, 4}, DType::f32);
    for (const Tensor& input : {x, e}) {
      dump.add(name, {input}, [&] {
        if (name == "sum") return std::vector<Tensor>{sum(input, {0})};
        if (name == "amax") return std::vector<Tensor>{amax(input, {0})};
        if (name == "amin") return std::vector<Tensor>{amin(input, {0})};
        return std::vector<Tensor>{prod(input, {0})};
      }, Args().set("dims", Dims{0}).set("keepdim", false));
    }
  }
  // sum / prod with an explicit accumulation dtype.
  for (DType dtype : {DType::i32, DType::f16, DType::bool_}) {
    const Tensor x = make({8, 9}, dtype, Values::near_one);
    dump.add("sum", {x}, [&] { return std::vector<Tensor>{sum(x, {1}, false, DType::f64)}; },
             Args().set("dims", Dims{1}).set("keepdim", false).set("dtype", std::string("\"float64\"")));
    dump.add("prod", {x}, [&] { return std::vector<Tensor>{prod(x, {1}, false, DType::f32)}; },
             Args().set("dims", Dims{1}).set("keepdim", false).set("dtype", std::string("\"float32\"")));
  }
  // var / std with correction 0, 1, 2 and a correction that leaves N - c <= 0.
  for (DType dtype : kAll) {
    for (const auto& [dims, keepdim] : dim_sets) {
      for (double correction : {0.0, 1.0, 2.0}) {
        const Tensor x = make(shape, dtype, Values::general, dims.size() == 1);
        dump.add("var", {x}, [&] { return std::vector<Tensor>{var(x, dims, correction, keepdim)}; },
                 Args().set("dims", dims).set("keepdim", keepdim).set("correction", correction));
        dump.add("std", {x}, [&] { return std::vector<Tensor>{keel::std(x, dims, correction, keepdim)}; },
                 Args().set("dims", dims).set("keepdim", keepdim).set("correction", correction));
      }
    }
    const Tensor one = make({3, 1}, dtype);
    dump.add("var", {one}, [&] { return std::vector<Tensor>{var(one, {1}, 1.0)}; },
             Args().set("dims", Dims{1}).set("keepdim", false).set("correction", 1.0));
  }
  // p-norms.
  for (DType dtype : kAll) {
    for (double p : {1.0, 2.0, std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(), 0.0, 3.0}) {
      for (const auto& [dims, keepdim] : dim_sets) {
        const Tensor x = make(shape, dtype, Values::general, dims.size() == 1);
        dump.add("norm", {x}, [&] { return std::vector<Tensor>{norm(x, p, dims, keepdim)}; },
                 Args().set("p", p).set("dims", dims).set("keepdim", keepdim));
      }
    }
  }
  // max / min with indices, over everything, argmax / argmin (ties: small integers).
  for (DType dtype : kAll) {
    for (Values kind : {Values::general, Values::small_int}) {
      for (int64_t dim : {0, 1, -1}) {
        for (bool keepdim : {false, true}) {
          const Tensor x = make(shape, dtype, kind, dim == 1);
          dump.add("max_dim", {x}, [&] { auto r = max(x, dim, keepdim); return std::vector<Tensor>{r.values, r.indices}; },
                   Args().set("dim", dim).set("keepdim", keepdim));
          dump.add("min_dim", {x}, [&] { auto r = min(x, dim, keepdim); return std::vector<Tensor>{r.values, r.indices}; },
                   Args().set("dim", dim).set("keepdim", keepdim));
          dump.add("argmax", {x}, [&] { return std::vector<Tensor>{argmax(x, dim, keepdim)}; },
                   Args().set("dim", dim).set("keepdim", keepdim));
          dump.add("argmin", {x}, [&] { return std::vector<Tensor>{argmin(x, dim, keepdim)}; },
                   Args().set("dim", dim).set("keepdim", keepdim));
        }
      }
      const Tensor x = make({7, 11}, dtype, kind, true);
      dump.add("max_all", {x}, [&] { return std::vector<Tensor>{max(x)}; });
      dump.add("min_all", {x}, [&] { return std::vector<Tensor>{min(x)}; });
      dump.add("argmax", {x}, [&] { return std::vector<Tensor>{argmax(x)}; });
      dump.add("argmin", {x}, [&] { return std::vector<Tensor>{argmin(x)}; });
    }
  }
  {
    const Tensor x = make({5, 9}, DType::f32, Values::special);
    dump.add("max_dim", {x}, [&] { auto r = max(x, 1); return std::vector<Tensor>{r.values, r.indices}; },
             Args().set("dim", int64_t{1}).set("keepdim", false));
    dump.add("argmin", {x}, [&] { return std::vector<Tensor>{argmin(x, 1)}; }, Args().set("dim", int64_t{1}).set("keepdim", false));
    const Tensor e = make({0, 3}, DType::f32);
    dump.add("max_dim", {e}, [&] { auto r = max(e, 0); return std::vector<Tensor>{r.values, r.indices}; },
             Args().set("dim", int64_t{0}).set("keepdim", false));
    dump.add("argmax", {e}, [&] { return std::vector<Tensor>{argmax(e)}; });
  }
}

// ---- shape and indexing ------------------------------------------------------------------------
void shape_cases(Dump& dump) {
  for (DType dtype : kAll) {
    const Tensor a = make({2, 3, 4}, dtype, Values::general, true);
    const Tensor b = make({2, 5, 4}, dtype);
    const Tensor c = make({2, 1, 4}, dtype);
    dump.add("cat", {a, b, c}, [&] { return std::vector<Tensor>{cat({a, b, c}, 1)}; }, Args().set("dim", int64_t{1}));
    const Tensor d = make({2, 3, 4}, dtype);
    dump.add("cat", {a, d}, [&] { return std::vector<Tensor>{cat({a, d}, -1)}; }, Args().set("dim", int64_t{-1}));
    for (int64_t dim : {0, 2, -1}) {
      dump.add("stack", {a, d}, [&] { return std::vector<Tensor>{stack({a, d}, dim)}; }, Args().set("dim", dim));
    }
    const Tensor x = make({7, 10}, dtype, Values::general, true);
    dump.add("split", {x}, [&] { return split(x, 3, 1); }, Args().set("split_size", int64_t{3}).set("dim", int64_t{1}));
    dump.add("split_sizes", {x}, [&] { return split(x, std::vector<int64_t>{2, 0, 5}, 0); },
             Args().set("sizes", std::vector<int64_t>{2, 0, 5}).set("dim", int64_t{0}));
    dump.add("chunk", {x}, [&] { return chunk(x, 3, 0); }, Args().set("chunks", int64_t{3}).set("dim", int64_t{0}));
    dump.add("chunk", {x}, [&] { return chunk(x, 4, 1); }, Args().set("chunks", int64_t{4}).set("dim", int64_t{1}));

    // gather / scatter / scatter_add along each dim; the index is smaller than self in the
    // other dim. scatter gets distinct targets per line (PyTorch leaves duplicates unspecified).
    const Tensor self = make({5, 6}, dtype, Values::general, true);
    for (int64_t dim : {0, 1}) {
      const Shape index_shape = dim == 0 ? Shape{4, 3} : Shape{3, 4};
      const Tensor repeated = make_index(index_shape, self.size(dim), dim, false);
      const Tensor distinct = make_index(index_shape, self.size(dim), dim, true);
      const Tensor source = make(index_shape, dtype);
      dump.add("gather", {self, repeated}, [&] { return std::vector<Tensor>{gather(self, dim, repeated)}; },
               Args().set("dim", dim));
      dump.add("scatter", {self, distinct, source},
               [&] { return std::vector<Tensor>{scatter(self, dim, distinct, source)}; }, Args().set("dim", dim));
      dump.add("scatter_value", {self, distinct},
               [&] { return std::vector<Tensor>{scatter(self, dim, distinct, Scalar(1))}; },
               Args().set("dim", dim).set("value", Scalar(1)));
      if (dtype != DType::bool_) {
        dump.add("scatter_add", {self, repeated, source},
                 [&] { return std::vector<Tensor>{scatter_add(self, dim, repeated, source)}; }, Args().set("dim", dim));
      }
      const Tensor picks = make_index({7}, self.size(dim), 0, false);
      dump.add("index_select", {self, picks}, [&] { return std::vector<Tensor>{index_select(self, dim, picks)}; },
               Args().set("dim", dim));
      const Tensor picks32 = picks.to(DType::i32);
      dump.add("index_select", {self, picks32},
               [&] { return std::vector<Tensor>{index_select(self, dim, picks32)}; }, Args().set("dim", dim));
    }
    // masked_fill with a broadcast mask; tril / triu with several diagonals, batched.
    const Tensor mask = make({1, 6}, DType::bool_);
    dump.add("masked_fill", {self, mask}, [&] { return std::vector<Tensor>{masked_fill(self, mask, Scalar(0))}; },
             Args().set("value", Scalar(0)));
    const Tensor full_mask = make({5, 6}, DType::bool_);
    dump.add("masked_fill", {self, full_mask},
             [&] { return std::vector<Tensor>{masked_fill(self, full_mask, Scalar(true))}; },
             Args().set("value", Scalar(true)));
    const Tensor batch = make({2, 5, 7}, dtype, Values::general, true);
    for (int64_t diagonal : {0, 1, -2, 9}) {
      dump.add("tril", {batch}, [&] { return std::vector<Tensor>{tril(batch, diagonal)}; }, Args().set("diagonal", diagonal));
      dump.add("triu", {batch}, [&] { return std::vector<Tensor>{triu(batch, diagonal)}; }, Args().set("diagonal", diagonal));
    }
  }
  {
    const Tensor a = make({2, 3}, DType::f32), b = make({4, 3}, DType::f64), c = make({1, 3}, DType::i32);
    dump.add("cat", {a, b, c}, [&] { return std::vector<Tensor>{cat({a, b, c}, 0)}; }, Args().set("dim", int64_t{0}));
    const Tensor e = make({0, 3}, DType::f32);
    dump.add("cat", {a, e}, [&] { return std::vector<Tensor>{cat({a, e}, 0)}; }, Args().set("dim", int64_t{0}));
    const Tensor bad = make({2, 4}, DType::f32);
    dump.add("cat", {a, bad}, [&] { return std::vector<Tensor>{cat({a, bad}, 0)}; }, Args().set("dim", int64_t{0}));
  }
  for (int64_t classes : {-1, 6}) {
    const Tensor labels = make_index({3, 4}, 5, 0, false);
    dump.add("one_hot", {labels}, [&] { return std::vector<Tensor>{one_hot(labels, classes)}; },
             Args().set("num_classes", classes));
  }
}

// ---- factories ---------------------------------------------------------------------------------
void factory_cases(Dump& dump) {
  auto no_inputs = [&](const std::string& op, const Args& args, std::function<Tensor()> fn) {
    dump.add(op, {}, [&] { return std::vector<Tensor>{fn()}; }, args);
  };
  no_inputs("arange", Args().set("end", Scalar(10)), [] { return arange(Scalar(10)); });
  no_inputs("arange", Args().set("end", Scalar(2.5)), [] { return arange(Scalar(2.5)); });
  no_inputs("arange", Args().set("start", Scalar(-3)).set("end", Scalar(8)).set("step", Scalar(3)),
            [] { return arange(Scalar(-3), Scalar(8), Scalar(3)); });
  no_inputs("arange", Args().set("start", Scalar(0)).set("end", Scalar(1)).set("step", Scalar(0.1)),
            [] { return arange(Scalar(0), Scalar(1), Scalar(0.1)); });
  no_inputs("arange", Args().set("start", Scalar(5)).set("end", Scalar(-1)).set("step", Scalar(-2)),
            [] { return arange(Scalar(5), Scalar(-1), Scalar(-2)); });
  no_inputs("arange", Args().set("start", Scalar(1)).set("end", Scalar(4)).set("step", Scalar(1)).set("dtype", std::string("\"float64\"")),
            [] { return arange(Scalar(1), Scalar(4), Scalar(1), {.dtype = DType::f64}); });
  for (int64_t steps : {0, 1, 2, 7, 100}) {
    no_inputs("linspace", Args().set("start", -1.5).set("end", 2.0).set("steps", steps),
              [steps] { return linspace(-1.5, 2.0, steps); });
  }
  no_inputs("linspace", Args().set("start", 0.0).set("end", 10.0).set("steps", int64_t{6}).set("dtype", std::string("\"int64\"")),
            [] { return linspace(0.0, 10.0, 6, {.dtype = DType::i64}); });
  no_inputs("eye", Args().set("n", int64_t{4}).set("m", int64_t{-1}), [] { return eye(4); });
  no_inputs("eye", Args().set("n", int64_t{3}).set("m", int64_t{5}).set("dtype", std::string("\"bool\"")),
            [] { return eye(3, 5, {.dtype = DType::bool_}); });
  no_inputs("tensor", Args().set("data", std::string("[[1, 2, 3], [4, 5, 6]]")), [] { return tensor({{1, 2, 3}, {4, 5, 6}}); });
  no_inputs("tensor", Args().set("data", std::string("[1.5, 2, -3]")), [] { return tensor({1.5, 2, -3}); });
  no_inputs("tensor", Args().set("data", std::string("[true, false]")), [] { return tensor({true, false}); });
  no_inputs("tensor", Args().set("data", std::string("[[1, 2], [3]]")), [] { return tensor({{1, 2}, {3}}); });
  no_inputs("tensor", Args().set("data", std::string("[[0.25, 1], [2, 3]]")).set("dtype", std::string("\"float16\"")),
            [] { return tensor({{0.25, 1}, {2, 3}}, DType::f16); });
}

}  // namespace

// Quantization (ops/quantize.h) against torch.quantize_per_tensor / quantize_per_channel and
// dequantize: values in and far beyond the quantized range (NaN and inf are left out: torch 1.13
// sends +inf to the lowest value, Keel saturates it; see ops/quantize.h), per tensor and per
// channel, u8 and i8, strided inputs.
void quantize_cases(Dump& dump) {
  for (const DType dtype : {DType::u8, DType::i8}) {
    const char* name = dtype == DType::u8 ? "uint8" : "int8";
    for (const bool strided : {false, true}) {
      const Tensor x = make({31, 33}, DType::f32, Values::general, strided) * 30.0;  // U(-90, 90)
      for (const auto& [scale, zero_point] : std::vector<std::pair<double, int64_t>>{{0.1, dtype == DType::u8 ? 128 : 0}, {0.37, dtype == DType::u8 ? 3 : -7}, {1.0, 0}}) {
        dump.add("quantize_per_tensor", {x}, [&] { return std::vector<Tensor>{quantize_per_tensor(x, scale, zero_point, dtype)}; },
                 Args().set("scale", scale).set("zero_point", zero_point).set("dtype", name));
      }
      for (const int64_t axis : {0, 1}) {
        const int64_t channels = x.size(axis);
        const Tensor scales = make({channels}, DType::f32, Values::positive) * 0.1;
        const Tensor zero_points = make({channels}, DType::i64, Values::general) + (dtype == DType::u8 ? 128 : 0);
        dump.add("quantize_per_channel", {x, scales, zero_points},
                 [&] { return std::vector<Tensor>{quantize_per_channel(x, scales, zero_points, axis, dtype)}; },
                 Args().set("axis", axis).set("dtype", name));
      }
    }
    const Tensor q = quantize_per_tensor(make({7, 33}, DType::f32) * 50.0, 0.3, dtype == DType::u8 ? 100 : -3, dtype);
    dump.add("dequantize_per_tensor", {q}, [&] { return std::vector<Tensor>{dequantize_per_tensor(q, 0.3, dtype == DType::u8 ? 100 : -3)}; },
             Args().set("scale", 0.3).set("zero_point", int64_t{dtype == DType::u8 ? 100 : -3}));
    const Tensor scales = make({33}, DType::f32, Values::positive) * 0.1;
    const Tensor zero_points = make({33}, DType::i64, Values::general) + (dtype == DType::u8 ? 128 : 0);
    dump.add("dequantize_per_channel", {q, scales, zero_points},
             [&] { return std::vector<Tensor>{dequantize_per_channel(q, scales, zero_points, 1)}; }, Args().set("axis", int64_t{1}));
  }
  // Exact ties (k + 0.5 at scale 1 and 0.5): both round half to even.
  const Tensor ties = arange(-20.5, 20.5, 0.25);
  for (const double scale : {1.0, 0.5})
    dump.add("quantize_per_tensor", {ties}, [&] { return std::vector<Tensor>{quantize_per_tensor(ties, scale, 3, DType::i8)}; },
             Args().set("scale", scale).set("zero_point", int64_t{3}).set("dtype", "int8"));
  // Both refuse a zero point outside the range. (A zero scale: Keel refuses it, torch 1.13 computes
  // with it; not a parity case.)
  const Tensor x = make({4}, DType::f32);
  dump.add("quantize_per_tensor", {x}, [&] { return std::vector<Tensor>{quantize_per_tensor(x, 1.0, 300, DType::u8)}; },
           Args().set("scale", 1.0).set("zero_point", int64_t{300}).set("dtype", "uint8"));
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: parity_dump <output folder>\n";
    return 2;
  }
  try {
    Dump dump(argv[1]);
    elementwise_cases(dump);
    reduction_cases(dump);
    shape_cases(dump);
    factory_cases(dump);
    quantize_cases(dump);
    dump.finish();
  } catch (const std::exception& error) {
    std::cerr << "parity_dump: " << error.what() << "\n";
    return 1;
  }
  return 0;
}
