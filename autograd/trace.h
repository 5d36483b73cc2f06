#pragma once
// Tracing: a Tracer sees every op that runs on its thread, with its inputs, outputs and the
// arguments that are not tensors (dims, eps, strides, ...). io/onnx_export.h uses it to turn a
// forward pass into a graph.
//
// The hook is OpRecord (autograd/record.h), the one place every differentiable op already
// reports itself: while a TraceGuard is alive, an OpRecord at the outermost level collects its
// inputs, the op adds its arguments with record.trace_attr(...), and finish() hands the outputs to
// the tracer. Ops an op calls inside itself are not reported (a depth counter): the tracer sees
// linear, not the matmul and add it may be made of. Composite ops without an OpRecord are seen as
// the ops they are made of. Ops that never record (comparisons, factories such as arange, in-place
// kernels under no-grad) are not seen: their results reach the tracer as constants.
//
// When no tracer is active the cost per op is one relaxed atomic load and a branch; nothing is
// allocated.
#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "keel/core/tensor.h"

namespace keel::autograd {

// The non-tensor (and extra tensor) arguments of a traced op, by name.
class TraceAttrs {
 public:
  void set(const char* name, std::span<const int64_t> values) { ints_.emplace_back(name, std::vector<int64_t>(values.begin(), values.end())); }
  void set(const char* name, double value) { floats_.emplace_back(name, value); }
  void set(const char* name, const Tensor& tensor) { tensors_.emplace_back(name, tensor); }
  template <class T>
    requires std::is_integral_v<T>
  void set(const char* name, T value) {
    ints_.emplace_back(name, std::vector<int64_t>{static_cast<int64_t>(value)});
  }

  bool has(std::string_view name) const;
  // Each throws keel::Error naming the op when the attribute is missing.
  const std::vector<int64_t>& ints(std::string_view op, std::string_view name) const;
  int64_t i(std::string_view op, std::string_view name) const { return ints(op, name).at(0); }
  int64_t i(std::string_view name, int64_t fallback) const;
  double f(std::string_view op, std::string_view name) const;
  Tensor tensor(std::string_view name) const;  // undefined when absent
  const std::vector<std::pair<std::string, Tensor>>& tensors() const { return tensors_; }

 private:
  std::vector<std::pair<std::string, std::vector<int64_t>>> ints_;
  std::vector<std::pair<std::string, double>> floats_;
  std::vector<std::pair<std::string, Tensor>> tensors_;
};

class Tracer {
 public:
  virtual ~Tracer() = default;
  // inputs: the tensors the op was given, in OpRecord's order (undefined ones kept: an absent bias).
  virtual void on_op(std::string_view op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                     const TraceAttrs& attrs) = 0;
};

// Makes `tracer` the current thread's tracer for its scope (they nest: the previous one returns).
class TraceGuard {
 public:
  explicit TraceGuard(Tracer& tracer);
  ~TraceGuard();
  TraceGuard(const TraceGuard&) = delete;
  TraceGuard& operator=(const TraceGuard&) = delete;

 private:
  Tracer* previous_;
  int previous_depth_;
};

namespace detail {
// What an OpRecord holds while it is traced.
struct TraceRecord {
  std::vector<Tensor> inputs;
  TraceAttrs attrs;
};
// The number of live TraceGuards in the process, on any thread. Ops read it first, so that
// without a tracer the hook costs one relaxed load and a branch (no call, no thread-local lookup).
extern std::atomic<int> live_trace_guards;
// A new TraceRecord when a tracer is active on this thread and no traced op encloses this one
// (the depth counter goes up until trace_end), else nullptr.
TraceRecord* trace_begin_slow();
inline TraceRecord* trace_begin() {
  if (live_trace_guards.load(std::memory_order_relaxed) == 0) [[likely]] return nullptr;
  return trace_begin_slow();
}
void trace_add_input(TraceRecord& record, const Tensor& input);
void trace_finish(const char* op, TraceRecord& record, const Tensor* outputs, size_t num_outputs);
void trace_end(TraceRecord* record);
}  // namespace detail

}  // namespace keel::autograd
