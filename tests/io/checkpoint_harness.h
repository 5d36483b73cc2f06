#pragma once
// A small training run with every kind of state a resume must restore: dropout (the default
// generator), BatchNorm running statistics, AdamW with weight decay, a WarmupCosine schedule and a
// shuffled DataLoader with random crops and flips on a worker thread. Used by test_checkpoint.cpp
// and by checkpoint_helper_main.cpp (the cross-process resume and kill-mid-save tests).
#include <memory>

#include <keel/keel.h>

namespace keel::test {

struct CheckpointHarness {
  static constexpr int64_t kImages = 48, kBatch = 8;  // 6 batches per epoch
  std::shared_ptr<data::Dataset> dataset;
  data::DataLoader loader;
  nn::SmallCNN model;
  optim::AdamW optimizer;
  optim::WarmupCosine schedule;
  int64_t step = 0, epoch = 0, batch_in_epoch = 0;

  static std::shared_ptr<data::Dataset> make_dataset() {
    manual_seed(11);  // the data is the same in every process
    const Tensor images = randn({kImages, 1, 8, 8});
    Tensor labels = empty({kImages}, {.dtype = DType::i64});
    for (int64_t i = 0; i < kImages; ++i) labels.data_ptr<int64_t>()[i] = (i * 7) % 10;
    return std::make_shared<data::TransformDataset>(
        std::make_shared<data::TensorDataset>(images, labels),
        data::compose({data::random_crop_transform(8, 8, 1), data::random_horizontal_flip_transform(0.5)}));
  }
  static std::shared_ptr<data::Dataset> seeded_dataset_then_model_seed() {
    auto made = make_dataset();
    manual_seed(12);  // the model's initial weights
    return made;
  }

  explicit CheckpointHarness(int64_t total_steps)
      : dataset(seeded_dataset_then_model_seed()),
        loader(dataset, {.batch_size = kBatch, .shuffle = true, .seed = 5, .num_workers = 1}),
        model({.channels = {4, 8}, .convs_per_stage = 1, .dropout = 0.3, .hidden = 16, .image_size = 8}),
        optimizer(model.parameters(), {.lr = 1e-2, .weight_decay = 0.1}),
        schedule(optimizer, {.warmup_steps = 3, .total_steps = total_steps, .min_lr = 1e-4}) {}

  io::TrainingState state() {
    io::TrainingState s{.model = &model, .optimizer = &optimizer, .scheduler = &schedule, .loader = &loader};
    s.step = step;
    s.epoch = epoch;
    s.batch_in_epoch = batch_in_epoch;
    return s;
  }
  void take_position(const io::TrainingState& s) {
    step = s.step;
    epoch = s.epoch;
    batch_in_epoch = s.batch_in_epoch;
  }

  // `count` optimizer steps from the current position (the loader was positioned by
  // load_checkpoint or starts at epoch 0, batch 0).
  void train(int64_t count) {
    model.train();
    int64_t done = 0;
    while (done < count) {
      auto end = loader.end();
      for (auto it = loader.begin(); it != end; ++it) {
        const Tensor loss = cross_entropy(model(it->input), it->target);
        loss.backward();
        optimizer.step();
        schedule.step();
        optimizer.zero_grad();
        ++step;
        ++done;
        batch_in_epoch = it.index() + 1;
        if (done == count) break;
      }
      if (batch_in_epoch == loader.size()) {  // the epoch is done: the next position is the next epoch
        ++epoch;
        batch_in_epoch = 0;
        loader.set_position(epoch, 0);
      } else {
        loader.set_position(epoch, batch_in_epoch);
      }
    }
  }
};

}  // namespace keel::test
