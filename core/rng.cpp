#include "keel/core/rng.h"

namespace keel {

void Generator::manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(mutex_);
  state_ = {seed, 0};
}
uint64_t Generator::seed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_.seed;
}
PhiloxState Generator::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}
void Generator::set_state(PhiloxState state) {
  std::lock_guard<std::mutex> lock(mutex_);
  state_ = state;
}
PhiloxState Generator::reserve(uint64_t blocks) {
  std::lock_guard<std::mutex> lock(mutex_);
  const PhiloxState start = state_;
  state_.offset += blocks;
  return start;
}

Generator& default_generator() {
  static Generator generator;
  return generator;
}
void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace keel
