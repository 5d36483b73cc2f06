// Writes a TensorBoard event file with io::SummaryWriter (scalars under several tags and steps,
// histograms of known values, UTF-8 text with quotes) into OUT_DIR/tb, and OUT_DIR/expected.json
// listing what was logged: the values themselves, not anything Keel computed from them.
// compare_tensorboard.py reads the file with the tensorboard package and checks every record's
// CRCs with its own CRC-32C.
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "dump_json.h"
#include "keel/io/tensorboard.h"

using namespace keel;
using parity::json_number;
using parity::json_string;

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string out = argv[1];
  std::filesystem::create_directories(out);
  std::vector<std::string> scalars, histograms, texts;
  {
    io::SummaryWriter writer(out + "/tb");
    for (int64_t step = 0; step < 25; ++step) {
      const double loss = 2.5 * std::exp(-0.1 * static_cast<double>(step)) + 0.01 * static_cast<double>(step % 3);
      const double wall_time = 1.7e9 + 0.25 * static_cast<double>(step);
      writer.add_scalar("train/loss", loss, step, wall_time);
      scalars.push_back("[" + json_string("train/loss") + ", " + std::to_string(step) + ", " + json_number(loss) +
                        ", " + json_number(wall_time) + "]");
      if (step % 5 == 0) {
        const double lr = 1e-3 * (1.0 - static_cast<double>(step) / 25.0);
        writer.add_scalar("train/lr", lr, step, wall_time);
        scalars.push_back("[" + json_string("train/lr") + ", " + std::to_string(step) + ", " + json_number(lr) +
                          ", " + json_number(wall_time) + "]");
      }
    }
    writer.add_scalar("val/accuracy", 0.875, 1000000000000LL, 1.8e9);  // a step beyond 32 bits
    scalars.push_back("[" + json_string("val/accuracy") + ", 1000000000000, 0.875, 1.8e9]");
    writer.add_scalar("negative", -3.25, -1, 1.8e9);
    scalars.push_back("[" + json_string("negative") + ", -1, -3.25, 1.8e9]");

    // Histograms: fixed-seed normal weights in f32; hand-picked values on and between edges,
    // zeros, tiny and huge magnitudes; a single value; an integer tensor.
    manual_seed(7);
    const std::vector<std::pair<std::string, Tensor>> cases = {
        {"weights/normal", randn({64, 33}) * 0.05},
        {"weights/special", tensor({-3.0, -1e-13, 0.0, 0.0, 1e-12, 0.5, 0.5000001, 2.0, 2.0, 7.25, 1e25, -1e21},
                                   DType::f64)},
        {"one", tensor({42.0}, DType::f64)},
        {"counts", arange(0, 100, 3)},
    };
    int64_t step = 0;
    for (const auto& [tag, values] : cases) {
      writer.add_histogram(tag, values, step, 1.9e9);
      const Tensor flat = values.to(DType::f64).contiguous();
      std::string list = "[";
      for (int64_t i = 0; i < flat.numel(); ++i)
        list += (i ? ", " : "") + json_number(flat.data_ptr<double>()[i]);
      histograms.push_back("[" + json_string(tag) + ", " + std::to_string(step) + ", " + list + "]]");
      ++step;
    }

    const std::vector<std::pair<std::string, std::string>> notes = {
        {"config", "lr = 3e-4, batch = 64"},
        {"quotes", "She said \"hi\" and 'bye' \\ back\\slash\nnew line\ttab"},
        {"unicode", "Gr\xc3\xbc\xc3\x9f" "e, \xe6\x97\xa5\xe6\x9c\xac, \xf0\x9f\x9a\x80, \xce\xbb = 0.1"},
        {"empty", ""},
    };
    for (size_t i = 0; i < notes.size(); ++i) {
      writer.add_text(notes[i].first, notes[i].second, static_cast<int64_t>(i), 1.95e9);
      texts.push_back("[" + json_string(notes[i].first) + ", " + std::to_string(i) + ", " +
                      json_string(notes[i].second) + "]");
    }
    writer.flush();
    writer.add_scalar("after_flush", 1.0, 0, 2e9);  // written by the destructor
    scalars.push_back("[" + json_string("after_flush") + ", 0, 1.0, 2e9]");
  }
  auto join = [](const std::vector<std::string>& items) {
    std::string out = "[";
    for (size_t i = 0; i < items.size(); ++i) out += (i ? ",\n  " : "") + items[i];
    return out + "]";
  };
  std::ofstream(out + "/expected.json") << "{\"scalars\": " << join(scalars) << ",\n\"histograms\": "
                                        << join(histograms) << ",\n\"texts\": " << join(texts) << "}\n";
  return 0;
}
