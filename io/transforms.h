#pragma once
// Image transforms for data augmentation, with torchvision's semantics. Images are [C, H, W] or
// [H, W] tensors on the CPU (u8 or floating; normalize needs floating). Random transforms draw
// from the generator they are given (a DataLoader passes one keyed by seed, epoch and example),
// or from keel's default generator when it is null.
#include <cstdint>
#include <vector>

#include "keel/core/rng.h"
#include "keel/core/tensor.h"
#include "keel/io/dataset.h"

namespace keel::data {

// u8 [.., H, W] -> f32 in [0, 1] (x / 255), as torchvision's ToTensor / convert_image_dtype.
Tensor to_float_image(const Tensor& image);

// (x[c] - mean[c]) / std[c] per channel (dim -3; an [H, W] image is one channel); mean and std
// have one entry per channel or one for all. Floating images only.
Tensor normalize(const Tensor& image, const std::vector<double>& mean, const std::vector<double>& std);

// The image mirrored left to right (the last dim reversed).
Tensor horizontal_flip(const Tensor& image);
// Mirrored with probability p: one draw u ~ U[0, 1), flipped when u < p.
Tensor random_horizontal_flip(const Tensor& image, double p = 0.5, Generator* generator = nullptr);

// Rotated counter-clockwise by `degrees` about the image centre, same size, nearest neighbour,
// zero outside (torchvision.transforms.functional.rotate with NEAREST, expand=False, fill 0):
// output pixel (i, j) takes input (round(sy), round(sx)), rounding halves to even, where
//   x = j + 0.5 - W/2, y = i + 0.5 - H/2
//   sx = cos(a) x - sin(a) y + W/2 - 0.5,  sy = sin(a) x + cos(a) y + H/2 - 0.5.
Tensor rotate(const Tensor& image, double degrees);
// Rotated by an angle ~ U[-degrees, degrees) (torchvision's RandomRotation(degrees)).
Tensor random_rotation(const Tensor& image, double degrees, Generator* generator = nullptr);

// The [height, width] window at (top, left) of the image padded by `padding` zeros on each side.
Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t height, int64_t width, int64_t padding = 0);
// RandomCrop(size, padding): pads by `padding` zeros, then crops at top ~ U{0..H+2p-height},
// left ~ U{0..W+2p-width} (drawn in that order).
Tensor random_crop(const Tensor& image, int64_t height, int64_t width, int64_t padding = 0,
                   Generator* generator = nullptr);

// Histogram equalization of a u8 image, each channel on its own, exactly as PIL's
// ImageOps.equalize and torchvision.transforms.functional.equalize:
//   hist = counts of the 256 levels; step = (sum of hist - the count of the highest level present) / 255,
//   floored; if step == 0 the channel is unchanged; otherwise
//   lut[v] = min(255, (step / 2 + sum_{k < v} hist[k]) / step) with floored divisions.
Tensor equalize(const Tensor& image);

// Transforms as dataset hooks (TransformDataset): compose applies them in order.
Transform compose(std::vector<Transform> transforms);
Transform normalize_transform(std::vector<double> mean, std::vector<double> std);
Transform random_horizontal_flip_transform(double p = 0.5);
Transform random_rotation_transform(double degrees);
Transform random_crop_transform(int64_t height, int64_t width, int64_t padding = 0);
Transform equalize_transform();
Transform to_float_image_transform();

}  // namespace keel::data
