#include "fervid/trainer.h"

#include <ATen/Context.h>
#include <torch/optim.h>
#include <torch/serialize.h>

#include <chrono>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "fervid/atomic_file.h"
#include "fervid/augment.h"
#include "fervid/config_json.h"
#include "fervid/evaluate.h"
#include "fervid/loader.h"
#include "fervid/model.h"
#include "fervid/model_io.h"
#include "fervid/runtime.h"
#include "fervid/splits.h"
#include "fervid/train_step.h"
#include "train/device_batch.h"

namespace fervid {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- configuration <-> JSON ------------------------------------------------------------------
namespace {

json augment_json(const AugmentOptions& a) {
  return {{"flip_prob", a.flip_prob},     {"max_rotation_deg", a.max_rotation_deg}, {"min_scale", a.min_scale},
          {"max_scale", a.max_scale},     {"max_shift", a.max_shift},               {"brightness", a.brightness},
          {"contrast", a.contrast},       {"erase_prob", a.erase_prob},             {"erase_min_area", a.erase_min_area},
          {"erase_max_area", a.erase_max_area}, {"erase_value", a.erase_value}};
}

// Reads `key` of `j` into `out` when present; a value of the wrong type names the field.
template <typename T>
void read(const json& j, const char* key, T& out, const std::string& prefix = "") {
  if (!j.contains(key)) return;
  try {
    out = j.at(key).get<T>();
  } catch (const json::exception&) {
    throw std::invalid_argument("train config: field '" + prefix + key + "' has the wrong type (" + j.at(key).dump() + ")");
  }
}

AugmentOptions augment_from(const json& j) {
  AugmentOptions a;
  read(j, "flip_prob", a.flip_prob, "augment.");
  read(j, "max_rotation_deg", a.max_rotation_deg, "augment.");
  read(j, "min_scale", a.min_scale, "augment.");
  read(j, "max_scale", a.max_scale, "augment.");
  read(j, "max_shift", a.max_shift, "augment.");
  read(j, "brightness", a.brightness, "augment.");
  read(j, "contrast", a.contrast, "augment.");
  read(j, "erase_prob", a.erase_prob, "augment.");
  read(j, "erase_min_area", a.erase_min_area, "augment.");
  read(j, "erase_max_area", a.erase_max_area, "augment.");
  read(j, "erase_value", a.erase_value, "augment.");
  return a;
}

}  // namespace

json to_json(const TrainConfig& c) {
  return {{"data", c.data},
          {"source", to_json(c.source)},
          {"train_split", c.train_split}, {"val_split", c.val_split}, {"val_fraction", c.val_fraction},
          {"folds", c.folds}, {"fold", c.fold}, {"max_train_samples", c.max_train_samples},
          {"expand_15x", c.expand_15x},
          {"model", config_to_json(c.model)},
          {"loss", {{"label_smoothing", c.loss.label_smoothing}, {"lambda_c", c.loss.lambda_c},
                    {"center_alpha", c.loss.center_alpha}, {"gamma", c.loss.gamma}, {"form", to_string(c.loss.form)}}},
          {"init_from", c.init_from},
          {"optimizer", c.optimizer}, {"lr", c.lr}, {"momentum", c.momentum}, {"weight_decay", c.weight_decay},
          {"batch_size", c.batch_size}, {"epochs", c.epochs}, {"minutes", c.minutes}, {"schedule", c.schedule},
          {"lr_decay", c.lr_decay}, {"step_every", c.step_every}, {"step_gamma", c.step_gamma},
          {"warmup_epochs", c.warmup_epochs}, {"augment", augment_json(c.augment)}, {"seed", c.seed},
          {"threads", c.threads}, {"device", c.device}, {"run_dir", c.run_dir}};
}

TrainConfig train_config_from_json(const json& j) {
  TrainConfig c;
  read(j, "data", c.data);
  if (j.contains("source")) c.source = data_source_options_from_json(j.at("source"), "train config");
  read(j, "train_split", c.train_split);
  read(j, "val_split", c.val_split);
  read(j, "val_fraction", c.val_fraction);
  read(j, "folds", c.folds);
  read(j, "fold", c.fold);
  read(j, "max_train_samples", c.max_train_samples);
  read(j, "expand_15x", c.expand_15x);
  if (j.contains("model")) c.model = config_from_json(j.at("model"));
  if (j.contains("loss")) {
    const auto& l = j.at("loss");
    read(l, "label_smoothing", c.loss.label_smoothing, "loss.");
    read(l, "lambda_c", c.loss.lambda_c, "loss.");
    read(l, "center_alpha", c.loss.center_alpha, "loss.");
    read(l, "gamma", c.loss.gamma, "loss.");
    std::string form = "island";
    read(l, "form", form, "loss.");
    c.loss.form = parse_separation_form(form);
  }
  read(j, "init_from", c.init_from);
  read(j, "optimizer", c.optimizer);
  read(j, "lr", c.lr);
  read(j, "momentum", c.momentum);
  read(j, "weight_decay", c.weight_decay);
  read(j, "batch_size", c.batch_size);
  read(j, "epochs", c.epochs);
  read(j, "minutes", c.minutes);
  read(j, "schedule", c.schedule);
  read(j, "lr_decay", c.lr_decay);
  read(j, "step_every", c.step_every);
  read(j, "step_gamma", c.step_gamma);
  read(j, "warmup_epochs", c.warmup_epochs);
  if (j.contains("augment")) c.augment = augment_from(j.at("augment"));
  read(j, "seed", c.seed);
  read(j, "threads", c.threads);
  read(j, "device", c.device);
  read(j, "run_dir", c.run_dir);
  return c;
}

json to_json(const EpochMetrics& m) {
  return {{"epoch", m.epoch},
          {"lr", m.lr},
          {"train_loss", m.train_loss},
          {"train_ce", m.train_ce},
          {"train_center", m.train_center},
          {"train_separation", m.train_separation},
          {"train_accuracy", m.train_accuracy},
          {"train_samples", m.train_samples},
          {"val_loss", m.val_loss},
          {"val_accuracy", m.val_accuracy},
          {"seconds", m.seconds},
          {"images_per_second", m.images_per_second},
          {"best", m.best}};
}

// ---- the run -----------------------------------------------------------------------------------
namespace {

EpochMetrics metrics_from(const json& j) {
  EpochMetrics m;
  m.epoch = j.at("epoch");
  m.lr = j.at("lr");
  m.train_loss = j.at("train_loss");
  m.train_ce = j.at("train_ce");
  m.train_center = j.at("train_center");
  m.train_separation = j.at("train_separation");
  m.train_accuracy = j.at("train_accuracy");
  m.train_samples = j.value("train_samples", int64_t{0});  // absent in runs of older builds
  m.val_loss = j.at("val_loss");
  m.val_accuracy = j.at("val_accuracy");
  m.seconds = j.at("seconds");
  m.images_per_second = j.at("images_per_second");
  m.best = j.at("best");
  return m;
}

void validate(const TrainConfig& c) {
  auto bad = [](const std::string& field, const std::string& why) {
    throw std::invalid_argument("train config: field '" + field + "' " + why);
  };
  if (c.data.empty()) bad("data", "is empty: give a dataset (FER2013 CSV, image folder, CK+)");
  if (c.run_dir.empty()) bad("run_dir", "is empty");
  if (c.optimizer != "sgd" && c.optimizer != "adamw") bad("optimizer", "is '" + c.optimizer + "', expected sgd or adamw");
  if (c.schedule != "exp" && c.schedule != "cosine" && c.schedule != "step") bad("schedule", "is '" + c.schedule + "', expected exp, cosine or step");
  if (!(c.lr > 0)) bad("lr", "must be > 0");
  if (c.batch_size < 1) bad("batch_size", "must be >= 1");
  if (c.epochs < 1) bad("epochs", "must be >= 1");
  if (c.folds == 1 || c.folds < 0) bad("folds", "must be 0 (off) or >= 2");
  if (c.folds > 0 && (c.fold < 0 || c.fold >= c.folds)) bad("fold", "must lie in [0, folds)");
  if (c.val_fraction < 0 || c.val_fraction >= 1) bad("val_fraction", "must lie in [0, 1)");
  c.model.validate();
}

double lr_at(const TrainConfig& c, int epoch) {
  double factor = 1.0;
  if (c.schedule == "exp") {
    factor = std::pow(c.lr_decay, epoch);
  } else if (c.schedule == "step") {
    factor = std::pow(c.step_gamma, epoch / std::max(1, c.step_every));
  } else {  // cosine over the epochs after warm-up
    const double span = std::max(1, c.epochs - c.warmup_epochs);
    const double t = std::max(0, epoch - c.warmup_epochs);
    factor = 0.5 * (1.0 + std::cos(3.14159265358979323846 * t / span));
  }
  if (c.warmup_epochs > 0 && epoch < c.warmup_epochs) factor *= static_cast<double>(epoch + 1) / (c.warmup_epochs + 1);
  return c.lr * factor;
}

struct Split2 {
  std::vector<size_t> train, val;
};

Split2 make_splits(const TrainConfig& c, const Dataset& ds) {
  Split2 s;
  auto of_split = [&](const std::string& name) {
    if (name == "all") {
      std::vector<size_t> all(ds.size());
      for (size_t i = 0; i < all.size(); ++i) all[i] = i;
      return all;
    }
    const auto split = parse_split(name);
    if (!split) throw std::invalid_argument("train config: unknown split '" + name + "'");
    return ds.indices(*split);
  };
  if (c.folds > 0) {
    const auto folds = subject_kfold(ds, c.folds, c.seed);
    for (int f = 0; f < c.folds; ++f) {
      auto& dst = f == c.fold ? s.val : s.train;
      dst.insert(dst.end(), folds[static_cast<size_t>(f)].begin(), folds[static_cast<size_t>(f)].end());
    }
  } else if (c.val_fraction > 0) {
    const auto pool = of_split(c.train_split);
    const auto sub = ds.subset(pool);
    auto [tr, va] = random_split(sub, c.val_fraction, c.seed);
    for (auto i : tr) s.train.push_back(pool[i]);
    for (auto i : va) s.val.push_back(pool[i]);
  } else {
    s.train = of_split(c.train_split);
    s.val = of_split(c.val_split);
  }
  std::sort(s.train.begin(), s.train.end());
  if (c.max_train_samples > 0 && s.train.size() > c.max_train_samples) {
    seeded_shuffle(s.train, c.seed ^ 0x5eedu);
    s.train.resize(c.max_train_samples);
    std::sort(s.train.begin(), s.train.end());
  }
  if (s.train.empty()) throw std::invalid_argument("train: no training samples in split '" + c.train_split + "'");
  return s;
}

// Validation loss and accuracy through the same predict() that `fervid eval` uses.
std::pair<double, double> evaluate_split(MCSANet& net, const Dataset& ds, const std::vector<size_t>& idx) {
  if (idx.empty()) return {0.0, 0.0};
  const auto p = predict(net, ds, idx);
  const auto picked = p.probs.gather(1, p.labels.unsqueeze(1)).squeeze(1);
  const double loss = -picked.clamp_min(1e-12).log().mean().item<double>();
  const double accuracy = p.probs.argmax(1).eq(p.labels).to(torch::kDouble).mean().item<double>();
  return {loss, accuracy};
}

void write_json_atomically(const std::string& path, const json& j) { write_file_atomically(path, j.dump(2) + "\n"); }

// One training run: the state that a checkpoint holds.
class Run {
 public:
  Run(TrainConfig config, std::string command) : c_(std::move(config)), command_(std::move(command)) {
    validate(c_);
    device_ = resolve_device(c_.device);  // before any work: a missing GPU fails here
    configure_runtime(c_.threads);
    // The model's face recipe: the source's recipe flags over FaceRecipe{}. Photos and CK+ are
    // cropped with it; other sources hold cropped faces, and the flags only state how the model
    // is to be served.
    recipe_ = source_face_recipe(c_.source);
    auto src_opts = c_.source;
    if (!detects_faces(resolve_source_format(c_.data, src_opts.format))) src_opts.face.clear();
    src_opts.use_cache = true;
    if (src_opts.size != c_.model.input_size && src_opts.format != SourceFormat::kFer2013) src_opts.size = c_.model.input_size;
    auto opened = open_data_source(c_.data, src_opts);
    data_ = std::move(opened.data);
    data_key_ = opened.cache_key;
    splits_ = make_splits(c_, data_);
    if (c_.expand_15x) {
      expanded_ = expand_dataset_15x(data_, splits_.train);
      train_indices_.resize(expanded_.size());
      for (size_t i = 0; i < train_indices_.size(); ++i) train_indices_[i] = i;
    } else {
      train_indices_ = splits_.train;
    }
    torch::manual_seed(c_.seed);
    net_ = MCSANet(c_.model);  // initialised on the CPU, so every device starts from the same weights
    if (!c_.init_from.empty()) load_weights(c_.init_from, net_);
    loss_ = FerLoss(c_.loss, c_.model.num_classes(), c_.model.embedding_dim());
    if (!device_.is_cpu()) {
      net_->to(device_);
      loss_->to(device_);
      at::globalContext().setBenchmarkCuDNN(true);  // fixed input shapes: let cuDNN pick its fastest kernels
    }
    if (c_.optimizer == "sgd") {
      opt_ = std::make_unique<torch::optim::SGD>(
          net_->parameters(), torch::optim::SGDOptions(c_.lr).momentum(c_.momentum).weight_decay(c_.weight_decay));
    } else {
      opt_ = std::make_unique<torch::optim::AdamW>(net_->parameters(),
                                                   torch::optim::AdamWOptions(c_.lr).weight_decay(c_.weight_decay));
    }
  }

  void start_fresh() {
    std::error_code ec;
    if (fs::exists(fs::path(c_.run_dir) / "checkpoint.json", ec)) {
      throw std::invalid_argument("train: " + c_.run_dir + " already holds a run; use --resume " + c_.run_dir +
                                  " or another --out");
    }
    fs::create_directories(c_.run_dir);
    write_json_atomically(c_.run_dir + "/config.json", to_json(c_));
    write_file_atomically(c_.run_dir + "/command.txt", command_ + "\n");
  }

  void restore() {
    const auto pointer = read_json(c_.run_dir + "/checkpoint.json");
    const std::string dir = c_.run_dir + "/" + pointer.at("dir").get<std::string>();
    load_weights(dir + "/model.fervid", net_);  // copies into the network, wherever it lives
    // Checkpoints hold CPU tensors; map them onto this run's device.
    torch::load(*opt_, dir + "/optimizer.pt", device_);
    torch::load(loss_, dir + "/loss.pt", device_);
    next_epoch_ = pointer.at("epoch").get<int>() + 1;
    elapsed_ = pointer.at("elapsed_seconds").get<double>();
    best_ = pointer.at("best_val_accuracy").get<double>();
    best_epoch_ = pointer.at("best_epoch").get<int>();
    for (const auto& m : pointer.at("history")) history_.push_back(metrics_from(m));
  }

  TrainResult run(const TrainCallbacks& cb) {
    const Dataset& train_data = c_.expand_15x ? expanded_ : data_;
    const bool on_device = !device_.is_cpu();
    LoaderOptions lo;
    lo.batch_size = c_.batch_size;
    lo.shuffle = true;
    lo.drop_last = c_.batch_size > 1 && train_indices_.size() > static_cast<size_t>(c_.batch_size);
    lo.seed = c_.seed;
    lo.augment = c_.augment;
    lo.input_size = c_.model.input_size;
    lo.norm_mean = c_.model.norm_mean;
    lo.norm_std = c_.model.norm_std;
    if (on_device) detail::defer_to_device(lo, train_data);
    BatchLoader loader(train_data, train_indices_, lo);
    TrainResult result;
    for (int epoch = next_epoch_; epoch < c_.epochs; ++epoch) {
      if (c_.minutes > 0 && elapsed_ >= c_.minutes * 60) {
        result.stopped_early = true;
        break;
      }
      const auto t0 = std::chrono::steady_clock::now();
      const double lr = lr_at(c_, epoch);
      for (auto& group : opt_->param_groups()) group.options().set_lr(lr);
      torch::manual_seed(c_.seed * 1000003u + static_cast<uint64_t>(epoch));  // dropout draws
      net_->train();
      loader.start_epoch(epoch);
      double sum_loss = 0, sum_ce = 0, sum_center = 0, sum_sep = 0;
      int64_t correct = 0, seen = 0;
      const int64_t batches = loader.batches_per_epoch();
      while (auto b = loader.next()) {
        torch::Tensor images = b->images, labels = b->labels, soft = b->soft_targets;
        if (on_device) {
          auto gen = batch_augment_generator(c_.seed, epoch, b->index);
          images = detail::finish_on_device(images, device_, c_.model.input_size, &c_.augment, &gen, c_.model.norm_mean,
                                            c_.model.norm_std);
          labels = labels.to(device_);
          if (soft.defined()) soft = soft.to(device_);
        }
        const auto step = train_step(net_, loss_, *opt_, images, labels, soft);
        const auto& parts = step.loss;
        const auto n = labels.size(0);
        seen += n;
        sum_loss += parts.total.item<double>() * static_cast<double>(n);
        sum_ce += parts.ce.item<double>() * static_cast<double>(n);
        sum_center += parts.center.item<double>() * static_cast<double>(n);
        sum_sep += parts.separation.item<double>() * static_cast<double>(n);
        correct += step.logits.argmax(1).eq(labels).sum().item<int64_t>();
        if (cb.progress) {
          const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          const double rate = static_cast<double>(seen) / std::max(secs, 1e-9);
          const double epoch_left = static_cast<double>((batches - b->index - 1) * c_.batch_size) / rate;
          const double per_epoch = static_cast<double>(batches * c_.batch_size) / rate;
          double left = epoch_left + per_epoch * (c_.epochs - epoch - 1);
          if (c_.minutes > 0) left = std::min(left, std::max(0.0, c_.minutes * 60 - elapsed_ - secs));
          cb.progress(epoch, b->index + 1, batches, sum_loss / static_cast<double>(seen),
                      static_cast<double>(correct) / static_cast<double>(seen), rate, left);
        }
      }
      const double train_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      EpochMetrics m;
      m.epoch = epoch;
      m.lr = lr;
      m.train_loss = sum_loss / static_cast<double>(seen);
      m.train_ce = sum_ce / static_cast<double>(seen);
      m.train_center = sum_center / static_cast<double>(seen);
      m.train_separation = sum_sep / static_cast<double>(seen);
      m.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
      m.train_samples = seen;
      std::tie(m.val_loss, m.val_accuracy) = evaluate_split(net_, data_, splits_.val);
      m.images_per_second = static_cast<double>(seen) / std::max(train_secs, 1e-9);
      m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      elapsed_ += m.seconds;
      if (!splits_.val.empty() && (best_epoch_ < 0 || m.val_accuracy > best_)) {
        best_ = m.val_accuracy;
        best_epoch_ = epoch;
        m.best = true;
        save_model(c_.run_dir + "/best.fervid", net_, metadata(epoch, m), recipe_);  // save_model writes CPU tensors
      }
      history_.push_back(m);
      checkpoint(epoch, m);
      if (cb.epoch_end) cb.epoch_end(c_.run_dir, history_);
    }
    result.epochs = history_;
    result.best_epoch = best_epoch_;
    result.best_val_accuracy = best_;
    return result;
  }

 private:
  static json read_json(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    try {
      return json::parse(in);
    } catch (const json::exception& e) {
      throw std::runtime_error(path + ": " + e.what());
    }
  }

  json metadata(int epoch, const EpochMetrics& m) const {
    return {{"trained_by", "fervid train"}, {"command", command_}, {"epoch", epoch},
            {"val_split", c_.folds > 0 ? "fold " + std::to_string(c_.fold) : c_.val_fraction > 0 ? "random fraction" : c_.val_split},
            {"val_accuracy", m.val_accuracy}, {"data", c_.data}, {"data_key", data_key_}, {"seed", c_.seed},
            {"device", device_.str()}, {"train_config", to_json(c_)}};
  }

  // Model, centers and optimizer state on `device` (the parameters keep their identity, so the
  // optimizer's references and state keys stay valid).
  void move_state(torch::Device device) {
    net_->to(device);
    loss_->to(device);
    move_optimizer_state(*opt_, device);
  }

  // A checkpoint is a folder written completely, then published by renaming checkpoint.json.
  // Its tensors are CPU tensors whatever the run's device.
  void checkpoint(int epoch, const EpochMetrics& m) {
    if (!device_.is_cpu()) move_state(torch::kCPU);
    const std::string name = "checkpoint-" + std::to_string(epoch);
    const std::string dir = c_.run_dir + "/" + name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    save_model(dir + "/model.fervid", net_, metadata(epoch, m), recipe_);
    torch::save(*opt_, dir + "/optimizer.pt");
    torch::save(loss_, dir + "/loss.pt");
    json history = json::array();
    std::string lines;
    for (const auto& h : history_) {
      history.push_back(to_json(h));
      lines += to_json(h).dump() + "\n";
    }
    write_json_atomically(c_.run_dir + "/checkpoint.json",
                          {{"dir", name}, {"epoch", epoch}, {"elapsed_seconds", elapsed_}, {"best_val_accuracy", best_},
                           {"best_epoch", best_epoch_}, {"device", device_.str()}, {"history", history}});
    write_file_atomically(c_.run_dir + "/metrics.jsonl", lines);
    save_model(c_.run_dir + "/last.fervid", net_, metadata(epoch, m), recipe_);
    if (!device_.is_cpu()) move_state(device_);
    // The previous checkpoint is no longer referenced.
    for (const auto& e : fs::directory_iterator(c_.run_dir)) {
      const auto f = e.path().filename().string();
      if (f.rfind("checkpoint-", 0) == 0 && f != name) fs::remove_all(e.path());
    }
  }

  TrainConfig c_;
  std::string command_;
  torch::Device device_{torch::kCPU};
  Dataset data_;
  Dataset expanded_;                   // the 15x training set (expand_15x), else empty
  std::string data_key_;
  FaceRecipe recipe_;                  // written into every model file of the run
  Split2 splits_;
  std::vector<size_t> train_indices_;  // into data_, or into expanded_
  MCSANet net_{nullptr};
  FerLoss loss_{nullptr};
  std::unique_ptr<torch::optim::Optimizer> opt_;
  int next_epoch_ = 0;
  double elapsed_ = 0, best_ = 0;
  int best_epoch_ = -1;
  std::vector<EpochMetrics> history_;
};

}  // namespace

Dataset expand_dataset_15x(const Dataset& data, const std::vector<size_t>& indices) {
  data.check_consistent();
  if (data.height != data.width) {
    throw std::invalid_argument("expand_15x: needs square images, the data's are " + std::to_string(data.width) + "x" +
                                std::to_string(data.height));
  }
  constexpr int64_t kVariants = 15;
  Dataset out;
  out.height = data.height;
  out.width = data.width;
  out.num_classes = data.num_classes;
  const size_t bytes = data.image_bytes();
  const size_t k = static_cast<size_t>(data.num_classes);
  out.pixels.resize(indices.size() * static_cast<size_t>(kVariants) * bytes);
  out.labels.reserve(indices.size() * kVariants);
  out.splits.reserve(indices.size() * kVariants);
  out.subjects.reserve(indices.size() * kVariants);
  out.origins.reserve(indices.size() * kVariants);
  if (data.has_soft_targets()) out.soft_targets.reserve(indices.size() * kVariants * k);
  constexpr size_t kChunk = 256;  // bounds the float copies (256 * 15 images at a time)
  for (size_t first = 0; first < indices.size(); first += kChunk) {
    const size_t n = std::min(kChunk, indices.size() - first);
    auto raw = torch::empty({static_cast<int64_t>(n), 1, data.height, data.width}, torch::kByte);
    for (size_t i = 0; i < n; ++i) {
      const size_t s = indices[first + i];
      if (s >= data.size()) throw std::out_of_range("expand_dataset_15x: sample index " + std::to_string(s) + " out of range");
      std::memcpy(raw.data_ptr<uint8_t>() + i * bytes, data.image(s), bytes);
    }
    // At the data's own size, then stored as gray levels, as the paper's offline copies were.
    auto expanded = expand_15x(to_unit_float(raw, data.height))
                        .mul(255.0)
                        .round()
                        .clamp(0, 255)
                        .to(torch::kByte)
                        .contiguous();
    std::memcpy(out.pixels.data() + first * static_cast<size_t>(kVariants) * bytes, expanded.data_ptr<uint8_t>(),
                n * static_cast<size_t>(kVariants) * bytes);
    for (size_t i = 0; i < n; ++i) {
      const size_t s = indices[first + i];
      for (int64_t v = 0; v < kVariants; ++v) {
        out.labels.push_back(data.labels[s]);
        out.splits.push_back(data.splits[s]);
        out.subjects.push_back(data.subjects[s]);
        out.origins.push_back(data.origins[s] + "#x15-" + std::to_string(v));
        if (data.has_soft_targets()) {
          out.soft_targets.insert(out.soft_targets.end(), data.soft_targets.begin() + static_cast<long>(s * k),
                                  data.soft_targets.begin() + static_cast<long>((s + 1) * k));
        }
      }
    }
  }
  out.check_consistent();
  return out;
}

TrainResult train(const TrainConfig& config, const std::string& command_line, const TrainCallbacks& callbacks) {
  Run run(config, command_line);
  run.start_fresh();
  return run.run(callbacks);
}

TrainResult resume_training(const std::string& run_dir, const TrainCallbacks& callbacks, const std::string& device) {
  std::ifstream in(run_dir + "/config.json");
  if (!in) throw std::invalid_argument("resume: " + run_dir + " holds no run (config.json missing)");
  auto config = train_config_from_json(json::parse(in));
  config.run_dir = run_dir;
  if (!device.empty()) config.device = device;
  std::ifstream cmd(run_dir + "/command.txt");
  std::string command;
  std::getline(cmd, command);
  Run run(config, command);
  std::error_code ec;
  if (fs::exists(run_dir + "/checkpoint.json", ec)) run.restore();
  return run.run(callbacks);
}

}  // namespace fervid
