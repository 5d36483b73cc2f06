#include "keel/autograd/trace.h"

#include "keel/core/error.h"

namespace keel::autograd {

namespace {
struct TraceState {
  Tracer* tracer = nullptr;
  int depth = 0;  // traced ops running on this thread (only the outermost is reported)
};
thread_local TraceState trace_state;
}  // namespace

bool TraceAttrs::has(std::string_view name) const {
  for (const auto& [key, value] : ints_)
    if (key == name) return true;
  for (const auto& [key, value] : floats_)
    if (key == name) return true;
  for (const auto& [key, value] : tensors_)
    if (key == name) return true;
  return false;
}

const std::vector<int64_t>& TraceAttrs::ints(std::string_view op, std::string_view name) const {
  for (const auto& [key, value] : ints_)
    if (key == name) return value;
  KEEL_CHECK(false, "[trace] op '", op, "' did not record its argument '", name, "'");
  return ints_.front().second;  // unreachable
}

int64_t TraceAttrs::i(std::string_view name, int64_t fallback) const {
  for (const auto& [key, value] : ints_)
    if (key == name) return value.at(0);
  return fallback;
}

double TraceAttrs::f(std::string_view op, std::string_view name) const {
  for (const auto& [key, value] : floats_)
    if (key == name) return value;
  fail("[trace] op '", op, "' did not record its argument '", name, "'");
}

Tensor TraceAttrs::tensor(std::string_view name) const {
  for (const auto& [key, value] : tensors_)
    if (key == name) return value;
  return Tensor();
}

namespace detail {
std::atomic<int> live_trace_guards{0};
}  // namespace detail

TraceGuard::TraceGuard(Tracer& tracer) : previous_(trace_state.tracer), previous_depth_(trace_state.depth) {
  trace_state.tracer = &tracer;
  trace_state.depth = 0;
  detail::live_trace_guards.fetch_add(1, std::memory_order_relaxed);
}

TraceGuard::~TraceGuard() {
  detail::live_trace_guards.fetch_sub(1, std::memory_order_relaxed);
  trace_state.tracer = previous_;
  trace_state.depth = previous_depth_;
}

namespace detail {

TraceRecord* trace_begin_slow() {
  if (!trace_state.tracer || trace_state.depth > 0) [[likely]] return nullptr;  // none, or inside a traced op
  trace_state.depth = 1;
  return new TraceRecord();
}

void trace_add_input(TraceRecord& record, const Tensor& input) { record.inputs.push_back(input); }

void trace_finish(const char* op, TraceRecord& record, const Tensor* outputs, size_t num_outputs) {
  if (!trace_state.tracer) return;
  const std::vector<Tensor> out(outputs, outputs + num_outputs);
  trace_state.tracer->on_op(op, record.inputs, out, record.attrs);
}

void trace_end(TraceRecord* record) {
  delete record;
  trace_state.depth = 0;
}

}  // namespace detail
}  // namespace keel::autograd
