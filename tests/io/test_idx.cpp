// IDX reader: every element type, plain and gzip, against bytes written here by hand; every
// kind of damaged file; the real Fashion-MNIST files and load_fashion_mnist's checks.
#include <zlib.h>

#include <bit>
#include <cstring>
#include <limits>

#include "io_test_files.h"
#include "test_util.h"

using namespace keel;
using keel::test::append_be;
using keel::test::Bytes;
using keel::test::gzip;
using keel::test::TempDir;
using keel::test::write_file;

namespace {

Bytes header(uint8_t type_code, const std::vector<uint32_t>& dims) {
  Bytes out = {0, 0, type_code, static_cast<uint8_t>(dims.size())};
  for (uint32_t dim : dims) append_be(out, dim, 4);
  return out;
}

// An IDX file of the given type whose element i is values[i] (as the file's type).
template <typename T>
Bytes idx_file(uint8_t type_code, const std::vector<uint32_t>& dims, const std::vector<T>& values) {
  Bytes out = header(type_code, dims);
  for (T value : values) {
    uint64_t bits = 0;
    std::memcpy(&bits, &value, sizeof(T));
    append_be(out, bits, sizeof(T));
  }
  return out;
}

template <typename Stored, typename T>
void check_values(const Tensor& tensor, DType dtype, const Shape& shape, const std::vector<T>& values) {
  REQUIRE(tensor.dtype() == dtype);
  REQUIRE(tensor.shape() == shape);
  REQUIRE(tensor.is_contiguous());
  REQUIRE(tensor.numel() == static_cast<int64_t>(values.size()));
  const Stored* data = tensor.data_ptr<Stored>();
  size_t mismatches = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(values[i])) {
        mismatches += !std::isnan(data[i]);
        continue;
      }
    }
    mismatches += data[i] != static_cast<Stored>(values[i]);
  }
  CHECK(mismatches == 0);
}

// Reads `bytes` as a plain file, as a gzip file, and from memory; all must agree.
template <typename Stored, typename T>
void check_all_ways(const Bytes& bytes, DType dtype, const Shape& shape, const std::vector<T>& values) {
  TempDir dir;
  write_file(dir.file("plain.idx"), bytes);
  write_file(dir.file("packed.idx.gz"), gzip(bytes));
  check_values<Stored>(data::read_idx(dir.file("plain.idx")), dtype, shape, values);
  check_values<Stored>(data::read_idx(dir.file("packed.idx.gz")), dtype, shape, values);
  check_values<Stored>(data::parse_idx(bytes).tensor, dtype, shape, values);
  check_values<Stored>(data::parse_idx(gzip(bytes, 9)).tensor, dtype, shape, values);
}

// The keel::Error message of reading `bytes` (plain from a file), or "" when it did not throw.
std::string error_of(const Bytes& bytes, const std::string& name = "bad.idx") {
  TempDir dir;
  write_file(dir.file(name), bytes);
  try {
    data::read_idx(dir.file(name));
  } catch (const Error& error) {
    const std::string message = error.what();
    CHECK(message.find(dir.file(name)) != std::string::npos);  // names the file
    return message;
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("read_idx: every element type, plain and gzip", "[io][idx]") {
  check_all_ways<uint8_t>(idx_file<uint8_t>(0x08, {2, 3}, {0, 1, 2, 127, 128, 255}), DType::u8,
                          {2, 3}, std::vector<uint8_t>{0, 1, 2, 127, 128, 255});
  check_all_ways<int8_t>(idx_file<int8_t>(0x09, {5}, {-128, -1, 0, 1, 127}), DType::i8, {5},
                         std::vector<int8_t>{-128, -1, 0, 1, 127});
  // i16 (big-endian in the file) widens to i32.
  check_all_ways<int32_t>(idx_file<int16_t>(0x0B, {1, 2, 2}, {-32768, -2, 258, 32767}), DType::i32,
                          {1, 2, 2}, std::vector<int32_t>{-32768, -2, 258, 32767});
  check_all_ways<int32_t>(
      idx_file<int32_t>(0x0C, {2, 1, 1, 2}, {std::numeric_limits<int32_t>::min(), -16909061, 16909060, 2147483647}),
      DType::i32, {2, 1, 1, 2},
      std::vector<int32_t>{std::numeric_limits<int32_t>::min(), -16909061, 16909060, 2147483647});
  const std::vector<float> floats = {1.5f, -0.25f, 3.4e38f, 1e-45f, std::numeric_limits<float>::infinity(),
                                     std::numeric_limits<float>::quiet_NaN()};
  check_all_ways<float>(idx_file<float>(0x0D, {3, 2}, floats), DType::f32, {3, 2}, floats);
  const std::vector<double> doubles = {0.1, -1e300, 5e-324, 2.0 / 3.0};
  check_all_ways<double>(idx_file<double>(0x0E, {4}, doubles), DType::f64, {4}, doubles);
}

TEST_CASE("read_idx: the header is reported, empty dims and larger files", "[io][idx]") {
  const data::Idx idx = data::parse_idx(idx_file<int16_t>(0x0B, {3}, {1, 2, 3}));
  CHECK(idx.type_code == 0x0B);
  CHECK(idx.shape == Shape{3});
  // A zero dim: an empty tensor, no data bytes.
  check_all_ways<uint8_t>(header(0x08, {0, 28, 28}), DType::u8, {0, 28, 28}, std::vector<uint8_t>{});
  // Big enough to take several inflate calls and growing chunks (3 MB).
  std::vector<uint8_t> values(3 * 1000 * 1000 + 7);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
  check_all_ways<uint8_t>(idx_file<uint8_t>(0x08, {static_cast<uint32_t>(values.size())}, values),
                          DType::u8, {static_cast<int64_t>(values.size())}, values);
}

TEST_CASE("read_idx: several gzip members in a row read as one stream", "[io][idx]") {
  const Bytes file = idx_file<uint8_t>(0x08, {6}, {1, 2, 3, 4, 5, 6});
  Bytes first(file.begin(), file.begin() + 9), second(file.begin() + 9, file.end());
  Bytes joined = gzip(first);
  const Bytes tail = gzip(second);
  joined.insert(joined.end(), tail.begin(), tail.end());
  check_values<uint8_t>(data::parse_idx(joined).tensor, DType::u8, {6}, std::vector<uint8_t>{1, 2, 3, 4, 5, 6});
}

TEST_CASE("read_idx: damaged headers", "[io][idx]") {
  const Bytes good = idx_file<uint8_t>(0x08, {2, 2}, {1, 2, 3, 4});
  Bytes bad = good;
  bad[0] = 0x01;
  CHECK(contains(error_of(bad), "expected 0x00 0x00"));
  bad = good;
  bad[1] = 0x08;
  CHECK(contains(error_of(bad), "not an IDX file"));
  bad = good;
  bad[2] = 0x0A;
  CHECK(contains(error_of(bad), "unknown IDX element type code 0x0a"));
  bad = good;
  bad[3] = 0;
  CHECK(contains(error_of(bad), "0 dims"));
  CHECK(contains(error_of(header(0x08, {1, 1, 1, 1, 1, 1, 1, 1, 1})), "9 dims"));
  // Short files: nothing, 3 bytes, a header cut inside its dims.
  CHECK(contains(error_of(Bytes{}), "shorter than the 4-byte header"));
  CHECK(contains(error_of(Bytes{0, 0, 8}), "shorter than the 4-byte header"));
  CHECK(contains(error_of(Bytes(good.begin(), good.begin() + 9)), "the header's dims ends early"));
  // Dims whose product overflows 64 bits, and a product over max_bytes.
  CHECK(contains(error_of(header(0x0E, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF})), "the header is corrupt"));
  CHECK(contains(error_of(header(0x08, {0x10000, 0x10000, 0x10000})), "the header is corrupt"));
  data::IdxOptions small{.max_bytes = 3};
  CHECK_THROWS_WITH(data::parse_idx(good, "x", small), Catch::Contains("IdxOptions::max_bytes"));
  CHECK(data::parse_idx(good, "x", {.max_bytes = 4}).tensor.numel() == 4);
  // The same header faults inside a gzip stream.
  bad = good;
  bad[2] = 0x07;
  CHECK(contains(error_of(gzip(bad)), "unknown IDX element type code 0x07"));
  CHECK(contains(error_of(gzip(header(0x0D, {0xFFFFFFFF, 0xFFFFFFFF, 2}))), "the header is corrupt"));
}

TEST_CASE("read_idx: data shorter or longer than the header says", "[io][idx]") {
  const Bytes good = idx_file<float>(0x0D, {2, 3}, {1, 2, 3, 4, 5, 6});
  Bytes shorter(good.begin(), good.end() - 1), longer = good;
  longer.push_back(0);
  CHECK(contains(error_of(shorter), "need 24 bytes of data but the file has 23"));
  CHECK(contains(error_of(longer), "the file has 25 (extra bytes"));
  CHECK(contains(error_of(gzip(shorter)), "need 24 bytes of data but only 23 are present"));
  CHECK(contains(error_of(gzip(longer)), "extra bytes after the data"));
  // Dims far larger than the data: refused without allocating what the header claims.
  CHECK(contains(error_of(header(0x0E, {0x10000000, 2})), "need 4294967296 bytes of data but the file has 0"));
  CHECK(contains(error_of(gzip(header(0x08, {0x40000000, 3}))), "but only 0 are present"));
}

TEST_CASE("read_idx: damaged gzip streams", "[io][idx]") {
  std::vector<uint8_t> values(5000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<uint8_t>(i * 7 + i / 13);
  const Bytes packed = gzip(idx_file<uint8_t>(0x08, {50, 100}, values));
  // Cut anywhere: in the data, in the 8-byte trailer, right after the 10-byte gzip header.
  for (size_t cut : {packed.size() - 1, packed.size() - 4, packed.size() - 8, packed.size() / 2, size_t{12}}) {
    INFO("cut at " << cut << " of " << packed.size());
    CHECK(contains(error_of(Bytes(packed.begin(), packed.begin() + cut)), "truncated"));
  }
  // Only the two magic bytes.
  CHECK(contains(error_of(Bytes{0x1f, 0x8b}), "gzip"));
  // A wrong CRC-32 in the trailer, and a damaged deflate block.
  Bytes bad = packed;
  bad[bad.size() - 6] ^= 0x40;
  CHECK(contains(error_of(bad), "corrupt gzip data (incorrect data check)"));
  bad = packed;
  bad[12] ^= 0xFF;
  bad[13] ^= 0x5A;
  CHECK(contains(error_of(bad), "corrupt gzip data"));
  // Trailing garbage after the stream: zeros, text, a lone 1f byte.
  for (const Bytes& tail : {Bytes{0, 0, 0, 0}, Bytes{'a', 'b', 'c'}, Bytes{0x1f}}) {
    bad = packed;
    bad.insert(bad.end(), tail.begin(), tail.end());
    CHECK(contains(error_of(bad), std::to_string(tail.size()) + " bytes of trailing garbage"));
  }
}

TEST_CASE("read_idx: a missing file", "[io][idx]") {
  TempDir dir;
  CHECK_THROWS_WITH(data::read_idx(dir.file("nothing.idx")),
                    Catch::Contains(dir.file("nothing.idx")) && Catch::Contains("cannot open"));
  CHECK_THROWS_WITH(data::read_idx(dir.path().string()), Catch::Contains("[read_idx]") && Catch::Contains("is a folder"));
}

namespace {
const std::string kFashionDir = "/usr/share/datasets/fashion-mnist";

// The bytes after the header, read through zlib's gz* API (not the reader under test).
Bytes gunzip_file(const std::string& path, size_t skip) {
  gzFile file = gzopen(path.c_str(), "rb");
  REQUIRE(file != nullptr);
  Bytes out, chunk(1 << 16);
  for (int got; (got = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0;)
    out.insert(out.end(), chunk.begin(), chunk.begin() + got);
  gzclose(file);
  REQUIRE(out.size() >= skip);
  return Bytes(out.begin() + static_cast<std::ptrdiff_t>(skip), out.end());
}
}  // namespace

TEST_CASE("load_fashion_mnist: the installed files", "[io][fashion_mnist]") {
  if (!std::filesystem::exists(kFashionDir + "/train-images-idx3-ubyte.gz")) {
    WARN("SKIPPED: " << kFashionDir << " is absent; install Debian's dataset-fashion-mnist package");
    return;
  }
  const data::FashionMnist mnist = data::load_fashion_mnist();
  CHECK(mnist.train_images.shape() == Shape{60000, 28, 28});
  CHECK(mnist.train_images.dtype() == DType::u8);
  CHECK(mnist.test_images.shape() == Shape{10000, 28, 28});
  CHECK(mnist.train_labels.shape() == Shape{60000});
  CHECK(mnist.train_labels.dtype() == DType::i64);
  CHECK(mnist.test_labels.shape() == Shape{10000});
  // The published sets are balanced: 6000 / 1000 images of each class.
  for (const auto& [labels, per_class] : {std::pair{mnist.train_labels, 6000}, std::pair{mnist.test_labels, 1000}}) {
    std::vector<int64_t> counts(10, 0);
    const int64_t* data = labels.data_ptr<int64_t>();
    for (int64_t i = 0; i < labels.numel(); ++i) ++counts.at(static_cast<size_t>(data[i]));
    for (int64_t count : counts) CHECK(count == per_class);
  }
  // Byte for byte what zlib's own gz reader gives after the 16- and 8-byte headers.
  const Bytes images = gunzip_file(kFashionDir + "/t10k-images-idx3-ubyte.gz", 16);
  REQUIRE(images.size() == 10000u * 28 * 28);
  CHECK(std::memcmp(images.data(), mnist.test_images.data_ptr<uint8_t>(), images.size()) == 0);
  const Bytes labels = gunzip_file(kFashionDir + "/train-labels-idx1-ubyte.gz", 8);
  REQUIRE(labels.size() == 60000u);
  bool same = true;
  for (size_t i = 0; i < labels.size(); ++i) same = same && mnist.train_labels.data_ptr<int64_t>()[i] == labels[i];
  CHECK(same);
  CHECK(std::string(data::fashion_mnist_class_name(9)) == "Ankle boot");
}

TEST_CASE("load_fashion_mnist: missing or wrong files", "[io][fashion_mnist]") {
  TempDir dir;
  const std::string hint = "sudo apt-get install dataset-fashion-mnist";
  CHECK_THROWS_WITH(data::load_fashion_mnist(dir.file("absent")),
                    Catch::Contains("does not exist") && Catch::Contains(hint));
  CHECK_THROWS_WITH(data::load_fashion_mnist(dir.path().string()),
                    Catch::Contains("train-images-idx3-ubyte.gz") && Catch::Contains(hint));
  // Well-formed IDX files of the wrong sizes (plain files, without .gz, are accepted too).
  const std::vector<uint8_t> pixels(2 * 28 * 28, 3);
  write_file(dir.file("train-images-idx3-ubyte"), idx_file<uint8_t>(0x08, {2, 28, 28}, pixels));
  write_file(dir.file("train-labels-idx1-ubyte"), idx_file<uint8_t>(0x08, {2}, {1, 2}));
  CHECK_THROWS_WITH(data::load_fashion_mnist(dir.path().string()),
                    Catch::Contains("expected u8 images of shape [60000, 28, 28], got shape [2, 28, 28]"));
  std::vector<uint8_t> many(60000 * 28 * 28, 1), labels(60000, 4);
  write_file(dir.file("train-images-idx3-ubyte.gz"), gzip(idx_file<uint8_t>(0x08, {60000, 28, 28}, many), 1));
  CHECK_THROWS_WITH(data::load_fashion_mnist(dir.path().string()),
                    Catch::Contains("expected 60000 u8 labels (one per image), got shape [2]"));
  labels[777] = 10;
  write_file(dir.file("train-labels-idx1-ubyte.gz"), gzip(idx_file<uint8_t>(0x08, {60000}, labels)));
  CHECK_THROWS_WITH(data::load_fashion_mnist(dir.path().string()),
                    Catch::Contains("label 10 at index 777 is outside 0..9"));
  labels[777] = 9;
  write_file(dir.file("train-labels-idx1-ubyte.gz"), gzip(idx_file<uint8_t>(0x08, {60000}, labels)));
  CHECK_THROWS_WITH(data::load_fashion_mnist(dir.path().string()),
                    Catch::Contains("t10k-images-idx3-ubyte.gz") && Catch::Contains(hint));
}
