#include "fervid/labels.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace fervid {

std::vector<std::string> default_class_names() {
  return {kExpressionNames.begin(), kExpressionNames.end()};
}

std::optional<int> expression_index(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (int i = 0; i < kNumExpressions; ++i) {
    if (lower == kExpressionNames[static_cast<size_t>(i)]) return i;
  }
  // Other datasets' spellings (CK+, Kaggle folders, FER+ columns).
  static const std::pair<std::string_view, int> kAliases[] = {
      {"anger", 0},     {"disgusted", 1}, {"fearful", 2}, {"happiness", 3}, {"sadness", 4},
      {"surprised", 5}, {"neutrality", 6}};
  for (const auto& [alias, index] : kAliases) {
    if (lower == alias) return index;
  }
  return std::nullopt;
}

}  // namespace fervid
