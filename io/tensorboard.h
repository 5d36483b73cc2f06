#pragma once
// TensorBoard event files, written the way PyTorch's torch.utils.tensorboard.SummaryWriter
// writes them, so that `tensorboard --logdir <folder>` shows Keel's training curves.
//
//   io::SummaryWriter writer("runs/mnist");            // creates the folder
//   writer.add_scalar("train/loss", loss, step);
//   writer.add_histogram("fc1/weight", fc1.weight, epoch);
//   writer.add_text("config", "lr = 3e-4", 0);
//
// The file, <log_dir>/events.out.tfevents.<unix time>.<hostname>.<pid>.<n>, is a sequence of
// TFRecords, each holding one serialized tensorboard.Event (tensorboard/compat/proto/event.proto):
//   uint64 length (little-endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
// The first record is Event{wall_time, file_version: "brain.Event:2"}.
//
// Events are buffered in memory and written on flush(), close(), the destructor, when the
// buffer passes `max_buffer_bytes`, or on the first add_* call `flush_secs` after the last
// flush. A failed write throws keel::Error (from the destructor it is printed to stderr,
// since destructors must not throw). The writer is safe to call from several threads.
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "keel/core/tensor.h"
#include "keel/io/safetensors.h"  // NamedTensors

namespace keel::io {

struct SummaryWriterOptions {
  std::string filename_suffix;    // appended to the event file name (PyTorch's filename_suffix)
  double flush_secs = 120;        // PyTorch's default
  size_t max_buffer_bytes = 1 << 20;
};

class SummaryWriter {
 public:
  // Creates `log_dir` (and its parents) and the event file in it; keel::Error when either fails.
  explicit SummaryWriter(const std::string& log_dir, SummaryWriterOptions options = {});
  ~SummaryWriter();
  SummaryWriter(const SummaryWriter&) = delete;
  SummaryWriter& operator=(const SummaryWriter&) = delete;

  // wall_time: seconds since the Unix epoch; now when not given.
  void add_scalar(const std::string& tag, double value, int64_t step, std::optional<double> wall_time = {});
  // A histogram of all elements of `values` (any shape, real dtype, any device) with
  // TensorBoard's default buckets (see make_histogram). Throws keel::Error when `values` is
  // empty or holds NaN or infinity, as TensorFlow's histogram op does.
  void add_histogram(const std::string& tag, const Tensor& values, int64_t step,
                     std::optional<double> wall_time = {});
  // Text (UTF-8, shown as Markdown by the text plugin). As PyTorch does, the tag stored is
  // tag + "/text_summary".
  void add_text(const std::string& tag, const std::string& text, int64_t step,
                std::optional<double> wall_time = {});

  void flush();
  // Flushes and closes the file; later add_* calls throw. Calling close() twice is harmless.
  void close();

  const std::string& log_dir() const { return log_dir_; }    // PyTorch's get_logdir()
  const std::string& file_path() const { return file_path_; }

 private:
  void add_event(const std::string& event, const char* function);
  void write_buffer_locked();

  std::string log_dir_;
  std::string file_path_;
  SummaryWriterOptions options_;
  int fd_ = -1;
  std::string buffer_;
  double last_flush_ = 0;
  std::mutex mutex_;
};

// A histogram as tensorboard.HistogramProto stores it: bucket[i] counts the values between
// bucket_limit[i-1] and bucket_limit[i] (numpy's bins: [left, right), the last one closed);
// bucket[0] is an empty bucket ending at the first edge (TensorBoard keeps only right edges,
// so the leftmost edge needs a bucket of its own).
struct Histogram {
  double min = 0, max = 0, num = 0, sum = 0, sum_squares = 0;
  std::vector<double> bucket_limit;
  std::vector<double> bucket;
};

// TensorBoard's default bucketing, as torch.utils.tensorboard does it: the edges are
// -1e20 .. -1e-12, 0, 1e-12 .. 1e20 growing by a factor 1.1 (default_histogram_edges()), the
// counts are numpy.histogram's (left-closed bins, the last one closed), and only the buckets
// from the first to the last non-empty one are kept, plus one empty bucket on the left.
// Values beyond +-1e20 count in num/min/max/sum but in no bucket (as in numpy). `context`
// prefixes errors. Throws on no values, a non-finite value, or no value inside the edges.
Histogram make_histogram(std::span<const double> values, const std::string& context);
const std::vector<double>& default_histogram_edges();

// One histogram per floating-point tensor (a module's named_parameters() or state_dict()),
// tagged prefix + name. Integer tensors (BatchNorm's num_batches_tracked), empty tensors and
// tensors holding NaN or infinity are skipped, so that a diverging run keeps training and
// logging its scalars; returns how many were skipped for NaN or infinity.
int64_t add_histograms(SummaryWriter& writer, const NamedTensors& tensors, int64_t step,
                       const std::string& prefix = "");

// Appends one TFRecord holding `data` to `out` (the framing described at the top).
void append_tfrecord(std::string& out, std::string_view data);

}  // namespace keel::io
