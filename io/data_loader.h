#pragma once
// DataLoader: batches of a Dataset, shuffled per epoch, produced ahead of time on worker
// threads, as torch.utils.data.DataLoader.
//
//   DataLoader loader(dataset, {.batch_size = 128, .shuffle = true, .seed = 1, .num_workers = 2});
//   for (int epoch = 0; epoch < 10; ++epoch)
//     for (const Batch& batch : loader) { ... }   // each pass over the loader is one epoch
//
// Order: epoch e visits the examples in random_permutation(size, seed, e) (or in order without
// shuffle), cut into batches of batch_size; the batches and their contents are the same whatever
// num_workers is, and so is the randomness of transforms (keyed by seed, epoch and index).
// The first begin() runs epoch 0 and each later one the next epoch; set_epoch chooses it.
// Resuming mid-epoch: set_position(epoch, batch) makes the next begin() run that epoch from that
// batch (the skipped batches are neither loaded nor transformed), with the same order and the same
// augmentation as an uninterrupted run, since both are keyed by (seed, epoch, index) alone.
//
// Workers: with num_workers > 0, that many threads build batches ahead of the consumer, at most
// max(prefetch_batches, num_workers) batches beyond the one being used, and hand them over in
// order. A worker's exception is re-thrown by the consumer when it reaches that batch, as a
// keel::Error naming the batch. Destroying the loader (or starting a new epoch) mid-epoch stops
// and joins the threads. Workers block on condition variables; nothing spins.
#include <cstdint>
#include <memory>
#include <vector>

#include "keel/io/dataset.h"

namespace keel::data {

struct DataLoaderOptions {
  int64_t batch_size = 1;
  bool shuffle = false;
  bool drop_last = false;  // drop the last batch when it is smaller than batch_size
  uint64_t seed = 0;
  int num_workers = 0;     // 0: batches are built in the consumer's thread, when asked for
  int prefetch_batches = 2;
};

// The permutation of [0, n) for (seed, epoch): Fisher-Yates with Philox draws.
std::vector<int64_t> random_permutation(int64_t n, uint64_t seed, uint64_t epoch = 0);

class DataLoader {
  struct Run;

 public:
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = const Batch&;

    iterator() = default;
    const Batch& operator*() const { return batch_; }
    const Batch* operator->() const { return &batch_; }
    iterator& operator++();
    bool operator==(const iterator& other) const { return position_ == other.position_; }
    bool operator!=(const iterator& other) const { return !(*this == other); }
    int64_t index() const { return position_; }  // the batch's index within the epoch

   private:
    friend class DataLoader;
    iterator(Run* run, int64_t position);
    void fetch();
    Run* run_ = nullptr;
    int64_t position_ = 0;
    Batch batch_;
  };

  DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options = {});
  ~DataLoader();
  DataLoader(DataLoader&&) noexcept;
  DataLoader& operator=(DataLoader&&) noexcept;
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t size() const;  // batches per epoch
  // Starts the next epoch (stopping any unfinished one) and returns its first batch.
  iterator begin();
  iterator end();
  // The epoch the next begin() runs.
  void set_epoch(int64_t epoch);
  // The next begin() runs `epoch` starting at its batch `batch` (in [0, size()]; size(): an empty
  // rest of the epoch); the epochs after it start at batch 0. The iterator's index() counts from
  // `batch`.
  void set_position(int64_t epoch, int64_t batch);
  int64_t epoch() const { return next_epoch_; }
  // The dataset indices of batch `batch` of `epoch` (what that batch stacks).
  std::vector<int64_t> batch_indices(int64_t epoch, int64_t batch) const;
  const DataLoaderOptions& options() const { return options_; }
  const std::shared_ptr<const Dataset>& dataset() const { return dataset_; }

 private:
  std::shared_ptr<const Dataset> dataset_;
  DataLoaderOptions options_;
  int64_t next_epoch_ = 0;
  int64_t next_start_batch_ = 0;  // where the next begin() starts (set_position), then 0
  std::unique_ptr<Run> run_;
};

}  // namespace keel::data
