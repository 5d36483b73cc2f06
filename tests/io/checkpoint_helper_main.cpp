// The other processes of the checkpoint tests (tests/io/checkpoint_resume.cmake, test_checkpoint.cpp):
//
//   checkpoint_helper straight N OUT              train N steps, save the final state to OUT
//   checkpoint_helper first N CKPT                train N/2 steps, save a checkpoint (mid-epoch)
//   checkpoint_helper resume N CKPT OUT [--skip-rng]
//                                                 a new process: load CKPT, train to step N, save OUT;
//                                                 --skip-rng leaves the generator unrestored (the
//                                                 test's proof that a broken resume is caught)
//   checkpoint_helper compare A B                 exit 0 when every tensor of A and B has the same
//                                                 bytes (and the JSON metadata is the same), else 1
//   checkpoint_helper save-loop PATH              resume from PATH if it exists, then save step s+1,
//                                                 s+2, ... forever (tensors filled with the step),
//                                                 printing "saved <step>" after each save returns
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>

#include "checkpoint_harness.h"

using namespace keel;

namespace {

int compare(const std::string& a, const std::string& b) {
  const io::SafetensorsContents x = io::read_safetensors(a), y = io::read_safetensors(b);
  int differences = 0;
  if (x.tensors.size() != y.tensors.size()) {
    std::cout << "tensor counts differ: " << x.tensors.size() << " vs " << y.tensors.size() << "\n";
    return 1;
  }
  for (size_t i = 0; i < x.tensors.size(); ++i) {
    const auto& [name, t] = x.tensors[i];
    const auto& [other_name, u] = y.tensors[i];
    const bool same = name == other_name && t.dtype() == u.dtype() && t.shape() == u.shape() &&
                      std::memcmp(t.contiguous().raw_data(), u.contiguous().raw_data(), t.nbytes()) == 0;
    if (!same) {
      std::cout << "differs: " << name << "\n";
      ++differences;
    }
  }
  if (x.metadata != y.metadata) {
    std::cout << "metadata differs:\n  " << x.metadata.at(io::kCheckpointMetadataKey) << "\n  "
              << y.metadata.at(io::kCheckpointMetadataKey) << "\n";
    ++differences;
  }
  std::cout << (differences == 0 ? "identical: " : "DIFFERENT: ") << x.tensors.size() << " tensors, "
            << differences << " differences\n";
  return differences == 0 ? 0 : 1;
}

// A module with one large parameter (8M f32 = 32 MB: a save takes tens of ms).
struct Big : nn::Module {
  Tensor weight = zeros({2048, 4096});
  Big() { register_parameter("weight", weight); }
};

int save_loop(const std::string& path) {
  Big big;
  io::TrainingState state{.model = &big};
  if (std::filesystem::exists(path)) io::load_checkpoint(path, state);
  for (;;) {
    ++state.step;
    big.weight.fill_(static_cast<double>(state.step));
    state.metadata["step"] = std::to_string(state.step);
    io::save_checkpoint(path, state);
    std::printf("saved %lld\n", static_cast<long long>(state.step));
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "compare" && argc == 4) return compare(argv[2], argv[3]);
  if (mode == "save-loop" && argc == 3) return save_loop(argv[2]);
  if ((mode == "straight" || mode == "first") && argc == 4) {
    const int64_t n = std::stoll(argv[2]);
    test::CheckpointHarness run(n);
    run.train(mode == "straight" ? n : n / 2);
    io::save_checkpoint(argv[3], run.state());
    std::cout << mode << ": " << run.step << " steps, at epoch " << run.epoch << " batch " << run.batch_in_epoch
              << "\n";
    return 0;
  }
  if (mode == "resume" && (argc == 5 || (argc == 6 && std::string(argv[5]) == "--skip-rng"))) {
    const int64_t n = std::stoll(argv[2]);
    test::CheckpointHarness run(n);
    io::TrainingState state = run.state();
    const PhiloxState fresh = default_generator().state();
    io::load_checkpoint(argv[3], state);
    if (argc == 6) default_generator().set_state(fresh);
    run.take_position(state);
    std::cout << "resume: from step " << run.step << " (epoch " << run.epoch << " batch " << run.batch_in_epoch << ")\n";
    run.train(n - run.step);
    io::save_checkpoint(argv[4], run.state());
    return 0;
  }
  std::cerr << "usage: see the top of checkpoint_helper_main.cpp\n";
  return 2;
} catch (const std::exception& error) {
  std::cerr << "error: " << error.what() << "\n";
  return 1;
}
