// numpy interop, Keel's side (see compare_npy.py, run by run_npy_parity.cmake):
//  1. writes OUT_DIR/keel/*.npy and keel.npz from tensors defined by formulas that
//     compare_npy.py recomputes in numpy (and checks np.load's result against);
//  2. reads every file numpy wrote into OUT_DIR/numpy/ with load_npy / load_npz and writes what
//     it read (dtype, shape, values) to OUT_DIR/keel_read.json for compare_npy.py to check.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <string>

#include "dump_json.h"
#include "keel/io/npy.h"

using namespace keel;
using parity::json_number;
using parity::json_string;
namespace fs = std::filesystem;

namespace {

// Element i of a tensor made by formula; every value is exact in every dtype it is used with.
Tensor make(Shape shape, DType dtype, const std::function<double(int64_t)>& value) {
  Tensor t = empty(shape, {.dtype = DType::f64});
  for (int64_t i = 0; i < t.numel(); ++i) t.data_ptr<double>()[i] = value(i);
  return t.to(dtype);
}
double floats(int64_t i) { return static_cast<double>((i * 7) % 23) * 0.25 - 2.5; }

std::string describe(const Tensor& tensor) {
  const Tensor t = tensor.contiguous();
  std::string values = "[";
  const bool floating = is_floating(t.dtype());
  const Tensor as = floating ? t.to(DType::f64) : t.to(DType::i64);
  for (int64_t i = 0; i < t.numel(); ++i) {
    values += i ? ", " : "";
    if (!floating) {
      values += std::to_string(as.data_ptr<int64_t>()[i]);
      continue;
    }
    const double v = as.data_ptr<double>()[i];
    values += v == 0 && std::signbit(v) ? "-0.0" : json_number(v);  // json reads "-0" as the integer 0
  }
  std::string shape = "[";
  for (size_t d = 0; d < t.shape().size(); ++d) shape += (d ? ", " : "") + std::to_string(t.shape()[d]);
  return "{\"dtype\": " + json_string(std::string(dtype_name(t.dtype()))) + ", \"shape\": " + shape + "], \"values\": " + values + "]}";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const fs::path out = argv[1];
  fs::create_directories(out / "keel");

  // 1. Keel writes. The names match compare_npy.py's keel_expected().
  Tensor big = empty({3}, {.dtype = DType::i64});
  big.data_ptr<int64_t>()[0] = std::numeric_limits<int64_t>::max();
  big.data_ptr<int64_t>()[1] = std::numeric_limits<int64_t>::min();
  big.data_ptr<int64_t>()[2] = -1;
  const double inf = std::numeric_limits<double>::infinity();
  const io::NamedTensors tensors = {
      {"f32", make({3, 4, 5}, DType::f32, floats)},
      {"f64", make({7}, DType::f64, floats)},
      {"f16", make({2, 3}, DType::f16, floats)},
      {"i64", make({4, 2}, DType::i64, [](int64_t i) { return static_cast<double>(i * 1000003 - 5000000); })},
      {"i64_big", big},
      {"i32", make({5}, DType::i32, [](int64_t i) { return static_cast<double>(i * 7919 - 100000); })},
      {"i8", make({16, 16}, DType::i8, [](int64_t i) { return static_cast<double>((i * 37) % 256 - 128); })},
      {"u8", make({3, 1, 2}, DType::u8, [](int64_t i) { return static_cast<double>((i * 37) % 256); })},
      {"bool", make({9}, DType::bool_, [](int64_t i) { return i % 3 == 0 ? 1.0 : 0.0; })},
      {"scalar", make({}, DType::f32, [](int64_t) { return 3.5; })},
      {"empty", make({0, 3}, DType::f32, floats)},
      {"empty_1d", make({0}, DType::i64, floats)},
      // A transposed view: written as its row-major copy, shape (5, 4).
      {"transposed", make({4, 5}, DType::f32, floats).t()},
      {"special", tensor({std::nan(""), inf, -inf, -0.0, 1e-310, 1.7976931348623157e308}, DType::f64)},
  };
  for (const auto& [name, tensor] : tensors) io::save_npy((out / "keel" / (name + ".npy")).string(), tensor);
  io::NamedTensors archive = tensors;
  archive.emplace_back("layer1/weight", make({2, 2}, DType::f32, floats));
  archive.emplace_back("gr\xc3\xb6\xc3\x9f" "e", make({2}, DType::f64, floats));
  io::save_npz((out / "keel" / "keel.npz").string(), archive);

  // 2. Keel reads what numpy wrote.
  std::vector<fs::path> files;
  for (const auto& item : fs::directory_iterator(out / "numpy")) files.push_back(item.path());
  std::sort(files.begin(), files.end());
  std::string json = "{";
  for (const auto& file : files) {
    std::string entry;
    if (file.extension() == ".npy") {
      entry = "{\"\": " + describe(io::load_npy(file.string())) + "}";
    } else if (file.extension() == ".npz") {
      entry = "{";
      for (const auto& [name, tensor] : io::load_npz(file.string()))
        entry += (entry.size() > 1 ? ",\n  " : "") + json_string(name) + ": " + describe(tensor);
      entry += "}";
    } else {
      continue;
    }
    json += (json.size() > 1 ? ",\n" : "") + json_string(file.filename().string()) + ": " + entry;
  }
  std::ofstream(out / "keel_read.json") << json << "}\n";
  std::printf("npy_parity_dump: wrote %zu .npy files and keel.npz, read %zu numpy files\n", tensors.size(),
              files.size());
  return 0;
}
