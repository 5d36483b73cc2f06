// Trains a character-level GPT (nn::GPT, nanoGPT's model) on any text file and samples from it.
//
//   char_gpt --text /usr/share/common-licenses/GPL-3
//
// Tokens are bytes (vocabulary 256), so any file works and nothing but the weights needs saving.
// The first 90% of the file trains, the last 10% validates. A batch is batch_size random windows
// of block_size + 1 bytes (inputs: the first block_size, targets: the same shifted by one),
// drawn from a seeded generator. AdamW with weight decay on the matrices only (nanoGPT's split),
// linear warmup then cosine decay, gradients clipped to norm 1. The validation loss is measured
// on the same windows every time, so that its values compare; the best weights go to
// OUT/char_gpt.safetensors, are loaded back at the end and sampled from.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <keel/keel.h>
#include <keel/io/progress.h>
#include <keel/io/safetensors.h>

using namespace keel;

namespace {

constexpr const char* kUsage =
    "usage: char_gpt --text FILE [options]\n"
    "  --text FILE          the text to learn (any file: tokens are bytes)\n"
    "  --steps N            training steps (default 1000)\n"
    "  --batch-size N       windows per step (default 16)\n"
    "  --block-size N       context length in bytes (default 64)\n"
    "  --layers N           transformer blocks (default 4)\n"
    "  --heads N            attention heads, dividing --embd (default 4)\n"
    "  --embd N             embedding width (default 128)\n"
    "  --dropout X          dropout probability in training (default 0.1)\n"
    "  --lr X               peak learning rate (default 2e-3)\n"
    "  --warmup N           warmup steps (default steps / 20)\n"
    "  --eval-interval N    steps between validation losses (default steps / 10)\n"
    "  --eval-batches N     batches in each validation loss (default 8)\n"
    "  --seed N             seeds the weights, the batches and the sampling (default 1337)\n"
    "  --out DIR            where char_gpt.safetensors goes (default out/char_gpt)\n"
    "  --tensorboard DIR    TensorBoard event files: loss and lr per step, validation loss\n"
    "                       (default OUT/tb; none: no logs)\n"
    "  --sample-chars N     bytes to generate at the end (default 500; 0: none)\n"
    "  --prompt TEXT        the start of the sample (default a newline)\n"
    "  --temperature X      sampling temperature (default 0.8)\n"
    "  --top-k N            sample among the N likeliest bytes only (default 0: all)\n"
    "  --check-learns X     exit with status 3 unless the final validation loss is at least X\n"
    "                       below the initial one (for tests)\n";

struct Options {
  std::string text;
  int64_t steps = 1000;
  int64_t batch_size = 16;
  int64_t block_size = 64;
  int64_t layers = 4;
  int64_t heads = 4;
  int64_t embd = 128;
  double dropout = 0.1;
  double lr = 2e-3;
  std::optional<int64_t> warmup;
  std::optional<int64_t> eval_interval;
  int64_t eval_batches = 8;
  int64_t seed = 1337;
  std::string out = "out/char_gpt";
  std::string tensorboard;  // empty: OUT/tb; "none": no TensorBoard logs
  int64_t sample_chars = 500;
  std::string prompt = "\n";
  double temperature = 0.8;
  int64_t top_k = 0;
  std::optional<double> check_learns;
};

// Whole-string parses only: "12x" or "" is an error, not 12 or 0.
int64_t parse_int(const std::string& flag, const std::string& value) {
  size_t used = 0;
  int64_t result = 0;
  try {
    result = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  KEEL_CHECK(used == value.size() && !value.empty(), "[char_gpt] ", flag, " wants an integer, got '", value,
             "': write e.g. ", flag, " 100");
  return result;
}

double parse_double(const std::string& flag, const std::string& value) {
  size_t used = 0;
  double result = 0;
  try {
    result = std::stod(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  KEEL_CHECK(used == value.size() && !value.empty() && std::isfinite(result), "[char_gpt] ", flag,
             " wants a number, got '", value, "': write e.g. ", flag, " 0.001");
  return result;
}

Options parse_args(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    KEEL_CHECK(flag.rfind("--", 0) == 0, "[char_gpt] unexpected argument '", flag,
               "': every option is a flag with a value, e.g. --text FILE (see --help)");
    KEEL_CHECK(i + 1 < argc, "[char_gpt] ", flag, " needs a value (see --help)");
    const std::string value = argv[++i];
    if (flag == "--text") options.text = value;
    else if (flag == "--steps") options.steps = parse_int(flag, value);
    else if (flag == "--batch-size") options.batch_size = parse_int(flag, value);
    else if (flag == "--block-size") options.block_size = parse_int(flag, value);
    else if (flag == "--layers") options.layers = parse_int(flag, value);
    else if (flag == "--heads") options.heads = parse_int(flag, value);
    else if (flag == "--embd") options.embd = parse_int(flag, value);
    else if (flag == "--dropout") options.dropout = parse_double(flag, value);
    else if (flag == "--lr") options.lr = parse_double(flag, value);
    else if (flag == "--warmup") options.warmup = parse_int(flag, value);
    else if (flag == "--eval-interval") options.eval_interval = parse_int(flag, value);
    else if (flag == "--eval-batches") options.eval_batches = parse_int(flag, value);
    else if (flag == "--seed") options.seed = parse_int(flag, value);
    else if (flag == "--out") options.out = value;
    else if (flag == "--tensorboard") options.tensorboard = value;
    else if (flag == "--sample-chars") options.sample_chars = parse_int(flag, value);
    else if (flag == "--prompt") options.prompt = value;
    else if (flag == "--temperature") options.temperature = parse_double(flag, value);
    else if (flag == "--top-k") options.top_k = parse_int(flag, value);
    else if (flag == "--check-learns") options.check_learns = parse_double(flag, value);
    else KEEL_CHECK(false, "[char_gpt] unknown flag '", flag, "' (see --help for the list)");
  }
  KEEL_CHECK(!options.text.empty(), "[char_gpt] no text to learn: give a file with --text FILE, e.g. --text "
             "/usr/share/common-licenses/GPL-3");
  KEEL_CHECK(options.steps > 0, "[char_gpt] --steps must be positive, got ", options.steps);
  KEEL_CHECK(options.batch_size > 0, "[char_gpt] --batch-size must be positive, got ", options.batch_size);
  KEEL_CHECK(options.block_size > 0, "[char_gpt] --block-size must be positive, got ", options.block_size);
  KEEL_CHECK(options.layers > 0, "[char_gpt] --layers must be positive, got ", options.layers);
  KEEL_CHECK(options.heads > 0 && options.embd > 0 && options.embd % options.heads == 0, "[char_gpt] --embd (", options.embd,
             ") must be a positive multiple of --heads (", options.heads, "): e.g. --embd 128 --heads 4");
  KEEL_CHECK(options.dropout >= 0 && options.dropout < 1, "[char_gpt] --dropout must be in [0, 1), got ", options.dropout);
  KEEL_CHECK(options.lr > 0, "[char_gpt] --lr must be positive, got ", options.lr, ": e.g. --lr 2e-3");
  if (!options.warmup) options.warmup = options.steps / 20;
  KEEL_CHECK(*options.warmup >= 0 && *options.warmup <= options.steps, "[char_gpt] --warmup must be in [0, --steps = ", options.steps,
             "], got ", *options.warmup);
  if (!options.eval_interval) options.eval_interval = std::max<int64_t>(1, options.steps / 10);
  KEEL_CHECK(*options.eval_interval > 0, "[char_gpt] --eval-interval must be positive, got ", *options.eval_interval);
  KEEL_CHECK(options.eval_batches > 0, "[char_gpt] --eval-batches must be positive, got ", options.eval_batches);
  KEEL_CHECK(options.seed >= 0, "[char_gpt] --seed must be non-negative, got ", options.seed);
  KEEL_CHECK(options.sample_chars >= 0, "[char_gpt] --sample-chars must be non-negative, got ", options.sample_chars);
  KEEL_CHECK(options.temperature > 0, "[char_gpt] --temperature must be positive, got ", options.temperature,
             ": e.g. --temperature 0.8 (lower is more conservative)");
  KEEL_CHECK(options.top_k >= 0, "[char_gpt] --top-k must be non-negative (0: no limit), got ", options.top_k);
  return options;
}

std::string read_text(const Options& options) {
  std::error_code error;
  KEEL_CHECK(!std::filesystem::is_directory(options.text, error), "[char_gpt] --text ", options.text,
             " is a folder: give a text file, e.g. --text /usr/share/common-licenses/GPL-3");
  std::ifstream file(options.text, std::ios::binary);
  KEEL_CHECK(file.good(), "[char_gpt] cannot read --text ", options.text, ": check the path (any text file works, "
             "e.g. /usr/share/common-licenses/GPL-3)");
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  KEEL_CHECK(!file.bad(), "[char_gpt] error while reading ", options.text);
  KEEL_CHECK(!text.empty(), "[char_gpt] ", options.text, " is empty: give a text file with some content");
  const int64_t size = static_cast<int64_t>(text.size());
  KEEL_CHECK(size >= options.block_size + 1, "[char_gpt] ", options.text, " has ", size, " bytes, fewer than --block-size + 1 = ",
             options.block_size + 1, ": use a longer text or a smaller --block-size");
  // The validation tenth must hold one window too.
  const int64_t val_size = size - size * 9 / 10;
  KEEL_CHECK(val_size >= options.block_size + 1, "[char_gpt] ", options.text, " has ", size, " bytes; its last 10% (",
             val_size, " bytes, the validation part) must hold a window of --block-size + 1 = ", options.block_size + 1,
             " bytes: use a text of at least ", 10 * (options.block_size + 1), " bytes or a smaller --block-size");
  return text;
}

struct Batch {
  Tensor input, target;  // i64 (B, T)
};

// Windows of block_size + 1 bytes at random starts in data: input the first T, target the last T.
Batch sample_batch(const std::string& data, int64_t batch_size, int64_t block_size, Generator& generator) {
  const int64_t windows = static_cast<int64_t>(data.size()) - block_size;  // starts 0 .. size - T - 1
  const Tensor starts = randint(0, windows, {batch_size}, {.dtype = DType::i64}, &generator).contiguous();
  Batch batch{empty({batch_size, block_size}, {.dtype = DType::i64}),
              empty({batch_size, block_size}, {.dtype = DType::i64})};
  int64_t* input = batch.input.data_ptr<int64_t>();
  int64_t* target = batch.target.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch_size; ++b) {
    const int64_t start = starts.data_ptr<int64_t>()[b];
    for (int64_t t = 0; t < block_size; ++t) {
      input[b * block_size + t] = static_cast<unsigned char>(data[start + t]);
      target[b * block_size + t] = static_cast<unsigned char>(data[start + t + 1]);
    }
  }
  return batch;
}

double evaluate(nn::GPT& model, const std::vector<Batch>& batches) {
  model.eval();
  NoGradGuard no_grad;
  double total = 0;
  for (const Batch& batch : batches) total += model.loss(batch.input, batch.target).item<double>();
  model.train();
  return total / static_cast<double>(batches.size());
}

// nanoGPT's split: decay the weights of the matrix multiplies; not biases, norms or embeddings
// (the tied lm_head weight is the token embedding, so it is not decayed either).
std::vector<optim::ParamGroup<optim::AdamWOptions>> param_groups(const nn::GPT& model, double lr) {
  std::vector<std::string> embeddings;
  for (const auto& [name, module] : model.named_modules())
    if (module->type_name() == "Embedding") embeddings.push_back(name + ".weight");
  std::vector<Tensor> decay, no_decay;
  for (const auto& [name, param] : model.named_parameters()) {
    const bool is_embedding = std::find(embeddings.begin(), embeddings.end(), name) != embeddings.end();
    (param.dim() >= 2 && !is_embedding ? decay : no_decay).push_back(param);
  }
  const optim::AdamWOptions base{.lr = lr, .beta2 = 0.99};  // nanoGPT's beta2 for small batches
  optim::AdamWOptions with_decay = base, without = base;
  with_decay.weight_decay = 0.1;
  without.weight_decay = 0.0;
  return {{decay, with_decay}, {no_decay, without}};
}

std::string format(double value, int decimals = 4) {
  std::ostringstream text;
  text.setf(std::ios::fixed);
  text.precision(decimals);
  text << value;
  return text.str();
}

int run(const Options& options) {
  const std::string text = read_text(options);
  const size_t split = text.size() * 9 / 10;
  const std::string train_data = text.substr(0, split), val_data = text.substr(split);

  manual_seed(static_cast<uint64_t>(options.seed));  // the initial weights
  nn::GPT model(nn::GPTConfig{.vocab_size = 256, .block_size = options.block_size, .n_layer = options.layers,
                              .n_head = options.heads, .n_embd = options.embd, 
                              .dropout = options.dropout, .bias = true});
  model.train();
  optim::AdamW optimizer(param_groups(model, options.lr));
  optim::WarmupCosine schedule(optimizer, {.warmup_steps = *options.warmup, .total_steps = options.steps, .min_lr = options.lr / 10});

  Generator batch_generator(static_cast<uint64_t>(options.seed) + 1);
  Generator val_generator(static_cast<uint64_t>(options.seed) + 2);
  std::vector<Batch> val_batches;
  for (int64_t i = 0; i < options.eval_batches; ++i)
    val_batches.push_back(sample_batch(val_data, options.batch_size, options.block_size, val_generator));

  std::filesystem::create_directories(options.out);
  const std::string weights_path = (std::filesystem::path(options.out) / "char_gpt.safetensors").string();

  std::cout << "text: " << options.text << ", " << text.size() << " bytes (train " << train_data.size() << ", validation "
            << val_data.size() << "), vocabulary 256 (bytes)\n"
            << "model: GPT " << options.layers << " layers, " << options.heads << " heads, embedding " << options.embd << ", block "
            << options.block_size << ", dropout "
            << options.dropout << ": " << model.num_parameters() << " parameters\n"
            << "training: " << options.steps << " steps of " << options.batch_size << " x " << options.block_size
            << " tokens, AdamW lr " << options.lr << " (warmup " << *options.warmup << ", cosine to " << options.lr / 10
            << "), weight decay 0.1 on matrices, clip 1.0, seed " << options.seed << "\n";

  std::optional<io::SummaryWriter> board;  // io/tensorboard.h
  if (options.tensorboard != "none")
    board.emplace(options.tensorboard.empty() ? (std::filesystem::path(options.out) / "tb").string() : options.tensorboard);
  const double initial_loss = evaluate(model, val_batches);
  if (board) board->add_scalar("val/loss", initial_loss, 0);
  std::cout << "step 0: validation loss " << format(initial_loss) << " (uniform over 256 bytes: "
            << format(std::log(256.0)) << ")\n";
  double best_loss = initial_loss, final_loss = initial_loss;
  int64_t best_step = 0;

  // The bar redraws in place on a terminal; validation lines then first clear the bar's line.
  const bool terminal = ::isatty(1);
  io::ProgressBar bar("train", options.steps, std::cout,
                      {.rate_unit = "tok", .mode = terminal ? io::ProgressOptions::Mode::terminal
                                                            : io::ProgressOptions::Mode::lines});
  const auto start = std::chrono::steady_clock::now();
  double smoothed = initial_loss;
  for (int64_t step = 1; step <= options.steps; ++step) {
    const Batch batch = sample_batch(train_data, options.batch_size, options.block_size, batch_generator);
    Tensor loss = model.loss(batch.input, batch.target);
    loss.backward();
    optim::clip_grad_norm_(model.parameters(), 1.0);
    optimizer.step();
    schedule.step();
    optimizer.zero_grad();
    const double value = loss.item<double>();
    smoothed = step == 1 ? value : 0.9 * smoothed + 0.1 * value;
    if (board) {
      board->add_scalar("train/loss", value, step);
      board->add_scalar("train/lr", optimizer.lr(), step);
    }
    bar.update(step, step * options.batch_size * options.block_size, {{"loss", format(smoothed)}});

    if (step % *options.eval_interval == 0 || step == options.steps) {
      final_loss = evaluate(model, val_batches);
      if (board) board->add_scalar("val/loss", final_loss, step);
      std::string note;
      if (final_loss < best_loss) {
        best_loss = final_loss;
        best_step = step;
        io::save_safetensors(weights_path, model.state_dict(),
                         {{"vocabulary", "bytes"}, {"vocab_size", "256"}, {"block_size", std::to_string(options.block_size)},
                          {"n_layer", std::to_string(options.layers)}, {"n_head", std::to_string(options.heads)},
                          {"n_embd", std::to_string(options.embd)}, {"step", std::to_string(step)},
                          {"val_loss", format(final_loss)}});
        note = " (best, saved)";
      }
      if (terminal) std::cout << "\r\x1b[K";
      std::cout << "step " << step << ": validation loss " << format(final_loss) << note << "\n" << std::flush;
    }
  }
  // Line mode has printed the last step already; a terminal gets a last redraw with the loss.
  bar.finish(terminal ? io::ProgressBar::Fields{{"loss", format(smoothed)}} : io::ProgressBar::Fields{});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "final validation loss " << format(final_loss) << " (initial " << format(initial_loss) << ", best "
            << format(best_loss) << " at step " << best_step << "), " << format(seconds, 1) << " s, "
            << format(static_cast<double>(options.steps * options.batch_size * options.block_size) / seconds, 0) << " tokens/s\n";
  if (best_step > 0) std::cout << "best weights: " << weights_path << "\n";
  if (board) board->close();

  if (options.sample_chars > 0) {
    // Sample from the best weights, read back from the file (the last ones if none improved).
    if (best_step > 0) model.load_state_dict(io::load_safetensors(weights_path));
    const std::string prompt = options.prompt.empty() ? std::string("\n") : options.prompt;
    Tensor context = empty({1, static_cast<int64_t>(prompt.size())}, {.dtype = DType::i64});
    for (size_t i = 0; i < prompt.size(); ++i)
      context.data_ptr<int64_t>()[i] = static_cast<unsigned char>(prompt[i]);
    Generator sample_generator(static_cast<uint64_t>(options.seed) + 3);
    const Tensor tokens =
        model.generate(context, options.sample_chars, options.temperature,
                       options.top_k > 0 ? std::optional<int64_t>(options.top_k) : std::nullopt, &sample_generator)
            .contiguous();
    std::string sample;
    for (int64_t i = 0; i < tokens.numel(); ++i) sample += static_cast<char>(tokens.data_ptr<int64_t>()[i]);
    std::cout << "sample (temperature " << options.temperature << (options.top_k > 0 ? ", top_k " + std::to_string(options.top_k) : "")
              << "):\n-----\n" << sample << "\n-----\n";
  }

  if (options.check_learns && !(final_loss <= initial_loss - *options.check_learns)) {
    std::cout << "FAILED: the validation loss fell by " << format(initial_loss - final_loss) << ", less than --check-learns "
              << *options.check_learns << "\n";
    return 3;
  }
  if (options.check_learns) std::cout << "learns: the validation loss fell by " << format(initial_loss - final_loss) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const Error& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "error: [char_gpt] " << error.what() << "\n";
    return 2;
  }
}
