// The one table of expression class names (FER2013's order, design.md section 1).
// Nothing else in fervid spells these names. No torch or OpenCV here.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fervid {

inline constexpr int kNumExpressions = 7;

// Index = FER2013 label: 0 angry, 1 disgust, 2 fear, 3 happy, 4 sad, 5 surprise, 6 neutral.
inline constexpr std::array<std::string_view, kNumExpressions> kExpressionNames = {
    "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"};

// The FER2013 names as a vector (what a model file records as its class names).
std::vector<std::string> default_class_names();

// Maps a dataset's spelling of a class onto our index, case-insensitively:
// FER2013 / Kaggle folder names, CK+ ("anger", "sadness", "happiness", ...).
// Returns nullopt for names we do not map, including CK+'s "contempt" (dropped, as the paper does).
std::optional<int> expression_index(std::string_view name);

}  // namespace fervid
