#pragma once
// ONNX export: traces a forward pass into an ONNX graph (opset 17) and writes it with the native
// protobuf writer (io/protobuf.h); no libprotobuf, no Python. See docs/onnx.md.
//
//   nn::SmallCNN model(...);
//   io::export_onnx(model, {randn({8, 1, 28, 28})}, "model.onnx");   // input "input", output "output"
//
// - The forward pass runs in eval mode under no-grad, with a tracer (autograd/trace.h) that sees
//   every op; each op becomes one or a few ONNX nodes. An op with no mapping -> keel::Error naming it.
// - Parameters and buffers become initializers named as in state_dict ("fc1.weight"); other
//   constants (scalars, arange positions, ...) get generated names.
// - Dynamic batch: dim 0 of every input is the symbolic "batch". The forward pass is traced twice,
//   with the example batch and one more; dims that differ between the two depend on the batch
//   (a Reshape target's such dim becomes -1). Different op sequences -> keel::Error (the graph
//   would depend on the data).
// - External data: when the initializers exceed external_data_threshold_bytes (default 2 GB, the
//   protobuf limit), the tensors go to "<model file name>.data" next to the model, referenced by
//   TensorProto.external_data {location, offset, length}.
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "keel/core/tensor.h"

namespace keel::nn {
class Module;
}

namespace keel::io {

struct OnnxExportOptions {
  std::vector<std::string> input_names;   // default: "input" (one input) or "input_0", "input_1", ...
  std::vector<std::string> output_names;  // default: "output" (one output) or "output_0", ...
  bool dynamic_batch = true;              // dim 0 of every input (and what depends on it) is "batch"
  std::string batch_dim_name = "batch";
  // Initializers take external data when their total size exceeds this (2 GB: protobuf's limit
  // for one message). Set it low (e.g. 0) to force external data.
  int64_t external_data_threshold_bytes = int64_t{2} << 30;
  // With external data, tensors smaller than this stay inside the model (as ONNX's own tools do).
  int64_t external_data_min_tensor_bytes = 1024;
  std::string graph_name = "keel_graph";
};

// The ONNX opset and IR version the exporter writes.
inline constexpr int64_t kOnnxOpset = 17;
inline constexpr int64_t kOnnxIrVersion = 8;

// Exports model.forward(example_inputs[0]) (nn::Module's forward takes one tensor). The model is
// put in eval mode for the trace and its training flag restored afterwards.
void export_onnx(nn::Module& model, const std::vector<Tensor>& example_inputs, const std::string& path,
                 const OnnxExportOptions& options = {});

// The general form: any function of tensors. `weights` names the tensors that should appear as
// named initializers (e.g. a module's state_dict()); other constants get generated names.
using TracedFunction = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
void export_onnx(const TracedFunction& function, const std::vector<Tensor>& example_inputs,
                 const std::vector<std::pair<std::string, Tensor>>& weights, const std::string& path,
                 const OnnxExportOptions& options = {});

}  // namespace keel::io
