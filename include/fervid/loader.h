// Batches for training and evaluation, prepared on a worker thread (gather, uint8 -> float,
// resize, augmentation, normalisation) while the caller trains on the previous ones.
//
// Deterministic: the order of an epoch depends on (seed, epoch) and the augmentation of batch
// b on (seed, epoch, b) only, so a run resumed at batch b sees exactly the batches it would
// have seen, whatever the threading. The Dataset must outlive the loader.
#pragma once

#include <torch/types.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "fervid/augment.h"
#include "fervid/dataset.h"

namespace fervid {

// The generator of batch `batch` of `epoch`'s augmentation draws: one formula for the loader and
// for augmentation on another device (src/train/device_batch.h), so a batch draws the same
// transforms everywhere. Part of the resume contract (trainer.h): keep it.
at::Generator batch_augment_generator(uint64_t seed, int64_t epoch, int64_t batch);

struct LoaderOptions {
  int batch_size = 32;
  bool shuffle = true;
  bool drop_last = false;
  uint64_t seed = 0;
  AugmentOptions augment = AugmentOptions::none();
  int input_size = 48;  // bilinear resize when the dataset's images differ
  double norm_mean = 0.5, norm_std = 0.5;
  int prefetch = 4;     // batches prepared ahead
};

struct Batch {
  int64_t index = 0;           // batch number within the epoch
  torch::Tensor images;        // float [B, 1, S, S], normalised
  torch::Tensor labels;        // int64 [B]
  torch::Tensor soft_targets;  // float [B, K], or undefined when the dataset has none
  std::vector<size_t> samples; // dataset indices
};

class BatchLoader {
 public:
  BatchLoader(const Dataset& dataset, std::vector<size_t> indices, LoaderOptions options);
  ~BatchLoader();
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Starts preparing epoch `epoch` from batch `first_batch` (to resume mid-epoch).
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the current epoch, or nullopt at its end. Rethrows a worker's error.
  std::optional<Batch> next();
  int64_t batches_per_epoch() const;
  size_t size() const { return indices_.size(); }
  // Batch `b` of `epoch`, prepared on the calling thread: what next() would return.
  Batch make_batch(int64_t epoch, int64_t b) const;

 private:
  // The order of `epoch`'s samples: shuffled once per epoch (not per batch) and kept until
  // another epoch is asked for. Thread-safe (the worker and make_batch() callers share it).
  std::shared_ptr<const std::vector<size_t>> epoch_order(int64_t epoch) const;
  void stop();

  const Dataset& dataset_;
  std::vector<size_t> indices_;
  LoaderOptions options_;

  mutable std::mutex order_mutex_;
  mutable int64_t order_epoch_ = -1;
  mutable std::shared_ptr<const std::vector<size_t>> order_;

  std::thread worker_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<Batch> queue_;
  std::exception_ptr error_;
  bool stop_ = false, done_ = true;
};

}  // namespace fervid
