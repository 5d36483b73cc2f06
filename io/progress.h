#pragma once
// A one-line progress bar for training loops:
//   epoch 3/12 [=========>          ] 212/422  loss 0.3123  acc 88.91%  5210 img/s  ETA 0:21
// On a terminal it redraws in place (at most every `redraw_seconds`, and always at the last
// step); into a file or a pipe (CI logs) it writes a full line at every tenth of the work instead
// of carriage returns. Rate and ETA come from the wall time between construction and the last
// update.
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace keel::io {

struct ProgressOptions {
  int width = 24;                // characters inside the brackets
  double redraw_seconds = 0.1;   // terminal mode: the least time between redraws
  std::string rate_unit = "it";  // "img" -> "5210 img/s"
  // Terminal mode (redraw in place) or line mode; by default, whether `out` is std::cerr / std::cout on a TTY.
  enum class Mode { automatic, terminal, lines } mode = Mode::automatic;
};

class ProgressBar {
 public:
  using Fields = std::vector<std::pair<std::string, std::string>>;  // e.g. {"loss", "0.3123"}
  ProgressBar(std::string label, int64_t total, std::ostream& out, ProgressOptions options = {});
  // `done` steps of `total` finished, having processed `items` items so far (for the rate).
  void update(int64_t done, int64_t items, const Fields& fields = {});
  // Ends the line (terminal mode) after a last redraw with these fields.
  void finish(const Fields& fields = {});

  // "1:02:03" or "2:03" from seconds (rounded), as the bar prints ETA and elapsed time.
  static std::string format_duration(double seconds);

 private:
  std::string render(int64_t done, const Fields& fields) const;
  double elapsed() const;

  std::string label_;
  int64_t total_;
  std::ostream& out_;
  ProgressOptions options_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_;
  double last_draw_ = -1;
  double last_update_ = 0;  // seconds from the start to the last update()
  int64_t last_tenth_ = -1;
  int64_t done_ = 0, items_ = 0;
  bool finished_ = false;
};

}  // namespace keel::io
