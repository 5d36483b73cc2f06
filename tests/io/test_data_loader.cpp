// Dataset and DataLoader: coverage and order of each epoch, determinism over worker counts,
// drop_last, transforms on workers, worker errors, early destruction, edge sizes.
#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "test_util.h"

using namespace keel;
using namespace keel::data;

namespace {

// inputs[i] = [i, 2i] (f32), targets[i] = i (i64).
std::shared_ptr<TensorDataset> numbered(int64_t n) {
  Tensor inputs = empty({n, 2}, {.dtype = DType::f32});
  Tensor targets = empty({n}, {.dtype = DType::i64});
  for (int64_t i = 0; i < n; ++i) {
    inputs.data_ptr<float>()[2 * i] = static_cast<float>(i);
    inputs.data_ptr<float>()[2 * i + 1] = static_cast<float>(2 * i);
    targets.data_ptr<int64_t>()[i] = i;
  }
  return std::make_shared<TensorDataset>(inputs, targets);
}

// A dataset that builds each example itself (the default get_batch path), optionally slowly
// or throwing at one index.
class Generated : public Dataset {
 public:
  explicit Generated(int64_t n, int64_t throw_at = -1, int sleep_us = 0)
      : n_(n), throw_at_(throw_at), sleep_us_(sleep_us) {}
  int64_t size() const override { return n_; }
  Example get(int64_t index) const override {
    calls.fetch_add(1);
    if (sleep_us_) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
    if (index == throw_at_) throw std::runtime_error("cannot decode example " + std::to_string(index));
    return {full({3}, static_cast<double>(index), {.dtype = DType::f64}), full({}, index, {.dtype = DType::i64})};
  }
  mutable std::atomic<int64_t> calls{0};

 private:
  int64_t n_, throw_at_;
  int sleep_us_;
};

// Every batch's targets, in order, for one pass.
std::vector<std::vector<int64_t>> one_epoch(DataLoader& loader) {
  std::vector<std::vector<int64_t>> batches;
  for (const Batch& batch : loader) {
    REQUIRE(batch.target.dim() == 1);
    REQUIRE(batch.input.size(0) == batch.target.size(0));
    std::vector<int64_t> targets;
    for (int64_t i = 0; i < batch.target.size(0); ++i) {
      const int64_t t = batch.target.data_ptr<int64_t>()[i];
      targets.push_back(t);
      // The input row belongs to the same example as the target.
      if (batch.input.dtype() == DType::f32) {
        CHECK(batch.input.select(0, i).contiguous().data_ptr<float>()[1] == static_cast<float>(2 * t));
      } else {
        CHECK(batch.input.select(0, i).contiguous().data_ptr<double>()[2] == static_cast<double>(t));
      }
    }
    batches.push_back(targets);
  }
  return batches;
}

std::vector<int64_t> flat(const std::vector<std::vector<int64_t>>& batches) {
  std::vector<int64_t> out;
  for (const auto& batch : batches) out.insert(out.end(), batch.begin(), batch.end());
  return out;
}

}  // namespace

TEST_CASE("TensorDataset: rows, checks", "[io][dataset]") {
  auto dataset = numbered(5);
  CHECK(dataset->size() == 5);
  const Example example = dataset->get(3);
  CHECK(example.input.shape() == Shape{2});
  CHECK(example.input.data_ptr<float>()[1] == 6.0f);
  CHECK(example.target.item<int64_t>() == 3);
  CHECK_THROWS_WITH(dataset->get(5), Catch::Contains("[TensorDataset] index 5 is outside [0, 5)"));
  CHECK_THROWS_WITH(dataset->get(-1), Catch::Contains("outside"));
  CHECK_THROWS_WITH(TensorDataset(zeros({4, 2}), zeros({3})), Catch::Contains("same first dim"));
  CHECK_THROWS_WITH(TensorDataset(zeros({})), Catch::Contains("first dim"));
  TensorDataset no_targets(zeros({4, 2}));
  CHECK_FALSE(no_targets.get(1).target.defined());
}

TEST_CASE("collate: stacks along a new dim 0 and refuses mixed shapes", "[io][dataset]") {
  const Batch batch = collate({{ones({2, 3}), full({}, 1, {.dtype = DType::i64})},
                               {zeros({2, 3}), full({}, 7, {.dtype = DType::i64})}});
  CHECK(batch.input.shape() == Shape{2, 2, 3});
  CHECK(batch.target.shape() == Shape{2});
  CHECK(batch.target.data_ptr<int64_t>()[1] == 7);
  CHECK_THROWS_WITH(collate({{ones({2}), Tensor()}, {ones({3}), Tensor()}}),
                    Catch::Contains("example 1's input is [3]") && Catch::Contains("[2]"));
  CHECK_THROWS_WITH(collate({{ones({2}), ones({})}, {ones({2}), Tensor()}}), Catch::Contains("has no target"));
  CHECK_THROWS_WITH(collate({}), Catch::Contains("no examples"));
}

TEST_CASE("DataLoader: every index once per epoch, batch sizes, drop_last", "[io][loader]") {
  for (int64_t n : {0, 1, 7, 10, 33}) {
    for (int64_t batch_size : {1, 3, 10, 50}) {
      for (bool drop_last : {false, true}) {
        for (bool shuffle : {false, true}) {
          INFO("n " << n << " batch " << batch_size << " drop_last " << drop_last << " shuffle " << shuffle);
          DataLoader loader(numbered(n), {.batch_size = batch_size, .shuffle = shuffle, .drop_last = drop_last, .seed = 5});
          const int64_t expected_batches = drop_last ? n / batch_size : (n + batch_size - 1) / batch_size;
          CHECK(loader.size() == expected_batches);
          const auto batches = one_epoch(loader);
          REQUIRE(static_cast<int64_t>(batches.size()) == expected_batches);
          for (size_t b = 0; b < batches.size(); ++b) {
            const int64_t full_size = std::min(batch_size, n - static_cast<int64_t>(b) * batch_size);
            CHECK(static_cast<int64_t>(batches[b].size()) == full_size);
            if (drop_last) CHECK(static_cast<int64_t>(batches[b].size()) == batch_size);
          }
          std::vector<int64_t> seen = flat(batches);
          const std::set<int64_t> unique(seen.begin(), seen.end());
          CHECK(unique.size() == seen.size());  // nothing twice
          if (!drop_last) CHECK(static_cast<int64_t>(seen.size()) == n);  // everything once
          if (drop_last) CHECK(static_cast<int64_t>(seen.size()) == (n / batch_size) * batch_size);
          if (!shuffle) {
            for (size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] == static_cast<int64_t>(i));
          }
        }
      }
    }
  }
}

TEST_CASE("DataLoader: a new order each epoch, the same for a seed at 0, 1 and 3 workers", "[io][loader]") {
  const int64_t n = 103;
  std::vector<std::vector<std::vector<int64_t>>> reference;  // [epoch][batch]
  for (int workers : {0, 1, 3}) {
    for (int prefetch : {1, 4}) {
      INFO("workers " << workers << " prefetch " << prefetch);
      DataLoader loader(numbered(n), {.batch_size = 8, .shuffle = true, .seed = 42, .num_workers = workers,
                                      .prefetch_batches = prefetch});
      std::vector<std::vector<std::vector<int64_t>>> epochs;
      for (int epoch = 0; epoch < 3; ++epoch) epochs.push_back(one_epoch(loader));
      CHECK(loader.epoch() == 3);
      if (reference.empty()) {
        reference = epochs;
        CHECK(flat(epochs[0]) != flat(epochs[1]));
        CHECK(flat(epochs[1]) != flat(epochs[2]));
        for (const auto& epoch : epochs) {
          std::vector<int64_t> sorted = flat(epoch);
          std::sort(sorted.begin(), sorted.end());
          for (int64_t i = 0; i < n; ++i) CHECK(sorted[static_cast<size_t>(i)] == i);
        }
        // batch_indices says what each batch holds.
        for (int64_t b = 0; b < loader.size(); ++b) CHECK(loader.batch_indices(1, b) == epochs[1][static_cast<size_t>(b)]);
      } else {
        CHECK(epochs == reference);
      }
      // set_epoch replays an epoch.
      loader.set_epoch(1);
      CHECK(one_epoch(loader) == reference[1]);
    }
  }
  // Another seed, another order.
  DataLoader other(numbered(n), {.batch_size = 8, .shuffle = true, .seed = 43});
  CHECK(one_epoch(other) != reference[0]);
  // The permutation is a pure function of (n, seed, epoch).
  CHECK(random_permutation(n, 42, 2) == flat(reference[2]));
  CHECK(random_permutation(0, 1).empty());
}

TEST_CASE("DataLoader: the generic path (get per example), with workers", "[io][loader]") {
  auto dataset = std::make_shared<Generated>(50, -1, 50);
  std::vector<std::vector<int64_t>> first;
  for (int workers : {0, 2, 3}) {
    DataLoader loader(dataset, {.batch_size = 6, .shuffle = true, .seed = 9, .num_workers = workers});
    const auto batches = one_epoch(loader);
    if (first.empty()) first = batches;
    CHECK(batches == first);
  }
}

TEST_CASE("DataLoader: transforms run with generators keyed by (seed, epoch, index)", "[io][loader]") {
  // The transform adds a random number in [0, 1) drawn from its generator, and records the thread.
  std::mutex mutex;
  std::set<std::thread::id> threads;
  Transform jitter = [&](const Tensor& x, Generator& generator) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      threads.insert(std::this_thread::get_id());
    }
    return x + rand({}, {.dtype = DType::f64}, &generator).item<double>();
  };
  auto dataset = std::make_shared<TransformDataset>(std::make_shared<Generated>(40), jitter);
  auto inputs_of = [&](int workers, int64_t epoch) {
    DataLoader loader(dataset, {.batch_size = 4, .shuffle = true, .seed = 3, .num_workers = workers});
    loader.set_epoch(epoch);
    std::vector<double> values;
    for (const Batch& batch : loader)
      for (int64_t i = 0; i < batch.input.size(0); ++i) {
        const double value = batch.input.select(0, i).contiguous().data_ptr<double>()[0];
        const int64_t index = batch.target.data_ptr<int64_t>()[i];
        CHECK(value >= static_cast<double>(index));
        CHECK(value < static_cast<double>(index) + 1.0);
        values.push_back(value);
      }
    return values;
  };
  const std::vector<double> serial = inputs_of(0, 0);
  threads.clear();
  CHECK(inputs_of(3, 0) == serial);          // bit for bit, whatever thread ran each example
  CHECK(threads.count(std::this_thread::get_id()) == 0);  // augmentation ran on the workers
  CHECK(inputs_of(2, 1) != serial);          // another epoch, other draws
  // Called directly, get() is deterministic too.
  CHECK(dataset->get(5).input.data_ptr<double>()[0] == dataset->get(5).input.data_ptr<double>()[0]);
  CHECK(dataset->get(5).input.data_ptr<double>()[0] != dataset->get(6).input.data_ptr<double>()[0] - 1.0);
}

TEST_CASE("DataLoader: a worker's exception reaches the consumer with the batch index", "[io][loader]") {
  for (int workers : {0, 1, 3}) {
    INFO("workers " << workers);
    auto dataset = std::make_shared<Generated>(30, 13);
    DataLoader loader(dataset, {.batch_size = 4, .num_workers = workers});
    std::vector<int64_t> received;
    try {
      for (auto it = loader.begin(); it != loader.end(); ++it) received.push_back(it.index());
      FAIL("no exception");
    } catch (const Error& error) {
      CHECK_THAT(error.what(), Catch::Contains("[DataLoader] batch 3 of epoch 0 failed") &&
                                   Catch::Contains("cannot decode example 13"));
    }
    CHECK(received == std::vector<int64_t>{0, 1, 2});  // the batches before it arrived in order
    // The loader is usable again: the next epoch starts afresh (and fails at the same batch).
    CHECK_THROWS_WITH(one_epoch(loader), Catch::Contains("batch 3 of epoch 1"));
  }
}

TEST_CASE("DataLoader: prefetching is bounded, and destruction mid-epoch joins the workers", "[io][loader]") {
  auto dataset = std::make_shared<Generated>(1000, -1, 100);
  {
    DataLoader loader(dataset, {.batch_size = 2, .num_workers = 3, .prefetch_batches = 4});
    auto it = loader.begin();
    CHECK(it->target.data_ptr<int64_t>()[0] == 0);
    ++it;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    // Taken: batches 0 and 1; ahead of the consumer at most max(4, 3) batches of 2 examples.
    CHECK(dataset->calls.load() <= (2 + 4) * 2);
    CHECK(dataset->calls.load() >= 2 * 2);
  }  // destroyed mid-epoch: must return promptly (the test would hang otherwise)
  const int64_t after = dataset->calls.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(dataset->calls.load() == after);  // no thread still running
  {
    // Starting a new epoch before the last one finished stops that one's workers.
    DataLoader loader(dataset, {.batch_size = 2, .shuffle = true, .num_workers = 2});
    auto first = loader.begin();
    auto second = loader.begin();
    CHECK(second.index() == 0);
    CHECK(loader.epoch() == 2);
  }
  // A loader that was never iterated, and one moved away.
  { DataLoader idle(dataset, {.num_workers = 4}); }
  {
    DataLoader a(numbered(10), {.batch_size = 3, .num_workers = 2});
    DataLoader b = std::move(a);
    CHECK(flat(one_epoch(b)).size() == 10);
  }
}

TEST_CASE("DataLoader: empty dataset, batch larger than the data, bad options", "[io][loader]") {
  for (int workers : {0, 2}) {
    DataLoader empty_loader(numbered(0), {.batch_size = 4, .shuffle = true, .num_workers = workers});
    CHECK(empty_loader.size() == 0);
    CHECK(empty_loader.begin() == empty_loader.end());
    DataLoader big(numbered(5), {.batch_size = 64, .shuffle = true, .num_workers = workers});
    CHECK(big.size() == 1);
    const auto batches = one_epoch(big);
    REQUIRE(batches.size() == 1);
    CHECK(batches[0].size() == 5);
    DataLoader dropped(numbered(5), {.batch_size = 64, .drop_last = true, .num_workers = workers});
    CHECK(dropped.size() == 0);
    CHECK(one_epoch(dropped).empty());
  }
  CHECK_THROWS_WITH(DataLoader(numbered(3), {.batch_size = 0}), Catch::Contains("batch_size must be >= 1"));
  CHECK_THROWS_WITH(DataLoader(numbered(3), {.num_workers = -1}), Catch::Contains("num_workers"));
  CHECK_THROWS_WITH(DataLoader(numbered(3), {.prefetch_batches = 0}), Catch::Contains("prefetch_batches"));
  CHECK_THROWS_WITH(DataLoader(nullptr), Catch::Contains("null"));
}

TEST_CASE("Subset: indices of another dataset", "[io][dataset]") {
  auto base = numbered(10);
  auto subset = std::make_shared<Subset>(base, std::vector<int64_t>{7, 2, 9});
  CHECK(subset->size() == 3);
  CHECK(subset->get(1).target.item<int64_t>() == 2);
  DataLoader loader(subset, {.batch_size = 2});
  CHECK(one_epoch(loader) == std::vector<std::vector<int64_t>>{{7, 2}, {9}});
  CHECK_THROWS_WITH(Subset(base, {10}), Catch::Contains("outside"));
}
