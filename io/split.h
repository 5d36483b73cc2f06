#pragma once
// Train / validation / test splits, and content hashes that record which data a split holds.
#include <cstdint>
#include <string>
#include <vector>

#include "keel/core/tensor.h"
#include "keel/io/dataset.h"

namespace keel::data {

// Indices [0, size) in a random order (random_permutation(size, seed)), cut into consecutive
// pieces of sizes floor(size * ratio), the remainder handed out one by one from the first piece
// on: torch.utils.data.random_split with fractions. Ratios >= 0 summing to 1.
std::vector<std::vector<int64_t>> random_split(int64_t size, const std::vector<double>& ratios, uint64_t seed);

// Items that share a key land in the same split. The distinct keys are shuffled by seed and
// laid end to end (each group as long as its item count); a group goes to the split whose share
// of [0, size) holds its midpoint, so split sizes follow the ratios up to one group. Each split's
// indices are in ascending order.
std::vector<std::vector<int64_t>> group_split(const std::vector<int64_t>& keys, const std::vector<double>& ratios,
                                              uint64_t seed);
std::vector<std::vector<int64_t>> group_split(const std::vector<std::string>& keys,
                                              const std::vector<double>& ratios, uint64_t seed);

// SHA-256 (hex) of a tensor's dtype, shape and elements (row-major, native byte order).
std::string tensor_hash(const Tensor& tensor);
// SHA-256 (hex) of a split: its indices sorted, then each example's input and target (dtype,
// shape, bytes) in that order. Two runs that print the same hash used the same examples.
std::string split_hash(const Dataset& dataset, std::vector<int64_t> indices);
// The same over rows `indices` of tensors that hold one example per row (no Dataset needed).
std::string split_hash(const std::vector<Tensor>& tensors, std::vector<int64_t> indices);

}  // namespace keel::data
