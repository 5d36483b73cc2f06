// Shape and indexing ops against the float64 reference: cat, stack, split, chunk, gather,
// scatter, scatter_add, index_select, masked_fill, one_hot, tril, triu. Every dtype, the odd
// sizes, non-contiguous and broadcast inputs, negative dims, and the errors of bad input.
#include <algorithm>
#include <functional>
#include <string>

#include "test_util.h"

using namespace keel;
using namespace keel::test;
using reference::RefTensor;

namespace {

RefTensor ref(const Tensor& t) { return reference::from_tensor(t); }

std::string label(DType dtype, int64_t size, const std::string& extra = "") {
  return std::string(dtype_name(dtype)) + " size " + std::to_string(size) + (extra.empty() ? "" : " " + extra);
}

// A tensor holding `values` (row-major) converted to dtype.
Tensor values_tensor(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f64) {
  Tensor f64 = empty(shape, {.dtype = DType::f64});
  REQUIRE(static_cast<int64_t>(values.size()) == f64.numel());
  for (size_t i = 0; i < values.size(); ++i) f64.data_ptr<double>()[i] = values[i];
  return f64.to(dtype);
}

// Random i64 indices in [0, high); high may be 0 only for an empty shape.
Tensor random_indices(int64_t high, const Shape& shape) {
  if (shape_numel(shape) == 0) return empty(shape, {.dtype = DType::i64});
  return randint(0, high, shape);
}


Shape sizes_along(const std::vector<Tensor>& pieces, int64_t dim) {
  Shape sizes;
  for (const Tensor& piece : pieces) sizes.push_back(piece.size(dim));
  return sizes;
}

RefTensor unsqueeze_ref(RefTensor x, int64_t dim) {
  x.shape.insert(x.shape.begin() + dim, 1);
  return x;
}

// A value that every dtype holds exactly (bool: true).
Scalar fill_value(DType dtype) { return dtype == DType::bool_ ? Scalar(true) : Scalar(3); }

}  // namespace

// ---- cat and stack -------------------------------------------------------------------------------
TEST_CASE("cat matches the reference for every dtype, size and layout", "[shape]") {
  for (DType dtype : kAllDTypes) {
    for (int64_t n : kSizes) {
      INFO(label(dtype, n));
      const Tensor a = random_tensor({n, 5}, dtype), b = random_tensor({2, 5}, dtype);
      const Tensor c = non_contiguous(random_tensor({n, 5}, dtype));
      for (int64_t dim : {0, -2}) {
        const Tensor out = cat({a, b, c}, dim);
        CHECK(out.dtype() == dtype);
        check_matches(out, reference::cat({ref(a), ref(b), ref(c)}, 0), "dim 0");
      }
      const Tensor p = random_tensor({3, n}, dtype), q = non_contiguous(random_tensor({3, 4}, dtype));
      check_matches(cat({p, q}, 1), reference::cat({ref(p), ref(q)}, 1), "dim 1");
      check_matches(cat({q, p}, -1), reference::cat({ref(q), ref(p)}, 1), "dim -1");
      // A broadcast (stride-0) input along a middle dim.
      const Tensor e = random_tensor({2, 1, 3}, dtype).expand({2, n, 3}), f = random_tensor({2, 4, 3}, dtype);
      check_matches(cat({e, f}, 1), reference::cat({ref(e), ref(f)}, 1), "3-D dim 1");
      check_matches(cat({a}, 0), ref(a), "single input");
    }
  }
}

TEST_CASE("cat and stack promote dtypes like torch.cat", "[shape]") {
  for (DType first : kAllDTypes) {
    for (DType second : kAllDTypes) {
      INFO(dtype_name(first) << " with " << dtype_name(second));
      // Values every dtype involved holds exactly, so the promoted copy is exact.
      const Tensor x = random_tensor({2, 3}, first), y = random_tensor({2, 3}, second);
      const Tensor joined = cat({x, y}, 1);
      REQUIRE(joined.dtype() == promote_types(first, second));
      check_matches(joined, reference::cat({ref(x), ref(y)}, 1));
      const Tensor stacked = stack({x, y}, 0);
      REQUIRE(stacked.dtype() == promote_types(first, second));
      check_matches(stacked, reference::cat({unsqueeze_ref(ref(x), 0), unsqueeze_ref(ref(y), 0)}, 0));
    }
  }
  CHECK(cat({ones({2}, {.dtype = DType::i32}), ones({2}, {.dtype = DType::f32})}).dtype() == DType::f32);
  CHECK(cat({ones({2}, {.dtype = DType::u8}), ones({2}, {.dtype = DType::i8})}).dtype() == DType::i32);
  CHECK(cat({ones({2}, {.dtype = DType::f16}), ones({2}, {.dtype = DType::bf16})}).dtype() == DType::f32);
  CHECK(cat({ones({2}, {.dtype = DType::i64}), ones({2}, {.dtype = DType::f16})}).dtype() == DType::f16);
  CHECK(cat({ones({2}, {.dtype = DType::bool_}), ones({2}, {.dtype = DType::bool_})}).dtype() == DType::bool_);
}

TEST_CASE("cat skips legacy empty [0] tensors and keeps other empty shapes", "[shape]") {
  const Tensor x = random_tensor({2, 3}, DType::f32);
  Tensor out = cat({empty({0}), x, empty({0})});
  check_matches(out, ref(x));
  out = cat({x, empty({0})}, 1);  // the skipped tensor does not constrain dim 1 either
  check_matches(out, ref(x));
  CHECK(cat({empty({0}, {.dtype = DType::f64}), x}).dtype() == DType::f64);  // still promotes
  CHECK(cat({empty({0}), empty({0})}).shape() == Shape{0});
  CHECK(cat({empty({0, 3}), x}).shape() == Shape{2, 3});
  CHECK(cat({empty({2, 0}), x}, 1).shape() == Shape{2, 3});
  CHECK(cat({empty({0, 3}), empty({0, 3})}, 1).shape() == Shape{0, 6});
  check_error([&] { cat({empty({2, 0}), x}, 0); }, {"[cat]", "tensor 1", "[2, 3]", "[2, 0]"});
}

TEST_CASE("stack matches the reference at every dim", "[shape]") {
  for (DType dtype : kAllDTypes) {
    for (int64_t n : kSizes) {
      INFO(label(dtype, n));
      const Tensor a = random_tensor({n, 4}, dtype), b = non_contiguous(random_tensor({n, 4}, dtype));
      const Tensor c = random_tensor({1, 4}, dtype).expand({n, 4});
      for (int64_t dim : {0, 1, 2, -1, -3}) {
        const int64_t wrapped = dim < 0 ? dim + 3 : dim;
        const Tensor out = stack({a, b, c}, dim);
        CHECK(out.dtype() == dtype);
        check_matches(out,
                      reference::cat({unsqueeze_ref(ref(a), wrapped), unsqueeze_ref(ref(b), wrapped),
                                      unsqueeze_ref(ref(c), wrapped)},
                                     wrapped),
                      "dim " + std::to_string(dim));
      }
    }
  }
  // 0-D inputs stack into a vector.
  const Tensor s = stack({scalar_tensor(1.5), scalar_tensor(-2.0)});
  CHECK(s.shape() == Shape{2});
  CHECK(s.select(0, 1).item<double>() == -2.0);
}

TEST_CASE("cat and stack reject bad input", "[shape]") {
  const Tensor x = zeros({2, 3}), y = zeros({2, 4}), z = zeros({2, 3, 1});
  check_error([&] { cat({}, 0); }, {"[cat]", "non-empty"});
  check_error([&] { cat({x, y}, 0); }, {"[cat]", "tensor 1", "[2, 4]", "tensor 0", "[2, 3]", "dim 0"});
  check_error([&] { cat({x, x, z}, 1); }, {"[cat]", "tensor 2", "[2, 3, 1]"});
  check_error([&] { cat({x, scalar_tensor(1.0)}, 0); }, {"[cat]", "zero-dimensional", "index 1"});
  check_error([&] { cat({x, y}, 2); }, {"[cat]", "dim 2 out of range"});
  check_error([&] { cat({x, y}, -3); }, {"[cat]", "dim -3 out of range"});
  check_error([&] { cat({x, Tensor()}, 0); }, {"[cat]", "tensor 1", "undefined"});
  CHECK(cat({x, y}, 1).shape() == Shape{2, 7});
  CHECK(cat({x, y}, -1).shape() == Shape{2, 7});

  check_error([&] { stack({}, 0); }, {"[stack]", "non-empty"});
  check_error([&] { stack({x, x, y}, 0); }, {"[stack]", "tensor 2", "[2, 4]", "[2, 3]"});
  check_error([&] { stack({x, y}, 3); }, {"[stack]"});
  check_error([&] { stack({x, x}, 3); }, {"[stack]", "dim 3 out of range"});
  CHECK(stack({x, x}, 2).shape() == Shape{2, 3, 2});
  CHECK(stack({x, x}, -3).shape() == Shape{2, 2, 3});
}

// ---- split and chunk ------------------------------------------------------------------------------
TEST_CASE("split and chunk follow torch's piece sizes and return views", "[shape]") {
  Tensor x = random_tensor({10, 3}, DType::f32);
  CHECK(sizes_along(split(x, 3), 0) == Shape{3, 3, 3, 1});
  CHECK(sizes_along(split(x, 10), 0) == Shape{10});
  CHECK(sizes_along(split(x, 20), 0) == Shape{10});
  CHECK(sizes_along(split(x, 2, 1), 1) == Shape{2, 1});
  CHECK(sizes_along(split(x, 2, -1), 1) == Shape{2, 1});
  CHECK(sizes_along(split(x, std::vector<int64_t>{2, 0, 8}), 0) == Shape{2, 0, 8});
  CHECK(sizes_along(split(x, std::vector<int64_t>{1, 2}, -1), 1) == Shape{1, 2});
  CHECK(sizes_along(chunk(x, 3), 0) == Shape{4, 4, 2});
  CHECK(sizes_along(chunk(x, 4), 0) == Shape{3, 3, 3, 1});
  CHECK(sizes_along(chunk(x.narrow(0, 0, 5), 4), 0) == Shape{2, 2, 1});  // fewer pieces than asked
  CHECK(sizes_along(chunk(x, 20), 0) == Shape(10, 1));
  CHECK(sizes_along(chunk(x, 2, -1), 1) == Shape{2, 1});
  CHECK(sizes_along(chunk(empty({0, 3}), 3), 0) == Shape{0, 0, 0});  // an empty dim: `chunks` pieces
  CHECK(sizes_along(split(empty({0, 3}), 0), 0) == Shape{0});
  CHECK(sizes_along(split(empty({0, 3}), 4), 0) == Shape{0});

  for (const Tensor& piece : split(x, 3)) CHECK(piece.storage() == x.storage());
  for (const Tensor& piece : chunk(x, 2, 1)) CHECK(piece.storage() == x.storage());
  // Writes through a piece land in x.
  std::vector<Tensor> halves = chunk(x, 2);
  halves[1].fill_(7);
  CHECK(x.select(0, 5).select(0, 2).item<float>() == 7.0f);
  CHECK(x.select(0, 4).select(0, 2).item<float>() != 7.0f);
}

TEST_CASE("split and chunk pieces reassemble the input for every dtype and size", "[shape]") {
  for (DType dtype : kAllDTypes) {
    for (int64_t n : kSizes) {
      INFO(label(dtype, n));
      const Tensor base = random_tensor({n, 33}, dtype);
      for (const Tensor& x : {base, non_contiguous(base)}) {
        for (int64_t dim : {0, 1, -1, -2}) {
          for (int64_t split_size : {1, 5, 32}) {
            const std::vector<Tensor> pieces = split(x, split_size, dim);
            for (size_t i = 0; i < pieces.size(); ++i) {
              CHECK(pieces[i].size(dim) <= split_size);
              if (i + 1 < pieces.size()) CHECK(pieces[i].size(dim) == split_size);
              CHECK(pieces[i].storage() == x.storage());
            }
            check_matches(cat(pieces, dim), ref(x), "split " + std::to_string(split_size));
          }
          const std::vector<Tensor> pieces = chunk(x, 3, dim);
          CHECK(pieces.size() <= 3);
          check_matches(cat(pieces, dim), ref(x), "chunk 3");
        }
      }
    }
  }
}

TEST_CASE("split and chunk reject bad input", "[shape]") {
  const Tensor x = zeros({10, 3});
  check_error([&] { split(x, -1); }, {"[split]", "non-negative", "-1"});
  check_error([&] { split(x, 0); }, {"[split]", "size 10"});
  check_error([&] { split(x, std::vector<int64_t>{3, 3}); }, {"[split]", "[3, 3]", "sum to 6", "size 10"});
  check_error([&] { split(x, std::vector<int64_t>{12, -2}); }, {"[split]", "non-negative"});
  check_error([&] { split(x, 2, 2); }, {"[split]", "dim 2 out of range"});
  check_error([&] { split(scalar_tensor(1.0), 1); }, {"[split]", "0-D"});
  check_error([&] { chunk(x, 0); }, {"[chunk]", "greater than 0", "got 0"});
  check_error([&] { chunk(x, -2); }, {"[chunk]", "got -2"});
  check_error([&] { chunk(x, 2, -3); }, {"[chunk]", "dim -3 out of range"});
  check_error([&] { chunk(scalar_tensor(1.0), 1); }, {"[chunk]", "0-D"});
}

// ---- gather --------------------------------------------------------------------------------------
TEST_CASE("gather matches the reference", "[shape]") {
  for (DType dtype : kAllDTypes) {
    for (int64_t n : kSizes) {
      INFO(label(dtype, n));
      const Tensor x = random_tensor({n, 7}, dtype);
      for (bool strided : {false, true}) {
        const Tensor xs = strided ? non_contiguous(x) : x;
        Tensor index0 = random_indices(n, {n > 0 ? n + 3 : 0, 5});
        Tensor index1 = random_indices(7, {n, 9});
        if (strided) {
          index0 = non_contiguous(index0);
          index1 = non_contiguous(index1);
        }
        Tensor out = gather(xs, 0, index0);
        CHECK(out.dtype() == dtype);
        check_matches(out, reference::gather(ref(x), 0, ref(index0)), "dim 0");
        check_matches(gather(xs, -2, index0), reference::gather(ref(x), 0, ref(index0)), "dim -2");
        check_matches(gather(xs, 1, index1), reference::gather(ref(x), 1, ref(index1)), "dim 1");
        check_matches(gather(xs, -1, index1), reference::gather(ref(x), 1, ref(index1)), "dim -1");
      }
      // 3-D, the index smaller than x in the other dims, and broadcast indices.
      const Tensor y = random_tensor({3, n, 4}, dtype);
      const Tensor index = random_indices(n, {2, n > 0 ? 5 : 0, 3});
      check_matches(gather(y, 1, index), reference::gather(ref(y), 1, ref(index)), "3-D dim 1");
      const Tensor broadcast_index = random_indices(4, {1, 1, 6}).expand({3, n, 6});
      check_matches(gather(y, 2, broadcast_index), reference::gather(ref(y), 2, ref(broadcast_index)),
                    "broadcast index");
    }
  }
  // 0-D input and index.
  const Tensor scalar = gather(scalar_tensor(2.5), 0, scalar_tensor(0, DType::i64));
  CHECK(scalar.dim() == 0);
  CHECK(scalar.item<double>() == 2.5);
  // A large gather crosses the OpenMP grain.
  const Tensor big = random_tensor({300, 400}, DType::f32);
  const Tensor big_index = random_indices(300, {300, 400});
  check_matches(gather(big, 0, big_index), reference::gather(ref(big), 0, ref(big_index)), "large");
}

TEST_CASE("gather rejects bad input", "[shape]") {
  const Tensor x = zeros({3, 4});
  check_error([&] { gather(x, 0, zeros({2, 4}, {.dtype = DType::i32})); }, {"[gather]", "int64", "int32"});
  check_error([&] { gather(x, 0, zeros({2, 4})); }, {"[gather]", "int64", "float32"});
  check_error([&] { gather(x, 0, zeros({3}, {.dtype = DType::i64})); }, {"[gather]", "rank", "[3]", "[3, 4]"});
  check_error([&] { gather(x, 0, zeros({3, 5}, {.dtype = DType::i64})); }, {"[gather]", "[3, 5]", "dim 1"});
  check_error([&] { gather(x, 2, zeros({3, 4}, {.dtype = DType::i64})); }, {"[gather]", "dim 2 out of range"});
  const Tensor too_big = values_tensor({0, 1, 3, 2}, {1, 4}, DType::i64);
  check_error([&] { gather(x, 0, too_big); }, {"[gather]", "index 3", "dim 0", "size 3"});
  const Tensor negative = values_tensor({0, -1}, {2, 1}, DType::i64);
  check_error([&] { gather(x, 1, negative); }, {"[gather]", "index -1", "dim 1", "size 4"});
  check_error([&] { gather(zeros({0, 4}), 0, zeros({1, 4}, {.dtype = DType::i64})); }, {"[gather]", "size 0"});
  // Index larger along dim itself is fine.
  CHECK(gather(x, 0, zeros({7, 2}, {.dtype = DType::i64})).shape() == Shape{7, 2});
}

// ---- scatter and scatter_add -----------------------------------------------------------------------
TEST_CASE("scatter and scatter_add match the reference", "[shape]") {
  for (DType dtype : kAllDTypes) {
    for (int64_t n : kSizes) {
      INFO(label(dtype, n));
      const Tensor self = random_tensor({n, 6}, dtype);
      // Small source values so that integer sums of duplicates stay in range.
      const Tensor source = random_tensor({n + 3, 9}, dtype, -0.5, 0.5);
      for (bool strided : {false, true}) {
        const Tensor self_s = strided ? non_contiguous(self) : self;
        const Tensor source_s = strided ? non_contiguous(source) : source;
        Tensor index0 = random_indices(n, {n > 0 ? n + 2 : 0, 4});
        Tensor index1 = random_indices(6, {n, 8});
        if (strided) {
          index0 = non_contiguous(index0);
          index1 = non_contiguous(index1);
        }
        const RefTensor self_ref = ref(self), source_ref = ref(source);
        check_matches(scatter(self_s, 0, index0, source_s),
                      reference::scatter(self_ref, 0, ref(index0), source_ref, false, dtype), "scatter dim 0");
        check_matches(scatter(self_s, -1, index1, source_s),
                      reference::scatter(self_ref, 1, ref(index1), source_ref, false, dtype), "scatter dim -1");
        check_matches(scatter_add(self_s, 0, index0, source_s),
                      reference::scatter(self_ref, 0, ref(index0), source_ref, true, dtype), "scatter_add dim 0");
        check_matches(scatter_add(self_s, 1, index1, source_s),
                      reference::scatter(self_ref, 1, ref(index1), source_ref, true, dtype), "scatter_add dim 1");
        check_matches(self_s, self_ref, "out-of-place forms leave self alone");

        // A scalar value: the reference source holds the value everywhere.
        const Scalar value = fill_value(dtype);
        const RefTensor value_ref{index1.shape(), std::vector<double>(static_cast<size_t>(index1.numel()),
                                                                      reference::round_to(dtype, value.to_double()))};
        check_matches(scatter(self_s, 1, index1, value),
                      reference::scatter(self_ref, 1, ref(index1), value_ref, false, dtype), "scatter value");

        // In place, also through a view into a larger base.
        Tensor target = self_s.clone();
        const uint64_t version = target.storage()->version();
        Tensor& returned = scatter_(target, 0, index0, source_s);
        CHECK(&returned == &target);
        CHECK(target.storage()->version() > version);
        check_matches(target, reference::scatter(self_ref, 0, ref(index0), source_ref, false, dtype), "scatter_");
        Tensor base = zeros({n, 12}, {.dtype = dtype});
        Tensor view = base.slice(1, 1, 12, 2);
        view.copy_(self);
        scatter_add_(view, 1, index1, source_s);
        const RefTensor expected = reference::scatter(self_ref, 1, ref(index1), source_ref, true, dtype);
        check_matches(view, expected, "scatter_add_ into a view");
        check_matches(base.slice(1, 0, 12, 2), RefTensor{{n, 6}, std::vector<double>(n * 6, 0.0)},
                      "scatter_add_ leaves the rest of the base");
      }
    }
  }
  // A large scatter_add crosses the OpenMP grain (lines of 300 along dim 0).
  const Tensor big_self = random_tensor({300, 400}, DType::f64), big_source = random_tensor({300, 400}, DType::f64);
  const Tensor big_index = random_indices(300, {300, 400});
  check_matches(scatter_add(big_self, 0, big_index, big_source),
                reference::scatter(ref(big_self), 0, ref(big_index), ref(big_source), true, DType::f64), "large");
}

TEST_CASE("scatter resolves duplicate indices in order, scatter_add sums them", "[shape]") {
  const Tensor self = zeros({3}, {.dtype = DType::f64});
  const Tensor index = values_tensor({0, 0, 0, 2}, {4}, DType::i64);
  const Tensor source = values_tensor({1, 2, 3, 4}, {4});
  check_matches(scatter(self, 0, index, source), RefTensor{{3}, {3, 0, 4}});
  check_matches(scatter_add(self, 0, index, source), RefTensor{{3}, {6, 0, 4}});
  check_matches(scatter(self, 0, index, 9.5), RefTensor{{3}, {9.5, 0, 9.5}});
  // 0-D tensors act as one-element vectors.
  const Tensor scalar = scatter_add(scalar_tensor(1.0), 0, scalar_tensor(0, DType::i64), scalar_tensor(2.0));
  CHECK(scalar.dim() == 0);
  CHECK(scalar.item<double>() == 3.0);
}

TEST_CASE("scatter rejects bad input and leaves self untouched", "[shape]") {
  Tensor self = zeros({3, 2});
  const Tensor index = values_tensor({0, 1, 3, 0}, {2, 2}, DType::i64);
  const Tensor source = ones({2, 2});
  check_error([&] { scatter_(self, 0, index, source); }, {"[scatter", "index 3", "dim 0", "size 3"});
  check_matches(self, RefTensor{{3, 2}, std::vector<double>(6, 0.0)}, "untouched after a bad index");
  check_error([&] { scatter_add(self, 1, values_tensor({-2}, {1, 1}, DType::i64), source); },
              {"[scatter_add]", "index -2", "dim 1", "size 2"});
  check_error([&] { scatter(self, 0, index, ones({2, 2}, {.dtype = DType::f64})); },
              {"[scatter]", "float64", "float32"});
  check_error([&] { scatter(self, 0, zeros({2, 2}, {.dtype = DType::i32}), source); }, {"[scatter]", "int64"});
  check_error([&] { scatter(self, 0, zeros({3, 2}, {.dtype = DType::i64}), source); },
              {"[scatter]", "[3, 2]", "source", "[2, 2]"});
  check_error([&] { scatter(self, 0, zeros({2, 3}, {.dtype = DType::i64}), ones({2, 3})); },
              {"[scatter]", "[2, 3]", "self", "dim 1"});
  check_error([&] { scatter(self, 0, zeros({2}, {.dtype = DType::i64}), source); }, {"[scatter]", "rank"});
  check_error([&] { scatter(self, 2, index, source); }, {"[scatter]", "dim 2 out of range"});
  Tensor expanded = zeros({1, 2}).expand({3, 2});
  check_error([&] { scatter_(expanded, 0, zeros({1, 2}, {.dtype = DType::i64}), source); },
              {"[scatter_]", "in place"});
}

// ---- index_select ---------------------------------------------------------------------------------
TEST_CASE("index_select matches the reference with i64 and i32 indices", "[shape]") {
  for (DType dtype : kAllDTypes) {
    for (int64_t n : kSizes) {
      INFO(label(dtype, n));
      const Tensor x = random_tensor({n, 9}, dtype);
      const Tensor index0 = random_indices(n, {n > 0 ? n + 4 : 0});
      const Tensor index1 = random_indices(9, {n});
      for (DType index_dtype : {DType::i64, DType::i32}) {
        for (bool strided : {false, true}) {
          const Tensor xs = strided ? non_contiguous(x) : x;
          const Tensor i0 = strided ? non_contiguous(index0.to(index_dtype)) : index0.to(index_dtype);
          const Tensor i1 = strided ? non_contiguous(index1.to(index_dtype)) : index1.to(index_dtype);
          const Tensor out = index_select(xs, 0, i0);
          CHECK(out.dtype() == dtype);
          check_matches(out, reference::index_select(ref(x), 0, ref(index0)), "dim 0");
          check_matches(index_select(xs, 1, i1), reference::index_select(ref(x), 1, ref(index1)), "dim 1");
          check_matches(index_select(xs, -1, i1), reference::index_select(ref(x), 1, ref(index1)), "dim -1");
        }
      }
      const Tensor y = non_contiguous(random_tensor({2, n, 5}, dtype));
      check_matches(index_select(y, 1, index0), reference::index_select(ref(y), 1, ref(index0)), "3-D dim 1");
      const Tensor empty_other = random_tensor({0, 9}, dtype);
      CHECK(index_select(empty_other, 1, index1).shape() == Shape{0, n});
    }
  }
  // 0-D input, 0-D index on a vector, and a large select across the OpenMP grain.
  const Tensor scalar = index_select(scalar_tensor(2.5), 0, scalar_tensor(0, DType::i64));
  CHECK(scalar.dim() == 0);
  CHECK(scalar.item<double>() == 2.5);
  const Tensor vector = values_tensor({4, 5, 6}, {3});
  check_matches(index_select(vector, 0, scalar_tensor(2, DType::i64)), RefTensor{{1}, {6}});
  const Tensor big = random_tensor({1000, 257}, DType::f32);
  const Tensor big_index = random_indices(1000, {700});
  check_matches(index_select(big, 0, big_index), reference::index_select(ref(big), 0, ref(big_index)), "large");
}

TEST_CASE("index_select rejects bad input", "[shape]") {
  const Tensor x = zeros({3, 9});
  check_error([&] { index_select(x, 1, values_tensor({0, 9}, {2}, DType::i64)); },
              {"[index_select]", "index 9", "dim 1", "size 9"});
  check_error([&] { index_select(x, 0, values_tensor({-1}, {1}, DType::i32)); }, {"[index_select]", "index -1"});
  check_error([&] { index_select(x, 0, zeros({2}, {.dtype = DType::f32})); }, {"[index_select]", "int64", "float32"});
  check_error([&] { index_select(x, 0, zeros({2}, {.dtype = DType::u8})); }, {"[index_select]", "uint8"});
  check_error([&] { index_select(x, 0, zeros({1, 2}, {.dtype = DType::i64})); }, {"[index_select]", "1-D", "[1, 2]"});
  check_error([&] { index_select(x, -3, zeros({1}, {.dtype = DType::i64})); }, {"[index_select]", "dim -3"});
  check_error([&] { index_select(scalar_tensor(1.0), 0, values_tensor({1}, {1}, DType::i64)); },
              {"[index_select]", "index 1"});
  check_error([&] { index_select(zeros({0, 2}), 0, zeros({1}, {.dtype = DType::i64})); },
              {"[index_select]", "size 0"});
}

// ---- masked_fill ----------------------------------------------------------------------------------
TEST_CASE("masked_fill matches the reference with full and broadcast masks", "[shape]") {
  for (DType dtype : kAllDTypes) {
    for (int64_t n : kSizes) {
      INFO(label(dtype, n));
      const Tensor x = random_tensor({n, 5}, dtype);
      const Scalar value = fill_value(dtype);
      const double filled = reference::round_to(dtype, value.to_double());
      const RefTensor x_ref = ref(x);
      for (const Tensor& mask : {random_tensor({n, 5}, DType::bool_), non_contiguous(random_tensor({n, 5}, DType::bool_)),
                                 random_tensor({5}, DType::bool_), random_tensor({n, 1}, DType::bool_)}) {
        const RefTensor mask_ref = ref(mask);
        RefTensor expected = x_ref;
        for (int64_t i = 0; i < expected.numel(); ++i) {
          if (mask_ref.values[reference::broadcast_source(mask.shape(), x.shape(), i)] != 0) expected.values[i] = filled;
        }
        const std::string what = "mask " + to_string(mask.shape());
        const Tensor out = masked_fill(non_contiguous(x), mask, value);
        CHECK(out.dtype() == dtype);
        check_matches(out, expected, what);
        Tensor target = x.clone();
        const uint64_t version = target.storage()->version();
        masked_fill_(target, mask, value);
        CHECK(target.storage()->version() > version);
        check_matches(target, expected, what + " in place");
        // In place through a strided view: the base's other columns stay.
        Tensor base = zeros({n, 10}, {.dtype = dtype});
        Tensor view = base.slice(1, 1, 10, 2);
        view.copy_(x);
        masked_fill_(view, mask, value);
        check_matches(view, expected, what + " in place on a view");
        check_matches(base.slice(1, 0, 10, 2), RefTensor{{n, 5}, std::vector<double>(n * 5, 0.0)}, what + " base");
      }
      check_matches(x, x_ref, "masked_fill leaves x alone");
    }
  }
}

TEST_CASE("masked_fill converts the value to x's dtype and broadcasts like PyTorch", "[shape]") {
  const Tensor x = values_tensor({1, 2, 3}, {3}, DType::i32);
  const Tensor all = ones({3}, {.dtype = DType::bool_});
  const Tensor out = masked_fill(x, all, 2.7);
  CHECK(out.dtype() == DType::i32);
  check_matches(out, RefTensor{{3}, {2, 2, 2}});
  // Out of place, x broadcasts against a larger mask.
  const Tensor mask = values_tensor({1, 0, 0, 0, 1, 0}, {2, 3}, DType::bool_);
  check_matches(masked_fill(x, mask, -1), RefTensor{{2, 3}, {-1, 2, 3, 1, -1, 3}});
  // 0-D x and mask.
  check_matches(masked_fill(scalar_tensor(1.5), scalar_tensor(true), 4.0), RefTensor{{}, {4.0}});
}

TEST_CASE("masked_fill rejects bad input", "[shape]") {
  Tensor x = zeros({2, 3});
  check_error([&] { masked_fill(x, zeros({2, 3}, {.dtype = DType::i64}), 1); }, {"[masked_fill]", "bool", "int64"});
  check_error([&] { masked_fill(x, zeros({4}, {.dtype = DType::bool_}), 1); }, {"[masked_fill]", "[2, 3]", "[4]"});
  check_error([&] { masked_fill_(x, zeros({4, 2, 3}, {.dtype = DType::bool_}), 1); },
              {"[masked_fill_]", "[4, 2, 3]", "[2, 3]"});
  check_error([&] { masked_fill_(x, zeros({2, 3}, {.dtype = DType::u8}), 1); }, {"[masked_fill_]", "bool"});
  Tensor expanded = zeros({1, 3}).expand({2, 3});
  check_error([&] { masked_fill_(expanded, zeros({2, 3}, {.dtype = DType::bool_}), 1); },
              {"[masked_fill_]", "in place"});
}

// ---- one_hot --------------------------------------------------------------------------------------
TEST_CASE("one_hot matches the reference", "[shape]") {
  auto expected_for = [](const Tensor& indices, int64_t classes) {
    const RefTensor values = ref(indices);
    Shape shape = indices.shape();
    shape.push_back(classes);
    RefTensor expected{shape, std::vector<double>(static_cast<size_t>(shape_numel(shape)), 0.0)};
    for (int64_t i = 0; i < values.numel(); ++i) expected.values[i * classes + static_cast<int64_t>(values.values[i])] = 1;
    return expected;
  };
  for (int64_t n : kSizes) {
    INFO("size " << n);
    const Tensor indices = random_indices(5, {n});
    const Tensor out = one_hot(indices, 5);
    CHECK(out.dtype() == DType::i64);
    check_matches(out, expected_for(indices, 5), "1-D");
    check_matches(one_hot(non_contiguous(indices), 7), expected_for(indices, 7), "non-contiguous");
    const Tensor grid = non_contiguous(random_indices(33, {n, 3}));
    if (n > 0) {
      const RefTensor grid_ref = ref(grid);
      const int64_t inferred = static_cast<int64_t>(*std::max_element(grid_ref.values.begin(), grid_ref.values.end())) + 1;
      const Tensor inferred_out = one_hot(grid, -1);
      CHECK(inferred_out.size(-1) == inferred);
      check_matches(inferred_out, expected_for(grid, inferred), "inferred classes");
    }
    check_matches(one_hot(grid, 40), expected_for(grid, 40), "2-D");
  }
  check_matches(one_hot(scalar_tensor(2, DType::i64), 4), RefTensor{{4}, {0, 0, 1, 0}});
  CHECK(one_hot(empty({0}, {.dtype = DType::i64}), 0).shape() == Shape{0, 0});
}

TEST_CASE("one_hot rejects bad input", "[shape]") {
  check_error([&] { one_hot(values_tensor({0, -1}, {2}, DType::i64), 3); }, {"[one_hot]", "non-negative", "-1"});
  check_error([&] { one_hot(values_tensor({0, 3}, {2}, DType::i64), 3); }, {"[one_hot]", "num_classes = 3", "got 3"});
  check_error([&] { one_hot(values_tensor({0, 1}, {2}, DType::i32), 3); }, {"[one_hot]", "int64", "int32"});
  check_error([&] { one_hot(empty({0}, {.dtype = DType::i64})); }, {"[one_hot]", "empty"});
  check_error([&] { one_hot(values_tensor({0}, {1}, DType::i64), -2); }, {"[one_hot]", "-2"});
}

// ---- tril and triu --------------------------------------------------------------------------------
TEST_CASE("tril and triu match the reference", "[shape]") {
  for (DType dtype : kAllDTypes) {
    for (int64_t n : kSizes) {
      INFO(label(dtype, n));
      const Tensor wide = random_tensor({n, 33}, dtype);
      const Tensor batched = random_tensor({2, 7, n}, dtype);
      const Tensor square = non_contiguous(random_tensor({n, n}, dtype));
      const Tensor broadcast = random_tensor({1, 5}, dtype).expand({n, 5});
      for (const Tensor& x : {wide, batched, square, broadcast}) {
        for (int64_t diagonal : {-100, -2, -1, 0, 1, 3, 100}) {
          const std::string what = to_string(x.shape()) + " diagonal " + std::to_string(diagonal);
          const Tensor lower = tril(x, diagonal), upper = triu(x, diagonal);
          CHECK(lower.dtype() == dtype);
          CHECK(upper.dtype() == dtype);
          check_matches(lower, reference::triangle(ref(x), diagonal, true), "tril " + what);
          check_matches(upper, reference::triangle(ref(x), diagonal, false), "triu " + what);
        }
      }
    }
  }
}

TEST_CASE("tril and triu need at least 2 dims", "[shape]") {
  check_error([&] { tril(zeros({3})); }, {"[tril]", "at least 2 dims", "[3]"});
  check_error([&] { triu(scalar_tensor(1.0)); }, {"[triu]", "at least 2 dims", "[]"});
}
