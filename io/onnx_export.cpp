#include "keel/io/onnx_export.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "keel/autograd/grad_mode.h"
#include "keel/autograd/trace.h"
#include "keel/core/error.h"
#include "keel/io/atomic_file.h"
#include "keel/io/protobuf.h"
#include "keel/nn/module.h"
#include "keel/ops/elementwise.h"
#include "keel/ops/factory.h"
#include "keel/ops/linalg.h"
#include "keel/ops/shape.h"

namespace keel::io {

namespace {

using autograd::TraceAttrs;
using protobuf::Writer;

constexpr const char* kOp = "[export_onnx]";

// ---- the trace -----------------------------------------------------------------------------------
struct TracedOp {
  std::string op;
  std::vector<Tensor> inputs, outputs;
  TraceAttrs attrs;
};

class RecordingTracer : public autograd::Tracer {
 public:
  void on_op(std::string_view op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
             const TraceAttrs& attrs) override {
    ops.push_back({std::string(op), inputs, outputs, attrs});
  }
  std::vector<TracedOp> ops;
};

struct Trace {
  std::vector<Tensor> inputs, outputs;
  std::vector<TracedOp> ops;
};

Trace run_trace(const TracedFunction& function, const std::vector<Tensor>& inputs) {
  RecordingTracer tracer;
  Trace trace;
  trace.inputs = inputs;
  {
    autograd::TraceGuard guard(tracer);
    trace.outputs = function(inputs);
  }
  trace.ops = std::move(tracer.ops);
  return trace;
}

// The same inputs with one more row along dim 0 (a copy of row 0): a second batch size.
Tensor grow_batch(const Tensor& x) {
  KEEL_CHECK(x.dim() >= 1, kOp, " dynamic_batch needs inputs with a batch dim 0, got shape ", x.shape(),
             ". Pass dynamic_batch = false to export fixed shapes");
  const int64_t n = x.size(0);
  KEEL_CHECK(n >= 1, kOp, " an example input has batch size 0");
  std::vector<int64_t> rows(n + 1);
  std::iota(rows.begin(), rows.end(), 0);
  rows[n] = 0;
  return index_select(x, 0, from_blob(rows.data(), {n + 1}, {.dtype = DType::i64}).clone());
}

// ---- ONNX types -------------------------------------------------------------------------------------
int32_t onnx_dtype(DType dtype) {
  switch (dtype) {
    case DType::f32: return 1;
    case DType::u8: return 2;
    case DType::i8: return 3;
    case DType::i32: return 6;
    case DType::i64: return 7;
    case DType::bool_: return 9;
    case DType::f16: return 10;
    case DType::f64: return 11;
    case DType::bf16: return 16;
  }
  return 0;
}

struct Attr {
  enum Kind { f, i, ints } kind;
  std::string name;
  double float_value = 0;
  std::vector<int64_t> int_values;
};
Attr attr_i(std::string name, int64_t v) { return {Attr::i, std::move(name), 0, {v}}; }
Attr attr_f(std::string name, double v) { return {Attr::f, std::move(name), v, {}}; }
Attr attr_ints(std::string name, std::vector<int64_t> v) { return {Attr::ints, std::move(name), 0, std::move(v)}; }

// A constant of the graph. It holds the tensor itself (contiguous, on the CPU: for a parameter
// that is the parameter, not a copy), so a large model is not held twice while it is written.
struct Initializer {
  std::string name;
  Tensor data;
  std::string_view bytes() const {
    return {static_cast<const char*>(data.raw_data()), static_cast<size_t>(data.numel()) * data.itemsize()};
  }
};

// Which dims of a traced tensor depend on the batch: those that differ between the two traces.
using DynMask = std::vector<bool>;
DynMask dyn_mask(const Tensor& a, const Tensor& b) {
  DynMask mask(a.dim(), false);
  if (!b.defined() || b.dim() != a.dim()) return mask;
  for (int64_t d = 0; d < a.dim(); ++d) mask[d] = a.size(d) != b.size(d);
  return mask;
}

// ---- the graph ----------------------------------------------------------------------------------------
// The memory a tensor reads (first element, dtype, shape, strides): state_dict() hands out detached
// aliases of the parameters, which are other TensorImpls over the same elements.
using MemoryKey = std::tuple<const void*, DType, Shape, Shape>;
MemoryKey memory_key(const Tensor& t) { return {t.raw_data(), t.dtype(), t.shape(), t.strides()}; }

class GraphBuilder {
 public:
  explicit GraphBuilder(const std::vector<std::pair<std::string, Tensor>>& weights) {
    for (const auto& [name, tensor] : weights)
      if (tensor.defined()) weight_names_.emplace(memory_key(tensor), name);  // the first name of a tied weight wins
    for (const auto& [name, tensor] : weights) used_names_.insert(name);
  }

  void bind(const Tensor& t, const std::string& name) {
    values_[&t.impl()] = {name, t.version()};
    keep_alive_.push_back(t);
  }

  // The name of a traced tensor; a tensor no traced op produced becomes an initializer.
  std::string name_of(const Tensor& t, const Tensor& t2, const std::string& op) {
    KEEL_CHECK(t.defined(), kOp, " op '", op, "' got an undefined tensor");
    auto it = values_.find(&t.impl());
    if (it != values_.end()) {
      KEEL_CHECK(it->second.version == t.version(), kOp, " a tensor of shape ", t.shape(), " read by '", op,
                 "' was modified in place by an op the tracer does not see; use the out-of-place op");
      return it->second.name;
    }
    KEEL_CHECK(!poisoned_.count(&t.impl()), kOp, " op '", op, "' reads an output of a traced op that has no ONNX "
               "mapping (e.g. max_pool2d's indices)");
    // A constant. If it depends on the batch, it came from an op the tracer does not see.
    KEEL_CHECK(!t2.defined() || t2.shape() == t.shape(), kOp, " a tensor of shape ", t.shape(), " read by '", op,
               "' changes with the batch size (", t2.shape(), " in the second trace) but no traced op produced it: "
               "it comes from an op the exporter cannot see (a comparison, a factory such as arange or full, or an "
               "in-place kernel). Build it from traced ops, or export with dynamic_batch = false");
    auto named = weight_names_.find(memory_key(t));
    std::string name = named != weight_names_.end() ? named->second : fresh("const");
    add_initializer(name, t);
    bind(t, name);
    return name;
  }
  void poison(const Tensor& t) {
    if (t.defined() && !values_.count(&t.impl())) poisoned_.insert(&t.impl());
    keep_alive_.push_back(t);
  }

  std::string fresh(const std::string& hint) {
    for (;;) {
      std::string name = hint + "_" + std::to_string(counter_++);
      if (used_names_.insert(name).second) return name;
    }
  }

  void add_initializer(const std::string& name, const Tensor& t) {
    used_names_.insert(name);
    initializers_.push_back({name, t.cpu().contiguous()});
  }
  std::string const_i64(const std::vector<int64_t>& values, bool scalar = false) {
    const std::string name = fresh("shape");
    const Shape shape = scalar ? Shape{} : Shape{static_cast<int64_t>(values.size())};
    std::vector<int64_t> copy = values;
    initializers_.push_back({name, from_blob(copy.data(), shape, {.dtype = DType::i64}).clone()});
    return name;
  }
  std::string const_scalar(double value, DType dtype) {
    const Tensor t = full({}, value, {.dtype = dtype});
    const std::string name = fresh("const");
    add_initializer(name, t);
    return name;
  }
  std::string const_tensor(const Tensor& t) {
    const std::string name = fresh("const");
    add_initializer(name, t);
    return name;
  }

  // Adds a node; returns its first output's name.
  std::string node(const std::string& op_type, const std::vector<std::string>& inputs,
                   std::vector<Attr> attrs = {}, std::string output = {}) {
    if (output.empty()) output = fresh(op_type);
    Writer n;
    for (const std::string& input : inputs) n.string(1, input);
    n.string(2, output);
    n.string(3, fresh("node_" + op_type));
    n.string(4, op_type);
    for (const Attr& a : attrs) {
      Writer w;
      w.string(1, a.name);
      switch (a.kind) {
        case Attr::f: w.float32(2, static_cast<float>(a.float_value)); w.uint64(20, 1); break;
        case Attr::i: w.int64(3, a.int_values.at(0)); w.uint64(20, 2); break;
        case Attr::ints: w.packed_int64(8, a.int_values); w.uint64(20, 7); break;
      }
      n.message(5, w);
    }
    nodes_.push_back(n.take());
    return output;
  }

  // The batch size at run time: dim 0 of the first input, as a [1] i64 tensor.
  void set_batch_source(const std::string& input, int64_t batch, int64_t batch2) {
    batch_input_ = input, batch_ = batch, batch2_ = batch2;
  }
  bool is_batch_size(int64_t size, int64_t size2) const { return !batch_input_.empty() && size == batch_ && size2 == batch2_; }
  std::string batch_size() {
    if (batch_size_.empty())
      batch_size_ = node("Slice", {node("Shape", {batch_input_}), const_i64({0}), const_i64({1})});
    return batch_size_;
  }

  std::string cast(const std::string& value, DType from, DType to) {
    if (from == to) return value;
    return node("Cast", {value}, {attr_i("to", onnx_dtype(to))});
  }

  const std::vector<std::string>& nodes() const { return nodes_; }
  const std::vector<Initializer>& initializers() const { return initializers_; }

 private:
  struct Value {
    std::string name;
    uint64_t version;
  };
  std::map<MemoryKey, std::string> weight_names_;
  std::unordered_map<const void*, Value> values_;
  std::unordered_set<const void*> poisoned_;
  std::unordered_set<std::string> used_names_;
  std::vector<Tensor> keep_alive_;  // no impl address is reused while the graph is built
  std::vector<std::string> nodes_;
  std::vector<Initializer> initializers_;
  int64_t counter_ = 0;
  std::string batch_input_, batch_size_;
  int64_t batch_ = -1, batch2_ = -1;
};

// ---- op mappings ------------------------------------------------------------------------------------
class OpMapper {
 public:
  OpMapper(GraphBuilder& g, const TracedOp& op, const TracedOp* op2) : g_(g), op_(op), op2_(op2) {}

  const Tensor& input(size_t k) const { return op_.inputs.at(k); }
  bool has_input(size_t k) const { return k < op_.inputs.size() && op_.inputs[k].defined(); }
  std::string in(size_t k) const { return g_.name_of(op_.inputs.at(k), second_input(k), op_.op); }
  std::string in_tensor(const Tensor& t, const Tensor& t2) const { return g_.name_of(t, t2, op_.op); }
  Tensor second_input(size_t k) const { return op2_ && k < op2_->inputs.size() ? op2_->inputs[k] : Tensor(); }
  Tensor second_attr(const char* name) const { return op2_ ? op2_->attrs.tensor(name) : Tensor(); }
  const Tensor& output(size_t k = 0) const { return op_.outputs.at(k); }
  DynMask out_dyn(size_t k = 0) const {
    return op2_ && k < op2_->outputs.size() ? dyn_mask(op_.outputs[k], op2_->outputs[k]) : DynMask(output(k).dim(), false);
  }
  DynMask in_dyn(size_t k) const { return dyn_mask(op_.inputs.at(k), second_input(k)); }
  const TraceAttrs& attrs() const { return op_.attrs; }
  const std::string& name() const { return op_.op; }
  // Input k cast to the output's dtype (ONNX's arithmetic ops need equal types; Keel promotes).
  std::string in_as_output(size_t k) const { return g_.cast(in(k), input(k).dtype(), output().dtype()); }

  [[noreturn]] void unsupported(const std::string& why) const {
    KEEL_CHECK(false, kOp, " op '", op_.op, "' cannot be exported: ", why);
    throw;  // unreachable
  }

  GraphBuilder& g_;
  const TracedOp& op_;
  const TracedOp* op2_;
};

std::string gelu_nodes(GraphBuilder& g, const std::string& x, DType dtype, bool tanh_form) {
  if (!tanh_form) {  // x/2 (1 + erf(x / sqrt 2))
    const std::string e = g.node("Erf", {g.node("Mul", {x, g.const_scalar(0.70710678118654752440, dtype)})});
    const std::string onep = g.node("Add", {e, g.const_scalar(1.0, dtype)});
    return g.node("Mul", {g.node("Mul", {x, onep}), g.const_scalar(0.5, dtype)});
  }
  // x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  const std::string x3 = g.node("Mul", {g.node("Mul", {x, x}), x});
  const std::string inner = g.node("Add", {x, g.node("Mul", {x3, g.const_scalar(0.044715, dtype)})});
  const std::string t = g.node("Tanh", {g.node("Mul", {inner, g.const_scalar(0.79788456080286535588, dtype)})});
  const std::string onep = g.node("Add", {t, g.const_scalar(1.0, dtype)});
  return g.node("Mul", {g.node("Mul", {x, onep}), g.const_scalar(0.5, dtype)});
}

// linear's fused activation (ops/linalg.h).
std::string activation_nodes(GraphBuilder& g, const std::string& x, DType dtype, Activation activation) {
  switch (activation) {
    case Activation::none: return x;
    case Activation::relu: return g.node("Relu", {x});
    case Activation::gelu: return gelu_nodes(g, x, dtype, false);
    case Activation::gelu_tanh: return gelu_nodes(g, x, dtype, true);
    case Activation::silu: return g.node("Mul", {x, g.node("Sigmoid", {x})});
  }
  fail(kOp, " linear: unknown fused activation ", static_cast<int>(activation));
}

// A Reshape/Expand target: the traced shape, with its batch-dependent dims made dynamic.
std::vector<int64_t> reshape_target(const OpMapper& m) {
  Shape target = m.output().shape();
  const DynMask out = m.out_dyn();
  const DynMask in = m.in_dyn(0);
  int64_t minus_one = 0;
  for (size_t d = 0; d < target.size(); ++d) {
    if (!out[d]) continue;
    // The same dim, unchanged, in the same place of the input: copy it (ONNX's 0).
    if (d < in.size() && in[d] && m.input(0).size(static_cast<int64_t>(d)) == target[d]) {
      target[d] = 0;
    } else {
      target[d] = -1;
      ++minus_one;
    }
  }
  KEEL_CHECK(minus_one <= 1, kOp, " reshape to ", m.output().shape(), " from ", m.input(0).shape(),
             ": more than one target dim depends on the batch; export with dynamic_batch = false");
  return target;
}

void map_op(GraphBuilder& g, const OpMapper& m) {
  const std::string& op = m.name();
  const Tensor& out = m.output();
  const DType dtype = out.dtype();
  std::string y;
  static const std::unordered_map<std::string, std::string> unary = {
      {"neg", "Neg"},   {"abs", "Abs"},         {"exp", "Exp"},   {"log", "Log"},   {"sqrt", "Sqrt"},
      {"sin", "Sin"},   {"cos", "Cos"},         {"tanh", "Tanh"}, {"relu", "Relu"}, {"sigmoid", "Sigmoid"},
      {"erf", "Erf"},   {"sign", "Sign"},       {"alias", "Identity"}, {"clone", "Identity"}};
  static const std::unordered_map<std::string, std::string> binary = {
      {"add", "Add"}, {"sub", "Sub"}, {"mul", "Mul"}, {"div", "Div"}, {"pow", "Pow"}, {"maximum", "Max"}, {"minimum", "Min"}};
  if (auto it = unary.find(op); it != unary.end()) {
    y = g.node(it->second, {m.in(0)});
  } else if (auto it2 = binary.find(op); it2 != binary.end()) {
    if (op == "pow") y = g.node("Pow", {m.in_as_output(0), m.in(1)});
    else y = g.node(it2->second, {m.in_as_output(0), m.in_as_output(1)});
  } else if (op == "rsqrt") {
    y = g.node("Reciprocal", {g.node("Sqrt", {m.in(0)})});
  } else if (op == "log1p") {
    y = g.node("Log", {g.node("Add", {m.in(0), g.const_scalar(1.0, dtype)})});
  } else if (op == "silu") {
    const std::string x = m.in(0);
    y = g.node("Mul", {x, g.node("Sigmoid", {x})});
  } else if (op == "gelu") {
    y = gelu_nodes(g, m.in(0), dtype, m.attrs().i("tanh", 0) != 0);
  } else if (op == "where") {
    const Tensor cond = m.attrs().tensor("condition");
    y = g.node("Where", {m.in_tensor(cond, m.second_attr("condition")), m.in_as_output(0), m.in_as_output(1)});
  } else if (op == "clamp") {
    y = m.in_as_output(0);
    if (m.has_input(1)) y = g.node("Max", {y, m.in_as_output(1)});
    if (m.has_input(2)) y = g.node("Min", {y, m.in_as_output(2)});
  } else if (op == "matmul") {
    y = g.node("MatMul", {m.in(0), m.in(1)});
  } else if (op == "linear") {
    const std::string x = m.in(0), w = m.in(1);
    const bool bias = m.has_input(2);
    if (m.input(0).dim() == 2) {
      std::vector<std::string> inputs = {x, w};
      if (bias) inputs.push_back(m.in(2));
      y = g.node("Gemm", inputs, {attr_i("transB", 1)});
    } else {
      y = g.node("MatMul", {x, g.node("Transpose", {w}, {attr_ints("perm", {1, 0})})});
      if (bias) y = g.node("Add", {y, m.in(2)});
    }
    y = activation_nodes(g, y, dtype, static_cast<Activation>(m.attrs().i("activation", 0)));
  } else if (op == "softmax" || op == "log_softmax") {
    y = g.node(op == "softmax" ? "Softmax" : "LogSoftmax", {m.in(0)}, {attr_i("axis", m.attrs().i(op, "dim"))});
  } else if (op == "layer_norm" || op == "rms_norm") {
    const Shape& normalized = m.attrs().ints(op, "normalized_shape");
    const int64_t k = static_cast<int64_t>(normalized.size());
    const double eps = m.attrs().f(op, "eps");
    if (op == "layer_norm") {
      std::vector<std::string> inputs = {m.in(0), m.has_input(1) ? m.in(1) : g.const_tensor(ones(normalized, {.dtype = dtype}))};
      if (m.has_input(2)) inputs.push_back(m.in(2));
      y = g.node("LayerNormalization", inputs, {attr_i("axis", -k), attr_f("epsilon", eps)});
    } else {  // x / sqrt(mean(x^2) + eps) * weight
      std::vector<int64_t> axes(k);
      for (int64_t d = 0; d < k; ++d) axes[d] = d - k;
      const std::string x = m.in(0);
      const std::string ms = g.node("ReduceMean", {g.node("Mul", {x, x})}, {attr_ints("axes", axes), attr_i("keepdims", 1)});
      y = g.node("Div", {x, g.node("Sqrt", {g.node("Add", {ms, g.const_scalar(eps, dtype)})})});
      if (m.has_input(1)) y = g.node("Mul", {y, m.in(1)});
    }
  } else if (op == "batch_norm") {
    if (m.attrs().i("training", 0) != 0) m.unsupported("batch statistics (training mode); export in eval mode");
    const int64_t channels = m.input(0).size(1);
    const Tensor mean = m.attrs().tensor("running_mean"), var = m.attrs().tensor("running_var");
    y = g.node("BatchNormalization",
               {m.in(0), m.has_input(1) ? m.in(1) : g.const_tensor(ones({channels}, {.dtype = dtype})),
                m.has_input(2) ? m.in(2) : g.const_tensor(zeros({channels}, {.dtype = dtype})),
                m.in_tensor(mean, m.second_attr("running_mean")), m.in_tensor(var, m.second_attr("running_var"))},
               {attr_f("epsilon", m.attrs().f(op, "eps"))});
  } else if (op == "conv2d") {
    const Shape& p = m.attrs().ints(op, "padding");
    std::vector<std::string> inputs = {m.in(0), m.in(1)};
    if (m.has_input(2)) inputs.push_back(m.in(2));
    y = g.node("Conv", inputs,
               {attr_ints("kernel_shape", {m.input(1).size(2), m.input(1).size(3)}),
                attr_ints("strides", m.attrs().ints(op, "stride")), attr_ints("pads", {p[0], p[1], p[0], p[1]}),
                attr_ints("dilations", m.attrs().ints(op, "dilation")), attr_i("group", m.attrs().i(op, "groups"))});
  } else if (op == "max_pool2d") {
    const Shape& p = m.attrs().ints(op, "padding");
    y = g.node("MaxPool", {m.in(0)},
               {attr_ints("kernel_shape", m.attrs().ints(op, "kernel_size")), attr_ints("strides", m.attrs().ints(op, "stride")),
                attr_ints("pads", {p[0], p[1], p[0], p[1]}), attr_ints("dilations", m.attrs().ints(op, "dilation")),
                attr_i("ceil_mode", m.attrs().i(op, "ceil_mode"))});
  } else if (op == "adaptive_avg_pool2d") {
    const int64_t h = m.input(0).size(2), w = m.input(0).size(3), oh = out.size(2), ow = out.size(3);
    if (oh == 1 && ow == 1) {
      y = g.node("GlobalAveragePool", {m.in(0)});
    } else {
      if (h % oh != 0 || w % ow != 0)
        m.unsupported("adaptive average pooling from " + std::to_string(h) + "x" + std::to_string(w) + " to " +
                      std::to_string(oh) + "x" + std::to_string(ow) + " has windows of different sizes");
      y = g.node("AveragePool", {m.in(0)}, {attr_ints("kernel_shape", {h / oh, w / ow}), attr_ints("strides", {h / oh, w / ow})});
    }
  } else if (op == "avg_pool2d") {
    if (m.attrs().has("divisor_override")) m.unsupported("divisor_override has no ONNX equivalent");
    const Shape& p = m.attrs().ints(op, "padding");
    const Shape& kernel = m.attrs().ints(op, "kernel_size");
    const Shape& stride = m.attrs().ints(op, "stride");
    // Keel (as PyTorch) never counts ceil_mode's overhang past the padding in the divisor;
    // onnxruntime's count_include_pad = 1 does. Without padding both counts agree with 0; with
    // padding and an overhang they cannot be expressed.
    int64_t count_include_pad = m.attrs().i(op, "count_include_pad");
    if (p[0] == 0 && p[1] == 0) count_include_pad = 0;
    for (int axis = 0; axis < 2 && count_include_pad; ++axis) {
      const int64_t in_size = m.input(0).size(2 + axis), out_size = out.size(2 + axis);
      if ((out_size - 1) * stride[axis] + kernel[axis] > in_size + 2 * p[axis])
        m.unsupported("avg_pool2d with ceil_mode, padding and count_include_pad whose last window passes the padding "
                      "(ONNX counts that overhang in the divisor, PyTorch does not)");
    }
    y = g.node("AveragePool", {m.in(0)},
               {attr_ints("kernel_shape", kernel), attr_ints("strides", stride), attr_ints("pads", {p[0], p[1], p[0], p[1]}),
                attr_i("ceil_mode", m.attrs().i(op, "ceil_mode")), attr_i("count_include_pad", count_include_pad)});
  } else if (op == "scaled_dot_product_attention") {
    // softmax(q k^T * scale + mask) v, as a MatMul/Softmax subgraph.
    const Tensor &q = m.input(0), &k = m.input(1);
    const int64_t rank = q.dim();
    if (k.dim() != rank || (rank >= 3 && k.size(-3) != q.size(-3)))
      m.unsupported("grouped-query attention (key heads " + std::to_string(k.dim() >= 3 ? k.size(-3) : 0) +
                    " != query heads " + std::to_string(q.dim() >= 3 ? q.size(-3) : 0) + ")");
    std::vector<int64_t> perm(rank);
    std::iota(perm.begin(), perm.end(), 0);
    std::swap(perm[rank - 1], perm[rank - 2]);
    const std::string kt = g.node("Transpose", {m.in(1)}, {attr_ints("perm", perm)});
    std::string scores = g.node("MatMul", {m.in(0), kt});
    scores = g.node("Mul", {scores, g.const_scalar(m.attrs().f(op, "scale"), dtype)});
    const int64_t length = q.size(-2), positions = k.size(-2);
    const double neg_inf = -std::numeric_limits<double>::infinity();
    if (m.attrs().i("is_causal", 0) != 0) {
      Tensor mask_f64 = zeros({length, positions}, {.dtype = DType::f64}).contiguous();
      double* data = mask_f64.data_ptr<double>();
      for (int64_t i = 0; i < length; ++i)
        for (int64_t j = i + 1; j < positions; ++j) data[i * positions + j] = neg_inf;  // tril(ones(L, S)) kept
      scores = g.node("Add", {scores, g.const_tensor(mask_f64.to(dtype))});
    }
    const Tensor mask = m.attrs().tensor("attn_mask");
    if (mask.defined()) {
      const std::string mask_name = m.in_tensor(mask, m.second_attr("attn_mask"));
      if (mask.dtype() == DType::bool_) scores = g.node("Where", {mask_name, scores, g.const_scalar(neg_inf, dtype)});
      else scores = g.node("Add", {scores, g.cast(mask_name, mask.dtype(), dtype)});
    }
    y = g.node("MatMul", {g.node("Softmax", {scores}, {attr_i("axis", -1)}), m.in(2)});
  } else if (op == "reshape" || op == "view" || op == "squeeze" || op == "unsqueeze") {
    y = g.node("Reshape", {m.in(0), g.const_i64(reshape_target(m))});
  } else if (op == "expand") {
    std::vector<int64_t> target = out.shape();
    const DynMask dyn = m.out_dyn();
    const int64_t offset = out.dim() - m.input(0).dim();
    bool needs_batch = false;
    for (int64_t d = 0; d < out.dim(); ++d) {
      if (!dyn[d]) continue;
      // Expand broadcasts both ways: a 1 keeps the input's (batch-sized) dim.
      if (d >= offset && m.input(0).size(d - offset) == out.size(d)) {
        target[d] = 1;
        continue;
      }
      // Broadcast to the batch size itself: read it from the first input at run time.
      KEEL_CHECK(m.op2_ && g.is_batch_size(out.size(d), m.op2_->outputs[0].size(d)), kOp, " expand to ", out.shape(),
                 ": dim ", d, " depends on the batch but is neither the input's nor the batch size; export with "
                 "dynamic_batch = false");
      target[d] = -1;  // marks the batch size below
      needs_batch = true;
    }
    std::string shape;
    if (!needs_batch) {
      shape = g.const_i64(target);
    } else {
      std::vector<std::string> pieces;
      for (int64_t v : target) pieces.push_back(v == -1 ? g.batch_size() : g.const_i64({v}));
      shape = g.node("Concat", pieces, {attr_i("axis", 0)});
    }
    y = g.node("Expand", {m.in(0), shape});
  } else if (op == "permute") {
    std::vector<int64_t> perm = m.attrs().ints(op, "dims");
    for (int64_t& d : perm) d = wrap_dim(d, m.input(0).dim(), "export_onnx");
    y = g.node("Transpose", {m.in(0)}, {attr_ints("perm", perm)});
  } else if (op == "transpose") {
    const int64_t rank = m.input(0).dim();
    std::vector<int64_t> perm(rank);
    std::iota(perm.begin(), perm.end(), 0);
    if (rank > 0) std::swap(perm[wrap_dim(m.attrs().i(op, "dim0"), rank, "export_onnx")], perm[wrap_dim(m.attrs().i(op, "dim1"), rank, "export_onnx")]);
    y = g.node("Transpose", {m.in(0)}, {attr_ints("perm", perm)});
  } else if (op == "slice") {
    const int64_t rank = m.input(0).dim(), d = wrap_dim(m.attrs().i(op, "dim"), rank, "export_onnx");
    const int64_t size = m.input(0).size(d);
    int64_t start = m.attrs().i(op, "start"), end = m.attrs().i(op, "end");
    if (end >= size) end = std::numeric_limits<int64_t>::max();
    if (m.in_dyn(0)[d] && !(start == 0 && end == std::numeric_limits<int64_t>::max()))
      m.unsupported("a slice of part of the batch dim; export with dynamic_batch = false");
    y = g.node("Slice", {m.in(0), g.const_i64({start}), g.const_i64({end}), g.const_i64({d}),
                         g.const_i64({m.attrs().i(op, "step")})});
  } else if (op == "select") {
    const int64_t rank = m.input(0).dim(), d = wrap_dim(m.attrs().i(op, "dim"), rank, "export_onnx");
    if (m.in_dyn(0)[d]) m.unsupported("select along the batch dim; export with dynamic_batch = false");
    y = g.node("Gather", {m.in(0), g.const_i64({m.attrs().i(op, "index")}, true)}, {attr_i("axis", d)});
  } else if (op == "to") {
    y = g.cast(m.in(0), m.input(0).dtype(), dtype);
    if (m.input(0).dtype() == dtype) y = g.node("Identity", {y});
  } else if (op == "cat" || op == "stack") {
    const int64_t d = wrap_dim(m.attrs().i(op, "dim"), out.dim(), "export_onnx");
    std::vector<std::string> inputs;
    for (size_t k = 0; k < m.op_.inputs.size(); ++k) {
      if (op == "cat" && m.input(k).dim() == 1 && m.input(k).size(0) == 0 && out.dim() != 1) continue;  // legacy empty
      std::string x = g.cast(m.in(k), m.input(k).dtype(), dtype);
      if (op == "stack") x = g.node("Unsqueeze", {x, g.const_i64({d})});
      inputs.push_back(x);
    }
    y = g.node("Concat", inputs, {attr_i("axis", d)});
  } else if (op == "gather" || op == "index_select") {
    const int64_t d = m.input(0).dim() == 0 ? 0 : wrap_dim(m.attrs().i(op, "dim"), m.input(0).dim(), "export_onnx");
    const std::string index = m.in_tensor(m.attrs().tensor("index"), m.second_attr("index"));
    y = g.node(op == "gather" ? "GatherElements" : "Gather", {m.in(0), index}, {attr_i("axis", d)});
  } else if (op == "embedding") {
    y = g.node("Gather", {m.in(0), m.in_tensor(m.attrs().tensor("indices"), m.second_attr("indices"))}, {attr_i("axis", 0)});
  } else if (op == "sum" || op == "mean" || op == "amax" || op == "amin") {
    const std::vector<int64_t>& axes = m.attrs().ints(op, "dims");
    const int64_t keepdims = m.attrs().i(op, "keepdim");
    std::string x = m.in(0);
    if (op == "sum") {
      x = g.cast(x, m.input(0).dtype(), dtype);
      y = g.node("ReduceSum", {x, g.const_i64(axes)}, {attr_i("keepdims", keepdims)});
    } else {
      const char* type = op == "mean" ? "ReduceMean" : op == "amax" ? "ReduceMax" : "ReduceMin";
      y = g.node(type, {x}, {attr_ints("axes", axes), attr_i("keepdims", keepdims)});
    }
  } else if (op == "dropout") {
    m.unsupported("dropout in training mode; export in eval mode (the exporter calls model.eval())");
  } else {
    KEEL_CHECK(false, kOp, " no ONNX mapping for op '", op, "' (", m.op_.inputs.size(), " inputs, output ",
               out.shape(), " ", dtype_name(out.dtype()), "). Express it with ops the exporter maps (docs/onnx.md)");
  }
  // Outputs other than the first (max_pool2d's indices, ...) have no ONNX value.
  for (size_t k = 1; k < m.op_.outputs.size(); ++k) g.poison(m.op_.outputs[k]);
  g.bind(out, y);
}

// ---- serialization ---------------------------------------------------------------------------------
Writer value_info(const std::string& name, const Tensor& t, const DynMask& dyn, const std::string& batch_name) {
  Writer shape;
  for (int64_t d = 0; d < t.dim(); ++d) {
    Writer dim;
    if (d < static_cast<int64_t>(dyn.size()) && dyn[d]) dim.string(2, batch_name);
    else dim.int64(1, t.size(d));
    shape.message(1, dim);
  }
  Writer tensor_type;
  tensor_type.int64(1, onnx_dtype(t.dtype()));
  tensor_type.message(2, shape);
  Writer type;
  type.message(1, tensor_type);
  Writer info;
  info.string(1, name);
  info.message(2, type);
  return info;
}

std::string default_name(const std::vector<std::string>& names, size_t k, size_t count, const char* base) {
  if (k < names.size()) return names[k];
  return count == 1 ? base : std::string(base) + "_" + std::to_string(k);
}

void check_same_ops(const Trace& a, const Trace& b) {
  const size_t n = std::min(a.ops.size(), b.ops.size());
  for (size_t i = 0; i < n; ++i) {
    KEEL_CHECK(a.ops[i].op == b.ops[i].op && a.ops[i].inputs.size() == b.ops[i].inputs.size() &&
                   a.ops[i].outputs.size() == b.ops[i].outputs.size(),
               kOp, " the forward pass runs different ops at batch sizes ", a.inputs[0].size(0), " and ",
               b.inputs[0].size(0), " (op #", i, ": '", a.ops[i].op, "' vs '", b.ops[i].op,
               "'): it depends on the data or the batch size, which a graph cannot express. "
               "Export with dynamic_batch = false");
  }
  KEEL_CHECK(a.ops.size() == b.ops.size(), kOp, " the forward pass runs ", a.ops.size(), " ops at batch size ",
             a.inputs[0].size(0), " but ", b.ops.size(), " at ", b.inputs[0].size(0),
             ": it depends on the batch size. Export with dynamic_batch = false");
}

// The traced ops the outputs depend on. Others (an op's preparation that the op itself does not
// read, such as a mask expanded for a kernel, or results the function drops) are left out: they
// need no mapping, and the graph is smaller.
std::vector<bool> live_ops(const Trace& trace) {
  std::unordered_set<const void*> needed;
  for (const Tensor& t : trace.outputs)
    if (t.defined()) needed.insert(&t.impl());
  std::vector<bool> live(trace.ops.size(), false);
  for (size_t i = trace.ops.size(); i-- > 0;) {
    const TracedOp& op = trace.ops[i];
    for (const Tensor& out : op.outputs)
      if (out.defined() && needed.count(&out.impl())) live[i] = true;
    if (!live[i]) continue;
    for (const Tensor& in : op.inputs)
      if (in.defined()) needed.insert(&in.impl());
    for (const auto& [name, t] : op.attrs.tensors())
      if (t.defined()) needed.insert(&t.impl());
  }
  return live;
}

}  // namespace

void export_onnx(const TracedFunction& function, const std::vector<Tensor>& example_inputs,
                 const std::vector<std::pair<std::string, Tensor>>& weights, const std::string& path,
                 const OnnxExportOptions& options) {
  KEEL_CHECK(!example_inputs.empty(), kOp, " needs at least one example input");
  KEEL_CHECK(options.input_names.empty() || options.input_names.size() == example_inputs.size(), kOp, " ",
             options.input_names.size(), " input_names for ", example_inputs.size(), " inputs: give one name per input");
  {
    std::unordered_set<std::string> names;
    for (const auto& [name, tensor] : weights) names.insert(name);
    for (const auto* list : {&options.input_names, &options.output_names})
      for (const std::string& name : *list)
        KEEL_CHECK(!name.empty() && names.insert(name).second, kOp, " input/output name '", name,
                   "' is empty or used twice (names must differ from each other and from the weights' names)");
  }
  for (const Tensor& x : example_inputs) KEEL_CHECK(x.defined(), kOp, " an example input is undefined");
  autograd::NoGradGuard no_grad;
  const Trace trace = run_trace(function, example_inputs);
  Trace trace2;
  if (options.dynamic_batch) {
    std::vector<Tensor> grown;
    for (const Tensor& x : example_inputs) grown.push_back(grow_batch(x));
    trace2 = run_trace(function, grown);
    check_same_ops(trace, trace2);
    KEEL_CHECK(trace2.outputs.size() == trace.outputs.size(), kOp, " the number of outputs depends on the batch size");
  }
  KEEL_CHECK(!trace.outputs.empty(), kOp, " the function returned no outputs");
  KEEL_CHECK(options.output_names.empty() || options.output_names.size() == trace.outputs.size(), kOp, " ",
             options.output_names.size(), " output_names for ", trace.outputs.size(), " outputs: give one name per output");

  GraphBuilder g(weights);
  std::vector<std::string> input_names;
  for (size_t k = 0; k < example_inputs.size(); ++k) {
    input_names.push_back(default_name(options.input_names, k, example_inputs.size(), "input"));
    g.bind(example_inputs[k], input_names.back());
  }
  if (options.dynamic_batch && example_inputs[0].dim() > 0)
    g.set_batch_source(input_names[0], example_inputs[0].size(0), trace2.inputs[0].size(0));
  const std::vector<bool> live = live_ops(trace);
  for (size_t i = 0; i < trace.ops.size(); ++i) {
    if (!live[i]) continue;
    const OpMapper m(g, trace.ops[i], options.dynamic_batch ? &trace2.ops[i] : nullptr);
    map_op(g, m);
  }
  std::vector<std::string> output_names;
  for (size_t k = 0; k < trace.outputs.size(); ++k) {
    output_names.push_back(default_name(options.output_names, k, trace.outputs.size(), "output"));
    const Tensor t2 = options.dynamic_batch ? trace2.outputs[k] : Tensor();
    g.node("Identity", {g.name_of(trace.outputs[k], t2, "output")}, {}, output_names.back());
  }

  // Initializers: inline, or external data when the total is large (or the option forces it).
  int64_t total = 0;
  for (const Initializer& init : g.initializers()) total += static_cast<int64_t>(init.bytes().size());
  const bool external = total > options.external_data_threshold_bytes;
  const std::string data_file = std::filesystem::path(path).filename().string() + ".data";
  const std::string data_path = (std::filesystem::path(path).parent_path() / data_file).string();
  std::vector<std::pair<const Initializer*, int64_t>> external_tensors;  // with their offsets

  Writer graph;
  for (const std::string& node : g.nodes()) graph.bytes(1, node.data(), node.size());
  graph.string(2, options.graph_name);
  int64_t offset = 0;
  for (const Initializer& init : g.initializers()) {
    Writer t;
    t.packed_int64(1, init.data.shape());
    t.int64(2, onnx_dtype(init.data.dtype()));
    t.string(8, init.name);
    const int64_t size = static_cast<int64_t>(init.bytes().size());
    if (external && size >= options.external_data_min_tensor_bytes) {
      offset = (offset + 63) / 64 * 64;  // aligned, as onnx's own writer does for mmap
      for (const auto& [key, value] : {std::pair<std::string, std::string>{"location", data_file},
                                       {"offset", std::to_string(offset)},
                                       {"length", std::to_string(size)}}) {
        Writer entry;
        entry.string(1, key);
        entry.string(2, value);
        t.message(13, entry);
      }
      t.int64(14, 1);  // DataLocation EXTERNAL
      external_tensors.emplace_back(&init, offset);
      offset += size;
    } else {
      t.bytes(9, init.bytes().data(), init.bytes().size());  // raw_data: little-endian, as Keel stores it
    }
    graph.message(5, t);
  }
  for (size_t k = 0; k < example_inputs.size(); ++k) {
    DynMask dyn(example_inputs[k].dim(), false);
    if (options.dynamic_batch && !dyn.empty()) dyn[0] = true;
    graph.message(11, value_info(input_names[k], example_inputs[k], dyn, options.batch_dim_name));
  }
  for (size_t k = 0; k < trace.outputs.size(); ++k) {
    const DynMask dyn = options.dynamic_batch ? dyn_mask(trace.outputs[k], trace2.outputs[k]) : DynMask();
    graph.message(12, value_info(output_names[k], trace.outputs[k], dyn, options.batch_dim_name));
  }

  Writer model;
  model.int64(1, kOnnxIrVersion);
  model.string(2, "keel");
  model.string(3, "0.1");
  model.message(7, graph);
  Writer opset;
  opset.string(1, "");
  opset.int64(2, kOnnxOpset);
  model.message(8, opset);
  KEEL_CHECK(model.size() < (size_t{2} << 30), kOp, " ", path, ": the model is ", model.size(),
             " bytes, over protobuf's 2 GB limit; lower external_data_threshold_bytes");

  if (external) {
    write_file_atomically(data_path, "export_onnx", [&](const ByteSink& sink) {
      int64_t at = 0;
      static const char zeros_pad[64] = {};
      for (const auto& [init, start] : external_tensors) {
        if (start > at) sink(zeros_pad, static_cast<size_t>(start - at));
        sink(init->bytes().data(), init->bytes().size());
        at = start + static_cast<int64_t>(init->bytes().size());
      }
    });
  }
  write_file_atomically(path, "export_onnx", [&](const ByteSink& sink) { sink(model.data(), model.size()); });
}

void export_onnx(nn::Module& model, const std::vector<Tensor>& example_inputs, const std::string& path,
                 const OnnxExportOptions& options) {
  KEEL_CHECK(example_inputs.size() == 1, kOp, " nn::Module::forward takes one tensor; got ", example_inputs.size(),
             " example inputs (use the TracedFunction overload for several)");
  const bool was_training = model.is_training();
  model.eval();
  try {
    export_onnx([&model](const std::vector<Tensor>& inputs) { return std::vector<Tensor>{model.forward(inputs[0])}; },
                example_inputs, model.state_dict(), path, options);
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
}

}  // namespace keel::io
