#pragma once
// Training checkpoints: everything a run needs to continue exactly where it stopped, in one
// safetensors file (io/safetensors.h), so that N steps straight and N/2 steps, save, a new
// process, load, N/2 steps give the same bytes.
//
//   io::TrainingState state{.model = &net, .optimizer = &opt, .scheduler = &sched, .loader = &loader};
//   state.step = step; state.epoch = epoch; state.batch_in_epoch = batch;   // the NEXT batch to train on
//   io::save_checkpoint("run/checkpoint.safetensors", state);
//   ...
//   io::load_checkpoint("run/checkpoint.safetensors", state);  // new process, same construction
//   // state.step / epoch / batch_in_epoch / metadata / extra_tensors now hold the saved values and
//   // the loader's next begin() runs `epoch` from batch `batch_in_epoch`.
//
// The file: tensors "model.<state_dict name>", "optim.state.<index>.<name>" (the optimizer's
// OptimizerState tensors) and "extra.<name>" (the caller's own tensors); the __metadata__ key
// "keel.checkpoint" holds a JSON object with the rest (format version, step, epoch, batch, the
// default generator's Philox state, the optimizer's type, steps and group values, the schedule's
// state, the loader's settings, user metadata). Numbers that must come back bit for bit are
// written with 17 significant digits (doubles) or as decimal strings (uint64).
//
// Saving is atomic (temporary file, fsync, rename, folder fsync): a process killed during a save
// leaves the previous checkpoint whole. A killed save leaves its hidden temporary file
// (".<name>.tmp-XXXXXX") behind; the next save_checkpoint to the same path removes such files.
//
// Loading checks everything before changing anything: the JSON (version, required keys, types,
// ranges), the model's names, shapes and dtypes, the optimizer's type and parameter count, the
// schedule's type and keys, the loader's seed, batch size and dataset size. A checkpoint that does
// not match throws keel::Error naming the file and what differs, and the model, optimizer,
// schedule, generator, loader and `state` are unchanged.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "keel/core/rng.h"
#include "keel/io/safetensors.h"

namespace keel {
namespace nn { class Module; }
namespace optim {
class Optimizer;
class LRScheduler;
class ReduceLROnPlateau;
class GradScaler;
}  // namespace optim
namespace data { class DataLoader; }
}  // namespace keel

namespace keel::io {

// What a checkpoint saves and restores. Only `model` is required; a null pointer is neither saved
// nor restored (a checkpoint that has a part the caller passes null for is still accepted). The
// default generator's state (dropout, random init) is always saved and restored.
struct TrainingState {
  nn::Module* model = nullptr;
  optim::Optimizer* optimizer = nullptr;
  optim::LRScheduler* scheduler = nullptr;
  optim::ReduceLROnPlateau* plateau = nullptr;
  optim::GradScaler* grad_scaler = nullptr;
  data::DataLoader* loader = nullptr;  // its position is (epoch, batch_in_epoch)
  int64_t step = 0;                    // optimizer steps taken so far
  int64_t epoch = 0;                   // the epoch of the next batch
  int64_t batch_in_epoch = 0;          // the next batch's index within that epoch, in [0, loader size]
  std::map<std::string, std::string> metadata;  // free-form, returned as saved
  NamedTensors extra_tensors;                   // e.g. early stopping's best weights; replaced on load
};

void save_checkpoint(const std::string& path, const TrainingState& state);
void load_checkpoint(const std::string& path, TrainingState& state);

// The checkpoint's JSON metadata, parsed and checked (no model needed): what load_checkpoint reads
// before it compares anything with the caller's objects. Exposed for tools and the fuzz target.
struct CheckpointMetadata {
  int64_t version = 0;
  int64_t step = 0, epoch = 0, batch_in_epoch = 0;
  PhiloxState rng;
  std::string model_type;
  int64_t model_tensors = 0;
  bool has_optimizer = false;
  std::string optimizer_type;
  int64_t optimizer_params = 0, optimizer_groups = 0;
  std::map<std::string, int64_t> optimizer_steps;
  std::map<std::string, double> optimizer_groups_values;
  bool has_scheduler = false;
  std::string scheduler_type;
  std::map<std::string, double> scheduler_state;
  bool has_plateau = false;
  std::map<std::string, double> plateau_state;
  bool has_grad_scaler = false;
  std::map<std::string, double> grad_scaler_state;
  bool has_loader = false;
  uint64_t loader_seed = 0;
  int64_t loader_batch_size = 0, loader_dataset_size = 0, loader_batches = 0;
  bool loader_shuffle = false, loader_drop_last = false;
  std::map<std::string, std::string> metadata;
};
inline constexpr int64_t kCheckpointVersion = 1;
inline constexpr const char* kCheckpointMetadataKey = "keel.checkpoint";
// `name` (a file name) starts error messages.
CheckpointMetadata parse_checkpoint_metadata(std::string_view json, const std::string& name);

// Keep-last-k rotation: writes folder/checkpoint-<step, 10 digits>.safetensors (atomically), then
// removes all but the newest `keep` such files (by step). Returns the path written.
// latest_checkpoint: the path of the one with the highest step, "" when the folder has none.
std::string save_rotating_checkpoint(const std::string& folder, const TrainingState& state, int keep = 3);
std::string latest_checkpoint(const std::string& folder);

}  // namespace keel::io
