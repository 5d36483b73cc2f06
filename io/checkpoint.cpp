// Training checkpoints (see checkpoint.h).
#include "keel/io/checkpoint.h"

#include <cxxabi.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <filesystem>
#include <typeinfo>

#include "keel/core/error.h"
#include "keel/io/atomic_file.h"
#include "keel/io/data_loader.h"
#include "keel/io/json.h"
#include "keel/nn/module.h"
#include "keel/optim/grad_scaler.h"
#include "keel/optim/lr_scheduler.h"
#include "keel/optim/optimizer.h"

namespace keel::io {
namespace {

constexpr const char* kFormat = "keel.checkpoint";
constexpr const char* kModelPrefix = "model.";
constexpr const char* kOptimPrefix = "optim.";
constexpr const char* kExtraPrefix = "extra.";

std::string demangled(const std::type_info& type) {
  int status = 0;
  char* name = abi::__cxa_demangle(type.name(), nullptr, nullptr, &status);
  std::string result = status == 0 && name ? name : type.name();
  std::free(name);
  return result;
}

size_t parameter_count(const optim::Optimizer& optimizer) {
  size_t count = 0;
  for (size_t g = 0; g < optimizer.num_param_groups(); ++g) count += optimizer.params(g).size();
  return count;
}

// ---- writing ------------------------------------------------------------------------------------

// 17 significant digits read back to the same double; a '.' or exponent is always present so that
// the reader takes the double path (an integral "-0" would lose its sign). JSON has no inf / nan:
// they are written as the strings "inf", "-inf", "nan".
std::string json_double(double value) {
  if (std::isnan(value)) return "\"nan\"";
  if (std::isinf(value)) return value > 0 ? "\"inf\"" : "\"-inf\"";
  char text[40];
  std::snprintf(text, sizeof(text), "%.17g", value);
  std::string out = text;
  if (out.find_first_of(".eE") == std::string::npos) out += ".0";
  return out;
}

template <typename Map, typename Format>
std::string json_object(const Map& map, Format format) {
  std::string out = "{";
  for (const auto& [key, value] : map) {
    if (out.size() > 1) out += ",";
    out += json_quote(key) + ":" + format(value);
  }
  return out + "}";
}

std::string doubles_object(const std::map<std::string, double>& map) { return json_object(map, json_double); }

std::string metadata_json(const TrainingState& state) {
  const PhiloxState rng = default_generator().state();
  std::string json = std::string("{\"format\":\"") + kFormat + "\",\"version\":" + std::to_string(kCheckpointVersion) +
                     ",\"step\":" + std::to_string(state.step) + ",\"epoch\":" + std::to_string(state.epoch) +
                     ",\"batch_in_epoch\":" + std::to_string(state.batch_in_epoch) + ",\"rng\":{\"seed\":\"" +
                     std::to_string(rng.seed) + "\",\"offset\":\"" + std::to_string(rng.offset) + "\"}";
  json += ",\"model\":{\"type\":" + json_quote(state.model->type_name()) +
          ",\"tensors\":" + std::to_string(state.model->state_dict().size()) + "}";
  if (state.optimizer != nullptr) {
    const optim::Optimizer& opt = *state.optimizer;
    const size_t params = parameter_count(opt);
    const optim::OptimizerState s = opt.state_dict();
    json += ",\"optimizer\":{\"type\":" + json_quote(demangled(typeid(opt))) +
            ",\"groups\":" + std::to_string(opt.num_param_groups()) + ",\"params\":" + std::to_string(params) +
            ",\"steps\":" + json_object(s.steps, [](int64_t v) { return std::to_string(v); }) +
            ",\"group_values\":" + doubles_object(s.groups) + "}";
  }
  if (state.scheduler != nullptr)
    json += ",\"scheduler\":{\"type\":" + json_quote(demangled(typeid(*state.scheduler))) +
            ",\"state\":" + doubles_object(state.scheduler->state_dict()) + "}";
  if (state.plateau != nullptr) json += ",\"plateau\":{\"state\":" + doubles_object(state.plateau->state_dict()) + "}";
  if (state.grad_scaler != nullptr)
    json += ",\"grad_scaler\":{\"state\":" + doubles_object(state.grad_scaler->state_dict()) + "}";
  if (state.loader != nullptr) {
    const data::DataLoaderOptions& o = state.loader->options();
    json += ",\"data_loader\":{\"seed\":\"" + std::to_string(o.seed) +
            "\",\"batch_size\":" + std::to_string(o.batch_size) + ",\"shuffle\":" + (o.shuffle ? "true" : "false") +
            ",\"drop_last\":" + (o.drop_last ? "true" : "false") +
            ",\"dataset_size\":" + std::to_string(state.loader->dataset()->size()) +
            ",\"batches\":" + std::to_string(state.loader->size()) + "}";
  }
  json += ",\"metadata\":" + json_object(state.metadata, [](const std::string& v) { return json_quote(v); }) + "}";
  return json;
}

std::string tag_for(const std::string& function, const std::string& name) {
  return "[" + function + "] " + name + ": ";
}

// The same keys as `expected` (a state_dict of the caller's object), or an error listing the first difference.
void check_same_keys(const std::string& tag, const char* part, const std::map<std::string, double>& saved,
                     const std::map<std::string, double>& expected) {
  for (const auto& [key, value] : expected)
    KEEL_CHECK(saved.count(key), tag, "the ", part, " state lacks '", key, "': it was saved from a different ", part,
               " (or different parameter groups)");
  for (const auto& [key, value] : saved)
    KEEL_CHECK(expected.count(key), tag, "the ", part, " state has an unexpected entry '", key,
               "': it was saved from a different ", part, " (or different parameter groups)");
}

}  // namespace

void save_checkpoint(const std::string& path, const TrainingState& state) {
  const std::string tag = tag_for("save_checkpoint", path);
  KEEL_CHECK(state.model != nullptr, tag, "TrainingState.model is null: a checkpoint needs the model");
  KEEL_CHECK(state.step >= 0 && state.epoch >= 0 && state.batch_in_epoch >= 0, tag,
             "step, epoch and batch_in_epoch must be >= 0, got ", state.step, ", ", state.epoch, ", ",
             state.batch_in_epoch);
  if (state.loader != nullptr)
    KEEL_CHECK(state.batch_in_epoch <= state.loader->size(), tag, "batch_in_epoch ", state.batch_in_epoch,
               " is past the loader's ", state.loader->size(), " batches per epoch");
  NamedTensors tensors;
  for (auto& [name, tensor] : state.model->state_dict()) tensors.emplace_back(kModelPrefix + name, tensor);
  if (state.optimizer != nullptr)
    for (auto& [name, tensor] : state.optimizer->state_dict().tensors) tensors.emplace_back(kOptimPrefix + name, tensor);
  for (const auto& [name, tensor] : state.extra_tensors) {
    KEEL_CHECK(!name.empty(), tag, "an extra tensor has an empty name");
    tensors.emplace_back(kExtraPrefix + name, tensor);
  }
  remove_stale_temporaries(path);
  save_safetensors(path, tensors, {{kCheckpointMetadataKey, metadata_json(state)}});
}

void load_checkpoint(const std::string& path, TrainingState& state) {
  const std::string tag = tag_for("load_checkpoint", path);
  KEEL_CHECK(state.model != nullptr, tag, "TrainingState.model is null: pass the model to load into");
  SafetensorsContents contents = read_safetensors(path);
  const auto meta_it = contents.metadata.find(kCheckpointMetadataKey);
  KEEL_CHECK(meta_it != contents.metadata.end(), tag, "no '", kCheckpointMetadataKey,
             "' metadata: this is a safetensors file but not a training checkpoint (use load_safetensors for plain "
             "weights)");
  const CheckpointMetadata meta = parse_checkpoint_metadata(meta_it->second, path);

  // Sort the tensors by part.
  nn::StateDict model_tensors;
  optim::OptimizerState optimizer_state;
  NamedTensors extra;
  for (auto& [name, tensor] : contents.tensors) {
    if (name.starts_with(kModelPrefix)) {
      model_tensors.emplace_back(name.substr(std::string_view(kModelPrefix).size()), tensor);
    } else if (name.starts_with(kOptimPrefix)) {
      KEEL_CHECK(meta.has_optimizer, tag, "tensor '", name, "' is optimizer state but the metadata has no optimizer");
      optimizer_state.tensors[name.substr(std::string_view(kOptimPrefix).size())] = tensor;
    } else if (name.starts_with(kExtraPrefix)) {
      extra.emplace_back(name.substr(std::string_view(kExtraPrefix).size()), tensor);
    } else {
      fail(tag, "tensor '", name, "' belongs to no part of a checkpoint (model., optim. or extra.)");
    }
  }
  KEEL_CHECK(static_cast<int64_t>(model_tensors.size()) == meta.model_tensors, tag, "the metadata says ",
             meta.model_tensors, " model tensors but the file has ", model_tensors.size());

  // The model: exactly its names, shapes and dtypes.
  const nn::StateDict own = state.model->state_dict();
  {
    std::map<std::string, const Tensor*> saved;
    for (const auto& [name, tensor] : model_tensors) saved[name] = &tensor;
    for (const auto& [name, tensor] : own) {
      auto it = saved.find(name);
      KEEL_CHECK(it != saved.end(), tag, "the model's '", name, "' is not in the checkpoint: it was saved from a "
                 "different model (checkpoint: ", meta.model_type, " with ", meta.model_tensors, " tensors; this model: ",
                 state.model->type_name(), " with ", own.size(), ")");
      KEEL_CHECK(it->second->shape() == tensor.shape(), tag, "'", name, "' has shape ", it->second->shape(),
                 " in the checkpoint but ", tensor.shape(), " in the model: a different architecture");
      KEEL_CHECK(it->second->dtype() == tensor.dtype(), tag, "'", name, "' is ", dtype_name(it->second->dtype()),
                 " in the checkpoint but ", dtype_name(tensor.dtype()),
                 " in the model: convert the model first so the resume is exact");
      saved.erase(it);
    }
    KEEL_CHECK(saved.empty(), tag, "the checkpoint has '", saved.empty() ? "" : saved.begin()->first,
               "' that the model lacks (", saved.size(), " unexpected tensors): it was saved from a different model");
  }

  // The optimizer: same type, groups and parameter count; the rest is checked by its load_state_dict.
  if (state.optimizer != nullptr) {
    optim::Optimizer& opt = *state.optimizer;
    KEEL_CHECK(meta.has_optimizer, tag, "the checkpoint has no optimizer state (pass optimizer = nullptr to load "
               "only the rest)");
    const std::string type = demangled(typeid(opt));
    KEEL_CHECK(meta.optimizer_type == type, tag, "the optimizer state is of ", meta.optimizer_type,
               " but the optimizer is ", type);
    const size_t params = parameter_count(opt);
    KEEL_CHECK(meta.optimizer_groups == static_cast<int64_t>(opt.num_param_groups()) &&
                   meta.optimizer_params == static_cast<int64_t>(params),
               tag, "the optimizer state has ", meta.optimizer_groups, " groups and ", meta.optimizer_params,
               " parameters but the optimizer has ", opt.num_param_groups(), " and ", params);
    optimizer_state.steps = meta.optimizer_steps;
    optimizer_state.groups = meta.optimizer_groups_values;
  }
  if (state.scheduler != nullptr) {
    KEEL_CHECK(meta.has_scheduler, tag, "the checkpoint has no LR schedule state");
    const std::string type = demangled(typeid(*state.scheduler));
    KEEL_CHECK(meta.scheduler_type == type, tag, "the LR schedule state is of ", meta.scheduler_type,
               " but the schedule is ", type);
    check_same_keys(tag, "LR schedule", meta.scheduler_state, state.scheduler->state_dict());
  }
  if (state.plateau != nullptr) {
    KEEL_CHECK(meta.has_plateau, tag, "the checkpoint has no ReduceLROnPlateau state");
    check_same_keys(tag, "ReduceLROnPlateau", meta.plateau_state, state.plateau->state_dict());
  }
  if (state.grad_scaler != nullptr) {
    KEEL_CHECK(meta.has_grad_scaler, tag, "the checkpoint has no GradScaler state");
    check_same_keys(tag, "GradScaler", meta.grad_scaler_state, state.grad_scaler->state_dict());
  }
  if (state.loader != nullptr) {
    const data::DataLoader& loader = *state.loader;
    const data::DataLoaderOptions& o = loader.options();
    KEEL_CHECK(meta.has_loader, tag, "the checkpoint has no data-loader position");
    KEEL_CHECK(meta.loader_seed == o.seed && meta.loader_batch_size == o.batch_size &&
                   meta.loader_shuffle == o.shuffle && meta.loader_drop_last == o.drop_last &&
                   meta.loader_dataset_size == loader.dataset()->size(),
               tag, "the data loader differs from the saved one (seed ", meta.loader_seed, " vs ", o.seed,
               ", batch_size ", meta.loader_batch_size, " vs ", o.batch_size, ", shuffle ", meta.loader_shuffle,
               " vs ", o.shuffle, ", drop_last ", meta.loader_drop_last, " vs ", o.drop_last, ", dataset size ",
               meta.loader_dataset_size, " vs ", loader.dataset()->size(),
               "): the resumed run would visit other batches");
  }

  // Commit. The optimizer goes first: its load_state_dict checks the tensors and either changes
  // nothing or everything; what follows was checked above. Should anything still throw, the
  // optimizer is put back.
  optim::OptimizerState old_optimizer;
  if (state.optimizer != nullptr) {
    old_optimizer = state.optimizer->state_dict();
    state.optimizer->load_state_dict(optimizer_state);
  }
  try {
    state.model->load_state_dict(model_tensors, /*strict=*/true);
    if (state.scheduler != nullptr) state.scheduler->load_state_dict(meta.scheduler_state);
    if (state.plateau != nullptr) state.plateau->load_state_dict(meta.plateau_state);
    if (state.grad_scaler != nullptr) state.grad_scaler->load_state_dict(meta.grad_scaler_state);
  } catch (...) {
    if (state.optimizer != nullptr) state.optimizer->load_state_dict(old_optimizer);
    throw;
  }
  default_generator().set_state(meta.rng);
  if (state.loader != nullptr) state.loader->set_position(meta.epoch, meta.batch_in_epoch);
  state.step = meta.step;
  state.epoch = meta.epoch;
  state.batch_in_epoch = meta.batch_in_epoch;
  state.metadata = meta.metadata;
  state.extra_tensors = std::move(extra);
}

// ---- rotation -----------------------------------------------------------------------------------

namespace {

// (step, path) of folder's checkpoint-<digits>.safetensors files, by step.
std::vector<std::pair<uint64_t, std::string>> rotating_checkpoints(const std::string& folder) {
  std::vector<std::pair<uint64_t, std::string>> found;
  std::error_code error;
  const std::string prefix = "checkpoint-", suffix = ".safetensors";
  for (std::filesystem::directory_iterator it(folder, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) || !name.ends_with(suffix))
      continue;
    const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    uint64_t step = 0;
    const auto [at, bad] = std::from_chars(digits.data(), digits.data() + digits.size(), step);
    if (bad == std::errc() && at == digits.data() + digits.size()) found.emplace_back(step, it->path().string());
  }
  std::sort(found.begin(), found.end());
  return found;
}

}  // namespace

std::string save_rotating_checkpoint(const std::string& folder, const TrainingState& state, int keep) {
  KEEL_CHECK(keep >= 1, "[save_rotating_checkpoint] keep must be >= 1, got ", keep);
  std::filesystem::create_directories(folder);
  char name[64];
  std::snprintf(name, sizeof(name), "checkpoint-%010lld.safetensors", static_cast<long long>(state.step));
  const std::string path = (std::filesystem::path(folder) / name).string();
  save_checkpoint(path, state);
  auto all = rotating_checkpoints(folder);
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) {
    std::error_code error;
    std::filesystem::remove(all[i].second, error);
  }
  return path;
}

std::string latest_checkpoint(const std::string& folder) {
  const auto all = rotating_checkpoints(folder);
  return all.empty() ? std::string() : all.back().second;
}

}  // namespace keel::io
