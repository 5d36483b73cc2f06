// SummaryWriter's pieces that need no Python: the histogram bucketing against a direct count,
// the TFRecord framing, and the errors. tests/parity/tensorboard_dump.cpp + compare_tensorboard.py
// read a whole event file back with the tensorboard package.
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "keel/io/crc32c.h"
#include "keel/io/tensorboard.h"
#include "test_util.h"

using namespace keel;
namespace fs = std::filesystem;

namespace {

fs::path fresh_folder(const std::string& name) {
  const fs::path folder = fs::temp_directory_path() / ("keel_test_tensorboard_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(folder);
  return folder;
}

std::string read_all(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
}

uint64_t le(const std::string& bytes, size_t at, int width) {
  uint64_t value = 0;
  for (int i = 0; i < width; ++i) value |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[at + i])) << (8 * i);
  return value;
}

}  // namespace

TEST_CASE("tensorboard: default edges are PyTorch's") {
  const auto& edges = io::default_histogram_edges();
  // 1e-12 * 1.1^k < 1e20 for k = 0 .. 773 (log(1e32) / log(1.1) = 773.2): 774 positive edges,
  // their negatives and 0.
  REQUIRE(edges.size() == 2 * 774 + 1);
  CHECK(edges[774] == 0.0);
  CHECK(edges[775] == 1e-12);
  CHECK(edges[773] == -1e-12);
  CHECK(edges.back() < 1e20);
  CHECK(edges.back() * 1.1 >= 1e20);
  for (size_t i = 1; i < edges.size(); ++i) REQUIRE(edges[i - 1] < edges[i]);
}

TEST_CASE("tensorboard: histogram counts match a direct count over the kept edges") {
  const std::vector<double> values = {-3.0, -1e-13, 0.0, 0.0, 1e-12, 0.5, 0.5000001, 2.0, 2.0, 7.25, 1e25};
  const io::Histogram h = io::make_histogram(values, "[test]");
  CHECK(h.num == 11);
  CHECK(h.min == -3.0);
  CHECK(h.max == 1e25);
  double sum = 0, squares = 0;
  for (double v : values) sum += v, squares += v * v;
  CHECK(h.sum == Approx(sum));
  CHECK(h.sum_squares == Approx(squares));
  REQUIRE(h.bucket.size() == h.bucket_limit.size());
  CHECK(h.bucket.front() == 0.0);
  // bucket[i] (i >= 1) counts bucket_limit[i-1] <= v < bucket_limit[i]; 1e25 is beyond every edge.
  double total = 0;
  for (size_t i = 1; i < h.bucket.size(); ++i) {
    double expected = 0;
    for (double v : values)
      if (v >= h.bucket_limit[i - 1] && v < h.bucket_limit[i]) expected += 1;
    REQUIRE(h.bucket[i] == expected);
    total += h.bucket[i];
  }
  CHECK(total == 10);
  // The first kept limit is the left edge of the bin holding -3.0 (the smallest value).
  CHECK(h.bucket_limit.front() <= -3.0);
  CHECK(h.bucket_limit[1] > -3.0);
}

TEST_CASE("tensorboard: bad histogram input is an error") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(io::make_histogram(std::vector<double>{1.0, nan}, "[h]"), Catch::Contains("NaN or infinite"));
  CHECK_THROWS_WITH(io::make_histogram(std::vector<double>{-inf}, "[h]"), Catch::Contains("NaN or infinite"));
  CHECK_THROWS_WITH(io::make_histogram(std::vector<double>{}, "[h]"), Catch::Contains("empty"));
  CHECK_THROWS_WITH(io::make_histogram(std::vector<double>{1e30}, "[h]"), Catch::Contains("range"));
}

TEST_CASE("tensorboard: records are framed with masked CRC-32C and the file starts with brain.Event:2") {
  const fs::path folder = fresh_folder("frame") / "nested" / "run";
  std::string path;
  {
    io::SummaryWriter writer(folder.string());
    path = writer.file_path();
    CHECK(fs::path(path).parent_path() == folder);
    CHECK(fs::path(path).filename().string().rfind("events.out.tfevents.", 0) == 0);
    // The header is on disk before any flush.
    CHECK(fs::file_size(path) > 0);
    writer.add_scalar("loss", 0.5, 3);
    writer.add_text("note", "hello", 0);
  }
  const std::string bytes = read_all(path);
  size_t at = 0, records = 0;
  while (at < bytes.size()) {
    REQUIRE(bytes.size() - at >= 12);
    const uint64_t length = le(bytes, at, 8);
    CHECK(le(bytes, at + 8, 4) == io::mask_crc32c(io::crc32c(bytes.data() + at, 8)));
    REQUIRE(bytes.size() - at - 12 >= length + 4);
    CHECK(le(bytes, at + 12 + length, 4) == io::mask_crc32c(io::crc32c(bytes.data() + at + 12, length)));
    if (records == 0) CHECK(bytes.substr(at + 12, length).find("brain.Event:2") != std::string::npos);
    at += 12 + length + 4;
    ++records;
  }
  CHECK(records == 3);
  fs::remove_all(folder.parent_path().parent_path());
}

TEST_CASE("tensorboard: errors") {
  const fs::path folder = fresh_folder("errors");
  fs::create_directories(folder);
  { std::ofstream(folder / "a_file") << "x"; }
  CHECK_THROWS_WITH(io::SummaryWriter((folder / "a_file").string()), Catch::Contains("[SummaryWriter]"));
  CHECK_THROWS_WITH(io::SummaryWriter((folder / "a_file" / "below").string()), Catch::Contains("cannot create"));
  CHECK_THROWS_AS(io::SummaryWriter(""), Error);

  io::SummaryWriter writer((folder / "run").string());
  CHECK_THROWS_WITH(writer.add_histogram("w", zeros({0}), 0), Catch::Contains("empty"));
  CHECK_THROWS_WITH(writer.add_histogram("w", full({2}, std::numeric_limits<float>::quiet_NaN()), 0),
                    Catch::Contains("\"w\""));
  writer.add_histogram("w", arange(0, 10), 1);
  writer.close();
  writer.close();
  CHECK_THROWS_WITH(writer.add_scalar("loss", 1.0, 0), Catch::Contains("closed"));
  fs::remove_all(folder);
}

TEST_CASE("tensorboard: a failed write is reported") {
  // A file size limit (RLIMIT_FSIZE) makes write() fail with EFBIG once SIGXFSZ is ignored.
  const fs::path folder = fresh_folder("full");
  io::SummaryWriter writer(folder.string());
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
  auto* previous_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = saved;
  small.rlim_cur = 4096;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  writer.add_text("big", std::string(10000, 'x'), 0);
  std::string message;
  try {
    writer.flush();
  } catch (const Error& error) {
    message = error.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, previous_handler);
  CHECK(message.find("[SummaryWriter.flush]") != std::string::npos);
  CHECK(message.find("failed") != std::string::npos);
  writer.flush();  // the limit is gone: the rest of the record is written now
  writer.close();
  fs::remove_all(folder);
}
