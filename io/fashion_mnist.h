#pragma once
// Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 60000 training and 10000 test images of
// clothing, 28x28 grey levels, 10 classes. Debian's dataset-fashion-mnist package installs the
// four IDX files in /usr/share/datasets/fashion-mnist.
#include <string>

#include "keel/core/tensor.h"

namespace keel::data {

struct FashionMnist {
  Tensor train_images, train_labels;  // u8 [60000, 28, 28], i64 [60000] in 0..9
  Tensor test_images, test_labels;    // u8 [10000, 28, 28], i64 [10000]
};

// Reads train-images-idx3-ubyte(.gz), train-labels-idx1-ubyte(.gz), t10k-images-idx3-ubyte(.gz)
// and t10k-labels-idx1-ubyte(.gz) from `dir` and checks the counts, the image size and the
// label range. Throws keel::Error saying which package provides the files when they are missing.
FashionMnist load_fashion_mnist(const std::string& dir = "/usr/share/datasets/fashion-mnist");

// The ten class names, in label order.
const char* fashion_mnist_class_name(int64_t label);

}  // namespace keel::data
