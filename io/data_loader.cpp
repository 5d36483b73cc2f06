// DataLoader (see data_loader.h).
//
// An epoch is a Run: the visiting order, and with workers, the threads and the finished batches
// keyed by batch index. A worker claims the lowest unclaimed batch while fewer than `capacity`
// batches are claimed and not yet taken by the consumer; the consumer waits for exactly the
// batch it needs next, so the order is fixed whichever worker finishes first.
#include "keel/io/data_loader.h"

#include <omp.h>

#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include "keel/core/error.h"
#include "keel/io/random_bits.h"

namespace keel::data {
namespace {

// Philox draws keyed by one 64-bit key, counter 0, 1, 2, ...
struct KeyedStream {
  uint64_t key, counter = 0;
  static uint64_t draw(void* state) {
    auto* stream = static_cast<KeyedStream*>(state);
    uint32_t out[4];
    philox4x32_10(stream->key, stream->counter++, out);
    return (uint64_t{out[0]} << 32) | out[1];
  }
};

uint64_t order_key(uint64_t seed, uint64_t epoch) {
  return detail::mix64(seed ^ detail::mix64(epoch ^ 0x6f72646572000000ull));  // "order"
}
uint64_t transform_key(uint64_t seed, uint64_t epoch) {
  return detail::mix64(seed ^ detail::mix64(epoch ^ 0x7472616e73000000ull));  // "trans"
}

}  // namespace

std::vector<int64_t> random_permutation(int64_t n, uint64_t seed, uint64_t epoch) {
  KEEL_CHECK(n >= 0, "[random_permutation] n must be >= 0, got ", n);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  KeyedStream stream{order_key(seed, epoch)};
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(detail::next_below(static_cast<uint64_t>(i + 1), &KeyedStream::draw, &stream));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

struct DataLoader::Run {
  std::shared_ptr<const Dataset> dataset;
  std::vector<int64_t> order;
  int64_t batch_size = 1, num_batches = 0, epoch = 0;
  uint64_t key = 0;

  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  std::mutex mutex;
  std::condition_variable claimable, finished;
  int64_t next_to_claim = 0, next_to_take = 0, capacity = 0;
  std::map<int64_t, Slot> done;
  bool stop = false;
  std::vector<std::thread> workers;

  std::vector<int64_t> indices_of(int64_t batch) const {
    const auto begin = order.begin() + batch * batch_size;
    const auto end = order.begin() + std::min<int64_t>((batch + 1) * batch_size, static_cast<int64_t>(order.size()));
    return std::vector<int64_t>(begin, end);
  }
  Batch make(int64_t batch) const { return dataset->get_batch(indices_of(batch), key); }

  void start(int num_workers, int prefetch_batches) {
    capacity = std::max(prefetch_batches, num_workers);
    workers.reserve(static_cast<size_t>(num_workers));
    try {
      for (int w = 0; w < num_workers; ++w) workers.emplace_back([this] { work(); });
    } catch (...) {
      shut_down();
      throw;
    }
  }

  void work() {
    // Batches are built by several threads already: ops inside them run on one thread each
    // instead of each worker starting an OpenMP team.
    omp_set_num_threads(1);
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      claimable.wait(lock, [this] {
        return stop || next_to_claim >= num_batches || next_to_claim < next_to_take + capacity;
      });
      if (stop || next_to_claim >= num_batches) return;
      const int64_t batch = next_to_claim++;
      lock.unlock();
      Slot slot;
      try {
        slot.batch = make(batch);
      } catch (...) {
        slot.error = std::current_exception();
      }
      lock.lock();
      done.emplace(batch, std::move(slot));
      finished.notify_all();
    }
  }

  Batch take(int64_t batch) {
    Slot slot;
    if (workers.empty()) {
      try {
        slot.batch = make(batch);
      } catch (...) {
        slot.error = std::current_exception();
      }
    } else {
      std::unique_lock<std::mutex> lock(mutex);
      finished.wait(lock, [&] { return done.count(batch) > 0; });
      auto it = done.find(batch);
      slot = std::move(it->second);
      done.erase(it);
      next_to_take = batch + 1;
      claimable.notify_all();
    }
    if (slot.error) {
      try {
        std::rethrow_exception(slot.error);
      } catch (const std::exception& error) {
        fail("[DataLoader] batch ", batch, " of epoch ", epoch, " failed", workers.empty() ? "" : " in a worker thread",
             ": ", error.what());
      } catch (...) {
        fail("[DataLoader] batch ", batch, " of epoch ", epoch, " failed with an exception that is not a std::exception");
      }
    }
    return std::move(slot.batch);
  }

  void shut_down() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    claimable.notify_all();
    for (std::thread& worker : workers) worker.join();
    workers.clear();
  }
  ~Run() { shut_down(); }
};

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, DataLoaderOptions options)
    : dataset_(std::move(dataset)), options_(options) {
  KEEL_CHECK(dataset_ != nullptr, "[DataLoader] the dataset is null");
  KEEL_CHECK(options_.batch_size >= 1, "[DataLoader] batch_size must be >= 1, got ", options_.batch_size);
  KEEL_CHECK(options_.num_workers >= 0, "[DataLoader] num_workers must be >= 0, got ", options_.num_workers);
  KEEL_CHECK(options_.prefetch_batches >= 1, "[DataLoader] prefetch_batches must be >= 1, got ",
             options_.prefetch_batches);
}

DataLoader::~DataLoader() = default;
DataLoader::DataLoader(DataLoader&&) noexcept = default;
DataLoader& DataLoader::operator=(DataLoader&&) noexcept = default;

int64_t DataLoader::size() const {
  const int64_t n = dataset_->size(), batch = options_.batch_size;
  return options_.drop_last ? n / batch : (n + batch - 1) / batch;
}

void DataLoader::set_epoch(int64_t epoch) {
  KEEL_CHECK(epoch >= 0, "[DataLoader] set_epoch: the epoch must be >= 0, got ", epoch);
  next_epoch_ = epoch;
  next_start_batch_ = 0;
}

void DataLoader::set_position(int64_t epoch, int64_t batch) {
  KEEL_CHECK(epoch >= 0, "[DataLoader] set_position: the epoch must be >= 0, got ", epoch);
  KEEL_CHECK(batch >= 0 && batch <= size(), "[DataLoader] set_position: batch ", batch, " is outside [0, ", size(),
             "] (", size(), " batches per epoch)");
  next_epoch_ = epoch;
  next_start_batch_ = batch;
}

std::vector<int64_t> DataLoader::batch_indices(int64_t epoch, int64_t batch) const {
  KEEL_CHECK(batch >= 0 && batch < size(), "[DataLoader] batch ", batch, " is outside [0, ", size(), ")");
  const int64_t n = dataset_->size();
  std::vector<int64_t> order;
  if (options_.shuffle) {
    order = random_permutation(n, options_.seed, static_cast<uint64_t>(epoch));
  } else {
    order.resize(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), int64_t{0});
  }
  const int64_t begin = batch * options_.batch_size, end = std::min(n, begin + options_.batch_size);
  return std::vector<int64_t>(order.begin() + begin, order.begin() + end);
}

DataLoader::iterator DataLoader::begin() {
  run_.reset();  // stops and joins an unfinished epoch
  auto run = std::make_unique<Run>();
  run->dataset = dataset_;
  run->epoch = next_epoch_;
  run->batch_size = options_.batch_size;
  run->num_batches = size();
  run->key = transform_key(options_.seed, static_cast<uint64_t>(next_epoch_));
  const int64_t n = dataset_->size();
  if (options_.shuffle) {
    run->order = random_permutation(n, options_.seed, static_cast<uint64_t>(next_epoch_));
  } else {
    run->order.resize(static_cast<size_t>(n));
    std::iota(run->order.begin(), run->order.end(), int64_t{0});
  }
  const int64_t start = next_start_batch_;
  run->next_to_claim = run->next_to_take = start;  // workers begin at the first batch asked for
  if (start < run->num_batches) run->start(options_.num_workers, options_.prefetch_batches);
  run_ = std::move(run);
  ++next_epoch_;
  next_start_batch_ = 0;
  return iterator(run_.get(), start);
}

DataLoader::iterator DataLoader::end() {
  iterator it;
  it.position_ = size();
  return it;
}

DataLoader::iterator::iterator(Run* run, int64_t position) : run_(run), position_(position) { fetch(); }

void DataLoader::iterator::fetch() {
  batch_ = {};
  if (run_ != nullptr && position_ < run_->num_batches) batch_ = run_->take(position_);
}

DataLoader::iterator& DataLoader::iterator::operator++() {
  ++position_;
  fetch();
  return *this;
}

}  // namespace keel::data
