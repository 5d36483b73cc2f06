// The progress bar's text: lines per tenth of the work into a stream that is not a terminal,
// in-place redraws in terminal mode, the fields, the rate and the ETA format.
#include <sstream>

#include "keel/io/progress.h"
#include "test_util.h"

using namespace keel;

namespace {
int count_of(const std::string& text, const std::string& part) {
  int count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}
}  // namespace

TEST_CASE("progress: durations", "[io]") {
  CHECK(io::ProgressBar::format_duration(0) == "0:00");
  CHECK(io::ProgressBar::format_duration(61.4) == "1:01");
  CHECK(io::ProgressBar::format_duration(3599.6) == "1:00:00");
  CHECK(io::ProgressBar::format_duration(3 * 3600 + 62) == "3:01:02");
  CHECK(io::ProgressBar::format_duration(-1) == "?");
  CHECK(io::ProgressBar::format_duration(1.0 / 0.0) == "?");
}

TEST_CASE("progress: one line per tenth of the work in line mode", "[io]") {
  std::ostringstream out;
  io::ProgressBar bar("epoch 1/3", 100, out, {.width = 10, .rate_unit = "img"});
  for (int step = 1; step <= 100; ++step) bar.update(step, step * 32, {{"loss", "0.5"}});
  bar.finish({{"loss", "0.5"}, {"val_acc", "91.00%"}});
  const std::string text = out.str();
  CHECK(count_of(text, "\n") == 12);  // the first step, tenths 1..10, then the finishing line
  CHECK(count_of(text, "\r") == 0);
  CHECK(text.find("epoch 1/3 [>         ] 1/100  loss 0.5") == 0);
  CHECK(text.find("\nepoch 1/3 [=>        ] 10/100  loss 0.5") != std::string::npos);
  CHECK(text.find("[==========] 100/100  loss 0.5  val_acc 91.00%") != std::string::npos);
  CHECK(text.find("img/s") != std::string::npos);
  CHECK(text.find("ETA ") != std::string::npos);
}

TEST_CASE("progress: terminal mode redraws in place and ends the line once", "[io]") {
  std::ostringstream out;
  io::ProgressBar bar("train", 4, out, {.width = 4, .redraw_seconds = 0, .mode = io::ProgressOptions::Mode::terminal});
  for (int step = 1; step <= 4; ++step) bar.update(step, step);
  bar.finish();
  bar.finish();  // a second finish writes nothing
  const std::string text = out.str();
  CHECK(count_of(text, "\r") == 5);
  CHECK(count_of(text, "\x1b[K") == 5);
  CHECK(count_of(text, "\n") == 1);
  CHECK(text.find("train [===>] 3/4") != std::string::npos);
  CHECK(text.back() == '\n');
}

TEST_CASE("progress: an empty loop and steps past the total", "[io]") {
  std::ostringstream out;
  io::ProgressBar empty_bar("empty", 0, out, {.width = 3});
  empty_bar.finish();
  CHECK(out.str().find("empty [===] 0/0") == 0);
  std::ostringstream clamped;
  io::ProgressBar bar("x", 2, clamped, {.width = 2});
  bar.update(5, 5);
  CHECK(clamped.str().find("x [==] 2/2") == 0);
}
