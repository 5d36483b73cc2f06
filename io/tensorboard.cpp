#include "keel/io/tensorboard.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "keel/core/error.h"
#include "keel/io/crc32c.h"
#include "keel/io/protobuf.h"

namespace keel::io {

namespace {

// Field numbers of tensorboard/compat/proto/{event,summary,histogram,tensor,tensor_shape}.proto.
namespace event_field {
constexpr uint32_t wall_time = 1, step = 2, file_version = 3, summary = 5;
}
namespace summary_field {
constexpr uint32_t value = 1;
}
namespace value_field {
constexpr uint32_t tag = 1, simple_value = 2, histo = 5, tensor = 8, metadata = 9;
}
namespace metadata_field {
constexpr uint32_t plugin_data = 1;
}
namespace plugin_data_field {
constexpr uint32_t plugin_name = 1;
}
namespace histogram_field {
constexpr uint32_t min = 1, max = 2, num = 3, sum = 4, sum_squares = 5, bucket_limit = 6, bucket = 7;
}
namespace tensor_field {
constexpr uint32_t dtype = 1, tensor_shape = 2, string_val = 8;
}
namespace shape_field {
constexpr uint32_t dim = 2, dim_size = 1;
}
constexpr uint64_t kDtString = 7;  // tensorboard.DataType.DT_STRING (types.proto)

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Event files from one process are numbered like PyTorch's _global_uid, so two writers
// created in the same second into one folder get different names.
std::atomic<uint64_t> next_file_number{0};

std::string event_header(int64_t step, std::optional<double> wall_time) {
  protobuf::Writer event;
  event.float64(event_field::wall_time, wall_time.value_or(now_seconds()));
  event.int64(event_field::step, step);
  return event.take();
}

std::string summary_event(int64_t step, std::optional<double> wall_time, const protobuf::Writer& value) {
  protobuf::Writer summary;
  summary.message(summary_field::value, value);
  std::string event = event_header(step, wall_time);
  protobuf::Writer tail;
  tail.message(event_field::summary, summary);
  return event + tail.str();
}

}  // namespace

void append_tfrecord(std::string& out, std::string_view data) {
  uint8_t length[8];
  const uint64_t n = data.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(n >> (8 * i));
  auto append_u32 = [&](uint32_t value) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFFu));
  };
  out.append(reinterpret_cast<const char*>(length), 8);
  append_u32(mask_crc32c(crc32c(length, 8)));
  out.append(data);
  append_u32(mask_crc32c(crc32c(data.data(), data.size())));
}

const std::vector<double>& default_histogram_edges() {
  // torch/utils/tensorboard/writer.py builds these with float64 arithmetic, in this order:
  // v = 1e-12; while v < 1e20: append v; v *= 1.1. The same IEEE operations give the same edges.
  static const std::vector<double> edges = [] {
    std::vector<double> positive;
    for (double v = 1e-12; v < 1e20; v *= 1.1) positive.push_back(v);
    std::vector<double> all;
    all.reserve(2 * positive.size() + 1);
    for (auto it = positive.rbegin(); it != positive.rend(); ++it) all.push_back(-*it);
    all.push_back(0.0);
    all.insert(all.end(), positive.begin(), positive.end());
    return all;
  }();
  return edges;
}

Histogram make_histogram(std::span<const double> values, const std::string& context) {
  KEEL_CHECK(!values.empty(), context, " the values are empty; a histogram needs at least one value");
  const std::vector<double>& edges = default_histogram_edges();
  const size_t num_bins = edges.size() - 1;
  std::vector<double> counts(num_bins, 0.0);
  Histogram histogram;
  histogram.min = values[0];
  histogram.max = values[0];
  size_t non_finite = 0;
  for (const double x : values) {
    if (!std::isfinite(x)) {
      ++non_finite;
      continue;
    }
    histogram.min = std::min(histogram.min, x);
    histogram.max = std::max(histogram.max, x);
    histogram.sum += x;
    histogram.sum_squares += x * x;
    // numpy.histogram with explicit edges: bin i holds edges[i] <= x < edges[i+1], the last bin
    // also x == edges.back(); values outside [edges.front(), edges.back()] are in no bin.
    if (x < edges.front() || x > edges.back()) continue;
    size_t bin = static_cast<size_t>(std::upper_bound(edges.begin(), edges.end(), x) - edges.begin()) - 1;
    if (bin == num_bins) bin = num_bins - 1;
    counts[bin] += 1;
  }
  KEEL_CHECK(non_finite == 0, context, " ", non_finite, " of ", values.size(),
             " values are NaN or infinite; TensorBoard histograms need finite values (check the "
             "training for divergence, or filter the values first)");
  histogram.num = static_cast<double>(values.size());
  // Keep the bins from the first to the last non-empty one, plus the empty bin left of them
  // (torch.utils.tensorboard.summary.make_histogram).
  size_t first = num_bins, last = 0;
  for (size_t i = 0; i < num_bins; ++i)
    if (counts[i] > 0) {
      first = std::min(first, i);
      last = i;
    }
  KEEL_CHECK(first < num_bins, context, " no value lies within TensorBoard's histogram range [-1e20, 1e20]");
  const size_t end = last + 1;  // one past the last non-empty bin
  if (first > 0) {
    histogram.bucket.assign(counts.begin() + static_cast<ptrdiff_t>(first - 1), counts.begin() + static_cast<ptrdiff_t>(end));
  } else {
    histogram.bucket.push_back(0.0);
    histogram.bucket.insert(histogram.bucket.end(), counts.begin(), counts.begin() + static_cast<ptrdiff_t>(end));
  }
  histogram.bucket_limit.assign(edges.begin() + static_cast<ptrdiff_t>(first), edges.begin() + static_cast<ptrdiff_t>(end + 1));
  return histogram;
}

SummaryWriter::SummaryWriter(const std::string& log_dir, SummaryWriterOptions options)
    : log_dir_(log_dir), options_(std::move(options)) {
  const std::string tag = "[SummaryWriter] " + log_dir + ":";
  KEEL_CHECK(!log_dir.empty(), "[SummaryWriter] the log folder name is empty");
  std::error_code error;
  std::filesystem::create_directories(log_dir, error);
  KEEL_CHECK(!error, tag, " cannot create the log folder: ", error.message());
  KEEL_CHECK(std::filesystem::is_directory(log_dir, error), tag, " exists and is not a folder");
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) std::snprintf(host, sizeof(host), "localhost");
  const double wall_time = now_seconds();
  // O_EXCL: never append to or overwrite another writer's file; try the next number instead.
  for (int attempt = 0; fd_ < 0; ++attempt) {
    char name[400];
    std::snprintf(name, sizeof(name), "events.out.tfevents.%010lld.%s.%d.%llu",
                  static_cast<long long>(wall_time), host, static_cast<int>(::getpid()),
                  static_cast<unsigned long long>(next_file_number.fetch_add(1)));
    file_path_ = (std::filesystem::path(log_dir) / (name + options_.filename_suffix)).string();
    fd_ = ::open(file_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0 && !(errno == EEXIST && attempt < 100))
      fail(tag, " cannot create the event file ", file_path_, ": ", std::strerror(errno));
  }
  protobuf::Writer event;
  event.float64(event_field::wall_time, wall_time);
  event.string(event_field::file_version, "brain.Event:2");
  append_tfrecord(buffer_, event.str());
  // The header reaches the disk at once (as in PyTorch), so TensorBoard sees the run.
  try {
    flush();
  } catch (...) {
    ::close(fd_);  // the destructor does not run for a constructor that throws
    throw;
  }
}

SummaryWriter::~SummaryWriter() {
  try {
    close();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "%s\n", error.what());
  }
}

void SummaryWriter::write_buffer_locked() {
  const char* bytes = buffer_.data();
  size_t size = buffer_.size();
  while (size > 0) {
    const ssize_t written = ::write(fd_, bytes, size);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      const std::string why = written < 0 ? std::strerror(errno) : "nothing written";
      buffer_.erase(0, buffer_.size() - size);  // keep what is not written yet
      fail("[SummaryWriter.flush] writing ", file_path_, " failed: ", why);
    }
    bytes += written;
    size -= static_cast<size_t>(written);
  }
  buffer_.clear();
  last_flush_ = now_seconds();
}

void SummaryWriter::flush() {
  std::lock_guard lock(mutex_);
  if (fd_ < 0) return;
  write_buffer_locked();
}

void SummaryWriter::close() {
  std::lock_guard lock(mutex_);
  if (fd_ < 0) return;
  try {
    write_buffer_locked();
  } catch (...) {
    ::close(fd_);
    fd_ = -1;
    throw;
  }
  const int result = ::close(fd_);
  fd_ = -1;
  KEEL_CHECK(result == 0, "[SummaryWriter.close] closing ", file_path_, " failed: ", std::strerror(errno));
}

void SummaryWriter::add_event(const std::string& event, const char* function) {
  std::lock_guard lock(mutex_);
  KEEL_CHECK(fd_ >= 0, "[SummaryWriter.", function, "] ", file_path_, ": the writer is closed");
  append_tfrecord(buffer_, event);
  if (buffer_.size() >= options_.max_buffer_bytes || now_seconds() - last_flush_ >= options_.flush_secs)
    write_buffer_locked();
}

void SummaryWriter::add_scalar(const std::string& tag, double value, int64_t step, std::optional<double> wall_time) {
  protobuf::Writer summary_value;
  summary_value.string(value_field::tag, tag);
  // Summary.Value.simple_value is a float (PyTorch's default, new_style=False).
  summary_value.float32(value_field::simple_value, static_cast<float>(value));
  add_event(summary_event(step, wall_time, summary_value), "add_scalar");
}

void SummaryWriter::add_histogram(const std::string& tag, const Tensor& values, int64_t step,
                                  std::optional<double> wall_time) {
  const std::string context = "[SummaryWriter.add_histogram] tag \"" + tag + "\":";
  KEEL_CHECK(values.defined(), context, " the tensor is undefined");
  const Tensor host = values.detach().to(Device::cpu(), DType::f64).contiguous();
  const Histogram histogram =
      make_histogram(std::span<const double>(host.data_ptr<double>(), static_cast<size_t>(host.numel())), context);
  protobuf::Writer histo;
  histo.float64(histogram_field::min, histogram.min);
  histo.float64(histogram_field::max, histogram.max);
  histo.float64(histogram_field::num, histogram.num);
  histo.float64(histogram_field::sum, histogram.sum);
  histo.float64(histogram_field::sum_squares, histogram.sum_squares);
  histo.packed_float64(histogram_field::bucket_limit, histogram.bucket_limit);
  histo.packed_float64(histogram_field::bucket, histogram.bucket);
  protobuf::Writer summary_value;
  summary_value.string(value_field::tag, tag);
  summary_value.message(value_field::histo, histo);
  add_event(summary_event(step, wall_time, summary_value), "add_histogram");
}

void SummaryWriter::add_text(const std::string& tag, const std::string& text, int64_t step,
                             std::optional<double> wall_time) {
  // torch.utils.tensorboard.summary.text: the text plugin's metadata (TextPluginData{version: 0}
  // serializes to no bytes) and a DT_STRING tensor of shape [1].
  protobuf::Writer plugin_data;
  plugin_data.string(plugin_data_field::plugin_name, "text");
  protobuf::Writer metadata;
  metadata.message(metadata_field::plugin_data, plugin_data);
  protobuf::Writer dim;
  dim.int64(shape_field::dim_size, 1);
  protobuf::Writer shape;
  shape.message(shape_field::dim, dim);
  protobuf::Writer tensor;
  tensor.uint64(tensor_field::dtype, kDtString);
  tensor.message(tensor_field::tensor_shape, shape);
  tensor.string(tensor_field::string_val, text);
  protobuf::Writer summary_value;
  summary_value.string(value_field::tag, tag + "/text_summary");
  summary_value.message(value_field::metadata, metadata);
  summary_value.message(value_field::tensor, tensor);
  add_event(summary_event(step, wall_time, summary_value), "add_text");
}

int64_t add_histograms(SummaryWriter& writer, const NamedTensors& tensors, int64_t step, const std::string& prefix) {
  int64_t skipped = 0;
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined() || !is_floating(tensor.dtype()) || tensor.numel() == 0) continue;
    const Tensor host = tensor.detach().to(Device::cpu(), DType::f64).contiguous();
    const double* values = host.data_ptr<double>();
    if (!std::all_of(values, values + host.numel(), [](double v) { return std::isfinite(v); })) {
      ++skipped;
      continue;
    }
    writer.add_histogram(prefix + name, host, step);
  }
  return skipped;
}

}  // namespace keel::io
