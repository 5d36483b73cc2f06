// Fashion-MNIST loader: four IDX files, checked against the published sizes.
#include "keel/io/fashion_mnist.h"

#include <filesystem>

#include "keel/core/error.h"
#include "keel/io/idx.h"

namespace keel::data {
namespace {

constexpr const char* kInstallHint =
    "install Debian's dataset-fashion-mnist package (sudo apt-get install dataset-fashion-mnist), "
    "or pass the folder that holds the files";

// The file `stem` or `stem`.gz in dir.
std::string find_file(const std::filesystem::path& dir, const std::string& stem) {
  for (const std::string& name : {stem + ".gz", stem}) {
    std::error_code error;
    if (std::filesystem::is_regular_file(dir / name, error)) return (dir / name).string();
  }
  fail("[load_fashion_mnist] ", (dir / (stem + ".gz")).string(), " (or ", stem,
       " without .gz) is missing: ", kInstallHint);
}

void load_split(const std::filesystem::path& dir, const std::string& prefix, int64_t expected,
                Tensor& images, Tensor& labels) {
  const std::string image_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string label_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  const Idx image_file = load_idx(image_path), label_file = load_idx(label_path);
  KEEL_CHECK(image_file.type_code == 0x08 && image_file.shape == Shape({expected, 28, 28}),
             "[load_fashion_mnist] ", image_path, ": expected u8 images of shape ",
             Shape({expected, 28, 28}), ", got shape ", image_file.shape, " (type code ",
             int(image_file.type_code), "); the file is not Fashion-MNIST's");
  KEEL_CHECK(label_file.type_code == 0x08 && label_file.shape == Shape({expected}),
             "[load_fashion_mnist] ", label_path, ": expected ", expected,
             " u8 labels (one per image), got shape ", label_file.shape, " (type code ",
             int(label_file.type_code), "); the file is not Fashion-MNIST's");
  const uint8_t* raw = label_file.tensor.data_ptr<uint8_t>();
  Tensor wide = empty({expected}, {.dtype = DType::i64});
  int64_t* out = wide.data_ptr<int64_t>();
  for (int64_t i = 0; i < expected; ++i) {
    KEEL_CHECK(raw[i] <= 9, "[load_fashion_mnist] ", label_path, ": label ", int(raw[i]),
               " at index ", i, " is outside 0..9; the file is damaged");
    out[i] = raw[i];
  }
  images = image_file.tensor;
  labels = wide;
}

}  // namespace

FashionMnist load_fashion_mnist(const std::string& dir) {
  std::error_code error;
  KEEL_CHECK(std::filesystem::is_directory(dir, error), "[load_fashion_mnist] the folder ", dir,
             " does not exist: ", kInstallHint);
  FashionMnist data;
  load_split(dir, "train", 60000, data.train_images, data.train_labels);
  load_split(dir, "t10k", 10000, data.test_images, data.test_labels);
  return data;
}

const char* fashion_mnist_class_name(int64_t label) {
  static const char* const kNames[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                         "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  KEEL_CHECK(label >= 0 && label < 10, "[fashion_mnist_class_name] label ", label,
             " is outside 0..9");
  return kNames[label];
}

}  // namespace keel::data
