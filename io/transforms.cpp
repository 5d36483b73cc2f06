// Image transforms (see transforms.h). The geometric ones move whole elements, so they work on
// any dtype by copying itemsize bytes; only normalize does arithmetic.
#include "keel/io/transforms.h"

#include <cmath>
#include <cstring>

#include "keel/core/error.h"
#include "keel/io/random_bits.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"

namespace keel::data {
namespace {

struct ImageView {
  Tensor data;  // contiguous
  int64_t channels, height, width;
};

ImageView image_view(const Tensor& image, const char* op) {
  KEEL_CHECK(image.defined(), "[", op, "] the image is undefined");
  KEEL_CHECK(image.dim() == 2 || image.dim() == 3, "[", op, "] expected an image [C, H, W] or [H, W], got ",
             image.shape());
  KEEL_CHECK(image.is_cpu(), "[", op, "] expected a CPU image (transforms run on loader threads); call .cpu()");
  ImageView view{image.contiguous(), image.dim() == 3 ? image.size(0) : 1, image.size(-2), image.size(-1)};
  return view;
}

Generator& generator_or_default(Generator* generator) {
  return generator != nullptr ? *generator : default_generator();
}

}  // namespace

Tensor to_float_image(const Tensor& image) {
  KEEL_CHECK(image.dtype() == DType::u8, "[to_float_image] expected a u8 image, got ", dtype_name(image.dtype()));
  return image.to(DType::f32) / 255.0;
}

Tensor normalize(const Tensor& image, const std::vector<double>& mean, const std::vector<double>& std) {
  const ImageView view = image_view(image, "normalize");
  KEEL_CHECK(is_floating(image.dtype()), "[normalize] expected a floating image, got ", dtype_name(image.dtype()),
             " (convert u8 images with to_float_image first)");
  const auto channels = static_cast<size_t>(view.channels);
  KEEL_CHECK((mean.size() == channels || mean.size() == 1) && (std.size() == channels || std.size() == 1),
             "[normalize] mean and std need one value per channel (", channels, ") or one for all; got ",
             mean.size(), " and ", std.size());
  for (double s : std) KEEL_CHECK(s != 0.0, "[normalize] std must be nonzero (it divides)");
  Tensor mean_t = empty({view.channels, 1, 1}, {.dtype = DType::f64});
  Tensor std_t = empty({view.channels, 1, 1}, {.dtype = DType::f64});
  for (size_t c = 0; c < channels; ++c) {
    mean_t.data_ptr<double>()[c] = mean.size() == 1 ? mean[0] : mean[c];
    std_t.data_ptr<double>()[c] = std.size() == 1 ? std[0] : std[c];
  }
  const Tensor cube = view.data.reshape({view.channels, view.height, view.width});
  return ((cube - mean_t.to(image.dtype())) / std_t.to(image.dtype())).reshape(image.shape());
}

Tensor horizontal_flip(const Tensor& image) {
  const ImageView view = image_view(image, "horizontal_flip");
  Tensor out = empty(image.shape(), {.dtype = image.dtype()});
  const size_t item = image.itemsize();
  const auto* in = static_cast<const uint8_t*>(view.data.raw_data());
  auto* to = static_cast<uint8_t*>(out.raw_data());
  const int64_t rows = view.channels * view.height, width = view.width;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < width; ++j)
      std::memcpy(to + (r * width + j) * item, in + (r * width + (width - 1 - j)) * item, item);
  return out;
}

Tensor random_horizontal_flip(const Tensor& image, double p, Generator* generator) {
  KEEL_CHECK(p >= 0.0 && p <= 1.0, "[random_horizontal_flip] p must be in [0, 1], got ", p);
  const double u = detail::next_double(generator_or_default(generator));
  return u < p ? horizontal_flip(image) : image;
}

Tensor rotate(const Tensor& image, double degrees) {
  const ImageView view = image_view(image, "rotate");
  KEEL_CHECK(std::isfinite(degrees), "[rotate] the angle must be finite, got ", degrees);
  const double angle = degrees * (M_PI / 180.0), cos_a = std::cos(angle), sin_a = std::sin(angle);
  const int64_t height = view.height, width = view.width;
  Tensor out = zeros(image.shape(), {.dtype = image.dtype()});
  const size_t item = image.itemsize();
  const auto* in = static_cast<const uint8_t*>(view.data.raw_data());
  auto* to = static_cast<uint8_t*>(out.raw_data());
  const int64_t plane = height * width;
  for (int64_t i = 0; i < height; ++i) {
    const double y = static_cast<double>(i) + 0.5 - 0.5 * static_cast<double>(height);
    for (int64_t j = 0; j < width; ++j) {
      const double x = static_cast<double>(j) + 0.5 - 0.5 * static_cast<double>(width);
      // nearbyint: round half to even, as grid_sample's nearest mode.
      const double sx = std::nearbyint(cos_a * x - sin_a * y + 0.5 * static_cast<double>(width) - 0.5);
      const double sy = std::nearbyint(sin_a * x + cos_a * y + 0.5 * static_cast<double>(height) - 0.5);
      if (sx < 0 || sy < 0 || sx > static_cast<double>(width - 1) || sy > static_cast<double>(height - 1)) continue;
      const int64_t source = static_cast<int64_t>(sy) * width + static_cast<int64_t>(sx);
      for (int64_t c = 0; c < view.channels; ++c)
        std::memcpy(to + (c * plane + i * width + j) * item, in + (c * plane + source) * item, item);
    }
  }
  return out;
}

Tensor random_rotation(const Tensor& image, double degrees, Generator* generator) {
  KEEL_CHECK(degrees >= 0 && std::isfinite(degrees), "[random_rotation] degrees must be >= 0, got ", degrees);
  const double u = detail::next_double(generator_or_default(generator));
  return rotate(image, -degrees + 2.0 * degrees * u);
}

Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t height, int64_t width, int64_t padding) {
  const ImageView view = image_view(image, "crop");
  KEEL_CHECK(padding >= 0 && height >= 1 && width >= 1, "[crop] size must be >= 1 and padding >= 0, got ",
             Shape{height, width}, " and ", padding);
  KEEL_CHECK(top >= 0 && left >= 0 && top + height <= view.height + 2 * padding &&
                 left + width <= view.width + 2 * padding,
             "[crop] the window at (", top, ", ", left, ") of size ", Shape{height, width},
             " is outside the padded image ", Shape{view.height + 2 * padding, view.width + 2 * padding});
  Shape shape = image.shape();
  shape[shape.size() - 2] = height;
  shape[shape.size() - 1] = width;
  Tensor out = zeros(shape, {.dtype = image.dtype()});
  const size_t item = image.itemsize();
  const auto* in = static_cast<const uint8_t*>(view.data.raw_data());
  auto* to = static_cast<uint8_t*>(out.raw_data());
  for (int64_t c = 0; c < view.channels; ++c)
    for (int64_t i = 0; i < height; ++i) {
      const int64_t source_row = top + i - padding;
      if (source_row < 0 || source_row >= view.height) continue;
      for (int64_t j = 0; j < width; ++j) {
        const int64_t source_col = left + j - padding;
        if (source_col < 0 || source_col >= view.width) continue;
        std::memcpy(to + ((c * height + i) * width + j) * item,
                    in + ((c * view.height + source_row) * view.width + source_col) * item, item);
      }
    }
  return out;
}

Tensor random_crop(const Tensor& image, int64_t height, int64_t width, int64_t padding, Generator* generator) {
  const ImageView view = image_view(image, "random_crop");
  const int64_t room_h = view.height + 2 * padding - height, room_w = view.width + 2 * padding - width;
  KEEL_CHECK(padding >= 0 && height >= 1 && width >= 1 && room_h >= 0 && room_w >= 0,
             "[random_crop] a crop of ", Shape{height, width}, " does not fit the image ",
             Shape{view.height, view.width}, " padded by ", padding);
  Generator& source = generator_or_default(generator);
  auto draw = [](void* state) { return detail::next_u64(*static_cast<Generator*>(state)); };
  const auto top = static_cast<int64_t>(detail::next_below(static_cast<uint64_t>(room_h + 1), draw, &source));
  const auto left = static_cast<int64_t>(detail::next_below(static_cast<uint64_t>(room_w + 1), draw, &source));
  return crop(image, top, left, height, width, padding);
}

Tensor equalize(const Tensor& image) {
  const ImageView view = image_view(image, "equalize");
  KEEL_CHECK(image.dtype() == DType::u8, "[equalize] expected a u8 image (as PIL and torchvision), got ",
             dtype_name(image.dtype()));
  Tensor out = empty(image.shape(), {.dtype = DType::u8});
  const uint8_t* in = view.data.data_ptr<uint8_t>();
  uint8_t* to = out.data_ptr<uint8_t>();
  const int64_t plane = view.height * view.width;
  for (int64_t c = 0; c < view.channels; ++c) {
    const uint8_t* channel = in + c * plane;
    int64_t hist[256] = {};
    for (int64_t k = 0; k < plane; ++k) ++hist[channel[k]];
    int64_t total = 0, last = 0;
    for (int v = 0; v < 256; ++v)
      if (hist[v] != 0) {
        total += hist[v];
        last = hist[v];
      }
    const int64_t step = (total - last) / 255;
    uint8_t lut[256];
    if (step == 0) {
      for (int v = 0; v < 256; ++v) lut[v] = static_cast<uint8_t>(v);
    } else {
      int64_t running = step / 2;
      for (int v = 0; v < 256; ++v) {
        lut[v] = static_cast<uint8_t>(std::min<int64_t>(255, running / step));
        running += hist[v];
      }
    }
    for (int64_t k = 0; k < plane; ++k) to[c * plane + k] = lut[channel[k]];
  }
  return out;
}

Transform compose(std::vector<Transform> transforms) {
  return [transforms = std::move(transforms)](const Tensor& x, Generator& generator) {
    Tensor y = x;
    for (const Transform& transform : transforms) y = transform(y, generator);
    return y;
  };
}
Transform normalize_transform(std::vector<double> mean, std::vector<double> std) {
  return [mean = std::move(mean), std = std::move(std)](const Tensor& x, Generator&) { return normalize(x, mean, std); };
}
Transform random_horizontal_flip_transform(double p) {
  KEEL_CHECK(p >= 0.0 && p <= 1.0, "[random_horizontal_flip] p must be in [0, 1], got ", p);
  return [p](const Tensor& x, Generator& generator) { return random_horizontal_flip(x, p, &generator); };
}
Transform random_rotation_transform(double degrees) {
  KEEL_CHECK(degrees >= 0 && std::isfinite(degrees), "[random_rotation] degrees must be >= 0, got ", degrees);
  return [degrees](const Tensor& x, Generator& generator) { return random_rotation(x, degrees, &generator); };
}
Transform random_crop_transform(int64_t height, int64_t width, int64_t padding) {
  KEEL_CHECK(padding >= 0 && height >= 1 && width >= 1, "[random_crop] size must be >= 1 and padding >= 0");
  return [=](const Tensor& x, Generator& generator) { return random_crop(x, height, width, padding, &generator); };
}
Transform equalize_transform() {
  return [](const Tensor& x, Generator&) { return equalize(x); };
}
Transform to_float_image_transform() {
  return [](const Tensor& x, Generator&) { return to_float_image(x); };
}

}  // namespace keel::data
