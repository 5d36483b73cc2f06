// .npy / .npz: round trips and hostile input. numpy's own files and numpy reading Keel's are in
// tests/parity (parity_numpy); here every malformed file must give keel::Error naming the file,
// never a crash or an allocation sized by an unchecked header.
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "keel/io/npy.h"
#include "test_util.h"

using namespace keel;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<uint8_t>;

Bytes to_bytes(const std::string& text) { return Bytes(text.begin(), text.end()); }

// An .npy file from a header dict and raw data (version 1.0, no padding: readers must not care).
Bytes npy(const std::string& dict, const std::string& data, int major = 1) {
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  const size_t width = major == 1 ? 2 : 4;
  for (size_t i = 0; i < width; ++i) out += static_cast<char>((dict.size() >> (8 * i)) & 0xFF);
  return to_bytes(out + dict + data);
}

std::string le(uint64_t value, int width) {
  std::string out;
  for (int i = 0; i < width; ++i) out += static_cast<char>((value >> (8 * i)) & 0xFF);
  return out;
}

std::string raw_deflate(const std::string& data) {
  z_stream stream{};
  REQUIRE(deflateInit2(&stream, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&stream, data.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&stream, Z_FINISH) == Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

// A zip archive built field by field, so that tests can lie in any field.
struct ZipEntrySpec {
  std::string name;
  std::string data;  // uncompressed
  uint16_t method = 0;
  std::optional<uint32_t> crc, declared_size;
  std::optional<uint32_t> local_offset;  // for the central directory
  uint16_t flags = 0;
};

std::string zip(const std::vector<ZipEntrySpec>& entries, std::optional<uint32_t> directory_offset = {}) {
  std::string body, central;
  for (const auto& entry : entries) {
    const std::string stored = entry.method == 8 ? raw_deflate(entry.data) : entry.data;
    const uint32_t crc = entry.crc.value_or(static_cast<uint32_t>(
        ::crc32(0, reinterpret_cast<const Bytef*>(entry.data.data()), static_cast<uInt>(entry.data.size()))));
    const uint32_t size = entry.declared_size.value_or(static_cast<uint32_t>(entry.data.size()));
    const uint32_t offset = entry.local_offset.value_or(static_cast<uint32_t>(body.size()));
    const std::string common = le(20, 2) + le(entry.flags, 2) + le(entry.method, 2) + le(0, 4) + le(crc, 4) +
                               le(stored.size(), 4) + le(size, 4) + le(entry.name.size(), 2) + le(0, 2);
    body += le(0x04034b50, 4) + common + entry.name + stored;
    central += le(0x02014b50, 4) + le(20, 2) + common + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(offset, 4) +
               entry.name;
  }
  const std::string end = le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(entries.size(), 2) + le(entries.size(), 2) +
                          le(central.size(), 4) + le(directory_offset.value_or(static_cast<uint32_t>(body.size())), 4) +
                          le(0, 2);
  return body + central + end;
}

std::string npy_f32(const std::vector<float>& values) {
  std::string data(values.size() * 4, '\0');
  std::memcpy(data.data(), values.data(), data.size());
  const Bytes file = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(values.size()) + ",), }", data);
  return std::string(file.begin(), file.end());
}

template <typename F> std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

fs::path temp_path(const std::string& name) {
  return fs::temp_directory_path() / ("keel_test_npy_" + std::to_string(::getpid()) + "_" + name);
}

}  // namespace

TEST_CASE("npy: round trip of every dtype, 0-d, empty and non-contiguous tensors") {
  manual_seed(3);
  const fs::path path = temp_path("round.npy");
  const std::vector<Tensor> cases = {randn({3, 4, 5}),
                                     randn({7}, {.dtype = DType::f64}),
                                     randn({2, 3}).to(DType::f16),
                                     (randn({4, 2}) * 1e6).to(DType::i64),
                                     (randn({5}) * 1e4).to(DType::i32),
                                     (randn({16}) * 50).to(DType::i8),
                                     (rand({6}) * 255).to(DType::u8),
                                     rand({9}) > 0.5,
                                     scalar_tensor(2.5, DType::f32),
                                     zeros({0, 3}),
                                     randn({4, 6}).t()};
  for (const Tensor& tensor : cases) {
    io::save_npy(path.string(), tensor);
    const Tensor back = io::load_npy(path.string());
    REQUIRE(back.dtype() == tensor.dtype());
    REQUIRE(back.shape() == tensor.shape());
    REQUIRE(back.is_contiguous());
    const Tensor a = tensor.contiguous();
    REQUIRE(std::memcmp(a.raw_data(), back.raw_data(), a.nbytes()) == 0);
  }
  CHECK_THROWS_WITH(io::save_npy(path.string(), zeros({2}, {.dtype = DType::bf16})),
                    Catch::Contains("no bfloat16") && Catch::Contains(".to(f32)"));
  fs::remove(path);
}

TEST_CASE("npz: round trip, names, and errors") {
  const fs::path path = temp_path("round.npz");
  const io::NamedTensors tensors = {{"a", arange(0, 12).reshape({3, 4})}, {"dir/b", randn({2})}, {"empty", zeros({0})}};
  io::save_npz(path.string(), tensors);
  const io::NamedTensors back = io::load_npz(path.string());
  REQUIRE(back.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(back[i].first == tensors[i].first);
    REQUIRE(back[i].second.shape() == tensors[i].second.shape());
    CHECK(std::memcmp(back[i].second.raw_data(), tensors[i].second.contiguous().raw_data(), back[i].second.nbytes()) == 0);
  }
  CHECK_THROWS_WITH(io::save_npz(path.string(), {{"a", zeros({1})}, {"a", zeros({1})}}), Catch::Contains("twice"));
  CHECK_THROWS_WITH(io::save_npz(path.string(), {{"", zeros({1})}}), Catch::Contains("empty name"));
  CHECK(io::load_npz(path.string()).size() == 3);  // a failed save left the file whole
  CHECK_THROWS_WITH(io::load_npz((path.string() + ".missing")), Catch::Contains("[load_npz]") && Catch::Contains("cannot open"));
  fs::remove(path);
}

TEST_CASE("npy: headers numpy can write are read") {
  const std::string six(24, '\0');
  // Extra spaces, double quotes, no trailing comma, Python 2 longs, version 2.0.
  CHECK(io::parse_npy(npy("{ \"descr\" : \"<f4\" , 'shape':(2L,3L),'fortran_order':False}\n", six), "t").shape() ==
        Shape{2, 3});
  CHECK(io::parse_npy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", six, 2), "t").numel() == 6);
  CHECK(io::parse_npy(npy("{'descr': '<i4', 'fortran_order': False, 'shape': (), }", std::string("\x07\0\0\0", 4)), "t").item<int64_t>() == 7);
  // Fortran order: the data is column-major.
  const std::string column_major = std::string("\x01\x04\x02\x05\x03\x06", 6);
  const Tensor f = io::parse_npy(npy("{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }", column_major), "t");
  REQUIRE(f.shape() == Shape{2, 3});
  for (int i = 0; i < 6; ++i) CHECK(static_cast<int>(f.contiguous().data_ptr<uint8_t>()[i]) == i + 1);
  // Big-endian, swapped on load.
  const Tensor b = io::parse_npy(npy("{'descr': '>i4', 'fortran_order': False, 'shape': (1,), }", std::string("\0\0\x01\x02", 4)), "t");
  CHECK(b.item<int64_t>() == 0x0102);
  // numpy reads any nonzero bool byte as True; Keel stores it as 1.
  const Tensor flags = io::parse_npy(npy("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", std::string("\0\x02\xff", 3)), "t");
  CHECK(static_cast<uint8_t*>(flags.raw_data())[1] == 1);
  CHECK(static_cast<uint8_t*>(flags.raw_data())[2] == 1);
}

TEST_CASE("npy: malformed headers and sizes are errors naming the file") {
  const std::string four(4, '\0');
  auto header_error = [&](const std::string& dict, const std::string& data = std::string(4, '\0')) {
    return error_of([&] { io::parse_npy(npy(dict, data), "bad.npy"); });
  };
  CHECK_THAT(header_error("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }"), Catch::Contains("[load_npy] bad.npy") && Catch::Contains("'<c8'"));
  CHECK_THAT(header_error("{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }"), Catch::Contains("not supported"));
  CHECK_THAT(header_error("{'descr': '<i2', 'fortran_order': False, 'shape': (2,), }"), Catch::Contains("'<i2'"));
  CHECK_THAT(header_error("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }"), Catch::Contains("quoted string"));
  CHECK_THAT(header_error("{'descr': '|f4', 'fortran_order': False, 'shape': (1,), }"), Catch::Contains("byte order"));
  CHECK_THAT(header_error("{'descr': '<f4', 'shape': (1,), }"), Catch::Contains("lacks"));
  CHECK_THAT(header_error("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }"), Catch::Contains("twice"));
  CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}"), Catch::Contains("unknown key"));
  CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': false, 'shape': (1,), }"), Catch::Contains("True or False"));
  CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x"), Catch::Contains("after the dict"));
  CHECK_THAT(header_error("{'descr': '<f4, 'fortran_order': False, 'shape': (1,), }"), Catch::Contains("'<f4, '"));
  CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), "), Catch::Contains("quoted string at character 56"));
  CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (1,"), Catch::Contains("bad header"));
  CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"), Catch::Contains("non-negative"));
  CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }"), Catch::Contains("overflows"));
  // Shape products that overflow, or that the data does not cover.
  CHECK_THAT(header_error("{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }"), Catch::Contains("more elements"));
  CHECK_THAT(header_error("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }"), Catch::Contains("more elements"));
  CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824, 1024), }"), Catch::Contains("needs 4398046511104 bytes"));
  CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"), Catch::Contains("needs 8 bytes of data but 4"));
  CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }"), Catch::Contains("needs 0 bytes"));
  std::string dims = "(";
  for (int i = 0; i < 65; ++i) dims += "1,";
  CHECK_THAT(header_error("{'descr': '<f4', 'fortran_order': False, 'shape': " + dims + "), }"), Catch::Contains("64 dimensions"));
  // Magic, version and header length.
  CHECK_THAT(error_of([] { io::parse_npy(to_bytes(std::string("\x93NUMPX\x01\x00\x00\x00", 10)), "bad.npy"); }), Catch::Contains("magic"));
  CHECK_THAT(error_of([] { io::parse_npy(to_bytes(std::string("\x93NUMPY\x04\x00\x00\x00", 10)), "bad.npy"); }), Catch::Contains("version 4.0"));
  CHECK_THAT(error_of([] { io::parse_npy(to_bytes(std::string("\x93NUMPY\x01\x00\xff\xff{}", 12)), "bad.npy"); }), Catch::Contains("past the end"));
  CHECK_THAT(error_of([] { io::parse_npy(to_bytes(std::string("\x93NUMPY\x02\x00\xff\xff\xff\xff", 12)), "bad.npy"); }), Catch::Contains("past the end"));
  CHECK_THAT(error_of([] { io::load_npy("/nonexistent/keel.npy"); }), Catch::Contains("[load_npy] /nonexistent/keel.npy"));
}

TEST_CASE("npy, npz: every truncation of a valid file is an error") {
  const fs::path path = temp_path("trunc.npz");
  io::save_npz(path.string(), {{"x", arange(0, 5)}, {"y", randn({2, 2})}});
  std::ifstream file(path, std::ios::binary);
  const Bytes whole{std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>()};
  for (size_t n = 0; n < whole.size(); ++n) {
    const Bytes prefix(whole.begin(), whole.begin() + static_cast<ptrdiff_t>(n));
    REQUIRE_THROWS_AS(io::parse_npz(prefix, "trunc.npz"), Error);
  }
  CHECK(io::parse_npz(whole, "whole.npz").size() == 2);
  const Bytes single = to_bytes(npy_f32({1, 2, 3}));
  for (size_t n = 0; n < single.size(); ++n)
    REQUIRE_THROWS_AS(io::parse_npy(Bytes(single.begin(), single.begin() + static_cast<ptrdiff_t>(n)), "t.npy"), Error);
  // Every single-byte corruption either fails cleanly or hit a field the reader ignores (times,
  // versions, attributes): then the tensors read are exactly the original ones, never wrong data.
  const io::NamedTensors original = io::parse_npz(whole, "whole.npz");
  size_t errors = 0;
  for (size_t i = 0; i < whole.size(); ++i) {
    Bytes bad = whole;
    bad[i] ^= 0x5A;
    try {
      const io::NamedTensors read = io::parse_npz(bad, "flip.npz");
      REQUIRE(read.size() == original.size());
      for (size_t k = 0; k < read.size(); ++k) {
        REQUIRE(read[k].first == original[k].first);
        REQUIRE(read[k].second.shape() == original[k].second.shape());
        REQUIRE(std::memcmp(read[k].second.raw_data(), original[k].second.raw_data(), read[k].second.nbytes()) == 0);
      }
    } catch (const Error&) {
      ++errors;
    }
  }
  CHECK(errors > whole.size() * 3 / 4);
  fs::remove(path);
}

TEST_CASE("npz: hostile archives") {
  const std::string entry = npy_f32({1, 2, 3, 4});
  auto npz_error = [](const std::string& archive) {
    return error_of([&] { io::parse_npz(to_bytes(archive), "evil.npz"); });
  };
  // Valid stored and deflated archives first, so the failures below are the lies.
  CHECK(io::parse_npz(to_bytes(zip({{"a.npy", entry}, {"b.npy", entry, 8}})), "ok.npz").size() == 2);

  CHECK_THAT(npz_error(zip({{"a.npy", entry, 0, 0x12345678u}})), Catch::Contains("CRC-32 mismatch") && Catch::Contains("[load_npz] evil.npz: entry \"a.npy\""));
  CHECK_THAT(npz_error(zip({{"a.npy", entry, 8, 0x12345678u}})), Catch::Contains("CRC-32 mismatch"));
  CHECK_THAT(npz_error(zip({{"a.txt", entry}})), Catch::Contains("not an .npy entry"));
  CHECK_THAT(npz_error(zip({{"a.npy", entry}, {"a.npy", entry}})), Catch::Contains("twice"));
  CHECK_THAT(npz_error(zip({{"a.npy", entry, 12}})), Catch::Contains("method 12"));
  CHECK_THAT(npz_error(zip({{"a.npy", entry, 0, {}, {}, {}, 1}})), Catch::Contains("encrypted"));
  // Central directory out of range, and entries pointing at one another's bytes.
  CHECK_THAT(npz_error(zip({{"a.npy", entry}}, 0x7FFFFFF0u)), Catch::Contains("central directory"));
  CHECK_THAT(npz_error(zip({{"a.npy", entry}, {"b.npy", entry, 0, {}, {}, 0u}})), Catch::Contains("name") || Catch::Contains("overlap"));
  CHECK_THAT(npz_error(zip({{"a.npy", entry, 0, {}, {}, 0x7FFFFFF0u}})), Catch::Contains("local file header"));
  // Zip bombs: declared sizes that disagree with what the deflate data yields.
  const std::string zeros_entry = npy_f32(std::vector<float>(1 << 16, 0.0f));
  CHECK_THAT(npz_error(zip({{"z.npy", zeros_entry, 8, {}, 1000u}})), Catch::Contains("more than the 1000 bytes"));
  CHECK_THAT(npz_error(zip({{"z.npy", zeros_entry, 8, {}, 0xFFFFFFF0u}})), Catch::Contains("inflates to " + std::to_string(zeros_entry.size()) + " bytes but"));
  CHECK_THAT(npz_error(zip({{"a.npy", entry, 0, {}, 4u}})), Catch::Contains("sizes differ"));
  // Garbage and empty archives.
  CHECK_THAT(npz_error(std::string(100, 'x')), Catch::Contains("end-of-central-directory"));
  CHECK(io::parse_npz(to_bytes(zip({})), "empty.npz").empty());
  std::string lying_count = zip({{"a.npy", entry}});
  lying_count[lying_count.size() - 22 + 8] = 5;  // 5 entries on this disk
  lying_count[lying_count.size() - 22 + 10] = 5;
  CHECK_THAT(npz_error(lying_count), Catch::Contains("cannot fit") || Catch::Contains("signature"));
}
