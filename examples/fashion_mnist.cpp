// The main job: train a small CNN on Fashion-MNIST end to end.
//
//   fashion_mnist [--epochs 15] [--batch-size 128] [--lr 0.002] [--weight-decay 0.01] [--seed 0]
//                 [--out runs/fashion_mnist] [--data /usr/share/datasets/fashion-mnist]
//                 [--workers 1] [--patience 4] [--val-fraction 0.1] [--channels 32,64]
//                 [--convs-per-stage 1] [--hidden 128] [--dropout 0.25] [--limit-train N]
//                 [--checkpoint-every STEPS] [--resume OUT/checkpoint.safetensors] [--stop-after STEPS]
//                 [--tensorboard OUT/tb | none]
//
// Data: Debian's dataset-fashion-mnist package (60000 training and 10000 test images, 28 x 28).
// The training set is split (seeded) into training and validation images; the SHA-256 of each
// split's contents is printed and saved, so a run can show which data it used.
// Training: AdamW, linear warmup over the first epoch then cosine decay to lr / 100, augmentation
// (random crop with 2 pixels of padding, horizontal flip) on a loader thread, early stopping on
// the validation accuracy (the best weights are kept and restored), a progress bar per epoch.
// It ends with `test accuracy: NN.NN%` for the best weights, which are in OUT/best.safetensors
// (PyTorch's state_dict names; loads with safetensors.torch.load_file), with the per-epoch
// figures in OUT/metrics.csv and the run's settings and results in OUT/summary.txt.
// Checkpoints: OUT/checkpoint.safetensors (io/checkpoint.h) is written atomically at the end of each
// epoch and every --checkpoint-every steps; --resume continues from one exactly where it stopped
// (same epoch, batch, generator, schedule and early-stopping state: the same weights as a run that
// was never interrupted; pass the same settings). --stop-after ends the process after that many
// steps, with a checkpoint, as an interruption would (to check resuming).
// TensorBoard (`tensorboard --logdir OUT/tb`): the batch loss and learning rate every 10 steps,
// the epoch's train / validation loss and accuracy, parameter histograms per epoch, the
// settings as text and the test accuracy.
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

#include <keel/keel.h>

using namespace keel;

namespace {

struct Settings {
  int64_t epochs = 15;
  int64_t batch_size = 128;
  double lr = 2e-3;
  double weight_decay = 1e-2;
  uint64_t seed = 0;
  std::string out = "runs/fashion_mnist";
  std::string data = "/usr/share/datasets/fashion-mnist";
  int workers = 1;
  int64_t patience = 4;
  double val_fraction = 0.1;
  std::vector<int64_t> channels = {32, 64};
  int64_t convs_per_stage = 1;
  int64_t hidden = 128;
  double dropout = 0.25;
  int64_t limit_train = 0;  // > 0: train on only this many images (quick runs)
  int64_t checkpoint_every = 0;  // > 0: also save a checkpoint every this many steps
  std::string resume;            // a checkpoint to continue from
  int64_t stop_after = 0;        // > 0: save a checkpoint and exit after this many steps
  std::string tensorboard;  // event-file folder; empty: OUT/tb; "none": no TensorBoard logs
};

constexpr double kMean = 0.2860, kStd = 0.3530;  // of the Fashion-MNIST training images, in [0, 1]

void print_usage() {
  std::cout << "usage: fashion_mnist [--epochs N] [--batch-size N] [--lr X] [--weight-decay X] [--seed N]\n"
               "                     [--out DIR] [--data DIR] [--workers N] [--patience N] [--val-fraction X]\n"
               "                     [--channels A,B,...] [--convs-per-stage N] [--hidden N] [--dropout X]\n"
               "                     [--limit-train N] [--checkpoint-every STEPS] [--resume CHECKPOINT]\n"
               "                     [--stop-after STEPS] [--tensorboard DIR|none]\n";
}

Settings parse_arguments(int argc, char** argv) {
  Settings s;
  auto number = [](const std::string& flag, const std::string& text) {
    size_t used = 0;
    double value = 0;
    try {
      value = std::stod(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    KEEL_CHECK(used == text.size() && !text.empty(), "[fashion_mnist] ", flag, " expects a number, got \"", text, "\"");
    return value;
  };
  auto whole = [&](const std::string& flag, const std::string& text, double low) {
    const double value = number(flag, text);
    KEEL_CHECK(value == std::floor(value) && value >= low, "[fashion_mnist] ", flag, " expects a whole number >= ", low,
               ", got ", text);
    return static_cast<int64_t>(value);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      print_usage();
      std::exit(0);
    }
    KEEL_CHECK(i + 1 < argc, "[fashion_mnist] ", flag, " needs a value (see --help)");
    const std::string value = argv[++i];
    if (flag == "--epochs") s.epochs = whole(flag, value, 1);
    else if (flag == "--batch-size") s.batch_size = whole(flag, value, 1);
    else if (flag == "--lr") s.lr = number(flag, value);
    else if (flag == "--weight-decay") s.weight_decay = number(flag, value);
    else if (flag == "--seed") s.seed = static_cast<uint64_t>(whole(flag, value, 0));
    else if (flag == "--out") s.out = value;
    else if (flag == "--data") s.data = value;
    else if (flag == "--workers") s.workers = static_cast<int>(whole(flag, value, 0));
    else if (flag == "--patience") s.patience = whole(flag, value, 0);
    else if (flag == "--val-fraction") s.val_fraction = number(flag, value);
    else if (flag == "--convs-per-stage") s.convs_per_stage = whole(flag, value, 1);
    else if (flag == "--hidden") s.hidden = whole(flag, value, 0);
    else if (flag == "--dropout") s.dropout = number(flag, value);
    else if (flag == "--limit-train") s.limit_train = whole(flag, value, 0);
    else if (flag == "--checkpoint-every") s.checkpoint_every = whole(flag, value, 0);
    else if (flag == "--resume") s.resume = value;
    else if (flag == "--stop-after") s.stop_after = whole(flag, value, 0);
    else if (flag == "--tensorboard") s.tensorboard = value;
    else if (flag == "--channels") {
      s.channels.clear();
      std::stringstream list(value);
      for (std::string part; std::getline(list, part, ',');) s.channels.push_back(whole(flag, part, 1));
      KEEL_CHECK(!s.channels.empty() && s.channels.size() <= 4, "[fashion_mnist] --channels expects 1 to 4 widths, got ",
                 value);
    } else {
      fail("[fashion_mnist] unknown option ", flag, " (see --help)");
    }
  }
  KEEL_CHECK(s.lr > 0, "[fashion_mnist] --lr must be positive, got ", s.lr);
  KEEL_CHECK(s.weight_decay >= 0, "[fashion_mnist] --weight-decay must be >= 0, got ", s.weight_decay);
  KEEL_CHECK(s.dropout >= 0 && s.dropout < 1, "[fashion_mnist] --dropout must be in [0, 1), got ", s.dropout);
  KEEL_CHECK(s.val_fraction > 0 && s.val_fraction < 1, "[fashion_mnist] --val-fraction must be in (0, 1), got ",
             s.val_fraction);
  return s;
}

// u8 [N, 28, 28] -> f32 [N, 1, 28, 28], scaled to [0, 1] and normalized.
Tensor normalized_images(const Tensor& images) {
  // In place: one f32 copy of the images (188 MB for the training set), not one per step.
  Tensor x = images.to(DType::f32).unsqueeze(1);
  x /= 255.0;
  x -= kMean;
  x /= kStd;
  return x;
}

std::string shape_text(const std::vector<int64_t>& values) {
  std::ostringstream text;
  for (size_t i = 0; i < values.size(); ++i) text << (i ? "," : "") << values[i];
  return text.str();
}

Tensor index_tensor(const std::vector<int64_t>& indices) {
  Tensor result = empty({static_cast<int64_t>(indices.size())}, {.dtype = DType::i64});
  std::copy(indices.begin(), indices.end(), result.data_ptr<int64_t>());
  return result;
}

struct Evaluation {
  double loss = 0, accuracy = 0;
};

Evaluation evaluate(nn::Module& model, const Tensor& images, const Tensor& labels) {
  NoGradGuard no_grad;
  model.eval();
  // Chunks of 250 images: larger ones only grow the activations the allocator keeps cached.
  const int64_t n = images.size(0), chunk = 250;
  double loss_sum = 0;
  int64_t correct = 0;
  for (int64_t start = 0; start < n; start += chunk) {
    const int64_t count = std::min(chunk, n - start);
    const Tensor logits = model(images.narrow(0, start, count));
    const Tensor target = labels.narrow(0, start, count);
    loss_sum += cross_entropy(logits, target, {.reduction = Reduction::sum}).item<double>();
    correct += sum(argmax(logits, -1) == target).item<int64_t>();
  }
  model.train();
  return {loss_sum / static_cast<double>(n), static_cast<double>(correct) / static_cast<double>(n)};
}

std::string fixed(double value, int digits) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.*f", digits, value);
  return text;
}

// Doubles in checkpoint metadata as C99 hex floats: strtod reads back the same bits.
std::string exact(double value) {
  char text[40];
  std::snprintf(text, sizeof(text), "%a", value);
  return text;
}

}  // namespace

int main(int argc, char** argv) try {
  const Settings settings = parse_arguments(argc, argv);
  const auto run_start = std::chrono::steady_clock::now();
  auto seconds_since_start = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  };
  manual_seed(settings.seed);
  std::filesystem::create_directories(settings.out);

  // ---- data -------------------------------------------------------------------------------------
  const data::FashionMnist fashion = data::load_fashion_mnist(settings.data);
  const auto split = data::random_split(fashion.train_images.size(0),
                                        {1 - settings.val_fraction, settings.val_fraction}, settings.seed);
  std::vector<int64_t> train_indices = split[0];
  if (settings.limit_train > 0 && settings.limit_train < static_cast<int64_t>(train_indices.size()))
    train_indices.resize(static_cast<size_t>(settings.limit_train));
  const std::string train_hash = data::split_hash({fashion.train_images, fashion.train_labels}, train_indices);
  const std::string val_hash = data::split_hash({fashion.train_images, fashion.train_labels}, split[1]);
  const Tensor all_train = normalized_images(fashion.train_images);
  const Tensor val_images = index_select(all_train, 0, index_tensor(split[1]));
  const Tensor val_labels = index_select(fashion.train_labels, 0, index_tensor(split[1]));
  const Tensor test_images = normalized_images(fashion.test_images);

  // Augmentation on the loader's worker: pad by 2 and crop 28 x 28 at random, flip half the images.
  auto train_set = std::make_shared<data::TransformDataset>(
      std::make_shared<data::Subset>(std::make_shared<data::TensorDataset>(all_train, fashion.train_labels),
                                     train_indices),
      data::compose({data::random_crop_transform(28, 28, 2), data::random_horizontal_flip_transform(0.5)}));
  data::DataLoader loader(train_set, {.batch_size = settings.batch_size,
                                      .shuffle = true,
                                      .drop_last = true,
                                      .seed = settings.seed,
                                      .num_workers = settings.workers,
                                      .prefetch_batches = 4});
  KEEL_CHECK(loader.size() > 0, "[fashion_mnist] --batch-size ", settings.batch_size, " is larger than the ",
             train_indices.size(), " training images");

  std::cout << "Fashion-MNIST from " << settings.data << ": " << train_indices.size() << " training, "
            << split[1].size() << " validation, " << fashion.test_images.size(0) << " test images\n"
            << "  training split sha256 " << train_hash << "\n  validation split sha256 " << val_hash << "\n";

  // ---- model and optimizer ----------------------------------------------------------------------
  nn::SmallCNN model({.channels = settings.channels,
                      .convs_per_stage = settings.convs_per_stage,
                      .dropout = settings.dropout,
                      .hidden = settings.hidden});
  std::cout << model.summary(Shape{1, 1, 28, 28});
  const int64_t steps_per_epoch = loader.size();
  optim::AdamW optimizer(model.parameters(), {.lr = settings.lr, .weight_decay = settings.weight_decay});
  optim::WarmupCosine schedule(optimizer, {.warmup_steps = steps_per_epoch,
                                           .total_steps = steps_per_epoch * settings.epochs,
                                           .min_lr = settings.lr / 100});
  optim::EarlyStopping early_stopping({.patience = settings.patience, .mode = optim::PlateauMode::max});
  std::cout << "training: " << settings.epochs << " epochs of " << steps_per_epoch << " steps (batch "
            << settings.batch_size << "), AdamW lr " << settings.lr << " weight decay " << settings.weight_decay
            << ", warmup 1 epoch then cosine, " << omp_get_max_threads() << " threads\n";

  const std::string weights_path = (std::filesystem::path(settings.out) / "best.safetensors").string();
  const std::string metrics_path = (std::filesystem::path(settings.out) / "metrics.csv").string();

  // TensorBoard event file (io/tensorboard.h).
  std::optional<io::SummaryWriter> board;
  if (settings.tensorboard != "none") {
    board.emplace(settings.tensorboard.empty() ? (std::filesystem::path(settings.out) / "tb").string()
                                               : settings.tensorboard);
    std::ostringstream text;
    text << "epochs " << settings.epochs << ", batch size " << settings.batch_size << ", AdamW lr " << settings.lr
         << ", weight decay " << settings.weight_decay << ", seed " << settings.seed << ", channels "
         << shape_text(settings.channels) << ", hidden " << settings.hidden << ", dropout " << settings.dropout;
    board->add_text("settings", text.str(), 0);
  }
  constexpr int64_t kLogEvery = 10;  // steps between TensorBoard points of the batch loss

  // The tensors early stopping snapshots and restores: every parameter and buffer (shared storage).
  std::vector<Tensor> state_tensors;
  for (const auto& [name, value] : model.state_dict()) state_tensors.push_back(value);

  // ---- checkpoints ------------------------------------------------------------------------------
  // Besides what TrainingState holds: the epoch's running sums (for its figures), the validation
  // accuracies so far and early stopping's best weights (its state is rebuilt by replaying them).
  const std::string checkpoint_path = (std::filesystem::path(settings.out) / "checkpoint.safetensors").string();
  std::vector<double> val_history;
  double loss_sum = 0;
  int64_t correct = 0, seen = 0, global_step = 0;
  auto save_checkpoint = [&](int64_t epoch, int64_t batch) {
    io::TrainingState state{.model = &model, .optimizer = &optimizer, .scheduler = &schedule, .loader = &loader};
    state.step = global_step;
    state.epoch = epoch;
    state.batch_in_epoch = batch;
    std::string history;
    for (double value : val_history) history += (history.empty() ? "" : ",") + exact(value);
    state.metadata = {{"epochs", std::to_string(settings.epochs)}, {"val_history", history},
                      {"loss_sum", exact(loss_sum)}, {"correct", std::to_string(correct)},
                      {"seen", std::to_string(seen)}};
    const auto names = model.state_dict();
    for (size_t i = 0; i < early_stopping.best_tensors().size(); ++i)
      state.extra_tensors.emplace_back("best." + names[i].first, early_stopping.best_tensors()[i]);
    io::save_checkpoint(checkpoint_path, state);
  };
  int64_t start_epoch = 0, start_batch = 0;
  if (!settings.resume.empty()) {
    io::TrainingState state{.model = &model, .optimizer = &optimizer, .scheduler = &schedule, .loader = &loader};
    io::load_checkpoint(settings.resume, state);  // positions the loader too
    KEEL_CHECK(state.metadata["epochs"] == std::to_string(settings.epochs), "[fashion_mnist] ", settings.resume,
               " was saved by a run of ", state.metadata["epochs"], " epochs: pass the same --epochs (the schedule "
               "depends on it)");
    global_step = state.step;
    start_epoch = state.epoch;
    start_batch = state.batch_in_epoch;
    loss_sum = std::strtod(state.metadata["loss_sum"].c_str(), nullptr);
    correct = std::stoll(state.metadata["correct"]);
    seen = std::stoll(state.metadata["seen"]);
    std::vector<Tensor> best;
    for (const auto& [name, value] : state.extra_tensors) best.push_back(value);
    std::stringstream history(state.metadata["val_history"]);
    for (std::string part; std::getline(history, part, ',');) {
      val_history.push_back(std::strtod(part.c_str(), nullptr));
      early_stopping.step(val_history.back(), best);  // an improvement copies `best`: the last one wins
    }
    std::cout << "resumed from " << settings.resume << ": epoch " << start_epoch + 1 << ", batch " << start_batch
              << ", step " << global_step << "\n";
  }
  // metrics.csv keeps the rows of the epochs a resumed run had finished.
  std::vector<std::string> metrics_rows{"epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds"};
  if (!settings.resume.empty()) {
    std::ifstream old(metrics_path);
    for (std::string line; std::getline(old, line) && metrics_rows.size() <= val_history.size();)
      if (line != metrics_rows[0]) metrics_rows.push_back(line);
  }
  std::ofstream metrics(metrics_path);
  for (const std::string& row : metrics_rows) metrics << row << "\n";

  for (int64_t epoch = start_epoch; epoch < settings.epochs && !early_stopping.should_stop(); ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    io::ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(settings.epochs),
                        steps_per_epoch, std::cerr, {.rate_unit = "img"});
    int64_t step = epoch == start_epoch ? start_batch : 0;
    for (const data::Batch& batch : loader) {
      const Tensor logits = model(batch.input);
      const Tensor loss = cross_entropy(logits, batch.target);
      loss.backward();
      optimizer.step();
      schedule.step();
      optimizer.zero_grad();
      const int64_t count = batch.target.size(0);
      loss_sum += loss.item<double>() * static_cast<double>(count);
      correct += sum(argmax(logits.detach(), -1) == batch.target).item<int64_t>();
      seen += count;
      ++step;
      ++global_step;
      if (board && global_step % kLogEvery == 0) {
        board->add_scalar("train/batch_loss", loss.item<double>(), global_step);
        board->add_scalar("train/lr", optimizer.lr(), global_step);
      }
      if (settings.checkpoint_every > 0 && global_step % settings.checkpoint_every == 0) save_checkpoint(epoch, step);
      if (global_step == settings.stop_after) {
        save_checkpoint(epoch, step);
        std::cout << "stopped after step " << global_step << "; continue with --resume " << checkpoint_path << "\n";
        return 0;
      }
      bar.update(step, seen, {{"loss", fixed(loss_sum / static_cast<double>(seen), 4)},
                              {"acc", fixed(100.0 * static_cast<double>(correct) / static_cast<double>(seen), 2) + "%"}});
    }
    const Evaluation val = evaluate(model, val_images, val_labels);
    bar.finish({{"loss", fixed(loss_sum / static_cast<double>(seen), 4)},
                {"acc", fixed(100.0 * static_cast<double>(correct) / static_cast<double>(seen), 2) + "%"},
                {"val_loss", fixed(val.loss, 4)},
                {"val_acc", fixed(100.0 * val.accuracy, 2) + "%"}});
    const double epoch_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    metrics << epoch + 1 << "," << loss_sum / static_cast<double>(seen) << ","
            << static_cast<double>(correct) / static_cast<double>(seen) << "," << val.loss << "," << val.accuracy
            << "," << optimizer.lr() << "," << epoch_seconds << "\n"
            << std::flush;
    if (board) {
      board->add_scalar("epoch/train_loss", loss_sum / static_cast<double>(seen), global_step);
      board->add_scalar("epoch/train_accuracy", static_cast<double>(correct) / static_cast<double>(seen), global_step);
      board->add_scalar("epoch/val_loss", val.loss, global_step);
      board->add_scalar("epoch/val_accuracy", val.accuracy, global_step);
      io::add_histograms(*board, model.named_parameters(), global_step, "weights/");
      board->flush();
    }
    const bool stop = early_stopping.step(val.accuracy, state_tensors);
    val_history.push_back(val.accuracy);
    if (early_stopping.best_epoch() == epoch) {
      io::save_safetensors(weights_path, model.state_dict(),
                           {{"epoch", std::to_string(epoch + 1)},
                            {"val_accuracy", fixed(val.accuracy, 6)},
                            {"train_split_sha256", train_hash},
                            {"val_split_sha256", val_hash}});
    }
    loss_sum = 0, correct = 0, seen = 0;  // the next epoch's sums
    save_checkpoint(epoch + 1, 0);
    if (stop) {
      std::cout << "early stopping: no better validation accuracy for " << settings.patience << " epochs\n";
      break;
    }
  }

  // ---- test with the best weights ---------------------------------------------------------------
  early_stopping.restore_best(state_tensors);
  const Evaluation test = evaluate(model, test_images, fashion.test_labels);
  const double total_seconds = seconds_since_start();
  std::cout << "best validation accuracy " << fixed(100.0 * early_stopping.best_metric(), 2) << "% after epoch "
            << early_stopping.best_epoch() + 1 << "; " << fixed(total_seconds, 1) << " s in all\n";
  std::cout << "test accuracy: " << fixed(100.0 * test.accuracy, 2) << "%\n";
  if (board) {
    board->add_scalar("test/accuracy", test.accuracy, (early_stopping.best_epoch() + 1) * steps_per_epoch);
    board->add_scalar("test/loss", test.loss, (early_stopping.best_epoch() + 1) * steps_per_epoch);
    board->close();
  }
  // The best model as ONNX (dynamic batch; input "input" [batch, 1, 28, 28] normalized as above,
  // output "output" logits [batch, 10]); examples/check_onnx_accuracy.py reruns the test set in onnxruntime.
  const std::string onnx_path = (std::filesystem::path(settings.out) / "model.onnx").string();
  io::export_onnx(model, {test_images.narrow(0, 0, 2)}, onnx_path);
  std::cout << "exported the best model to " << onnx_path << " (ONNX opset " << io::kOnnxOpset << ")\n";

  const std::string summary_path = (std::filesystem::path(settings.out) / "summary.txt").string();
  std::ofstream summary(summary_path);
  summary << "test_accuracy " << fixed(test.accuracy, 6) << "\ntest_loss " << test.loss << "\nbest_val_accuracy "
          << early_stopping.best_metric() << "\nbest_epoch " << early_stopping.best_epoch() + 1 << "\nseconds "
          << total_seconds << "\nepochs " << settings.epochs << "\nbatch_size " << settings.batch_size << "\nlr "
          << settings.lr << "\nweight_decay " << settings.weight_decay << "\nseed " << settings.seed
          << "\nchannels " << shape_text(settings.channels) << ", convs_per_stage " << settings.convs_per_stage
          << ", hidden " << settings.hidden << ", dropout " << settings.dropout << "\ntrain_split_sha256 " << train_hash << "\nval_split_sha256 " << val_hash << "\n";
  std::cout << "saved: best weights " << weights_path << ", per-epoch metrics " << metrics_path << ", summary "
            << summary_path << "\n";
  return 0;
} catch (const keel::Error& error) {
  std::cerr << "error: " << error.what() << "\n";
  return 1;
}
