#include "fervid/dataset.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace fervid {

std::string_view to_string(Split s) {
  switch (s) {
    case Split::kTraining: return "Training";
    case Split::kPublicTest: return "PublicTest";
    case Split::kPrivateTest: return "PrivateTest";
  }
  return "unknown";
}

std::optional<Split> parse_split(std::string_view s) {
  std::string l(s);
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (l == "training" || l == "train") return Split::kTraining;
  if (l == "publictest" || l == "val" || l == "valid" || l == "validation") return Split::kPublicTest;
  if (l == "privatetest" || l == "test") return Split::kPrivateTest;
  return std::nullopt;
}

std::vector<size_t> Dataset::indices(Split s) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < splits.size(); ++i) {
    if (splits[i] == s) out.push_back(i);
  }
  return out;
}

void Dataset::add(const uint8_t* image, int label, Split split, std::string origin, int32_t subject) {
  pixels.insert(pixels.end(), image, image + image_bytes());
  labels.push_back(static_cast<int8_t>(label));
  splits.push_back(split);
  subjects.push_back(subject);
  origins.push_back(std::move(origin));
}

Dataset Dataset::subset(const std::vector<size_t>& idx) const {
  Dataset out;
  out.height = height;
  out.width = width;
  out.num_classes = num_classes;
  out.pixels.reserve(idx.size() * image_bytes());
  for (size_t i : idx) {
    if (i >= size()) throw std::out_of_range("Dataset::subset: index " + std::to_string(i) + " >= " + std::to_string(size()));
    out.add(image(i), labels[i], splits[i], origins[i], subjects[i]);
    if (has_soft_targets()) {
      const auto* q = soft_targets.data() + i * static_cast<size_t>(num_classes);
      out.soft_targets.insert(out.soft_targets.end(), q, q + num_classes);
    }
  }
  return out;
}

void Dataset::check_consistent() const {
  const size_t n = labels.size();
  if (pixels.size() != n * image_bytes() || splits.size() != n || subjects.size() != n || origins.size() != n ||
      (!soft_targets.empty() && soft_targets.size() != n * static_cast<size_t>(num_classes))) {
    throw std::logic_error("Dataset: per-sample vectors disagree in length");
  }
}

void ReadReport::skip(DataIssue issue) {
  ++skipped;
  ++skipped_by_field[issue.field];
  if (issues.size() < 1000) issues.push_back(std::move(issue));
}

void ReadReport::note(DataIssue issue) {
  ++notes_by_field[issue.field];
  if (notes.size() < 1000) notes.push_back(std::move(issue));
}

std::vector<double> Dataset::class_frequencies(const std::vector<size_t>& idx) const {
  const auto k = static_cast<size_t>(num_classes);
  std::vector<double> mass(k, 0.0);
  for (const size_t i : idx) {
    if (has_soft_targets()) {
      for (size_t c = 0; c < k; ++c) mass[c] += soft_targets[i * k + c];
    } else if (labels[i] >= 0) {
      mass[static_cast<size_t>(labels[i])] += 1.0;
    }
  }
  double total = 0;
  for (auto& m : mass) total += m;
  if (total <= 0) throw std::invalid_argument("class frequencies: no labelled sample among the " + std::to_string(idx.size()) + " given");
  total = 0;
  for (auto& m : mass) total += (m = std::max(m, 0.5));
  for (auto& m : mass) m /= total;
  return mass;
}

}  // namespace fervid
