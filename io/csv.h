#pragma once
// CSV files (RFC 4180 with the usual freedoms): a header row or none, any one-byte delimiter,
// fields in double quotes with "" for a quote inside them (and newlines inside quotes), \n or
// \r\n line ends, blank lines skipped. Columns whose every field is a number become tensors:
// i64 when all are integers, the float dtype otherwise (an empty field is NaN there, as pandas
// reads it); other columns stay strings.
//
//   CsvTable table = read_csv("iris.csv", {.columns = {"sepal_length", "species"}});
//   Tensor x = table["sepal_length"].values;        // f32 [rows]
//
// Errors name the file, the line (1-based; where the record starts) and the column (1-based,
// and its name when there is a header).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "keel/core/tensor.h"

namespace keel::data {

struct CsvOptions {
  bool header = true;                     // the first record names the columns
  char delimiter = ',';
  char quote = '"';
  std::vector<std::string> columns;       // keep only these (by name; needs a header), in this order
  std::vector<int64_t> column_indices;    // or these (0-based), in this order
  DType float_dtype = DType::f32;         // numeric columns that are not all integers
  bool integers_as_i64 = true;            // false: integer columns become float_dtype too
  std::map<std::string, DType> dtypes;    // force a column's dtype; a field that does not parse is an error
  uint64_t max_bytes = uint64_t{1} << 30; // larger files are refused (1 GiB)
  int64_t max_fields = int64_t{1} << 25;  // rows x columns kept (each field is held as a string first)
  int64_t max_columns = 1 << 16;
};

struct CsvColumn {
  std::string name;                  // from the header, or "0", "1", ... without one
  Tensor values;                     // numeric columns: [rows]; undefined for string columns
  std::vector<std::string> strings;  // string columns: the fields; empty for numeric ones
  bool is_numeric() const { return values.defined(); }
};

struct CsvTable {
  std::vector<CsvColumn> columns;
  int64_t rows = 0;
  const CsvColumn& operator[](const std::string& name) const;  // throws when absent
  bool has(const std::string& name) const;
  std::vector<std::string> names() const;
};

CsvTable read_csv(const std::string& path, const CsvOptions& options = {});
// The same from text in memory (`name` is used in error messages only).
CsvTable parse_csv(const std::string& text, const std::string& name = "<memory>",
                   const CsvOptions& options = {});

}  // namespace keel::data
