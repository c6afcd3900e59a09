#include "fervid/splits.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <stdexcept>
#include <string>

namespace fervid {

std::vector<size_t> split_indices(const Dataset& ds, const std::string& name) {
  if (name == "all") {
    std::vector<size_t> all(ds.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    return all;
  }
  const auto split = parse_split(name);
  if (!split) {
    throw std::invalid_argument("'" + name + "' is not a split; the data has: " + splits_present(ds) +
                                " (folder names train, val, test work too)");
  }
  return ds.indices(*split);
}

std::string splits_present(const Dataset& ds) {
  std::string present;
  for (int s = 0; s < kNumSplits; ++s) {
    if (!ds.indices(static_cast<Split>(s)).empty()) present += std::string(to_string(static_cast<Split>(s))) + ", ";
  }
  return present + "all";
}

void seeded_shuffle(std::vector<size_t>& v, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(rng() % i);  // modulo bias is negligible for our sizes
    std::swap(v[i - 1], v[j]);
  }
}

std::pair<std::vector<size_t>, std::vector<size_t>> random_split(const Dataset& ds, double test_fraction,
                                                                 uint64_t seed) {
  if (!(test_fraction > 0 && test_fraction < 1)) {
    throw std::invalid_argument("random_split: test_fraction must lie in (0, 1), got " + std::to_string(test_fraction));
  }
  std::map<int, std::vector<size_t>> by_class;
  for (size_t i = 0; i < ds.size(); ++i) by_class[ds.labels[i]].push_back(i);
  std::vector<size_t> train, test;
  for (auto& [label, idx] : by_class) {
    seeded_shuffle(idx, seed + static_cast<uint64_t>(label + 1) * 7919u);
    const auto n_test = static_cast<size_t>(std::lround(static_cast<double>(idx.size()) * test_fraction));
    test.insert(test.end(), idx.begin(), idx.begin() + static_cast<long>(n_test));
    train.insert(train.end(), idx.begin() + static_cast<long>(n_test), idx.end());
  }
  std::sort(train.begin(), train.end());
  std::sort(test.begin(), test.end());
  return {train, test};
}

std::vector<std::vector<size_t>> subject_kfold(const Dataset& ds, int k, uint64_t seed) {
  if (k < 2) throw std::invalid_argument("subject_kfold: k must be >= 2, got " + std::to_string(k));
  std::map<int32_t, std::vector<size_t>> by_subject;
  for (size_t i = 0; i < ds.size(); ++i) {
    if (ds.subjects[i] < 0) throw std::invalid_argument("subject_kfold: sample " + ds.origins[i] + " has no subject id");
    by_subject[ds.subjects[i]].push_back(i);
  }
  if (static_cast<int>(by_subject.size()) < k) {
    throw std::invalid_argument("subject_kfold: " + std::to_string(by_subject.size()) + " subjects cannot fill " +
                                std::to_string(k) + " folds");
  }
  const auto classes = static_cast<size_t>(ds.num_classes) + 1;  // + unlabelled
  auto cls = [&](size_t i) { return ds.labels[i] < 0 ? classes - 1 : static_cast<size_t>(ds.labels[i]); };
  std::vector<double> target(classes, 0.0);
  for (size_t i = 0; i < ds.size(); ++i) target[cls(i)] += 1.0 / k;

  std::vector<size_t> order(by_subject.size());
  std::vector<const std::vector<size_t>*> subjects;
  for (const auto& [id, idx] : by_subject) subjects.push_back(&idx);
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  seeded_shuffle(order, seed);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return subjects[a]->size() > subjects[b]->size(); });

  std::vector<std::vector<size_t>> folds(static_cast<size_t>(k));
  std::vector<std::vector<double>> counts(static_cast<size_t>(k), std::vector<double>(classes, 0.0));
  for (size_t s : order) {
    std::vector<double> add(classes, 0.0);
    for (size_t i : *subjects[s]) add[cls(i)] += 1;
    size_t best = 0;
    double best_cost = 0;
    for (size_t f = 0; f < folds.size(); ++f) {
      // Squared excess over the even share, per class, after adding this subject; then size.
      double cost = 0;
      for (size_t c = 0; c < classes; ++c) {
        const double over = counts[f][c] + add[c] - target[c];
        cost += over > 0 ? over * over : 0;
      }
      cost += 1e-6 * static_cast<double>(folds[f].size());
      if (f == 0 || cost < best_cost) {
        best = f;
        best_cost = cost;
      }
    }
    folds[best].insert(folds[best].end(), subjects[s]->begin(), subjects[s]->end());
    for (size_t c = 0; c < classes; ++c) counts[best][c] += add[c];
  }
  for (auto& f : folds) std::sort(f.begin(), f.end());
  return folds;
}

}  // namespace fervid
