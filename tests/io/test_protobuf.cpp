// The protobuf wire-format writer against the encodings worked out in the format's documentation
// (https://protobuf.dev/programming-guides/encoding/), byte for byte.
#include <cstring>
#include <vector>

#include "keel/io/protobuf.h"
#include "test_util.h"

using keel::io::protobuf::Writer;

namespace {
std::vector<uint8_t> bytes_of(const Writer& writer) {
  return {reinterpret_cast<const uint8_t*>(writer.data()), reinterpret_cast<const uint8_t*>(writer.data()) + writer.size()};
}
}  // namespace

TEST_CASE("protobuf: varints, strings and nested messages as the encoding guide writes them") {
  Writer test1;  // message Test1 { int32 a = 1; } with a = 150
  test1.int64(1, 150);
  CHECK(bytes_of(test1) == std::vector<uint8_t>{0x08, 0x96, 0x01});

  Writer test2;  // message Test2 { string b = 2; } with b = "testing"
  test2.string(2, "testing");
  CHECK(bytes_of(test2) == std::vector<uint8_t>{0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67});

  Writer test3;  // message Test3 { Test1 c = 3; }
  test3.message(3, test1);
  CHECK(bytes_of(test3) == std::vector<uint8_t>{0x1a, 0x03, 0x08, 0x96, 0x01});

  Writer negative;  // int64 -2: ten bytes of two's complement
  negative.int64(1, -2);
  CHECK(bytes_of(negative) ==
        std::vector<uint8_t>{0x08, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01});

  Writer flag;
  flag.boolean(1, true);
  CHECK(bytes_of(flag) == std::vector<uint8_t>{0x08, 0x01});
}

TEST_CASE("protobuf: packed repeated fields and fixed-size values") {
  Writer packed;  // message Test5 { repeated int32 f = 6 [packed = true]; } with f = 3, 270, 86942
  const int64_t values[] = {3, 270, 86942};
  packed.packed_int64(6, values);
  CHECK(bytes_of(packed) == std::vector<uint8_t>{0x32, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05});

  Writer empty;  // an empty packed field is a zero length
  empty.packed_int64(4, {});
  CHECK(bytes_of(empty) == std::vector<uint8_t>{0x22, 0x00});

  Writer fixed;
  fixed.float32(2, 1.0f);   // key 0x15, then 0x3f800000 little-endian
  fixed.float64(1, -2.0);   // key 0x09, then 0xc000000000000000 little-endian
  CHECK(bytes_of(fixed) == std::vector<uint8_t>{0x15, 0x00, 0x00, 0x80, 0x3f,
                                                0x09, 0, 0, 0, 0, 0, 0, 0x00, 0xc0});

  Writer floats;
  const float two[] = {1.0f, 2.0f};
  floats.packed_float32(3, two);
  CHECK(bytes_of(floats) == std::vector<uint8_t>{0x1a, 0x08, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40});
}

TEST_CASE("protobuf: large field numbers, long varints and bad field numbers") {
  Writer big;
  big.uint64(16, 300);  // field 16: key 16 << 3 = 128 needs two bytes
  CHECK(bytes_of(big) == std::vector<uint8_t>{0x80, 0x01, 0xac, 0x02});
  CHECK(keel::io::protobuf::varint_size(0) == 1);
  CHECK(keel::io::protobuf::varint_size(127) == 1);
  CHECK(keel::io::protobuf::varint_size(128) == 2);
  CHECK(keel::io::protobuf::varint_size(~0ull) == 10);

  Writer bad;
  CHECK_THROWS_WITH(bad.int64(0, 1), Catch::Contains("[protobuf] field number out of range"));
  CHECK_THROWS_WITH(bad.int64(1u << 29, 1), Catch::Contains("[protobuf] field number out of range"));
  CHECK(bad.size() == 0);
}
