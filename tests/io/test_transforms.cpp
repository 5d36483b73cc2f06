// Image transforms: normalize against its formula, flips and crops exactly, rotation by 90/180
// exactly and small angles against a float64 transcription of torchvision's affine grid +
// grid_sample(nearest), equalize against a transcription of PIL's ImageOps.equalize (neither
// torchvision nor PIL is installed here; the transcriptions follow their Python source).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "test_util.h"

using namespace keel;
using namespace keel::data;
using keel::test::same_bytes;

namespace {

Tensor ramp_u8(Shape shape, int mul = 37) {
  Tensor x = empty(shape, {.dtype = DType::u8});
  for (int64_t i = 0; i < x.numel(); ++i) x.data_ptr<uint8_t>()[i] = static_cast<uint8_t>((i * mul + 11) % 256);
  return x;
}

uint8_t at(const Tensor& x, int64_t c, int64_t i, int64_t j) {
  const int64_t h = x.size(-2), w = x.size(-1);
  return x.contiguous().data_ptr<uint8_t>()[(c * h + i) * w + j];
}

// torchvision.transforms.functional.rotate (tensor path), step by step in float64:
// _get_inverse_affine_matrix(center 0, -angle, ...), _gen_affine_grid, grid_sample nearest with
// align_corners=False and zero padding.
// `ties` (when given) marks the output pixels whose source coordinate lies within 1e-9 of a
// rounding tie (x.5): there the result depends on the last bit of the arithmetic (cos 45 and
// sin 45 differ by one ulp in float64; torchvision computes in float32), so either neighbour is right.
Tensor rotate_reference(const Tensor& image, double angle_degrees, std::vector<bool>* ties = nullptr,
                        double tie_tolerance = 1e-9) {
  const int64_t channels = image.dim() == 3 ? image.size(0) : 1, h = image.size(-2), w = image.size(-1);
  const double rot = -angle_degrees * M_PI / 180.0;
  const double a = std::cos(rot), b = -std::sin(rot), c = std::sin(rot), d = std::cos(rot);
  const double matrix[6] = {d, -b, 0.0, -c, a, 0.0};
  Tensor out = zeros(image.shape(), {.dtype = image.dtype()});
  for (int64_t i = 0; i < h; ++i)
    for (int64_t j = 0; j < w; ++j) {
      const double base_x = -w * 0.5 + 0.5 + static_cast<double>(j);  // linspace(-ow/2 + d, ow/2 + d - 1)
      const double base_y = -h * 0.5 + 0.5 + static_cast<double>(i);
      const double grid_x = (matrix[0] * base_x + matrix[1] * base_y + matrix[2]) / (0.5 * w);
      const double grid_y = (matrix[3] * base_x + matrix[4] * base_y + matrix[5]) / (0.5 * h);
      const double fx = ((grid_x + 1) * w - 1) / 2, fy = ((grid_y + 1) * h - 1) / 2;
      if (ties != nullptr) {
        const bool tie = std::abs(fx - std::floor(fx) - 0.5) < tie_tolerance ||
                         std::abs(fy - std::floor(fy) - 0.5) < tie_tolerance;
        ties->push_back(tie);
      }
      const double ix = std::nearbyint(fx), iy = std::nearbyint(fy);
      if (ix < 0 || iy < 0 || ix > w - 1 || iy > h - 1) continue;
      for (int64_t ch = 0; ch < channels; ++ch)
        out.data_ptr<uint8_t>()[(ch * h + i) * w + j] = at(image, ch, static_cast<int64_t>(iy), static_cast<int64_t>(ix));
    }
  return out;
}

// PIL.ImageOps.equalize, per band:
//   histo = [_f for _f in h[b:b+256] if _f]
//   if len(histo) <= 1: identity
//   else: step = (reduce(add, histo) - histo[-1]) // 255
//         if not step: identity
//         else: n = step // 2; for i in range(256): lut.append(n // step); n = n + h[i + b]
// then Image.point clips the table to 0..255.
Tensor equalize_reference(const Tensor& image) {
  const int64_t channels = image.dim() == 3 ? image.size(0) : 1, plane = image.size(-2) * image.size(-1);
  Tensor out = image.contiguous().clone();
  for (int64_t b = 0; b < channels; ++b) {
    std::vector<int64_t> h(256, 0);
    for (int64_t k = 0; k < plane; ++k) ++h[out.data_ptr<uint8_t>()[b * plane + k]];
    std::vector<int64_t> histo;
    for (int64_t f : h)
      if (f) histo.push_back(f);
    std::vector<int64_t> lut;
    if (histo.size() <= 1) {
      for (int i = 0; i < 256; ++i) lut.push_back(i);
    } else {
      int64_t sum = 0;
      for (int64_t f : histo) sum += f;
      const int64_t step = (sum - histo.back()) / 255;
      if (!step) {
        for (int i = 0; i < 256; ++i) lut.push_back(i);
      } else {
        int64_t n = step / 2;
        for (int i = 0; i < 256; ++i) {
          lut.push_back(n / step);
          n = n + h[static_cast<size_t>(i)];
        }
      }
    }
    for (int64_t k = 0; k < plane; ++k) {
      uint8_t& v = out.data_ptr<uint8_t>()[b * plane + k];
      v = static_cast<uint8_t>(std::min<int64_t>(255, lut[v]));
    }
  }
  return out;
}


}  // namespace

TEST_CASE("normalize: (x - mean) / std per channel", "[io][transforms]") {
  const Tensor x = rand({3, 5, 4}, {.dtype = DType::f64});
  const std::vector<double> mean = {0.1, 0.5, -0.2}, std = {0.3, 2.0, 0.7};
  const Tensor y = normalize(x, mean, std);
  REQUIRE(y.shape() == x.shape());
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t k = 0; k < 20; ++k) {
      const double in = x.data_ptr<double>()[c * 20 + k];
      CHECK(y.contiguous().data_ptr<double>()[c * 20 + k] == Approx((in - mean[c]) / std[c]).epsilon(1e-14));
    }
  const Tensor f = normalize(x.to(DType::f32).select(0, 1), {0.2860}, {0.3530});  // one-channel HW, f32
  CHECK(f.dtype() == DType::f32);
  CHECK(f.shape() == Shape{5, 4});
  CHECK(f.contiguous().data_ptr<float>()[7] ==
        Approx((x.data_ptr<double>()[27] - 0.2860) / 0.3530).epsilon(1e-6));
  CHECK_THROWS_WITH(normalize(x, {0.1, 0.2}, {1.0}), Catch::Contains("one value per channel (3)"));
  CHECK_THROWS_WITH(normalize(x, {0.1}, {0.0}), Catch::Contains("nonzero"));
  CHECK_THROWS_WITH(normalize(ramp_u8({3, 3}), {0.1}, {1.0}), Catch::Contains("to_float_image"));
  CHECK_THROWS_WITH(normalize(zeros({2, 2, 2, 2}), {0.1}, {1.0}), Catch::Contains("[C, H, W] or [H, W]"));
  const Tensor unit = to_float_image(ramp_u8({2, 3}));
  CHECK(unit.data_ptr<float>()[1] == static_cast<float>(48) / 255.0f);
}

TEST_CASE("horizontal flips", "[io][transforms]") {
  const Tensor x = ramp_u8({2, 3, 5});
  const Tensor y = horizontal_flip(x);
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 5; ++j) CHECK(at(y, c, i, j) == at(x, c, i, 4 - j));
  const Tensor f = randn({4, 7});
  CHECK(same_bytes(horizontal_flip(horizontal_flip(f)), f));
  // p = 0 never flips, p = 1 always; p = 0.5 flips exactly when the draw is below 0.5.
  Generator g(1);
  CHECK(same_bytes(random_horizontal_flip(x, 0.0, &g), x));
  CHECK(same_bytes(random_horizontal_flip(x, 1.0, &g), y));
  int flipped = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Generator a(seed), b(seed);
    const bool did = same_bytes(random_horizontal_flip(x, 0.5, &a), y);
    flipped += did;
    const PhiloxState state = b.reserve(1);
    uint32_t bits[4];
    philox4x32_10(state.seed, state.offset, bits);
    const double u = static_cast<double>(((uint64_t{bits[0]} << 32) | bits[1]) >> 11) * 0x1.0p-53;
    CHECK(did == (u < 0.5));
  }
  CHECK(flipped > 60);
  CHECK(flipped < 140);
  CHECK_THROWS_WITH(random_horizontal_flip(x, 1.5, &g), Catch::Contains("p must be in [0, 1]"));
}

TEST_CASE("rotate: 90 and 180 degrees exactly, small angles as torchvision", "[io][transforms]") {
  for (int64_t n : {4, 5, 28}) {
    const Tensor x = ramp_u8({2, n, n});
    const Tensor quarter = rotate(x, 90), half = rotate(x, 180), minus = rotate(x, -90);
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j) {
          CHECK(at(quarter, c, i, j) == at(x, c, j, n - 1 - i));  // numpy.rot90: counter-clockwise
          CHECK(at(half, c, i, j) == at(x, c, n - 1 - i, n - 1 - j));
          CHECK(at(minus, c, i, j) == at(x, c, n - 1 - j, i));
        }
    CHECK(same_bytes(rotate(x, 0), x));
    CHECK(same_bytes(rotate(x, 360), x));
  }
  // Non-square, odd and even sizes, both signs; compared with the float64 reference.
  for (const Shape& shape : {Shape{28, 28}, Shape{3, 9, 14}, Shape{1, 15, 10}}) {
    const Tensor x = ramp_u8(shape, 53);
    for (double angle : {3.7, -11.0, 15.0, 29.5, -0.4, 45.0, 137.0}) {
      INFO("shape " << to_string(shape) << " angle " << angle);
      std::vector<bool> ties;
      const Tensor expected = rotate_reference(x, angle, &ties), actual = rotate(x, angle);
      const int64_t channels = x.dim() == 3 ? x.size(0) : 1, plane = x.size(-2) * x.size(-1);
      int64_t mismatches = 0, tie_count = 0;
      for (int64_t k = 0; k < plane; ++k) {
        tie_count += ties[static_cast<size_t>(k)];
        for (int64_t c = 0; c < channels; ++c)
          mismatches += !ties[static_cast<size_t>(k)] &&
                        actual.data_ptr<uint8_t>()[c * plane + k] != expected.data_ptr<uint8_t>()[c * plane + k];
      }
      CHECK(mismatches == 0);
      CHECK(tie_count <= 2 * std::max(x.size(-1), x.size(-2)));  // ties only along diagonals at 45 degrees
    }
  }
  // Corners leave the image at 45 degrees: zeros come in.
  const Tensor ones_image = full({9, 9}, 1, {.dtype = DType::u8});
  CHECK(at(rotate(ones_image, 45), 0, 0, 0) == 0);
  CHECK(at(rotate(ones_image, 45), 0, 4, 4) == 1);
  // Float images rotate the same way; random_rotation draws its angle in [-d, d).
  const Tensor f = randn({6, 7});
  Generator g(5), h(5);
  const Tensor r = random_rotation(f, 20.0, &g);
  const double u = [&] {
    const PhiloxState state = h.reserve(1);
    uint32_t bits[4];
    philox4x32_10(state.seed, state.offset, bits);
    return static_cast<double>(((uint64_t{bits[0]} << 32) | bits[1]) >> 11) * 0x1.0p-53;
  }();
  CHECK(same_bytes(r, rotate(f, -20.0 + 40.0 * u)));
  CHECK_THROWS_WITH(random_rotation(f, -1.0, &g), Catch::Contains("degrees must be >= 0"));
}

TEST_CASE("crop and random_crop with zero padding", "[io][transforms]") {
  const Tensor x = ramp_u8({2, 6, 5});
  const Tensor y = crop(x, 1, 3, 4, 4, /*padding=*/2);
  REQUIRE(y.shape() == Shape{2, 4, 4});
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < 4; ++j) {
        const int64_t si = 1 + i - 2, sj = 3 + j - 2;
        const uint8_t expected = (si >= 0 && si < 6 && sj >= 0 && sj < 5) ? at(x, c, si, sj) : 0;
        CHECK(at(y, c, i, j) == expected);
      }
  CHECK(same_bytes(crop(x, 0, 0, 6, 5), x));
  CHECK_THROWS_WITH(crop(x, 0, 0, 7, 5), Catch::Contains("outside the padded image"));
  // random_crop picks every window of the padded image, each the one its draws name.
  std::set<std::pair<int64_t, int64_t>> corners;
  const Tensor image = ramp_u8({28, 28});
  for (uint64_t seed = 0; seed < 400; ++seed) {
    Generator g(seed);
    const Tensor window = random_crop(image, 28, 28, 2, &g);
    REQUIRE(window.shape() == Shape{28, 28});
    bool found = false;
    for (int64_t top = 0; top <= 4 && !found; ++top)
      for (int64_t left = 0; left <= 4 && !found; ++left)
        if (same_bytes(window, crop(image, top, left, 28, 28, 2))) {
          corners.insert({top, left});
          found = true;
        }
    CHECK(found);
  }
  CHECK(corners.size() == 25);
  Generator a(3), b(3);
  CHECK(same_bytes(random_crop(image, 20, 24, 0, &a), random_crop(image, 20, 24, 0, &b)));
  CHECK_THROWS_WITH(random_crop(image, 40, 28, 2, &a), Catch::Contains("does not fit"));
}

TEST_CASE("equalize: PIL's ImageOps.equalize", "[io][transforms]") {
  // A skewed histogram (few dark levels, many bright), one and three channels.
  Tensor img = empty({3, 17, 19}, {.dtype = DType::u8});
  Generator g(11);
  const Tensor draws = rand({3 * 17 * 19}, {.dtype = DType::f64}, &g);
  for (int64_t k = 0; k < img.numel(); ++k) {
    const double u = draws.data_ptr<double>()[k];
    img.data_ptr<uint8_t>()[k] = static_cast<uint8_t>(k < 17 * 19 ? 200 + 55 * u * u : 255 * u * u * u);
  }
  const Tensor eq = equalize(img);
  CHECK(same_bytes(eq, equalize_reference(img)));
  CHECK(same_bytes(equalize(img.select(0, 2)), equalize_reference(img.select(0, 2))));
  CHECK_FALSE(same_bytes(eq, img));
  // Constant images and two-level images stay unchanged (step == 0).
  const Tensor flat = full({5, 5}, 77, {.dtype = DType::u8});
  CHECK(same_bytes(equalize(flat), flat));
  Tensor two = full({4, 4}, 10, {.dtype = DType::u8});
  two.data_ptr<uint8_t>()[0] = 250;
  CHECK(same_bytes(equalize(two), equalize_reference(two)));
  // A full 0..255 ramp repeated: already flat; the real Fashion-MNIST-like case: many zeros.
  const Tensor ramp = ramp_u8({16, 16}, 1);
  CHECK(same_bytes(equalize(ramp), equalize_reference(ramp)));
  Tensor sparse = zeros({28, 28}, {.dtype = DType::u8});
  for (int64_t k = 300; k < 500; ++k) sparse.data_ptr<uint8_t>()[k] = static_cast<uint8_t>(k % 97 + 100);
  CHECK(same_bytes(equalize(sparse), equalize_reference(sparse)));
  CHECK_THROWS_WITH(equalize(zeros({3, 3})), Catch::Contains("expected a u8 image"));
}

TEST_CASE("compose: transforms as dataset hooks", "[io][transforms]") {
  const Transform pipeline = compose({random_crop_transform(28, 28, 2), random_horizontal_flip_transform(0.5),
                                      to_float_image_transform(), normalize_transform({0.5}, {0.25})});
  const Tensor image = ramp_u8({28, 28});
  Generator a(9), b(9), c(9);
  const Tensor y = pipeline(image, a);
  CHECK(y.dtype() == DType::f32);
  CHECK(y.shape() == Shape{28, 28});
  CHECK(same_bytes(y, pipeline(image, b)));
  // The same as calling the functions in order with one generator.
  Tensor step = random_crop(image, 28, 28, 2, &c);
  step = random_horizontal_flip(step, 0.5, &c);
  step = normalize(to_float_image(step), {0.5}, {0.25});
  CHECK(same_bytes(y, step));
}

// torchvision 0.14's rotate (tensor path) run in PyTorch: _get_inverse_affine_matrix,
// _gen_affine_grid and _apply_grid_transform (float32 grid_sample, nearest, zeros, rounded back
// to u8), transcribed because torchvision itself is not installed. Skips when torch is absent.
TEST_CASE("rotate: the same pixels as torchvision's rotate run in PyTorch", "[io][transforms][torch]") {
  struct Case {
    Shape shape;
    double angle;
  };
  const std::vector<Case> cases = {{{1, 28, 28}, 7.3}, {{1, 28, 28}, -23.0}, {{3, 9, 14}, 12.5},
                                   {{1, 15, 10}, -41.0}, {{2, 28, 28}, 90.0}, {{1, 28, 28}, 133.0}};
  const std::string script = R"PY(
import math, sys, torch
def rotate(img, angle):
    rot = math.radians(-angle)
    a, b, c, d = math.cos(rot), -math.sin(rot), math.sin(rot), math.cos(rot)
    m = [d, -b, 0.0, -c, a, 0.0]
    w, h = img.shape[-1], img.shape[-2]
    theta = torch.tensor(m, dtype=torch.float32).reshape(1, 2, 3)
    base = torch.empty(1, h, w, 3, dtype=theta.dtype)
    base[..., 0].copy_(torch.linspace(-w * 0.5 + 0.5, w * 0.5 + 0.5 - 1, steps=w))
    base[..., 1].copy_(torch.linspace(-h * 0.5 + 0.5, h * 0.5 + 0.5 - 1, steps=h).unsqueeze_(-1))
    base[..., 2].fill_(1)
    grid = base.view(1, h * w, 3).bmm(theta.transpose(1, 2) / torch.tensor([0.5 * w, 0.5 * h])).view(1, h, w, 2)
    out = torch.nn.functional.grid_sample(img.unsqueeze(0).to(torch.float32), grid, mode="nearest",
                                          padding_mode="zeros", align_corners=False)
    return out.squeeze(0).round().to(torch.uint8)
for line in sys.stdin:
    c, h, w, angle = line.split()
    c, h, w, angle = int(c), int(h), int(w), float(angle)
    img = torch.tensor([(i * 53 + 11) % 256 for i in range(c * h * w)], dtype=torch.uint8).reshape(c, h, w)
    print(bytes(rotate(img, angle).flatten().tolist()).hex())
)PY";
  const std::string base = std::filesystem::temp_directory_path().string() + "/keel_rotate_" + std::to_string(::getpid());
  const std::string script_path = base + ".py", input_path = base + ".in";
  {
    std::ofstream(script_path) << script;
    std::ofstream input(input_path);
    for (const Case& c : cases)
      input << c.shape[0] << " " << c.shape[1] << " " << c.shape[2] << " " << c.angle << "\n";
  }
  // Debian's python3 (with python3-torch), whatever python3 comes first on PATH.
  const std::string python = std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
  FILE* pipe = popen((python + " " + script_path + " < " + input_path + " 2>/dev/null").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::vector<std::string> lines;
  std::string current;
  for (int ch; (ch = fgetc(pipe)) != EOF;) {
    if (ch == '\n') {
      lines.push_back(current);
      current.clear();
    } else {
      current.push_back(static_cast<char>(ch));
    }
  }
  const int status = pclose(pipe);
  std::remove(script_path.c_str());
  std::remove(input_path.c_str());
  if (status != 0 || lines.size() != cases.size()) {
    WARN("SKIPPED the PyTorch rotation comparison: " << python << " with torch did not run");
    return;
  }
  for (size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    INFO("shape " << to_string(c.shape) << " angle " << c.angle);
    const Tensor x = ramp_u8(c.shape, 53);
    const Tensor actual = rotate(x, c.angle);
    std::vector<bool> ties;
    rotate_reference(x, c.angle, &ties, /*tie_tolerance=*/1e-4);  // float32 grids: wider ties
    REQUIRE(lines[k].size() == static_cast<size_t>(2 * x.numel()));
    const int64_t plane = c.shape[1] * c.shape[2];
    int64_t mismatches = 0, tie_pixels = 0;
    for (int64_t e = 0; e < x.numel(); ++e) {
      const int expected = std::stoi(lines[k].substr(static_cast<size_t>(2 * e), 2), nullptr, 16);
      if (!ties[static_cast<size_t>(e % plane)]) mismatches += actual.data_ptr<uint8_t>()[e] != expected;
      tie_pixels += ties[static_cast<size_t>(e % plane)];
    }
    CHECK(mismatches == 0);
    CHECK(tie_pixels < x.numel() / 10);
  }
}
