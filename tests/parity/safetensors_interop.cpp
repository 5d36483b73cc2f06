// Keel's side of the safetensors round trip with Python (run_safetensors_interop.cmake):
//
//   safetensors_interop write DIR   Keel writes keel_all.safetensors (every dtype, odd shapes,
//                                   0-d and empty tensors, metadata), keel_numpy.safetensors (the
//                                   same without BF16, for safetensors.numpy), and a SmallCNN's
//                                   and an MLP's state_dict with an input and Keel's output
//   (safetensors_interop.py DIR)    Python checks those and writes torch_all / numpy_all files
//                                   and torch models' state_dicts with their inputs and outputs
//   safetensors_interop read DIR    Keel loads Python's files with the copying and the mmap
//                                   reader and checks names, dtypes, shapes and values, and
//                                   loads the torch weights into its models and compares outputs
//
// Tensor values come from a formula both sides compute (value_of below and in the script), so
// neither side trusts numbers the other printed. Exits 1 on any difference.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <keel/keel.h>

using namespace keel;

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    ++failures;
    std::printf("[safetensors_interop] FAIL: %s\n", what.c_str());
  }
}

struct DTypeCase {
  DType dtype;
  const char* code;
};
constexpr DTypeCase kCases[] = {{DType::f64, "F64"}, {DType::f32, "F32"}, {DType::f16, "F16"},
                                {DType::bf16, "BF16"}, {DType::i64, "I64"}, {DType::i32, "I32"},
                                {DType::i8, "I8"},    {DType::u8, "U8"},   {DType::bool_, "BOOL"}};

// Element i of the tensor with seed k (same formula in safetensors_interop.py): exactly
// representable in every dtype it is used for (m / 8 with |m| <= 50 fits bf16's 8 bits).
double value_of(DType dtype, int64_t i, int64_t k) {
  const int64_t m = (i * 37 + k) % 101 - 50;
  switch (dtype) {
    case DType::i64: return static_cast<double>(m * 1000000007);  // beyond 32 bits
    case DType::i32: return static_cast<double>(m * 1000003);
    case DType::i8: return static_cast<double>((i * 37 + k) % 256 - 128);
    case DType::u8: return static_cast<double>((i * 37 + k) % 256);
    case DType::bool_: return (i * 37 + k) % 3 == 0 ? 1 : 0;
    default: return static_cast<double>(m) / 8.0;
  }
}

Tensor formula_tensor(DType dtype, const Shape& shape, int64_t k) {
  Tensor out = empty(shape, {.dtype = DType::f64});
  double* data = static_cast<double*>(out.raw_data());
  for (int64_t i = 0; i < out.numel(); ++i) data[i] = value_of(dtype, i, k);
  return out.to(dtype);
}

const std::vector<std::pair<std::string, Shape>> kShapes = {
    {"odd", {3, 5, 7}}, {"scalar", {}}, {"empty", {0, 3}}, {"one", {1}}, {"wide", {2, 1, 33}}};

// name -> tensor for every dtype and shape; k numbers the tensors in this order.
io::NamedTensors formula_tensors(bool with_bf16) {
  io::NamedTensors out;
  int64_t k = 0;
  for (const auto& c : kCases)
    for (const auto& [suffix, shape] : kShapes) {
      const int64_t seed = k++;
      if (c.dtype == DType::bf16 && !with_bf16) continue;
      out.emplace_back(std::string(c.code) + "_" + suffix, formula_tensor(c.dtype, shape, seed));
    }
  return out;
}

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return a.nbytes() == 0 || std::memcmp(ca.raw_data(), cb.raw_data(), a.nbytes()) == 0;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  return max(abs(a.to(DType::f64) - b.to(DType::f64))).item<double>();
}

nn::SmallCNNOptions cnn_options() {
  return {.in_channels = 2, .channels = {4, 6}, .convs_per_stage = 2, .dropout = 0.0, .num_classes = 5, .image_size = 8};
}
const std::vector<int64_t> kMlpSizes = {6, 16, 12, 4};

// Trains BatchNorm's running statistics away from (0, 1) with one forward in training mode.
void settle_running_stats(nn::Module& model, const Shape& input_shape) {
  NoGradGuard no_grad;
  model.train(true);
  model(randn(input_shape) * 2 + 0.5);
  model.train(false);
}

void write(const std::string& dir) {
  io::save_safetensors(dir + "/keel_all.safetensors", formula_tensors(true),
                       {{"source", "keel"}, {"note", "quote \" backslash \\ unicode \xc3\xa9"}});
  io::save_safetensors(dir + "/keel_numpy.safetensors", formula_tensors(false), {{"source", "keel"}});
  manual_seed(11);
  NoGradGuard no_grad;
  nn::SmallCNN cnn(cnn_options());
  settle_running_stats(cnn, {4, 2, 8, 8});
  const Tensor cnn_x = randn({3, 2, 8, 8});
  io::save_safetensors(dir + "/keel_cnn.safetensors", cnn.state_dict());
  io::save_safetensors(dir + "/keel_cnn_io.safetensors", {{"x", cnn_x}, {"y", cnn(cnn_x)}});
  nn::MLP mlp(kMlpSizes);
  mlp.train(false);
  const Tensor mlp_x = randn({5, 6});
  io::save_safetensors(dir + "/keel_mlp.safetensors", mlp.state_dict());
  io::save_safetensors(dir + "/keel_mlp_io.safetensors", {{"x", mlp_x}, {"y", mlp(mlp_x)}});
  std::printf("[safetensors_interop] Keel wrote %zu tensors of 9 dtypes, a SmallCNN and an MLP\n",
              formula_tensors(true).size());
}

void check_formula_file(const std::string& path, bool with_bf16, const std::string& source) {
  const io::NamedTensors expected = formula_tensors(with_bf16);
  for (const bool mapped : {false, true}) {
    const std::string label = path + (mapped ? " (mmap)" : " (copying)");
    const io::SafetensorsContents contents = io::read_safetensors(path, {.mmap = mapped});
    expect(contents.tensors.size() == expected.size(), label + ": tensor count");
    expect(contents.metadata.count("source") && contents.metadata.at("source") == source, label + ": metadata");
    for (const auto& [name, want] : expected) {
      const Tensor* got = nullptr;
      for (const auto& [n, t] : contents.tensors)
        if (n == name) got = &t;
      expect(got != nullptr, label + ": missing " + name);
      if (got)
        expect(bitwise_equal(*got, want), label + ": " + name + " differs (dtype " + std::string(dtype_name(got->dtype())) +
                                              ", shape " + to_string(got->shape()) + ")");
    }
  }
}

void check_model(nn::Module& model, const std::string& dir, const std::string& name) {
  for (const bool mapped : {false, true}) {
    const io::NamedTensors weights = io::read_safetensors(dir + "/torch_" + name + ".safetensors", {.mmap = mapped}).tensors;
    model.load_state_dict(weights, /*strict=*/true);
    model.train(false);
    const io::NamedTensors io_pair = io::load_safetensors(dir + "/torch_" + name + "_io.safetensors");
    const Tensor x = io_pair.at(0).first == "x" ? io_pair.at(0).second : io_pair.at(1).second;
    const Tensor y = io_pair.at(0).first == "y" ? io_pair.at(0).second : io_pair.at(1).second;
    NoGradGuard no_grad;
    const double diff = max_abs_diff(model(x), y);
    std::printf("[safetensors_interop] torch %s weights in Keel (%s): max |keel - torch| = %.3g\n", name.c_str(),
                mapped ? "mmap" : "copying", diff);
    expect(diff <= 1e-5, "torch " + name + " weights give different outputs in Keel");
  }
}

void read(const std::string& dir) {
  check_formula_file(dir + "/torch_all.safetensors", true, "torch");
  check_formula_file(dir + "/numpy_all.safetensors", false, "numpy");
  manual_seed(99);  // a different initialisation than torch's: the load must overwrite it all
  nn::SmallCNN cnn(cnn_options());
  check_model(cnn, dir, "cnn");
  nn::MLP mlp(kMlpSizes);
  check_model(mlp, dir, "mlp");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 || (std::string(argv[1]) != "write" && std::string(argv[1]) != "read")) {
    std::fprintf(stderr, "usage: safetensors_interop write|read DIR\n");
    return 2;
  }
  try {
    if (std::string(argv[1]) == "write") write(argv[2]);
    else read(argv[2]);
  } catch (const std::exception& e) {
    std::printf("[safetensors_interop] error: %s\n", e.what());
    return 1;
  }
  if (failures == 0) std::printf("[safetensors_interop] %s: all checks passed\n", argv[1]);
  return failures == 0 ? 0 : 1;
}
