// io::export_onnx's errors and the tracer hook; the exported graphs themselves are checked by
// onnx.checker and onnxruntime in tests/parity (parity_onnx).
#include <filesystem>
#include <fstream>

#include "io_test_files.h"
#include "test_util.h"

using namespace keel;
using keel::test::TempDir;
using keel::test::max_abs_diff;

namespace {

struct NameTracer : autograd::Tracer {
  void on_op(std::string_view op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
             const autograd::TraceAttrs& attrs) override {
    names.emplace_back(op);
    input_counts.push_back(inputs.size());
    output_counts.push_back(outputs.size());
    if (op == "softmax") softmax_dim = attrs.i(op, "dim");
  }
  std::vector<std::string> names;
  std::vector<size_t> input_counts, output_counts;
  int64_t softmax_dim = -100;
};

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("trace: a tracer sees the outermost ops with their inputs, outputs and arguments") {
  const Tensor x = randn({3, 4}), w = randn({5, 4}), b = randn({5});
  NameTracer tracer;
  {
    autograd::TraceGuard guard(tracer);
    softmax(relu(linear(x, w, b)), 1);  // linear's inner matmul/add are not reported
  }
  CHECK(tracer.names == std::vector<std::string>{"linear", "relu", "softmax"});
  CHECK(tracer.input_counts == std::vector<size_t>{3, 1, 1});
  CHECK(tracer.output_counts == std::vector<size_t>{1, 1, 1});
  CHECK(tracer.softmax_dim == 1);
  // After the guard: nothing is reported, and autograd records as before.
  relu(x);
  CHECK(tracer.names.size() == 3);
  const Tensor p = randn({2}).requires_grad_();
  const Tensor y = sum(relu(p) * 2);
  CHECK(y.grad_fn() != nullptr);
}

TEST_CASE("trace: tracing under grad mode still records the tape") {
  const Tensor p = randn({4}).requires_grad_();
  NameTracer tracer;
  Tensor loss;
  {
    autograd::TraceGuard guard(tracer);
    loss = sum(p.reshape({2, 2}).transpose(0, 1) * 3);
  }
  CHECK(tracer.names == std::vector<std::string>{"reshape", "transpose", "mul", "sum"});
  loss.backward();
  REQUIRE(p.grad().defined());
  CHECK(max_abs_diff(p.grad(), full({4}, 3.0)) == 0);
}

TEST_CASE("export_onnx: an op with no ONNX mapping is a clear error naming it") {
  TempDir dir;
  const std::string path = dir.file("m.onnx");
  auto fn = [](const std::vector<Tensor>& x) { return std::vector<Tensor>{expm1(x[0]) + 1}; };
  CHECK_THROWS_WITH(io::export_onnx(fn, {randn({2, 3})}, {}, path),
                    Catch::Contains("[export_onnx] no ONNX mapping for op 'expm1'"));
  CHECK_FALSE(std::filesystem::exists(path));  // nothing half-written
}

TEST_CASE("export_onnx: a batch-dependent tensor from an untraced op, and batch-dependent control flow, are errors") {
  TempDir dir;
  auto constant = [](const std::vector<Tensor>& x) { return std::vector<Tensor>{x[0] + zeros({x[0].size(0), 3})}; };
  CHECK_THROWS_WITH(io::export_onnx(constant, {randn({2, 3})}, {}, dir.file("a.onnx")),
                    Catch::Contains("changes with the batch size"));
  // Without a dynamic batch the same function exports (the zeros become a constant).
  io::export_onnx(constant, {randn({2, 3})}, {}, dir.file("a.onnx"), {.dynamic_batch = false});
  CHECK(std::filesystem::exists(dir.file("a.onnx")));
  auto branches = [](const std::vector<Tensor>& x) {
    return std::vector<Tensor>{x[0].size(0) == 2 ? relu(x[0]) : sigmoid(x[0])};
  };
  CHECK_THROWS_WITH(io::export_onnx(branches, {randn({2, 3})}, {}, dir.file("b.onnx")),
                    Catch::Contains("runs different ops at batch sizes 2 and 3"));
}

TEST_CASE("export_onnx: ModelProto fields (IR version, producer, opset 17), names, and eval mode") {
  TempDir dir;
  nn::MLP mlp({4, 8, 2}, {.dropout = 0.5});
  mlp.train();
  const std::string path = dir.file("mlp.onnx");
  io::export_onnx(mlp, {randn({3, 4})}, path, {.input_names = {"features"}, .output_names = {"logits"}});
  CHECK(mlp.is_training());  // restored
  const std::string bytes = read_all(path);
  REQUIRE(bytes.size() > 10);
  // Field 1 (ir_version, varint) first: key 0x08, value 8.
  CHECK(static_cast<uint8_t>(bytes[0]) == 0x08);
  CHECK(static_cast<uint8_t>(bytes[1]) == io::kOnnxIrVersion);
  // The opset import {domain "", version 17} is the last field: key 0x42, length 4, 0x0a 0x00, 0x10 17.
  CHECK(bytes.substr(bytes.size() - 6) == std::string("\x42\x04\x0a\x00\x10\x11", 6));
  CHECK(bytes.find("features") != std::string::npos);
  CHECK(bytes.find("logits") != std::string::npos);
  CHECK(bytes.find("0.weight") != std::string::npos);  // state_dict names
  CHECK(bytes.find("\"batch\"") == std::string::npos);
  CHECK(bytes.find("batch") != std::string::npos);
  CHECK(bytes.find("Dropout") == std::string::npos);  // eval mode: dropout is the identity
  CHECK_FALSE(std::filesystem::exists(path + ".data"));
  // Forced external data writes the side file.
  io::export_onnx(mlp, {randn({3, 4})}, path, {.external_data_threshold_bytes = 0, .external_data_min_tensor_bytes = 0});
  CHECK(std::filesystem::exists(path + ".data"));
  CHECK(read_all(path).find("mlp.onnx.data") != std::string::npos);
}

TEST_CASE("export_onnx: bad names are errors before anything is written") {
  TempDir dir;
  nn::MLP mlp({4, 2});
  const std::string path = dir.file("m.onnx");
  CHECK_THROWS_WITH(io::export_onnx(mlp, {randn({3, 4})}, path, {.input_names = {"a", "b"}}),
                    Catch::Contains("2 input_names for 1 inputs"));
  CHECK_THROWS_WITH(io::export_onnx(mlp, {randn({3, 4})}, path, {.input_names = {"x"}, .output_names = {"x"}}),
                    Catch::Contains("'x' is empty or used twice"));
  CHECK_THROWS_WITH(io::export_onnx(mlp, {randn({3, 4})}, path, {.input_names = {"0.weight"}}),
                    Catch::Contains("'0.weight' is empty or used twice"));
  CHECK_THROWS_WITH(io::export_onnx(mlp, {randn({3, 4})}, path, {.output_names = {"a", "b"}}),
                    Catch::Contains("2 output_names for 1 outputs"));
  CHECK_FALSE(std::filesystem::exists(path));
}
