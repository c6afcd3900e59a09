#include "fervid/loader.h"

#include <cstring>
#include <stdexcept>

#include "fervid/splits.h"

namespace fervid {

at::Generator batch_augment_generator(uint64_t seed, int64_t epoch, int64_t batch) {
  return make_generator(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch) * 1000003u +
                        static_cast<uint64_t>(batch));
}

BatchLoader::BatchLoader(const Dataset& dataset, std::vector<size_t> indices, LoaderOptions options)
    : dataset_(dataset), indices_(std::move(indices)), options_(std::move(options)) {
  dataset_.check_consistent();
  if (options_.batch_size < 1) throw std::invalid_argument("BatchLoader: batch_size must be >= 1");
  if (options_.prefetch < 1) throw std::invalid_argument("BatchLoader: prefetch must be >= 1");
  for (size_t i : indices_) {
    if (i >= dataset_.size()) throw std::out_of_range("BatchLoader: sample index " + std::to_string(i) + " out of range");
    if (dataset_.labels[i] < 0) throw std::invalid_argument("BatchLoader: sample " + dataset_.origins[i] + " has no label");
  }
}

BatchLoader::~BatchLoader() { stop(); }

int64_t BatchLoader::batches_per_epoch() const {
  const auto n = static_cast<int64_t>(indices_.size());
  const auto b = static_cast<int64_t>(options_.batch_size);
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::shared_ptr<const std::vector<size_t>> BatchLoader::epoch_order(int64_t epoch) const {
  std::lock_guard<std::mutex> lock(order_mutex_);
  if (!order_ || order_epoch_ != epoch) {
    auto order = std::make_shared<std::vector<size_t>>(indices_);
    // The seed of an epoch's order is part of the resume contract (trainer.h): keep it.
    if (options_.shuffle) seeded_shuffle(*order, options_.seed * 1000003u + static_cast<uint64_t>(epoch));
    order_ = std::move(order);
    order_epoch_ = epoch;
  }
  return order_;
}

Batch BatchLoader::make_batch(int64_t epoch, int64_t b) const {
  if (b < 0 || b >= batches_per_epoch()) throw std::out_of_range("BatchLoader: batch " + std::to_string(b) + " out of range");
  const auto order = epoch_order(epoch);
  const size_t begin = static_cast<size_t>(b) * static_cast<size_t>(options_.batch_size);
  const size_t end = std::min(order->size(), begin + static_cast<size_t>(options_.batch_size));
  Batch batch;
  batch.index = b;
  batch.samples.assign(order->begin() + static_cast<long>(begin), order->begin() + static_cast<long>(end));
  const auto n = static_cast<int64_t>(batch.samples.size());
  const size_t bytes = dataset_.image_bytes();
  auto raw = torch::empty({n, 1, dataset_.height, dataset_.width}, torch::kByte);
  auto labels = torch::empty({n}, torch::kLong);
  auto* dst = raw.data_ptr<uint8_t>();
  auto* lab = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const size_t s = batch.samples[static_cast<size_t>(i)];
    std::memcpy(dst + static_cast<size_t>(i) * bytes, dataset_.image(s), bytes);
    lab[i] = dataset_.labels[s];
  }
  auto x = to_unit_float(raw, options_.input_size);
  if (options_.augment.enabled()) {
    auto gen = batch_augment_generator(options_.seed, epoch, b);
    x = augment(x, options_.augment, gen);
  }
  batch.images = normalize(x, options_.norm_mean, options_.norm_std);
  batch.labels = labels;
  if (dataset_.has_soft_targets()) {
    const auto k = static_cast<size_t>(dataset_.num_classes);
    auto soft = torch::empty({n, dataset_.num_classes}, torch::kFloat);
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(soft.data_ptr<float>() + static_cast<size_t>(i) * k,
                  dataset_.soft_targets.data() + batch.samples[static_cast<size_t>(i)] * k, k * sizeof(float));
    }
    batch.soft_targets = soft;
  }
  return batch;
}

void BatchLoader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

void BatchLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  stop();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.clear();
    error_ = nullptr;
    stop_ = false;
    done_ = false;
  }
  worker_ = std::thread([this, epoch, first_batch] {
    try {
      for (int64_t b = first_batch; b < batches_per_epoch(); ++b) {
        auto batch = make_batch(epoch, b);
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || static_cast<int>(queue_.size()) < options_.prefetch; });
        if (stop_) return;
        queue_.push_back(std::move(batch));
        cv_.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex_);
    done_ = true;
    cv_.notify_all();
  });
}

std::optional<Batch> BatchLoader::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait(lock, [&] { return !queue_.empty() || done_ || error_; });
  if (!queue_.empty()) {
    auto b = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    return b;
  }
  if (error_) std::rethrow_exception(error_);
  return std::nullopt;
}

}  // namespace fervid
