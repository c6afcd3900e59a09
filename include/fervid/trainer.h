// `fervid train`: the paper's training (design.md section 4) with checkpoints, resume and
// per-epoch metrics. A run lives in one folder:
//   config.json        the resolved configuration (everything needed to repeat the run)
//   command.txt        the command line that started it
//   metrics.jsonl      one JSON object per finished epoch
//   checkpoint/        last epoch's model, optimizer, centers and state (written atomically)
//   best.fervid        the model with the best validation accuracy so far (validation split only)
//   last.fervid        the model after the last finished epoch
//   curves.png         loss and accuracy per epoch (when built with OpenCV)
// Model files and checkpoints always hold CPU tensors, so a run trained on a GPU resumes on a
// CPU and the other way round (`device` is chosen again at every start).
// Every model file of a run (best, last, checkpoints) records the run's face recipe:
// source.face over FaceRecipe{} (source_face_recipe), the crop photos and CK+ frames were made
// with, or for sources of cropped faces (FER2013, folders, CK+48) how the model is to be served.
// Deterministic: epoch e starts from the seed (torch's generator is re-seeded with f(seed, e),
// and the loader's order and augmentation depend only on (seed, e, batch)), so a run killed at
// any point and resumed with --resume ends with the same metrics as one that never stopped
// (same thread count).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fervid/augment.h"
#include "fervid/config.h"
#include "fervid/data_source.h"
#include "fervid/dataset.h"
#include "fervid/losses.h"

namespace fervid {

struct TrainConfig {
  // Data: a source as `fervid data` reads it, and which splits train and validate.
  std::string data;
  DataSourceOptions source;
  std::string train_split = "Training";
  std::string val_split = "PublicTest";
  // Instead of Usage splits: a seeded random validation fraction of the training samples
  // (0 = use val_split), or, for subject-level data, fold `fold` of `folds` subject folds.
  double val_fraction = 0.0;
  int folds = 0, fold = 0;
  size_t max_train_samples = 0;  // 0 = all (a subset for smoke tests)
  // Train on the paper's offline 15x expansion (augment.h's expand_15x) of the training samples
  // (after max_train_samples): 15 times the samples per epoch; online augmentation still applies.
  bool expand_15x = false;

  ModelConfig model;
  LossConfig loss;
  std::string init_from;  // a model file to fine-tune from (architecture must match)

  // Optimisation (paper 2.5 defaults).
  std::string optimizer = "sgd";  // sgd | adamw
  double lr = 0.01, momentum = 0.9, weight_decay = 5e-4;
  int batch_size = 32;
  int epochs = 30;
  double minutes = 0;             // > 0: stop after the epoch that passes this budget
  std::string schedule = "exp";   // exp (lr * decay^epoch) | cosine | step
  double lr_decay = 0.9;          // exp
  int step_every = 10;            // step
  double step_gamma = 0.1;        // step
  int warmup_epochs = 0;          // linear warm-up (cosine and step)
  AugmentOptions augment;         // on by default: flip, +/-10 degrees, scale, shift, brightness, contrast
  uint64_t seed = 1;
  int threads = 0;
  // auto | cpu | cuda | cuda:N (train_step.h's resolve_device): model, centers, batches and
  // augmentation live there. Not part of the run's identity: --resume may choose another.
  std::string device = "auto";
  std::string run_dir;
};

nlohmann::json to_json(const TrainConfig& c);
TrainConfig train_config_from_json(const nlohmann::json& j);  // names the bad field

struct EpochMetrics {
  int epoch = 0;
  double lr = 0;
  double train_loss = 0, train_ce = 0, train_center = 0, train_separation = 0, train_accuracy = 0;
  int64_t train_samples = 0;  // images trained on in this epoch
  double val_loss = 0, val_accuracy = 0;
  double seconds = 0, images_per_second = 0;
  bool best = false;
};
nlohmann::json to_json(const EpochMetrics& m);

struct TrainResult {
  std::vector<EpochMetrics> epochs;
  int best_epoch = -1;
  double best_val_accuracy = 0;
  bool stopped_early = false;  // by the minutes budget
};

struct TrainCallbacks {
  // During an epoch, after every batch: (epoch, batch (1-based), batches, running loss, running
  // accuracy, images/s, seconds left in the run).
  std::function<void(int, int64_t, int64_t, double, double, double, double)> progress;
  // After each epoch's checkpoint: the run's folder and its whole history so far (for curves).
  std::function<void(const std::string&, const std::vector<EpochMetrics>&)> epoch_end;
};

// Starts a new run in config.run_dir (which must not hold a run yet) and trains it.
TrainResult train(const TrainConfig& config, const std::string& command_line = "",
                  const TrainCallbacks& callbacks = {});
// Continues the run in `run_dir` from its last checkpoint, to its configured end; `device`
// (when not empty) replaces the configured one for this part of the run.
TrainResult resume_training(const std::string& run_dir, const TrainCallbacks& callbacks = {},
                            const std::string& device = "");

// The paper's offline 15x expansion of `indices` of `data`, computed at the data's own size and
// stored as gray levels (rounded): sample indices[i]'s variants are samples 15 i .. 15 i + 14,
// variant 0 its exact pixels; labels, splits, soft targets and subjects are copied, origins get
// "#x15-<v>".
Dataset expand_dataset_15x(const Dataset& data, const std::vector<size_t>& indices);

}  // namespace fervid
