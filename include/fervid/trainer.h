// `fervid train`: the paper's training (design.md section 4) with checkpoints, resume and
// per-epoch metrics. A run lives in one folder:
//   config.json        the resolved configuration (everything needed to repeat the run)
//   command.txt        the command line that started it
//   metrics.jsonl      one JSON object per finished epoch
//   checkpoint/        last epoch's model, optimizer, centers and state (written atomically)
//   best.fervid        the model with the best validation accuracy so far (validation split only)
//   last.fervid        the model after the last finished epoch
//   curves.png         loss and accuracy per epoch (when built with OpenCV), after every epoch
//   calibration.json   the temperature fitted on the validation samples at the end of the run,
//                      and NLL / ECE before and after (none when validated on a test split)
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
#include "fervid/model_io.h"

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
  // A second source whose every sample joins the training samples and none the validation ones
  // (the paper's CK+ + FER2013 training set: --data fer2013.csv.gz --extra-train-data CK+48).
  // Read in its own format at the main data's image size, faces cropped with the run's recipe;
  // its classes map by name, its unlabelled samples are left out. Needs validation by split
  // (folds and val_fraction off), so that no extra sample is ever validated on.
  std::string extra_train_data;

  // ModelConfig{} is the paper's network (width 1); a run's default is CPU-sized (--width 1 is
  // the paper's). Here, not in ModelConfig: model files and tests rely on ModelConfig{}.
  ModelConfig model = [] {
    ModelConfig m;
    m.width = 0.25;
    return m;
  }();
  LossConfig loss;
  std::string init_from;  // a model file to fine-tune from (architecture must match)
  // A model file whose logits on each augmented batch the student distils (loss.distill_weight
  // > 0): a wider network that is too slow to ship. Same input size, normalisation and classes.
  std::string teacher;

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

// config.json, written and read through the option table (train_options.h): every option, a
// missing one keeping TrainConfig{}'s value. Reading refuses a key that is not an option, a
// value of the wrong type and one that breaks its rule, naming the field ("train config:
// field 'loss.lambda_c' ...").
nlohmann::json to_json(const TrainConfig& c);
TrainConfig train_config_from_json(const nlohmann::json& j);

// Whether the run chooses its checkpoints on a test split (val_split PrivateTest, without a
// validation fraction or folds): then no temperature is fitted on its validation samples.
bool validates_on_test_split(const TrainConfig& c);

// The data a run reads, opened exactly as the trainer opens it (its source options; photos and
// CK+ cropped with its face recipe, at the model's input size; the cache on), so that
// evaluation, calibration and ablation see the samples, and the folds, it saw. The samples of
// extra_train_data follow the main data's, all of split Training; the cache key then names both.
OpenedSource open_run_data(const TrainConfig& c);

// The samples a run trains and validates on: fold `fold` of `folds` subject folds, a seeded
// validation fraction of train_split, or train_split / val_split (splits.h's split_indices);
// then the seeded max_train_samples subset. `val_description` says which, in words.
// std::invalid_argument when there are no training samples or a split name is unknown.
struct RunSplits {
  std::vector<size_t> train, val;
  std::string val_description;
};
RunSplits run_splits(const TrainConfig& c, const Dataset& ds);

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
  // At the end of a run with validation samples that are not a test split: the softmax
  // temperature fitted on them and written into best.fervid (also in calibration.json).
  bool calibrated = false;
  Calibration calibration;
};

// The loss or the validation loss of a run became NaN or infinite (a learning rate too high, a
// loss weight too large). Thrown before anything of that epoch is written: the run's last
// checkpoint, best.fervid and last.fervid are those of its last good epoch.
struct TrainingDiverged : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct TrainCallbacks {
  // During an epoch, after every batch: (epoch, batch (1-based), batches, running loss, running
  // accuracy, images/s, seconds left in the run).
  std::function<void(int, int64_t, int64_t, double, double, double, double)> progress;
  // After each epoch's checkpoint: the run's folder and its whole history so far (for curves).
  std::function<void(const std::string&, const std::vector<EpochMetrics>&)> epoch_end;
};

// Starts a new run in config.run_dir (new, empty, or a run that never reached its first
// checkpoint; a folder of other files is refused) and trains it. A run folder is locked while
// it trains: a second train or resume of it is refused (std::invalid_argument). At its end
// (the last epoch, or the minutes budget), unless it validates on a test split, the softmax
// temperature of best.fervid is fitted on the validation samples (evaluate.h's
// calibrate_temperature) and best.fervid rewritten with it; calibration.json records the fit.
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
