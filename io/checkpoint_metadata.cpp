// The JSON metadata of a training checkpoint (see checkpoint.h), parsed and checked strictly. It is
// in a file of its own, needing only core/ and io/json.h, so that the fuzz target
// (tests/fuzz/fuzz_checkpoint.cpp) links it without nn/ and optim/.
#include <charconv>
#include <cmath>
#include <cstdint>

#include "keel/core/error.h"
#include "keel/io/checkpoint.h"
#include "keel/io/json.h"

namespace keel::io {
namespace {

constexpr const char* kFormat = "keel.checkpoint";
// Bounds on what the JSON may claim (it comes from a file): counts that size loops and maps.
constexpr int64_t kMaxCount = 100'000'000;
constexpr size_t kMaxMapEntries = 1'000'000;

struct Reader {
  const std::string& tag;  // "[load_checkpoint] file: "

  [[noreturn]] void bad(const std::string& where, const std::string& what) const {
    fail(tag, "'", where, "' ", what, " (the checkpoint is damaged or was not written by save_checkpoint)");
  }
  const JsonValue& object(const JsonValue& value, const std::string& where) const {
    if (value.kind != JsonValue::Kind::object) bad(where, "must be a JSON object");
    return value;
  }
  // Rejects keys other than `allowed`.
  void only_keys(const JsonValue& value, const std::string& where, std::initializer_list<const char*> allowed) const {
    for (const auto& [key, child] : value.object) {
      bool known = false;
      for (const char* name : allowed) known = known || key == name;
      if (!known) bad(where.empty() ? key : where + "." + key, "is not a known key");
    }
  }
  const JsonValue& required(const JsonValue& value, const std::string& where, const char* key) const {
    const JsonValue* child = value.find(key);
    const std::string path = where.empty() ? key : where + "." + key;
    if (child == nullptr) bad(path, "is missing");
    return *child;
  }
  int64_t integer(const JsonValue& value, const std::string& where, int64_t low, int64_t high) const {
    if (value.kind != JsonValue::Kind::number || !value.is_integer) bad(where, "must be an integer");
    if (value.integer < low || value.integer > high)
      bad(where, "is " + std::to_string(value.integer) + ", outside [" + std::to_string(low) + ", " +
                     std::to_string(high) + "]");
    return value.integer;
  }
  uint64_t unsigned_text(const JsonValue& value, const std::string& where) const {
    if (value.kind != JsonValue::Kind::string) bad(where, "must be a string of decimal digits");
    const std::string& text = value.string;
    uint64_t result = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), result);
    if (text.empty() || error != std::errc() || end != text.data() + text.size())
      bad(where, "must be a decimal number in [0, 2^64), got \"" + text.substr(0, 40) + "\"");
    return result;
  }
  double number(const JsonValue& value, const std::string& where) const {
    if (value.kind == JsonValue::Kind::number) return value.number;
    if (value.kind == JsonValue::Kind::string) {
      if (value.string == "inf") return HUGE_VAL;
      if (value.string == "-inf") return -HUGE_VAL;
      if (value.string == "nan") return std::nan("");
    }
    bad(where, "must be a number (or \"inf\", \"-inf\", \"nan\")");
  }
  bool boolean(const JsonValue& value, const std::string& where) const {
    if (value.kind != JsonValue::Kind::boolean) bad(where, "must be true or false");
    return value.boolean;
  }
  std::string string(const JsonValue& value, const std::string& where) const {
    if (value.kind != JsonValue::Kind::string) bad(where, "must be a string");
    return value.string;
  }
  std::map<std::string, double> doubles(const JsonValue& value, const std::string& where) const {
    object(value, where);
    if (value.object.size() > kMaxMapEntries) bad(where, "has too many entries");
    std::map<std::string, double> out;
    for (const auto& [key, child] : value.object) out[key] = number(child, where + "." + key);
    return out;
  }
};

bool integral(double value) { return std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 9.0e15; }

}  // namespace

CheckpointMetadata parse_checkpoint_metadata(std::string_view json, const std::string& name) {
  const std::string tag = "[load_checkpoint] " + name + ": ";
  const Reader r{tag};
  const JsonValue root = parse_json(json, tag + "checkpoint metadata:");
  r.object(root, "(root)");
  r.only_keys(root, "", {"format", "version", "step", "epoch", "batch_in_epoch", "rng", "model", "optimizer",
                         "scheduler", "plateau", "grad_scaler", "data_loader", "metadata"});
  CheckpointMetadata m;
  if (r.string(r.required(root, "", "format"), "format") != kFormat)
    r.bad("format", "is not \"" + std::string(kFormat) + "\"");
  m.version = r.integer(r.required(root, "", "version"), "version", 0, INT64_MAX);
  KEEL_CHECK(m.version == kCheckpointVersion, tag, "checkpoint format version ", m.version,
             " is not supported: this build reads version ", kCheckpointVersion);
  m.step = r.integer(r.required(root, "", "step"), "step", 0, INT64_MAX);
  m.epoch = r.integer(r.required(root, "", "epoch"), "epoch", 0, INT64_MAX);
  m.batch_in_epoch = r.integer(r.required(root, "", "batch_in_epoch"), "batch_in_epoch", 0, INT64_MAX);

  const JsonValue& rng = r.object(r.required(root, "", "rng"), "rng");
  r.only_keys(rng, "rng", {"seed", "offset"});
  m.rng.seed = r.unsigned_text(r.required(rng, "rng", "seed"), "rng.seed");
  m.rng.offset = r.unsigned_text(r.required(rng, "rng", "offset"), "rng.offset");

  const JsonValue& model = r.object(r.required(root, "", "model"), "model");
  r.only_keys(model, "model", {"type", "tensors"});
  m.model_type = r.string(r.required(model, "model", "type"), "model.type");
  m.model_tensors = r.integer(r.required(model, "model", "tensors"), "model.tensors", 0, kMaxCount);

  if (const JsonValue* opt = root.find("optimizer")) {
    r.object(*opt, "optimizer");
    r.only_keys(*opt, "optimizer", {"type", "groups", "params", "steps", "group_values"});
    m.has_optimizer = true;
    m.optimizer_type = r.string(r.required(*opt, "optimizer", "type"), "optimizer.type");
    m.optimizer_groups = r.integer(r.required(*opt, "optimizer", "groups"), "optimizer.groups", 0, kMaxCount);
    m.optimizer_params = r.integer(r.required(*opt, "optimizer", "params"), "optimizer.params", 0, kMaxCount);
    const JsonValue& steps = r.object(r.required(*opt, "optimizer", "steps"), "optimizer.steps");
    if (steps.object.size() > kMaxMapEntries) r.bad("optimizer.steps", "has too many entries");
    for (const auto& [key, value] : steps.object)
      m.optimizer_steps[key] = r.integer(value, "optimizer.steps." + key, 0, INT64_MAX);
    m.optimizer_groups_values = r.doubles(r.required(*opt, "optimizer", "group_values"), "optimizer.group_values");
    for (const auto& [key, value] : m.optimizer_groups_values)
      if (!std::isfinite(value) || value < 0) r.bad("optimizer.group_values." + key, "must be finite and >= 0");
  }
  if (const JsonValue* sched = root.find("scheduler")) {
    r.object(*sched, "scheduler");
    r.only_keys(*sched, "scheduler", {"type", "state"});
    m.has_scheduler = true;
    m.scheduler_type = r.string(r.required(*sched, "scheduler", "type"), "scheduler.type");
    m.scheduler_state = r.doubles(r.required(*sched, "scheduler", "state"), "scheduler.state");
    for (const auto& [key, value] : m.scheduler_state) {
      if (key == "last_epoch" && !(integral(value) && value >= 0))
        r.bad("scheduler.state.last_epoch", "must be a whole number >= 0");
      if (key != "last_epoch" && !(std::isfinite(value) && value >= 0))
        r.bad("scheduler.state." + key, "must be finite and >= 0");
    }
  }
  if (const JsonValue* plateau = root.find("plateau")) {
    r.object(*plateau, "plateau");
    r.only_keys(*plateau, "plateau", {"state"});
    m.has_plateau = true;
    m.plateau_state = r.doubles(r.required(*plateau, "plateau", "state"), "plateau.state");
    for (const auto& [key, value] : m.plateau_state)
      if (key != "best" && !(integral(value) && value >= 0)) r.bad("plateau.state." + key, "must be a whole number >= 0");
  }
  if (const JsonValue* scaler = root.find("grad_scaler")) {
    r.object(*scaler, "grad_scaler");
    r.only_keys(*scaler, "grad_scaler", {"state"});
    m.has_grad_scaler = true;
    m.grad_scaler_state = r.doubles(r.required(*scaler, "grad_scaler", "state"), "grad_scaler.state");
    for (const auto& [key, value] : m.grad_scaler_state) {
      if (key == "scale" && !(value > 0 && std::isfinite(static_cast<float>(value))))
        r.bad("grad_scaler.state.scale", "must be a positive f32 value");
      if (key == "growth_tracker" && !(integral(value) && value >= 0))
        r.bad("grad_scaler.state.growth_tracker", "must be a whole number >= 0");
    }
  }
  if (const JsonValue* loader = root.find("data_loader")) {
    r.object(*loader, "data_loader");
    r.only_keys(*loader, "data_loader", {"seed", "batch_size", "shuffle", "drop_last", "dataset_size", "batches"});
    m.has_loader = true;
    m.loader_seed = r.unsigned_text(r.required(*loader, "data_loader", "seed"), "data_loader.seed");
    m.loader_batch_size = r.integer(r.required(*loader, "data_loader", "batch_size"), "data_loader.batch_size", 1, INT64_MAX);
    m.loader_shuffle = r.boolean(r.required(*loader, "data_loader", "shuffle"), "data_loader.shuffle");
    m.loader_drop_last = r.boolean(r.required(*loader, "data_loader", "drop_last"), "data_loader.drop_last");
    m.loader_dataset_size =
        r.integer(r.required(*loader, "data_loader", "dataset_size"), "data_loader.dataset_size", 0, INT64_MAX);
    m.loader_batches = r.integer(r.required(*loader, "data_loader", "batches"), "data_loader.batches", 0, INT64_MAX);
    if (m.batch_in_epoch > m.loader_batches)
      r.bad("batch_in_epoch", "is " + std::to_string(m.batch_in_epoch) + ", past the epoch's " +
                                  std::to_string(m.loader_batches) + " batches");
  }
  const JsonValue& metadata = r.object(r.required(root, "", "metadata"), "metadata");
  if (metadata.object.size() > kMaxMapEntries) r.bad("metadata", "has too many entries");
  for (const auto& [key, value] : metadata.object) m.metadata[key] = r.string(value, "metadata." + key);
  return m;
}

}  // namespace keel::io
