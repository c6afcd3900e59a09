#include "fervid/data_check.h"

#include <algorithm>
#include <cstring>
#include <set>
#include <unordered_map>

namespace fervid {

namespace {
uint64_t hash_bytes(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
}  // namespace

DataCheck check_dataset(const Dataset& ds) {
  ds.check_consistent();
  DataCheck c;
  c.samples = ds.size();
  std::set<int32_t> subjects;
  for (auto s : ds.subjects) {
    if (s >= 0) subjects.insert(s);
  }
  c.subjects = subjects.size();
  for (auto& per_split : c.counts) per_split.assign(static_cast<size_t>(ds.num_classes) + 1, 0);
  const size_t bytes = ds.image_bytes();
  // Group identical images: hash, then confirm byte equality inside a hash bucket.
  std::unordered_map<uint64_t, std::vector<std::vector<size_t>>> buckets;
  for (size_t i = 0; i < ds.size(); ++i) {
    const int label = ds.labels[i];
    c.counts[static_cast<size_t>(ds.splits[i])][label < 0 ? static_cast<size_t>(ds.num_classes) : static_cast<size_t>(label)]++;
    const uint8_t* img = ds.image(i);
    const bool constant = std::all_of(img, img + bytes, [&](uint8_t v) { return v == img[0]; });
    if (constant) {
      ++c.constant;
      if (img[0] == 0) {
        ++c.blank;
        if (c.blank_origins.size() < 100) c.blank_origins.push_back(ds.origins[i]);
      }
    }
    auto& groups = buckets[hash_bytes(img, bytes)];
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const std::vector<size_t>& g) { return std::memcmp(ds.image(g[0]), img, bytes) == 0; });
    if (it == groups.end()) {
      groups.push_back({i});
    } else {
      it->push_back(i);
    }
  }
  for (const auto& [hash, groups] : buckets) {
    for (const auto& g : groups) {
      if (g.size() < 2) continue;
      ++c.duplicate_groups;
      c.images_in_duplicate_groups += g.size();
      std::array<bool, kNumSplits> seen{};
      std::array<size_t, kNumSplits> first{};
      bool conflict = false;
      for (size_t i : g) {
        const auto s = static_cast<size_t>(ds.splits[i]);
        if (seen[s]) {
          ++c.duplicates_within[s];
        } else {
          seen[s] = true;
          first[s] = i;
        }
        conflict |= ds.labels[i] != ds.labels[g[0]];
      }
      c.conflicting_label_groups += conflict;
      // An image of split b counts once per earlier split a that holds a copy of it.
      for (size_t i : g) {
        const auto b = static_cast<size_t>(ds.splits[i]);
        for (size_t a = 0; a < b; ++a) {
          if (!seen[a]) continue;
          ++c.duplicates_across[a][b];
          if (c.cross_split_examples.size() < 20) {
            c.cross_split_examples.push_back(std::string(to_string(static_cast<Split>(b))) + " " + ds.origins[i] +
                                             " == " + std::string(to_string(static_cast<Split>(a))) + " " +
                                             ds.origins[first[a]]);
          }
        }
      }
    }
  }
  std::sort(c.cross_split_examples.begin(), c.cross_split_examples.end());
  return c;
}

}  // namespace fervid
