// Training checkpoints: round trips, resume equals an uninterrupted run (in process here; across
// processes in the ctest io_checkpoint_resume), DataLoader.set_position, every kind of bad file or
// mismatched model / optimizer -> keel::Error with nothing changed, and saves killed by SIGKILL.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "checkpoint_harness.h"
#include "io_test_files.h"
#include "test_util.h"

using namespace keel;
using namespace keel::test;

namespace {

std::filesystem::path temp_folder() {
  return std::filesystem::temp_directory_path() / ("keel_checkpoint_" + std::to_string(::getpid()));
}
// The files this process wrote go when it exits.
const struct RemoveTempFolder {
  ~RemoveTempFolder() {
    std::error_code ignored;
    std::filesystem::remove_all(temp_folder(), ignored);
  }
} remove_temp_folder;

std::string temp_path(const std::string& name) {
  std::filesystem::create_directories(temp_folder());
  return (temp_folder() / name).string();
}




bool same_named(const io::NamedTensors& a, const io::NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].first != b[i].first || !same_bytes(a[i].second, b[i].second)) return false;
  return true;
}

io::NamedTensors optimizer_tensors(const optim::Optimizer& optimizer) {
  io::NamedTensors out;
  for (const auto& [name, t] : optimizer.state_dict().tensors) out.emplace_back(name, t.clone());
  return out;
}

// Everything load_checkpoint may change, copied.
struct Snapshot {
  io::NamedTensors model, optimizer;
  std::map<std::string, int64_t> steps;
  std::map<std::string, double> groups, schedule;
  PhiloxState rng;
  int64_t loader_epoch;
  explicit Snapshot(CheckpointHarness& run) {
    for (const auto& [name, t] : run.model.state_dict()) model.emplace_back(name, t.clone());
    optimizer = optimizer_tensors(run.optimizer);
    steps = run.optimizer.state_dict().steps;
    groups = run.optimizer.state_dict().groups;
    schedule = run.schedule.state_dict();
    rng = default_generator().state();
    loader_epoch = run.loader.epoch();
  }
  bool operator==(const Snapshot& o) const {
    return same_named(model, o.model) && same_named(optimizer, o.optimizer) && steps == o.steps &&
           groups == o.groups && schedule == o.schedule && rng.seed == o.rng.seed && rng.offset == o.rng.offset &&
           loader_epoch == o.loader_epoch;
  }
};

// A checkpoint of a harness trained a few steps (mid-epoch).
std::string trained_checkpoint(const std::string& name, int64_t steps = 4) {
  CheckpointHarness run(20);
  run.train(steps);
  const std::string path = temp_path(name);
  io::TrainingState state = run.state();
  state.metadata = {{"note", "a \"quoted\" value\n"}, {"run", "7"}};
  state.extra_tensors = {{"best.weight", full({3}, 1.5)}};
  io::save_checkpoint(path, state);
  return path;
}

std::string metadata_of(const std::string& path) {
  return io::read_safetensors(path).metadata.at(io::kCheckpointMetadataKey);
}

// The checkpoint at `path` with its JSON replaced.
std::string with_json(const std::string& path, const std::string& name, const std::string& json) {
  const io::SafetensorsContents contents = io::read_safetensors(path);
  const std::string out = temp_path(name);
  io::save_safetensors(out, contents.tensors, {{io::kCheckpointMetadataKey, json}});
  return out;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

// load_checkpoint into a trained harness must throw an error containing `message` and change nothing.
void require_refused(const std::string& path, const std::string& message) {
  CheckpointHarness run(20);
  run.train(2);
  const Snapshot before(run);
  io::TrainingState state = run.state();
  state.metadata = {{"kept", "yes"}};
  try {
    io::load_checkpoint(path, state);
    FAIL("load_checkpoint accepted " << path);
  } catch (const Error& error) {
    INFO(error.what());
    CHECK(std::string(error.what()).find(message) != std::string::npos);
  }
  CHECK(Snapshot(run) == before);
  CHECK(state.step == 2);
  CHECK(state.metadata.at("kept") == "yes");
}

}  // namespace

TEST_CASE("checkpoint: a save and load restores everything", "[io]") {
  const std::string path = trained_checkpoint("roundtrip.safetensors");
  CheckpointHarness saved(20);
  saved.train(4);
  const Snapshot expected(saved);

  CheckpointHarness run(20);  // fresh weights, no optimizer state, other generator position
  run.train(1);
  io::TrainingState state = run.state();
  io::load_checkpoint(path, state);
  run.take_position(state);
  CHECK(Snapshot(run) == expected);
  CHECK(state.step == 4);
  CHECK(state.epoch == 0);
  CHECK(state.batch_in_epoch == 4);
  CHECK(state.metadata == std::map<std::string, std::string>{{"note", "a \"quoted\" value\n"}, {"run", "7"}});
  REQUIRE(state.extra_tensors.size() == 1);
  CHECK(state.extra_tensors[0].first == "best.weight");
  CHECK(same_bytes(state.extra_tensors[0].second, full({3}, 1.5)));
  CHECK(run.schedule.get_last_lr() == saved.schedule.get_last_lr());
  CHECK(run.optimizer.lr() == saved.optimizer.lr());
}

TEST_CASE("checkpoint: resuming equals an uninterrupted run, bit for bit", "[io]") {
  // In one process; checkpoint_resume.cmake does the same across processes.
  CheckpointHarness straight(20);
  straight.train(20);
  for (int64_t split : {3, 6, 10}) {  // mid-epoch, at an epoch boundary, mid-epoch of epoch 1
    CheckpointHarness first(20);
    first.train(split);
    const std::string path = temp_path("resume.safetensors");
    io::save_checkpoint(path, first.state());
    manual_seed(999);  // what happens between processes does not matter
    CheckpointHarness second(20);
    io::TrainingState state = second.state();
    io::load_checkpoint(path, state);
    second.take_position(state);
    second.train(20 - split);
    INFO("split at step " << split);
    CHECK(Snapshot(second) == Snapshot(straight));
    CHECK(second.epoch == straight.epoch);
    CHECK(second.batch_in_epoch == straight.batch_in_epoch);
  }
}

TEST_CASE("checkpoint: DataLoader.set_position starts mid-epoch with the same batches", "[io]") {
  auto dataset = CheckpointHarness::make_dataset();
  for (int workers : {0, 2}) {
    data::DataLoader full(dataset, {.batch_size = 5, .shuffle = true, .seed = 3, .num_workers = workers});
    full.set_epoch(2);
    std::vector<data::Batch> all;
    for (const data::Batch& batch : full) all.push_back(batch);
    REQUIRE(all.size() == 10);  // 48 images, the last batch has 3
    for (int64_t start : {0, 1, 7, 9, 10}) {
      data::DataLoader resumed(dataset, {.batch_size = 5, .shuffle = true, .seed = 3, .num_workers = workers});
      resumed.set_position(2, start);
      int64_t expected_index = start;
      for (auto it = resumed.begin(); it != resumed.end(); ++it, ++expected_index) {
        INFO("workers " << workers << " start " << start << " batch " << it.index());
        REQUIRE(it.index() == expected_index);
        CHECK(same_bytes(it->input, all[static_cast<size_t>(it.index())].input));
        CHECK(same_bytes(it->target, all[static_cast<size_t>(it.index())].target));
      }
      CHECK(expected_index == 10);
      // The next epoch starts at batch 0 again.
      CHECK(resumed.epoch() == 3);
      CHECK(resumed.begin().index() == 0);
    }
  }
  data::DataLoader loader(dataset, {.batch_size = 5});
  CHECK_THROWS_WITH(loader.set_position(0, 11), Catch::Contains("outside [0, 10]"));
  CHECK_THROWS_WITH(loader.set_position(-1, 0), Catch::Contains("must be >= 0"));
}

TEST_CASE("checkpoint: truncated files are refused and change nothing", "[io]") {
  const std::string path = trained_checkpoint("whole.safetensors");
  const std::string bytes = read_bytes(path);
  const std::string cut = temp_path("cut.safetensors");
  // Every 97th byte, and every byte of the first 64 and the last 16.
  std::vector<size_t> sizes;
  for (size_t n = 0; n < bytes.size(); n += 97) sizes.push_back(n);
  for (size_t n = 0; n < 64; ++n) sizes.push_back(n);
  for (size_t n = bytes.size() - 16; n < bytes.size(); ++n) sizes.push_back(n);
  CheckpointHarness run(20);
  run.train(2);
  const Snapshot before(run);
  int refused = 0;
  for (size_t n : sizes) {
    write_bytes(cut, bytes.substr(0, n));
    io::TrainingState state = run.state();
    try {
      io::load_checkpoint(cut, state);
      FAIL("a checkpoint cut to " << n << " of " << bytes.size() << " bytes loaded");
    } catch (const Error& error) {
      ++refused;
      CHECK(std::string(error.what()).find(cut) != std::string::npos);  // names the file
    }
  }
  CHECK(refused == static_cast<int>(sizes.size()));
  CHECK(Snapshot(run) == before);
}

TEST_CASE("checkpoint: a different model or optimizer is refused and nothing changes", "[io]") {
  const std::string path = trained_checkpoint("good.safetensors");
  const io::SafetensorsContents good = io::read_safetensors(path);
  const std::string json = good.metadata.at(io::kCheckpointMetadataKey);
  auto rewritten = [&](const std::string& name, const std::function<void(io::NamedTensors&)>& edit) {
    io::NamedTensors tensors = good.tensors;
    edit(tensors);
    const std::string out = temp_path(name);
    io::save_safetensors(out, tensors, good.metadata);
    return out;
  };
  SECTION("a missing model tensor") {
    require_refused(rewritten("missing.safetensors",
                              [](io::NamedTensors& t) {
                                t.erase(std::find_if(t.begin(), t.end(), [](auto& e) {
                                  return e.first == "model.classifier.2.weight";
                                }));
                              }),
                    "model tensors but the file has");
  }
  SECTION("a missing model tensor, the count adjusted") {
    io::NamedTensors tensors = good.tensors;
    tensors.erase(std::find_if(tensors.begin(), tensors.end(),
                               [](auto& e) { return e.first == "model.classifier.2.weight"; }));
    const std::string out = temp_path("missing2.safetensors");
    const auto count = io::parse_checkpoint_metadata(json, "x").model_tensors;
    io::save_safetensors(out, tensors,
                         {{io::kCheckpointMetadataKey, replaced(json, "\"tensors\":" + std::to_string(count),
                                                                "\"tensors\":" + std::to_string(count - 1))}});
    require_refused(out, "'classifier.2.weight' is not in the checkpoint");
  }
  SECTION("an extra model tensor") {
    io::NamedTensors tensors = good.tensors;
    tensors.emplace_back("model.extra.weight", zeros({2}));
    const std::string out = temp_path("extra.safetensors");
    const auto count = io::parse_checkpoint_metadata(json, "x").model_tensors;
    io::save_safetensors(out, tensors,
                         {{io::kCheckpointMetadataKey, replaced(json, "\"tensors\":" + std::to_string(count),
                                                                "\"tensors\":" + std::to_string(count + 1))}});
    require_refused(out, "'extra.weight' that the model lacks");
  }
  SECTION("a mis-shaped model tensor") {
    require_refused(rewritten("shape.safetensors",
                              [](io::NamedTensors& t) {
                                for (auto& [name, tensor] : t)
                                  if (name == "model.classifier.2.weight") tensor = zeros({10, 17});
                              }),
                    "has shape [10, 17] in the checkpoint but [16, 32] in the model");
  }
  SECTION("a model tensor of another dtype") {
    require_refused(rewritten("dtype.safetensors",
                              [](io::NamedTensors& t) {
                                for (auto& [name, tensor] : t)
                                  if (name == "model.classifier.2.weight") tensor = tensor.to(DType::f64);
                              }),
                    "is float64 in the checkpoint but float32 in the model");
  }
  SECTION("a tensor of no part") {
    require_refused(rewritten("stray.safetensors", [](io::NamedTensors& t) { t.emplace_back("stray", zeros({1})); }),
                    "belongs to no part");
  }
  SECTION("a mis-shaped optimizer tensor (after the model was checked: still nothing changes)") {
    require_refused(rewritten("optshape.safetensors",
                              [](io::NamedTensors& t) {
                                for (auto& [name, tensor] : t)
                                  if (name == "optim.state.0.exp_avg") tensor = zeros({1});
                              }),
                    "'state.0.exp_avg' has shape [1]");
  }
  SECTION("another optimizer kind") {
    CheckpointHarness run(20);
    optim::SGD sgd(run.model.parameters(), {.lr = 0.1, .momentum = 0.9});
    const Snapshot before(run);
    io::TrainingState state{.model = &run.model, .optimizer = &sgd};
    CHECK_THROWS_WITH(io::load_checkpoint(path, state),
                      Catch::Contains("optimizer state is of keel::optim::AdamW but the optimizer is keel::optim::SGD"));
    CHECK(Snapshot(run) == before);
  }
  SECTION("another parameter count") {
    CheckpointHarness run(20);
    auto params = run.model.parameters();
    params.pop_back();
    optim::AdamW fewer(params, {.lr = 1e-2});
    io::TrainingState state{.model = &run.model, .optimizer = &fewer};
    const Snapshot before(run);
    CHECK_THROWS_WITH(io::load_checkpoint(path, state), Catch::Contains("parameters but the optimizer has 1 and"));
    CHECK(Snapshot(run) == before);
  }
  SECTION("another data loader") {
    CheckpointHarness run(20);
    data::DataLoader other(run.dataset, {.batch_size = 8, .shuffle = true, .seed = 6});
    io::TrainingState state = run.state();
    state.loader = &other;
    const Snapshot before(run);
    CHECK_THROWS_WITH(io::load_checkpoint(path, state), Catch::Contains("the data loader differs"));
    CHECK(Snapshot(run) == before);
  }
  SECTION("a plain safetensors file") {
    const std::string plain = temp_path("plain.safetensors");
    CheckpointHarness run(20);
    io::save_safetensors(plain, run.model.state_dict());
    require_refused(plain, "not a training checkpoint");
  }
}

TEST_CASE("checkpoint: bad JSON metadata is refused and nothing changes", "[io]") {
  const std::string path = trained_checkpoint("json.safetensors");
  const std::string json = metadata_of(path);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"format\":", "checkpoint metadata:"},
      {"[1, 2]", "must be a JSON object"},
      {replaced(json, "\"version\":1", "\"version\":2"), "version 2 is not supported"},
      {replaced(json, "\"version\":1", "\"version\":\"1\""), "'version' must be an integer"},
      {replaced(json, "\"version\":1,", ""), "'version' is missing"},
      {replaced(json, "\"format\":\"keel.checkpoint\"", "\"format\":\"other\""), "'format' is not"},
      {replaced(json, "\"step\":4", "\"step\":-4"), "'step' is -4, outside"},
      {replaced(json, "\"step\":4", "\"step\":4.5"), "'step' must be an integer"},
      {replaced(json, "\"batch_in_epoch\":4", "\"batch_in_epoch\":7"), "past the epoch's 6 batches"},
      {replaced(json, "\"rng\":{\"seed\":\"", "\"rng\":{\"seed\":\"x"), "'rng.seed' must be a decimal number"},
      {replaced(json, "\"rng\":{", "\"rng\":{\"more\":1,"), "'rng.more' is not a known key"},
      {replaced(json, "\"metadata\":{", "\"surprise\":1,\"metadata\":{"), "'surprise' is not a known key"},
      {replaced(json, "\"run\":\"7\"", "\"run\":7"), "'metadata.run' must be a string"},
      {replaced(json, "\"shuffle\":true", "\"shuffle\":1"), "'data_loader.shuffle' must be true or false"},
      {replaced(json, "\"last_epoch\":4.0", "\"last_epoch\":-1.0"), "'scheduler.state.last_epoch' must be a whole"},
      {replaced(json, "\"last_epoch\":4.0", "\"last_epoch\":4.0,\"extra\":1.0"), "unexpected entry 'extra'"},
      {replaced(json, "\"type\":\"keel::optim::WarmupCosine\"", "\"type\":\"keel::optim::StepLR\""),
       "LR schedule state is of keel::optim::StepLR"},
      {replaced(json, "\"param_groups.0.lr\":", "\"param_groups.0.lr\":-"), "must be finite and >= 0"},
      {replaced(json, "\"state.0.step\":4", "\"state.0.step\":-1"), "'optimizer.steps.state.0.step' is -1"},
  };
  for (const auto& [text, message] : cases) {
    INFO(text);
    require_refused(with_json(path, "badjson.safetensors", text), message);
  }
}

TEST_CASE("checkpoint: parse_checkpoint_metadata reads what save_checkpoint writes", "[io]") {
  const std::string path = trained_checkpoint("meta.safetensors", 7);
  const io::CheckpointMetadata m = io::parse_checkpoint_metadata(metadata_of(path), "meta");
  CHECK(m.version == io::kCheckpointVersion);
  CHECK(m.step == 7);
  CHECK(m.epoch == 1);
  CHECK(m.batch_in_epoch == 1);
  CHECK(m.model_type == "SmallCNN");
  CHECK(m.optimizer_type == "keel::optim::AdamW");
  CHECK(m.scheduler_state.at("last_epoch") == 7);
  CHECK(m.loader_batches == 6);
  CHECK(m.metadata.at("run") == "7");
  // Doubles survive bit for bit, inf and -0.0 included (ReduceLROnPlateau's best starts at inf).
  CheckpointHarness run(20);
  optim::ReduceLROnPlateau plateau(run.optimizer);
  io::TrainingState state{.model = &run.model, .plateau = &plateau};
  const std::string p = temp_path("plateau.safetensors");
  io::save_checkpoint(p, state);
  optim::ReduceLROnPlateau other(run.optimizer);
  other.step(0.5);
  io::TrainingState into{.model = &run.model, .plateau = &other};
  io::load_checkpoint(p, into);
  CHECK(std::isinf(other.best()));
  CHECK(other.last_epoch() == 0);
  // GradScaler: scale and growth tracker.
  optim::GradScaler scaler({.init_scale = 1024.0});
  scaler.update(96.0);
  io::TrainingState with_scaler{.model = &run.model, .grad_scaler = &scaler};
  io::save_checkpoint(p, with_scaler);
  optim::GradScaler fresh;
  io::TrainingState into_scaler{.model = &run.model, .grad_scaler = &fresh};
  io::load_checkpoint(p, into_scaler);
  CHECK(fresh.get_scale() == 96.0);
  CHECK(fresh.growth_tracker() == 0);
  // A part asked for that the checkpoint lacks.
  io::TrainingState want_plateau{.model = &run.model, .plateau = &other};
  CHECK_THROWS_WITH(io::load_checkpoint(p, want_plateau), Catch::Contains("has no ReduceLROnPlateau state"));
}

TEST_CASE("checkpoint: keep-last-k rotation", "[io]") {
  const std::string folder = temp_path("rotation");
  std::filesystem::remove_all(folder);
  CheckpointHarness run(20);
  CHECK(io::latest_checkpoint(folder).empty());
  for (int64_t step = 1; step <= 5; ++step) {
    io::TrainingState state{.model = &run.model};
    state.step = step * 10;
    io::save_rotating_checkpoint(folder, state, 2);
  }
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) names.push_back(entry.path().filename());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"checkpoint-0000000040.safetensors", "checkpoint-0000000050.safetensors"});
  io::TrainingState state{.model = &run.model};
  io::load_checkpoint(io::latest_checkpoint(folder), state);
  CHECK(state.step == 50);
}

#ifdef KEEL_CHECKPOINT_HELPER
TEST_CASE("checkpoint: a save killed at any moment leaves the previous checkpoint whole", "[io]") {
  const std::string folder = temp_path("killed");
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  const std::string path = folder + "/checkpoint.safetensors";
  std::mt19937 random(1234);
  int64_t last_loaded = 0;
  for (int kill = 0; kill < 10; ++kill) {
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      ::dup2(pipe_fds[1], 1);
      ::close(pipe_fds[0]);
      ::close(pipe_fds[1]);
      ::execl(KEEL_CHECKPOINT_HELPER, KEEL_CHECKPOINT_HELPER, "save-loop", path.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(pipe_fds[1]);
    // Wait for the first save of this process, then kill it at a random moment of a later save.
    std::string output;
    char buffer[256];
    while (output.find('\n') == std::string::npos) {
      const ssize_t got = ::read(pipe_fds[0], buffer, sizeof(buffer));
      REQUIRE(got > 0);
      output.append(buffer, static_cast<size_t>(got));
    }
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 150'000)(random)));
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status));
    for (ssize_t got; (got = ::read(pipe_fds[0], buffer, sizeof(buffer))) > 0;) output.append(buffer, static_cast<size_t>(got));
    ::close(pipe_fds[0]);
    // The last step the child reported as saved: the file holds it, or the next one if the kill
    // came after the rename but before the report.
    const size_t last_line = output.rfind("saved ", output.size() - 1);
    REQUIRE(last_line != std::string::npos);
    const int64_t reported = std::stoll(output.substr(last_line + 6));
    struct Big : nn::Module {
      Tensor weight = zeros({2048, 4096});
      Big() { register_parameter("weight", weight); }
    } big;
    io::TrainingState state{.model = &big};
    io::load_checkpoint(path, state);
    INFO("kill " << kill << ": reported " << reported << ", loaded " << state.step);
    CHECK((state.step == reported || state.step == reported + 1));
    CHECK(state.step > last_loaded);
    CHECK(state.metadata.at("step") == std::to_string(state.step));
    CHECK(same_bytes(big.weight, full({2048, 4096}, static_cast<double>(state.step))));
    last_loaded = state.step;
    int temporaries = 0;
    for (const auto& entry : std::filesystem::directory_iterator(folder))
      temporaries += entry.path().filename().string().rfind(".checkpoint.safetensors.tmp-", 0) == 0;
    CHECK(temporaries <= 1);  // at most the killed save's; the next save removes it
  }
  std::filesystem::remove_all(folder);  // 32 MB
}
#endif
