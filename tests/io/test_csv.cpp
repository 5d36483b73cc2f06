// read_csv on hand-written files: headers, delimiters, quoting, types, column selection, and
// every malformed case with its line and column.
#include <cmath>

#include "io_test_files.h"
#include "test_util.h"

using namespace keel;
using namespace keel::data;
using keel::test::TempDir;
using keel::test::write_text;

TEST_CASE("read_csv: a header, numeric and string columns", "[io][csv]") {
  TempDir dir;
  write_text(dir.file("iris.csv"),
             "sepal_length,count,species,code\n"
             "5.1,3,setosa,7\n"
             "4.9,-12,\"versi, color\",8\n"
             "\n"
             "6.25,+4,\"say \"\"hi\"\"\",9\r\n"
             "1e3,0,\"two\nlines\",10");  // no newline at the end
  const CsvTable table = read_csv(dir.file("iris.csv"));
  CHECK(table.rows == 4);
  CHECK(table.names() == std::vector<std::string>{"sepal_length", "count", "species", "code"});
  const Tensor length = table["sepal_length"].values;
  REQUIRE(length.dtype() == DType::f32);
  CHECK(length.shape() == Shape{4});
  CHECK(length.data_ptr<float>()[0] == 5.1f);
  CHECK(length.data_ptr<float>()[2] == 6.25f);
  CHECK(length.data_ptr<float>()[3] == 1000.0f);
  const Tensor count = table["count"].values;
  REQUIRE(count.dtype() == DType::i64);
  CHECK(std::vector<int64_t>(count.data_ptr<int64_t>(), count.data_ptr<int64_t>() + 4) ==
        std::vector<int64_t>{3, -12, 4, 0});
  CHECK_FALSE(table["species"].is_numeric());
  CHECK(table["species"].strings == std::vector<std::string>{"setosa", "versi, color", "say \"hi\"", "two\nlines"});
  CHECK(table["code"].values.data_ptr<int64_t>()[3] == 10);
  CHECK_THROWS_WITH(table["nope"], Catch::Contains("no column named 'nope'") && Catch::Contains("species"));
}

TEST_CASE("read_csv: no header, other delimiters, dtypes and column selection", "[io][csv]") {
  const std::string text = "1;2.5;x\n3;;y\n";
  const CsvTable plain = parse_csv(text, "t", {.header = false, .delimiter = ';'});
  CHECK(plain.names() == std::vector<std::string>{"0", "1", "2"});
  CHECK(plain.rows == 2);
  CHECK(plain["0"].values.dtype() == DType::i64);
  const Tensor second = plain["1"].values;  // an empty field in a float column is NaN
  CHECK(second.data_ptr<float>()[0] == 2.5f);
  CHECK(std::isnan(second.data_ptr<float>()[1]));
  const CsvTable picked = parse_csv(text, "t",
                                    {.header = false, .delimiter = ';', .column_indices = {2, 0},
                                     .float_dtype = DType::f64, .integers_as_i64 = false});
  CHECK(picked.names() == std::vector<std::string>{"2", "0"});
  CHECK(picked["0"].values.dtype() == DType::f64);
  const CsvTable named = parse_csv("a\tb\tc\n1\t2\t3\n", "t",
                                   {.delimiter = '\t', .columns = {"c", "a"}, .dtypes = {{"c", DType::f64}, {"a", DType::u8}}});
  CHECK(named.names() == std::vector<std::string>{"c", "a"});
  CHECK(named["c"].values.dtype() == DType::f64);
  CHECK(named["a"].values.dtype() == DType::u8);
  CHECK(named["a"].values.item<int64_t>() == 1);
  // Only a header: zero rows; numbers with spaces around them.
  CHECK(parse_csv("a,b\n").rows == 0);
  CHECK(parse_csv("a,b\n 1 , 2.5 \n")["b"].values.data_ptr<float>()[0] == 2.5f);
}

TEST_CASE("read_csv: malformed files name the line and column", "[io][csv]") {
  auto error_of = [](const std::string& text, const CsvOptions& options = {}) -> std::string {
    try {
      parse_csv(text, "bad.csv", options);
    } catch (const Error& error) {
      return error.what();
    }
    return "";
  };
  CHECK_THAT(error_of("a,b\n1,2\n3\n4,5\n"), Catch::Contains("bad.csv:3: 1 fields, expected 2"));
  CHECK_THAT(error_of("a,b\n1,2,3\n"), Catch::Contains("bad.csv:2: 3 fields, expected 2"));
  CHECK_THAT(error_of("a,b\n1,\"open\n2,3\n"), Catch::Contains("bad.csv:2: column 2: the quoted field never ends"));
  CHECK_THAT(error_of("a,b\n1,\"x\"y\n"), Catch::Contains("bad.csv:2: column 2: unexpected 'y' after a closing quote"));
  CHECK_THAT(error_of("a,b\n1,x\"y\n"), Catch::Contains("bad.csv:2: column 2: a quote inside an unquoted field"));
  CHECK_THAT(error_of("a,b\n1,2\n\"multi\nline\",3\n4,oops\n", {.dtypes = {{"b", DType::i64}}}),
             Catch::Contains("bad.csv:5: column 2 (b): 'oops' is not an integer"));
  CHECK_THAT(error_of("a,b\n1,2\n3,x\n", {.dtypes = {{"b", DType::f32}}}),
             Catch::Contains("bad.csv:3: column 2 (b): 'x' is not a number"));
  CHECK_THAT(error_of(""), Catch::Contains("empty"));
  CHECK_THAT(error_of("a,a\n1,2\n"), Catch::Contains("columns 1 and 2 are both named 'a'"));
  CHECK_THAT(error_of("a,b\n1,2\n", {.columns = {"c"}}), Catch::Contains("no column named 'c'"));
  CHECK_THAT(error_of("a,b\n1,2\n", {.column_indices = {2}}), Catch::Contains("column index 2 is outside"));
  CHECK_THAT(error_of("a,b\n1,2\n", {.dtypes = {{"z", DType::f32}}}), Catch::Contains("'z'"));
  CHECK_THAT(error_of("a,b\n1,2\n", {.header = false, .columns = {"a"}}), Catch::Contains("needs header"));
  CHECK_THAT(error_of("a,b\n1,2\n3,4\n", {.max_fields = 3}), Catch::Contains("bad.csv:3: more than CsvOptions::max_fields"));
  CHECK_THAT(error_of("a,b\n1,2\n", {.max_bytes = 4}), Catch::Contains("over CsvOptions::max_bytes"));
  CHECK_THAT(error_of("a,b,c\n", {.max_columns = 2}), Catch::Contains("max_columns"));
  CHECK_THAT(error_of("a,b\n1,2\n" + std::string(1000000, ','), {.max_columns = 1000}),
             Catch::Contains("bad.csv:3: more than CsvOptions::max_columns (1000) fields in one record"));
  CHECK_THAT(error_of("a\n1\n", {.delimiter = '"'}), Catch::Contains("delimiter"));
  TempDir dir;
  CHECK_THROWS_WITH(read_csv(dir.file("absent.csv")), Catch::Contains("absent.csv: cannot open"));
  write_text(dir.file("big.csv"), "a,b\n1,2\n");
  CHECK_THROWS_WITH(read_csv(dir.file("big.csv"), {.max_bytes = 5}), Catch::Contains("big.csv: 8 bytes is over"));
}
