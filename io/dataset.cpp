// Datasets (see dataset.h).
#include "keel/io/dataset.h"

#include "keel/core/error.h"
#include "keel/io/random_bits.h"
#include "keel/ops/factory.h"
#include "keel/ops/shape.h"

namespace keel::data {

Dataset::~Dataset() = default;

Example Dataset::get_random(int64_t index, Generator&) const { return get(index); }

Batch Dataset::get_batch(const std::vector<int64_t>& indices, uint64_t key) const {
  std::vector<Example> examples;
  examples.reserve(indices.size());
  for (int64_t index : indices) {
    Generator generator = example_generator(key, index);
    examples.push_back(get_random(index, generator));
  }
  return collate(examples);
}

Generator example_generator(uint64_t key, int64_t index) {
  return Generator(detail::mix64(key ^ detail::mix64(static_cast<uint64_t>(index) + 0x9e3779b97f4a7c15ull)));
}

Batch collate(const std::vector<Example>& examples) {
  KEEL_CHECK(!examples.empty(), "[collate] no examples to stack");
  std::vector<Tensor> inputs, targets;
  inputs.reserve(examples.size());
  const bool with_targets = examples[0].target.defined();
  for (size_t i = 0; i < examples.size(); ++i) {
    const Example& example = examples[i];
    KEEL_CHECK(example.input.defined(), "[collate] example ", i, " of the batch has no input");
    KEEL_CHECK(example.target.defined() == with_targets, "[collate] example ", i,
               " of the batch ", with_targets ? "has no target" : "has a target", " but example 0 ",
               with_targets ? "has one" : "has none");
    KEEL_CHECK(example.input.shape() == examples[0].input.shape() &&
                   example.input.dtype() == examples[0].input.dtype(),
               "[collate] example ", i, "'s input is ", example.input.shape(), " ",
               dtype_name(example.input.dtype()), " but example 0's is ", examples[0].input.shape(),
               " ", dtype_name(examples[0].input.dtype()),
               ": every example of a batch must have one shape and dtype (resize or crop them)");
    inputs.push_back(example.input);
    if (with_targets) {
      KEEL_CHECK(example.target.shape() == examples[0].target.shape() &&
                     example.target.dtype() == examples[0].target.dtype(),
                 "[collate] example ", i, "'s target is ", example.target.shape(), " ",
                 dtype_name(example.target.dtype()), " but example 0's is ",
                 examples[0].target.shape(), " ", dtype_name(examples[0].target.dtype()));
      targets.push_back(example.target);
    }
  }
  Batch batch;
  batch.input = stack(inputs, 0);
  if (with_targets) batch.target = stack(targets, 0);
  return batch;
}

// ---- TensorDataset ------------------------------------------------------------------------

TensorDataset::TensorDataset(Tensor inputs, Tensor targets)
    : inputs_(std::move(inputs)), targets_(std::move(targets)) {
  KEEL_CHECK(inputs_.defined() && inputs_.dim() >= 1,
             "[TensorDataset] inputs must have a first dim that indexes the examples");
  KEEL_CHECK(!targets_.defined() || (targets_.dim() >= 1 && targets_.size(0) == inputs_.size(0)),
             "[TensorDataset] inputs ", inputs_.shape(), " and targets ",
             targets_.defined() ? targets_.shape() : Shape{},
             " must have the same first dim (one target per example)");
}

int64_t TensorDataset::size() const { return inputs_.size(0); }

Example TensorDataset::get(int64_t index) const {
  KEEL_CHECK(index >= 0 && index < size(), "[TensorDataset] index ", index, " is outside [0, ",
             size(), ")");
  return {inputs_.select(0, index), targets_.defined() ? targets_.select(0, index) : Tensor()};
}

Batch TensorDataset::get_batch(const std::vector<int64_t>& indices, uint64_t) const {
  for (int64_t index : indices)
    KEEL_CHECK(index >= 0 && index < size(), "[TensorDataset] index ", index, " is outside [0, ",
               size(), ")");
  Tensor rows = empty({static_cast<int64_t>(indices.size())}, {.dtype = DType::i64});
  std::copy(indices.begin(), indices.end(), rows.data_ptr<int64_t>());
  Batch batch;
  batch.input = index_select(inputs_, 0, rows);
  if (targets_.defined()) batch.target = index_select(targets_, 0, rows);
  return batch;
}

// ---- Subset -------------------------------------------------------------------------------

Subset::Subset(std::shared_ptr<const Dataset> dataset, std::vector<int64_t> indices)
    : dataset_(std::move(dataset)), indices_(std::move(indices)) {
  KEEL_CHECK(dataset_ != nullptr, "[Subset] the dataset is null");
  const int64_t size = dataset_->size();
  for (int64_t index : indices_)
    KEEL_CHECK(index >= 0 && index < size, "[Subset] index ", index, " is outside the dataset's [0, ",
               size, ")");
}

int64_t Subset::size() const { return static_cast<int64_t>(indices_.size()); }

Example Subset::get(int64_t index) const {
  KEEL_CHECK(index >= 0 && index < size(), "[Subset] index ", index, " is outside [0, ", size(), ")");
  return dataset_->get(indices_[static_cast<size_t>(index)]);
}

Example Subset::get_random(int64_t index, Generator& generator) const {
  KEEL_CHECK(index >= 0 && index < size(), "[Subset] index ", index, " is outside [0, ", size(), ")");
  return dataset_->get_random(indices_[static_cast<size_t>(index)], generator);
}

Batch Subset::get_batch(const std::vector<int64_t>& indices, uint64_t key) const {
  std::vector<int64_t> mapped;
  mapped.reserve(indices.size());
  for (int64_t index : indices) {
    KEEL_CHECK(index >= 0 && index < size(), "[Subset] index ", index, " is outside [0, ", size(), ")");
    mapped.push_back(indices_[static_cast<size_t>(index)]);
  }
  return dataset_->get_batch(mapped, key);
}

// ---- TransformDataset ---------------------------------------------------------------------

TransformDataset::TransformDataset(std::shared_ptr<const Dataset> dataset, Transform transform,
                                   Transform target_transform, uint64_t seed)
    : dataset_(std::move(dataset)),
      transform_(std::move(transform)),
      target_transform_(std::move(target_transform)),
      seed_(seed) {
  KEEL_CHECK(dataset_ != nullptr, "[TransformDataset] the dataset is null");
}

int64_t TransformDataset::size() const { return dataset_->size(); }

Example TransformDataset::get(int64_t index) const {
  Generator generator = example_generator(seed_, index);
  return get_random(index, generator);
}

Example TransformDataset::get_random(int64_t index, Generator& generator) const {
  Example example = dataset_->get_random(index, generator);
  if (transform_) example.input = transform_(example.input, generator);
  if (target_transform_ && example.target.defined())
    example.target = target_transform_(example.target, generator);
  return example;
}

}  // namespace keel::data
