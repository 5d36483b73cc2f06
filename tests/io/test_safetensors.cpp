// safetensors: round trips of every dtype (odd, empty and non-contiguous tensors), the exact bytes
// of a small file against the format, and every kind of bad file -> keel::Error without writing
// or half-loading anything. Python's safetensors and torch: tests/parity/safetensors_interop.*.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "keel/io/json.h"
#include "keel/io/safetensors.h"
#include "io_test_files.h"
#include "test_util.h"

using namespace keel;
using namespace keel::test;

namespace {

std::string temp_path(const std::string& name) {
  const auto folder = std::filesystem::temp_directory_path() / ("keel_safetensors_" + std::to_string(::getpid()));
  std::filesystem::create_directories(folder);
  return (folder / name).string();
}




std::span<const std::byte> as_bytes(const std::string& bytes) {
  return {reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()};
}

// A file made by hand: 8-byte length, the header text, then `data`.
std::string file_with_header(const std::string& header, const std::string& data) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  return bytes + header + data;
}

// The header text of a file's bytes.
std::string header_text(const std::string& bytes) {
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  return bytes.substr(8, header_size);
}

}  // namespace

TEST_CASE("safetensors: every dtype round-trips bit for bit", "[io]") {
  manual_seed(3);
  io::NamedTensors tensors;
  for (DType dtype : kAllDTypes) {
    Tensor source = (randn({5, 33}) * 50).to(dtype);
    if (dtype == DType::bool_) source = randn({5, 33}) > 0;
    tensors.emplace_back(std::string("t_") + std::string(dtype_name(dtype)), source);
    tensors.emplace_back(std::string("strided_") + std::string(dtype_name(dtype)), source.t().slice(0, 1, 33, 3));
    tensors.emplace_back(std::string("empty_") + std::string(dtype_name(dtype)), zeros({0, 7}, {.dtype = dtype}));
  }
  tensors.emplace_back("scalar", tensor(2.5));
  const std::string path = temp_path("all.safetensors");
  io::save_safetensors(path, tensors, {{"format", "pt"}, {"note", "quote \" and \\ and \n"}});
  const io::SafetensorsContents loaded = io::read_safetensors(path);
  REQUIRE(loaded.tensors.size() == tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    INFO(tensors[i].first);
    CHECK(loaded.tensors[i].first == tensors[i].first);  // written in order, read in data order
    CHECK(same_bytes(loaded.tensors[i].second, tensors[i].second));
  }
  CHECK(loaded.metadata.at("format") == "pt");
  CHECK(loaded.metadata.at("note") == "quote \" and \\ and \n");
}

TEST_CASE("safetensors: the bytes on disk follow the format", "[io]") {
  const std::string path = temp_path("small.safetensors");
  io::save_safetensors(path, {{"b", tensor({1.0f, -2.0f})}, {"a", tensor({int64_t{7}})}});
  const std::string bytes = read_bytes(path);
  REQUIRE(bytes.size() >= 8);
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  CHECK((8 + header_size) % 8 == 0);  // data aligned to 8 bytes, as Python's writer does
  REQUIRE(bytes.size() == 8 + header_size + 8 + 8);
  const io::JsonValue header = io::parse_json(bytes.substr(8, header_size), "[test]");
  const io::JsonValue* b = header.find("b");
  REQUIRE(b != nullptr);
  CHECK(b->find("dtype")->string == "F32");
  CHECK(b->find("shape")->array.at(0).integer == 2);
  // The int64 "a" has the wider elements: its bytes come first although it was given second.
  CHECK(b->find("data_offsets")->array.at(0).integer == 8);
  CHECK(b->find("data_offsets")->array.at(1).integer == 16);
  CHECK(header.find("a")->find("data_offsets")->array.at(0).integer == 0);
  const int64_t seven = 7;
  CHECK(std::memcmp(bytes.data() + 8 + header_size, &seven, 8) == 0);
  const float expected[2] = {1.0f, -2.0f};
  CHECK(std::memcmp(bytes.data() + 8 + header_size + 8, expected, 8) == 0);
}

TEST_CASE("safetensors: bad names are refused before the file is touched", "[io]") {
  const std::string path = temp_path("kept.safetensors");
  io::save_safetensors(path, {{"w", ones({3})}});
  const std::string before = read_bytes(path);
  CHECK_THROWS_WITH(io::save_safetensors(path, {{"w", ones({2})}, {"w", ones({2})}}),
                    Catch::Contains("[save_safetensors]") && Catch::Contains("appears twice"));
  CHECK_THROWS_WITH(io::save_safetensors(path, {{"", ones({2})}}), Catch::Contains("empty name"));
  CHECK_THROWS_WITH(io::save_safetensors(path, {{"__metadata__", ones({2})}}), Catch::Contains("reserved"));
  CHECK_THROWS_WITH(io::save_safetensors(path, {{"u", Tensor()}}), Catch::Contains("undefined"));
  CHECK_THROWS_WITH(io::save_safetensors("/nonexistent-folder/x.safetensors", {{"w", ones({2})}}),
                    Catch::Contains("[save_safetensors]") && Catch::Contains("temporary file"));
  CHECK(read_bytes(path) == before);
  // No temporary files are left beside it.
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    files += entry.path().filename().string().find(".tmp-") != std::string::npos;
  CHECK(files == 0);
}

TEST_CASE("safetensors: hostile or broken files give keel::Error", "[io]") {
  const std::string path = temp_path("bad.safetensors");
  const std::string good_entry = R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const std::string eight(8, '\1');
  struct Case {
    std::string name, bytes, message;
  };
  std::string huge_length(8, '\xff');
  std::string past_end = file_with_header(good_entry, eight);
  past_end[0] = static_cast<char>(past_end[0] + 100);
  const std::vector<Case> cases = {
      {"shorter than 8 bytes", std::string(5, '\0'), "shorter than the 8-byte header length"},
      {"header length over the limit", huge_length + "{}", "exceeds the limit"},
      {"header length past the end", past_end, "runs past the end"},
      {"invalid JSON", file_with_header("{\"x\":", ""), "invalid JSON"},
      {"not an object", file_with_header("[1,2]", ""), "not a JSON object"},
      {"unknown dtype", file_with_header(R"({"x":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", "\1"),
       "does not support"},
      {"negative dim", file_with_header(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight),
       "not a non-negative integer"},
      {"fractional dim", file_with_header(R"({"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", eight),
       "not a non-negative integer"},
      {"overflowing shape",
       file_with_header(R"({"x":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", eight),
       "larger than the file"},
      {"size and offsets disagree", file_with_header(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}})", eight),
       "(4 bytes) but data_offsets"},
      {"shape larger than the data", file_with_header(R"({"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", eight),
       "larger than the file"},
      {"offsets past the data", file_with_header(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", eight),
       "outside the 8 data bytes"},
      {"overlapping tensors",
       file_with_header(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"y":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                        eight),
       "overlapping or missing"},
      {"a hole in the data", file_with_header(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", eight),
       "overlapping or missing"},
      {"bytes nobody owns", file_with_header(good_entry, eight + "\1\1\1\1"), "cover 8 of the 12"},
      {"duplicate names",
       file_with_header(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                        eight),
       "duplicate key"},
      {"missing offsets", file_with_header(R"({"x":{"dtype":"F32","shape":[2]}})", eight), "no data_offsets"},
      {"metadata not strings", file_with_header(R"({"__metadata__":{"a":1}})", ""), "is not a string"},
      {"deep nesting", file_with_header(std::string(200, '[') + std::string(200, ']'), ""), "nested deeper"},
      {"bad escape", file_with_header(R"({"\x":{}})", ""), "unknown escape"},
      {"a bool that is not 0 or 1", file_with_header(R"({"x":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", std::string("\1\0\2", 3)),
       "has byte 2 at element 2"},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    write_bytes(path, c.bytes);
    CHECK_THROWS_WITH(io::read_safetensors(path), Catch::Contains("[load_safetensors]") && Catch::Contains(c.message));
    CHECK_THROWS_WITH(io::read_safetensors(path, {.mmap = true}),
                      Catch::Contains("[load_safetensors]") && Catch::Contains(c.message));
    CHECK_THROWS_WITH(io::parse_safetensors(as_bytes(c.bytes), "bad"), Catch::Contains("[load_safetensors] bad") &&
                                                                          Catch::Contains(c.message));
  }
  // Every truncation of a valid file is refused.
  io::save_safetensors(path, {{"w", randn({3, 5})}, {"b", zeros({5}, {.dtype = DType::bf16})}});
  const std::string whole = read_bytes(path);
  for (size_t size = 0; size < whole.size(); ++size) {
    INFO("truncated to " << size << " of " << whole.size() << " bytes");
    write_bytes(path, whole.substr(0, size));
    CHECK_THROWS_AS(io::read_safetensors(path), Error);
    CHECK_THROWS_AS(io::read_safetensors(path, {.mmap = true}), Error);
    CHECK_THROWS_AS(io::parse_safetensors(as_bytes(whole.substr(0, size))), Error);
  }
  CHECK_THROWS_WITH(io::read_safetensors(temp_path("missing.safetensors")), Catch::Contains("cannot open"));
  CHECK_THROWS_WITH(io::read_safetensors(temp_path("missing.safetensors"), {.mmap = true}), Catch::Contains("cannot open"));
}

namespace {

// Every dtype, widest element first so that each tensor's data offset is a multiple of its
// element size (as Python's writer orders them): the mmap reader can view all of them.
io::NamedTensors aligned_tensors_of_every_dtype() {
  manual_seed(5);
  io::NamedTensors tensors;
  for (DType dtype : {DType::f64, DType::i64, DType::f32, DType::i32, DType::f16, DType::bf16, DType::i8, DType::u8,
                      DType::bool_}) {
    Tensor t = (randn({3, 7}) * 40).to(dtype);
    if (dtype == DType::bool_) t = randn({3, 7}) > 0;
    tensors.emplace_back(std::string("t_") + std::string(dtype_name(dtype)), t);
  }
  return tensors;
}

// True when /proc/self/maps lists a mapping of `path`.
bool is_mapped(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find(path) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("safetensors: mmap reads are zero-copy views equal to the copying reader", "[io]") {
  const io::NamedTensors tensors = aligned_tensors_of_every_dtype();
  const std::string path = temp_path("mapped.safetensors");
  io::save_safetensors(path, tensors, {{"k", "v"}});
  const io::SafetensorsContents copied = io::read_safetensors(path);

  const size_t allocations_before = cpu_memory_stats().num_allocations;
  const io::SafetensorsContents mapped = io::mmap_safetensors(path);
  CHECK(cpu_memory_stats().num_allocations == allocations_before);  // no tensor memory allocated
  REQUIRE(mapped.tensors.size() == tensors.size());
  CHECK(mapped.metadata.at("k") == "v");
  for (size_t i = 0; i < tensors.size(); ++i) {
    INFO(tensors[i].first);
    CHECK(mapped.tensors[i].first == copied.tensors[i].first);
    CHECK(same_bytes(mapped.tensors[i].second, copied.tensors[i].second));
    CHECK(same_bytes(mapped.tensors[i].second, tensors[i].second));
    // Views into one mapping: each tensor's bytes follow the previous one's, as in the file.
    if (i > 0) {
      const Tensor& previous = mapped.tensors[i - 1].second;
      CHECK(static_cast<char*>(mapped.tensors[i].second.raw_data()) ==
            static_cast<char*>(previous.raw_data()) + previous.nbytes());
    }
  }
  // The first tensor starts exactly where the data section starts in the file.
  const std::string bytes = read_bytes(path);
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  CHECK(std::memcmp(mapped.tensors[0].second.raw_data(), bytes.data() + 8 + header_size, 8) == 0);
}

TEST_CASE("safetensors: mmapped tensors outlive the reader, and writes to them stay private", "[io]") {
  const io::NamedTensors tensors = aligned_tensors_of_every_dtype();
  const std::string path = temp_path("private.safetensors");
  io::save_safetensors(path, tensors);
  const std::string before = read_bytes(path);
  Tensor kept;
  {
    io::SafetensorsContents mapped = io::mmap_safetensors(path);
    kept = mapped.tensors[2].second;  // f32
    REQUIRE(kept.dtype() == DType::f32);
  }
  CHECK(is_mapped(path));  // the tensor keeps the mapping alive
  CHECK(same_bytes(kept, tensors[2].second));
  kept.fill_(7.0);         // in place, into the mapped page
  CHECK(sum(kept.to(DType::f64)).item<double>() == 7.0 * 21);
  CHECK(read_bytes(path) == before);  // the file never sees the write
  CHECK(same_bytes(io::mmap_safetensors(path).tensors[2].second, tensors[2].second));
  kept = Tensor();
  CHECK_FALSE(is_mapped(path));  // unmapped with the last tensor
}

TEST_CASE("safetensors: Keel's writer aligns every tensor, widest elements first", "[io]") {
  // Given int8 bytes first, the writer still puts the f32 and f64 data first so that every
  // tensor starts at a multiple of its element size (the data section starts 8-byte aligned).
  const io::NamedTensors tensors = {{"bytes", tensor({int64_t{1}, int64_t{2}, int64_t{3}}).to(DType::i8)},
                                    {"floats", tensor({1.5f, -2.25f, 3.0f})},
                                    {"doubles", tensor({0.5, 7.0}).to(DType::f64)},
                                    {"halves", tensor({1.0f, 2.0f, 3.0f}).to(DType::f16)}};
  const std::string path = temp_path("aligned_order.safetensors");
  io::save_safetensors(path, tensors);
  const io::SafetensorsContents copied = io::read_safetensors(path);
  REQUIRE(copied.tensors.size() == 4);
  for (size_t i = 0; i < 4; ++i) CHECK(copied.tensors[i].first == tensors[i].first);  // loads in saved order
  // The data section holds doubles, floats, halves, then bytes.
  const io::JsonValue header = io::parse_json(header_text(read_bytes(path)), "[test]");
  CHECK(header.find("doubles")->find("data_offsets")->array[0].integer == 0);
  CHECK(header.find("floats")->find("data_offsets")->array[0].integer == 16);
  CHECK(header.find("halves")->find("data_offsets")->array[0].integer == 28);
  CHECK(header.find("bytes")->find("data_offsets")->array[0].integer == 34);
  const size_t allocations_before = cpu_memory_stats().num_allocations;
  const io::SafetensorsContents mapped = io::mmap_safetensors(path);
  CHECK(cpu_memory_stats().num_allocations == allocations_before);  // nothing had to be copied
  for (const auto& [name, t] : mapped.tensors) {
    INFO(name);
    const auto it = std::find_if(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == name; });
    REQUIRE(it != tensors.end());
    CHECK(same_bytes(t, it->second));
    CHECK(reinterpret_cast<uintptr_t>(t.raw_data()) % t.itemsize() == 0);
  }
}

TEST_CASE("safetensors: mmap copies misaligned tensors and gives empty ones their own storage", "[io]") {
  // A file made by hand (other writers need not align): after 3 int8 bytes the f32 data is
  // misaligned and must be copied; the empty tensor and 0-d tensor load too.
  const float floats[] = {1.5f, -2.25f, 3.0f};
  const double scalar = 4.5;
  std::string data = std::string("\x01\x02\x03", 3) + std::string(reinterpret_cast<const char*>(floats), 12) +
                     std::string(reinterpret_cast<const char*>(&scalar), 8);
  std::string header =
      R"({"bytes":{"dtype":"I8","shape":[3],"data_offsets":[0,3]},)"
      R"("misaligned":{"dtype":"F32","shape":[3],"data_offsets":[3,15]},)"
      R"("empty":{"dtype":"F32","shape":[0,4],"data_offsets":[15,15]},)"
      R"("scalar":{"dtype":"F64","shape":[],"data_offsets":[15,23]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  const std::string path = temp_path("misaligned.safetensors");
  write_bytes(path, file_with_header(header, data));
  const io::NamedTensors expected = {{"bytes", tensor({int64_t{1}, int64_t{2}, int64_t{3}}).to(DType::i8)},
                                     {"misaligned", tensor({1.5f, -2.25f, 3.0f})},
                                     {"empty", zeros({0, 4})},
                                     {"scalar", tensor(4.5).to(DType::f64)}};
  const io::SafetensorsContents mapped = io::mmap_safetensors(path);
  REQUIRE(mapped.tensors.size() == 4);
  for (const auto& [name, t] : mapped.tensors) {
    INFO(name);
    const auto it = std::find_if(expected.begin(), expected.end(), [&](const auto& p) { return p.first == name; });
    REQUIRE(it != expected.end());
    CHECK(same_bytes(t, it->second));
    if (t.numel() > 0) CHECK(reinterpret_cast<uintptr_t>(t.raw_data()) % t.itemsize() == 0);
  }
}

TEST_CASE("safetensors: parse_safetensors reads a file's bytes from memory", "[io]") {
  const io::NamedTensors tensors = aligned_tensors_of_every_dtype();
  const std::string path = temp_path("memory.safetensors");
  io::save_safetensors(path, tensors, {{"a", "b"}});
  const std::string bytes = read_bytes(path);
  const io::SafetensorsContents parsed = io::parse_safetensors(as_bytes(bytes), "in-memory");
  REQUIRE(parsed.tensors.size() == tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) CHECK(same_bytes(parsed.tensors[i].second, tensors[i].second));
  CHECK(parsed.metadata.at("a") == "b");
}

TEST_CASE("json: numbers, strings and escapes", "[io]") {
  const io::JsonValue v = io::parse_json(R"( {"a": [0, -12, 3.5, 1e3, 9223372036854775807], "s": "x\u00e9\ud83d\ude00\n", "t": true, "f": false, "n": null} )", "[t]");
  const auto& a = v.find("a")->array;
  CHECK(a[0].is_integer);
  CHECK(a[1].integer == -12);
  CHECK_FALSE(a[2].is_integer);
  CHECK(a[2].number == 3.5);
  CHECK(a[3].number == 1000);
  CHECK(a[4].integer == INT64_MAX);
  CHECK(v.find("s")->string == "x\xc3\xa9\xf0\x9f\x98\x80\n");
  CHECK(v.find("t")->boolean);
  CHECK_FALSE(v.find("f")->boolean);
  CHECK(v.find("n")->kind == io::JsonValue::Kind::null);
  CHECK_THROWS_WITH(io::parse_json("[01]", "[t]"), Catch::Contains("[t]"));
  CHECK_THROWS_WITH(io::parse_json("{} x", "[t]"), Catch::Contains("after the JSON value"));
  CHECK_THROWS_WITH(io::parse_json("\"\\ud800\"", "[t]"), Catch::Contains("surrogate"));
  CHECK(io::parse_json(io::json_quote("a\"b\\c\x01"), "[t]").string == "a\"b\\c\x01");
}
