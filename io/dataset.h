#pragma once
// Datasets: indexable collections of (input, target) examples, as torch.utils.data.Dataset.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "keel/core/rng.h"
#include "keel/core/tensor.h"

namespace keel::data {

struct Example {
  Tensor input;
  Tensor target;  // may be undefined when a dataset has no targets
};

// Examples stacked along a new dim 0 (a target stays undefined when the examples' are).
struct Batch {
  Tensor input;
  Tensor target;
};

class Dataset {
 public:
  virtual ~Dataset();
  virtual int64_t size() const = 0;
  // Example `index` in [0, size()). Must be safe to call from several threads at once.
  virtual Example get(int64_t index) const = 0;
  // The same example with its random transforms drawn from `generator` (TransformDataset). The
  // DataLoader passes a generator keyed by (seed, epoch, index), so that augmentation does not
  // depend on which worker thread ran it. Datasets without randomness ignore it.
  virtual Example get_random(int64_t index, Generator& generator) const;
  // The batch of examples `indices`; `key` seeds each example's generator (example_generator).
  // The default stacks get_random(i, ...); TensorDataset gathers the rows at once.
  virtual Batch get_batch(const std::vector<int64_t>& indices, uint64_t key) const;
};

// The generator for example `index` of a batch seeded with `key` (a pure function of both).
Generator example_generator(uint64_t key, int64_t index);
// Stacks examples along a new dim 0; every input (and target) must have one shape and dtype.
Batch collate(const std::vector<Example>& examples);

// Row i of each tensor, as torch.utils.data.TensorDataset. Rows are views (no copy).
class TensorDataset : public Dataset {
 public:
  // inputs [N, ...], targets [N, ...] (or undefined: examples without a target).
  TensorDataset(Tensor inputs, Tensor targets = {});
  int64_t size() const override;
  Example get(int64_t index) const override;
  Batch get_batch(const std::vector<int64_t>& indices, uint64_t key) const override;
  const Tensor& inputs() const { return inputs_; }
  const Tensor& targets() const { return targets_; }

 private:
  Tensor inputs_, targets_;
};

// Examples `indices` of another dataset (what random_split and group_split give).
class Subset : public Dataset {
 public:
  Subset(std::shared_ptr<const Dataset> dataset, std::vector<int64_t> indices);
  int64_t size() const override;
  Example get(int64_t index) const override;
  Example get_random(int64_t index, Generator& generator) const override;
  Batch get_batch(const std::vector<int64_t>& indices, uint64_t key) const override;
  const std::vector<int64_t>& indices() const { return indices_; }

 private:
  std::shared_ptr<const Dataset> dataset_;
  std::vector<int64_t> indices_;
};

// A function applied to each example's input (and target) when it is fetched: augmentation
// runs on the loader's worker threads. Transforms must be safe to call concurrently and take
// their randomness only from the generator they are given.
using Transform = std::function<Tensor(const Tensor& x, Generator& generator)>;

class TransformDataset : public Dataset {
 public:
  // An empty transform leaves that part unchanged. `seed` keys the randomness of get(index)
  // called directly; the DataLoader's generators replace it.
  TransformDataset(std::shared_ptr<const Dataset> dataset, Transform transform,
                   Transform target_transform = {}, uint64_t seed = 0);
  int64_t size() const override;
  Example get(int64_t index) const override;
  Example get_random(int64_t index, Generator& generator) const override;

 private:
  std::shared_ptr<const Dataset> dataset_;
  Transform transform_, target_transform_;
  uint64_t seed_;
};

}  // namespace keel::data
