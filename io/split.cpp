// Splits and content hashes (see split.h).
#include "keel/io/split.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "keel/core/error.h"
#include "keel/io/data_loader.h"
#include "keel/io/sha256.h"

namespace keel::data {
namespace {

void check_ratios(const std::vector<double>& ratios, const char* op) {
  KEEL_CHECK(!ratios.empty(), "[", op, "] give at least one ratio");
  double sum = 0;
  for (double ratio : ratios) {
    KEEL_CHECK(ratio >= 0 && std::isfinite(ratio), "[", op, "] ratios must be >= 0, got ", ratio);
    sum += ratio;
  }
  KEEL_CHECK(std::abs(sum - 1.0) <= 1e-6, "[", op, "] ratios must sum to 1, got ", sum);
}

// Any key type with operator<.
template <typename Key>
std::vector<std::vector<int64_t>> split_groups(const std::vector<Key>& keys, const std::vector<double>& ratios,
                                               uint64_t seed) {
  check_ratios(ratios, "group_split");
  // Groups sorted by key, so the result does not depend on the order the items come in.
  std::map<Key, std::vector<int64_t>> groups;
  for (size_t i = 0; i < keys.size(); ++i) groups[keys[i]].push_back(static_cast<int64_t>(i));
  std::vector<const std::vector<int64_t>*> ordered;
  for (const auto& [key, members] : groups) ordered.push_back(&members);
  const std::vector<int64_t> shuffle = random_permutation(static_cast<int64_t>(ordered.size()), seed);

  const double total = static_cast<double>(keys.size());
  std::vector<double> ends(ratios.size());
  double cumulative = 0;
  for (size_t s = 0; s < ratios.size(); ++s) ends[s] = (cumulative += ratios[s]) * total;
  std::vector<std::vector<int64_t>> splits(ratios.size());
  double position = 0;
  for (int64_t g : shuffle) {
    const std::vector<int64_t>& members = *ordered[static_cast<size_t>(g)];
    const double midpoint = position + 0.5 * static_cast<double>(members.size());
    size_t s = 0;
    while (s + 1 < ratios.size() && midpoint >= ends[s]) ++s;
    splits[s].insert(splits[s].end(), members.begin(), members.end());
    position += static_cast<double>(members.size());
  }
  for (auto& split : splits) std::sort(split.begin(), split.end());
  return splits;
}

void hash_tensor(Sha256& hash, const Tensor& tensor) {
  if (!tensor.defined()) {
    hash.update("undefined;");
    return;
  }
  const Tensor data = tensor.is_cpu() ? tensor.contiguous() : tensor.cpu().contiguous();
  hash.update(dtype_name(data.dtype()));
  const int64_t dims = data.dim();
  hash.update(&dims, sizeof dims);
  hash.update(data.shape().data(), data.shape().size() * sizeof(int64_t));
  if (data.numel() > 0) hash.update(data.raw_data(), data.nbytes());
}

void hash_indices(Sha256& hash, std::vector<int64_t>& indices) {
  std::sort(indices.begin(), indices.end());
  hash.update("keel split v1;");
  const auto count = static_cast<int64_t>(indices.size());
  hash.update(&count, sizeof count);
  if (!indices.empty()) hash.update(indices.data(), indices.size() * sizeof(int64_t));
}

}  // namespace

std::vector<std::vector<int64_t>> random_split(int64_t size, const std::vector<double>& ratios, uint64_t seed) {
  KEEL_CHECK(size >= 0, "[random_split] size must be >= 0, got ", size);
  check_ratios(ratios, "random_split");
  std::vector<int64_t> lengths;
  int64_t assigned = 0;
  for (double ratio : ratios) {
    lengths.push_back(static_cast<int64_t>(std::floor(static_cast<double>(size) * ratio)));
    assigned += lengths.back();
  }
  for (int64_t i = 0; assigned < size; ++i, ++assigned) ++lengths[static_cast<size_t>(i) % lengths.size()];
  const std::vector<int64_t> order = random_permutation(size, seed);
  std::vector<std::vector<int64_t>> splits;
  int64_t start = 0;
  for (int64_t length : lengths) {
    splits.emplace_back(order.begin() + start, order.begin() + start + length);
    start += length;
  }
  return splits;
}

std::vector<std::vector<int64_t>> group_split(const std::vector<int64_t>& keys, const std::vector<double>& ratios,
                                              uint64_t seed) {
  return split_groups(keys, ratios, seed);
}

std::vector<std::vector<int64_t>> group_split(const std::vector<std::string>& keys,
                                              const std::vector<double>& ratios, uint64_t seed) {
  return split_groups(keys, ratios, seed);
}

std::string tensor_hash(const Tensor& tensor) {
  Sha256 hash;
  hash_tensor(hash, tensor);
  return hash.hex_digest();
}

std::string split_hash(const Dataset& dataset, std::vector<int64_t> indices) {
  Sha256 hash;
  hash_indices(hash, indices);
  for (int64_t index : indices) {
    KEEL_CHECK(index >= 0 && index < dataset.size(), "[split_hash] index ", index, " is outside [0, ",
               dataset.size(), ")");
    const Example example = dataset.get(index);
    hash_tensor(hash, example.input);
    hash_tensor(hash, example.target);
  }
  return hash.hex_digest();
}

std::string split_hash(const std::vector<Tensor>& tensors, std::vector<int64_t> indices) {
  for (const Tensor& tensor : tensors)
    KEEL_CHECK(tensor.defined() && tensor.dim() >= 1 && tensor.size(0) == tensors[0].size(0),
               "[split_hash] every tensor needs the same first dim (one row per example)");
  Sha256 hash;
  hash_indices(hash, indices);
  for (int64_t index : indices) {
    KEEL_CHECK(tensors.empty() || (index >= 0 && index < tensors[0].size(0)), "[split_hash] index ", index,
               " is outside the tensors' rows");
    for (const Tensor& tensor : tensors) hash_tensor(hash, tensor.select(0, index));
  }
  return hash.hex_digest();
}

}  // namespace keel::data
