// max_pool2d 2x2 / stride 2 fast paths (kernels/cpu/pooling.cpp: AVX-512, AVX2) against the
// general loops (the baseline path, which has no fast path) and a float64 reference: values and
// indices bit for bit, on odd sizes (the last row/column dropped), widths around the vector
// blocks (8, 16 outputs), NaNs, ties, +-inf, -0, non-contiguous, 3-D and empty inputs; the
// backward (dx = dy scattered to the indices) bit for bit against the general path and a float64
// scatter, including indices that are not from a 2x2 pool (the per-plane fallback); avg_pool2d
// 2x2 (AVX-512) forward and backward bit for bit against the general loop.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "test_util.h"

using namespace keel;
using namespace keel::test;

namespace {

const MaxPool2dOptions k2{.kernel_size = {2, 2}};

// Values in a few levels (many ties), with NaN, +-inf, -0 and 0 sprinkled in (a fixed pattern).
Tensor tricky_input(const Shape& shape, uint32_t seed) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  uint32_t state = seed * 2654435761u + 1;
  for (auto& value : v) {
    state = state * 1664525u + 1013904223u;
    const uint32_t r = state >> 8;
    switch (r % 23) {
      case 0: value = NAN; break;
      case 1: value = -INFINITY; break;
      case 2: value = INFINITY; break;
      case 3: value = -0.0f; break;
      case 4: value = 0.0f; break;
      default: value = static_cast<float>(static_cast<int>(r % 5) - 2) * 0.5f;  // ties
    }
  }
  // A plane of -inf only (the index must still be the first of each window).
  if (n >= 4 && shape[shape.size() - 1] * shape[shape.size() - 2] * 2 <= n)
    std::fill(v.begin(), v.begin() + shape[shape.size() - 1] * shape[shape.size() - 2], -INFINITY);
  return from_blob(v.data(), shape, {.dtype = DType::f32}).clone();
}

std::vector<uint32_t> bits_of(const Tensor& t) {
  const Tensor c = t.contiguous();
  std::vector<uint32_t> out(static_cast<size_t>(c.numel()));
  if (!out.empty()) std::memcpy(out.data(), c.data_ptr<float>(), out.size() * 4);
  return out;
}
std::vector<int64_t> ints_of(const Tensor& t) {
  const Tensor c = t.contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// float64 reference of a floor-mode 2x2 / stride 2 max pool, PyTorch's rule (first maximum in
// window order; a NaN is taken whenever seen, so the last NaN wins).
void ref_pool(const Tensor& x, std::vector<double>& values, std::vector<int64_t>& indices) {
  const Tensor c = x.contiguous();
  const float* d = c.data_ptr<float>();
  const int64_t planes = x.shape()[0] * x.shape()[1], h = x.shape()[2], w = x.shape()[3], oh = h / 2, ow = w / 2;
  values.assign(static_cast<size_t>(planes * oh * ow), 0);
  indices.assign(values.size(), -1);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        double best = -INFINITY;
        int64_t at = -1;
        for (int64_t r = 2 * i; r < 2 * i + 2; ++r)
          for (int64_t s = 2 * j; s < 2 * j + 2; ++s) {
            const double v = d[(p * h + r) * w + s];
            if (at < 0 || v > best || std::isnan(v)) {
              best = v;
              at = r * w + s;
            }
          }
        values[(p * oh + i) * ow + j] = best;
        indices[(p * oh + i) * ow + j] = at;
      }
}

// dx = dy scattered (added) to the indices, in float64.
std::vector<double> ref_scatter(const Tensor& dy, const Tensor& indices, const Shape& x_shape) {
  const int64_t planes = x_shape[0] * x_shape[1], hw = x_shape[2] * x_shape[3];
  const int64_t ohw = dy.shape()[2] * dy.shape()[3];
  const Tensor g = dy.contiguous();
  const std::vector<int64_t> id = ints_of(indices);
  std::vector<double> dx(static_cast<size_t>(planes * hw), 0.0);
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t k = 0; k < ohw; ++k) dx[p * hw + id[p * ohw + k]] += g.data_ptr<float>()[p * ohw + k];
  return dx;
}

std::string shape_str(const Shape& s) {
  std::string out;
  for (int64_t d : s) out += std::to_string(d) + " ";
  return out;
}

bool same_double(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

const std::vector<Shape> kShapes = {
    {1, 1, 2, 2},   {2, 3, 7, 9},   {1, 2, 5, 33},  {2, 2, 4, 16},  {1, 3, 6, 32},  {2, 1, 3, 34},
    {1, 2, 9, 64},  {1, 1, 5, 70},  {2, 2, 31, 31}, {1, 2, 28, 28}, {2, 3, 14, 14}, {1, 1, 2, 3},
    {3, 2, 11, 50}, {1, 1, 4, 47},  {0, 2, 6, 6},
};

}  // namespace

TEST_CASE("max_pool2d 2x2 fast paths equal the general path and the reference", "[pool]") {
  for (const Shape& shape : kShapes) {
    const Tensor x = tricky_input(shape, static_cast<uint32_t>(shape[2] * 131 + shape[3]));
    std::vector<double> ref_values;
    std::vector<int64_t> ref_indices;
    ref_pool(x, ref_values, ref_indices);
    const Tensor dy = random_tensor({shape[0], shape[1], shape[2] / 2, shape[3] / 2}, DType::f32);
    const std::vector<double> ref_dx = ref_scatter(dy, from_blob(ref_indices.data(), dy.shape(), {.dtype = DType::i64}), shape);

    std::vector<uint32_t> general_values, general_dx;
    std::vector<int64_t> general_indices;
    {
      CpuPathGuard guard("baseline");
      auto [values, indices] = max_pool2d_with_indices(x, k2);
      general_values = bits_of(values);
      general_indices = ints_of(indices);
      general_dx = bits_of(max_pool2d_backward(dy, indices, shape));
    }
    for (const std::string& path : cpu_paths()) {
      CpuPathGuard guard(path);
      INFO("path " << path << ", shape " << shape_str(shape));
      auto [values, indices] = max_pool2d_with_indices(x, k2);
      REQUIRE(values.shape() == dy.shape());
      CHECK(bits_of(values) == general_values);
      CHECK(ints_of(indices) == general_indices);
      CHECK(ints_of(indices) == ref_indices);
      const Tensor vc = values.contiguous();
      bool values_match = true;
      for (size_t k = 0; k < ref_values.size(); ++k)
        values_match = values_match && same_double(vc.data_ptr<float>()[k], ref_values[k]);
      CHECK(values_match);
      // Non-contiguous input: the same numbers.
      auto [values_nc, indices_nc] = max_pool2d_with_indices(non_contiguous(x), k2);
      CHECK(bits_of(values_nc) == general_values);
      CHECK(ints_of(indices_nc) == general_indices);
      // Backward: bitwise equal to the general scatter, equal to the float64 one.
      const Tensor dx = max_pool2d_backward(dy, indices, shape);
      CHECK(bits_of(dx) == general_dx);
      const Tensor dxc = dx.contiguous();
      bool dx_match = true;
      for (size_t k = 0; k < ref_dx.size(); ++k) dx_match = dx_match && dxc.data_ptr<float>()[k] == ref_dx[k];
      CHECK(dx_match);
    }
  }
}

TEST_CASE("max_pool2d 2x2 fast paths: -0 gradients, 3-D inputs, autograd", "[pool]") {
  for (const std::string& path : cpu_paths()) {
    CpuPathGuard guard(path);
    INFO("path " << path);
    // dy = -0 everywhere: the general path computes 0 + dy = +0; the fast path must too.
    const Tensor x = tricky_input({2, 3, 6, 37}, 3);
    auto [values, indices] = max_pool2d_with_indices(x, k2);
    const Tensor dy = full(values.shape(), -0.0);
    const std::vector<uint32_t> dx = bits_of(max_pool2d_backward(dy, indices, x.shape()));
    CHECK(std::all_of(dx.begin(), dx.end(), [](uint32_t b) { return b == 0; }));
    // 3-D input (C, H, W).
    const Tensor x3 = tricky_input({3, 9, 21}, 5);
    CHECK(bits_of(max_pool2d(x3, k2)) == bits_of(max_pool2d(x3.unsqueeze(0), k2)));
    // Autograd through the op: the gradient lands on the saved indices.
    const Tensor leaf = random_tensor({2, 2, 7, 9}, DType::f32).requires_grad_();
    const Tensor y = max_pool2d(leaf, k2);
    const Tensor g = random_tensor(y.shape(), DType::f32);
    y.backward(g);
    auto [v2, i2] = max_pool2d_with_indices(leaf.detach(), k2);
    const std::vector<double> expected = ref_scatter(g, i2, leaf.shape());
    const Tensor grad = leaf.grad().contiguous();
    bool match = true;
    for (size_t k = 0; k < expected.size(); ++k) match = match && grad.data_ptr<float>()[k] == expected[k];
    CHECK(match);
  }
}

TEST_CASE("max_pool2d backward with indices from other pools (fallback per plane)", "[pool]") {
  for (const std::string& path : cpu_paths())
  for (const Shape& shape : {Shape{2, 3, 10, 40}, Shape{2, 3, 10, 14}}) {  // 8+ and <= 8 outputs per row
    CpuPathGuard guard(path);
    INFO("path " << path << ", shape " << shape_str(shape));
    // kernel 3, stride 2, padding 1 on even sizes: the same output shape as 2x2, but indices can
    // lie outside the 2x2 window (and two outputs may share an index: the scatter adds).
    const Tensor x = random_tensor(shape, DType::f32);
    auto [values, indices] =
        max_pool2d_with_indices(x, {.kernel_size = {3, 3}, .stride = Size2{2, 2}, .padding = {1, 1}});
    REQUIRE(values.shape() == Shape{2, 3, 5, shape[3] / 2});
    const Tensor dy = random_tensor(values.shape(), DType::f32);
    const std::vector<double> expected = ref_scatter(dy, indices, shape);
    const Tensor dx = max_pool2d_backward(dy, indices, shape).contiguous();
    bool match = true;
    for (size_t k = 0; k < expected.size(); ++k)
      match = match && std::abs(dx.data_ptr<float>()[k] - expected[k]) <= 1e-6 * (1 + std::abs(expected[k]));
    CHECK(match);
    // A 2x2 pool's indices with one index moved to another window (last plane, last output).
    auto [v2, i2] = max_pool2d_with_indices(x, k2);
    Tensor moved = i2.clone();
    int64_t* id = moved.data_ptr<int64_t>();
    id[moved.numel() - 1] = id[moved.numel() - 2];
    id[0] = 5 * shape[3] + 7;  // plane 0, output (0, 0) -> row 5, column 7
    const Tensor dy2 = random_tensor(v2.shape(), DType::f32);
    const std::vector<double> expected2 = ref_scatter(dy2, moved, shape);
    const Tensor dx2 = max_pool2d_backward(dy2, moved, shape).contiguous();
    bool match2 = true;
    for (size_t k = 0; k < expected2.size(); ++k)
      match2 = match2 && std::abs(dx2.data_ptr<float>()[k] - expected2[k]) <= 1e-6 * (1 + std::abs(expected2[k]));
    CHECK(match2);
  }
}

TEST_CASE("avg_pool2d 2x2 fast path equals the general path and the reference", "[pool]") {
  const std::vector<AvgPool2dOptions> options = {
      {.kernel_size = {2, 2}},
      {.kernel_size = {2, 2}, .count_include_pad = false},
      {.kernel_size = {2, 2}, .divisor_override = 3},
  };
  for (const Shape& shape : kShapes)
    for (size_t o = 0; o < options.size(); ++o) {
      const Tensor x = tricky_input(shape, static_cast<uint32_t>(shape[3] * 17 + shape[2]));
      const Shape out{shape[0], shape[1], shape[2] / 2, shape[3] / 2};
      const Tensor dy = random_tensor(out, DType::f32) * tricky_input(out, 9);  // with NaN, inf, -0
      std::vector<uint32_t> general_y, general_dx;
      {
        CpuPathGuard guard("baseline");
        general_y = bits_of(avg_pool2d(x, options[o]));
        general_dx = bits_of(avg_pool2d_backward(dy, shape, options[o]));
      }
      // float64 reference of the forward: the window mean (the sums here are exact in f32).
      const double divisor = o == 2 ? 3.0 : 4.0;
      const int64_t planes = shape[0] * shape[1], h = shape[2], w = shape[3], oh = h / 2, ow = w / 2;
      std::vector<double> ref(static_cast<size_t>(planes * oh * ow));
      for (int64_t p = 0; p < planes; ++p)
        for (int64_t i = 0; i < oh; ++i)
          for (int64_t j = 0; j < ow; ++j) {
            double sum = 0;
            for (int64_t r = 2 * i; r < 2 * i + 2; ++r)
              for (int64_t s = 2 * j; s < 2 * j + 2; ++s) sum += x.data_ptr<float>()[(p * h + r) * w + s];
            ref[(p * oh + i) * ow + j] = static_cast<float>(sum / divisor);
          }
      for (const std::string& path : cpu_paths()) {
        CpuPathGuard guard(path);
        INFO("path " << path << ", shape " << shape_str(shape) << ", options " << o);
        const Tensor y = avg_pool2d(x, options[o]);
        CHECK(bits_of(y) == general_y);
        CHECK(bits_of(avg_pool2d(non_contiguous(x), options[o])) == general_y);
        bool match = true;
        for (size_t k = 0; k < ref.size(); ++k) match = match && same_double(y.data_ptr<float>()[k], ref[k]);
        CHECK(match);
        CHECK(bits_of(avg_pool2d_backward(dy, shape, options[o])) == general_dx);
      }
    }
}
