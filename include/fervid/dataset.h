// In-memory datasets of gray face images and their labels (design.md section 5).
// Plain data, torch-free and OpenCV-free: every reader (FER2013 CSV, FER+, image folders,
// CK+) fills one of these, the cache stores it, the loader turns it into tensors.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fervid {

// FER2013's Usage values; folder layouts map train -> kTraining, val/valid -> kPublicTest,
// test -> kPrivateTest.
enum class Split : uint8_t { kTraining = 0, kPublicTest = 1, kPrivateTest = 2 };
inline constexpr int kNumSplits = 3;
std::string_view to_string(Split s);  // "Training", "PublicTest", "PrivateTest"
// Accepts the Usage spellings and folder names (case-insensitive): Training/train,
// PublicTest/val/valid/validation, PrivateTest/test. nullopt otherwise.
std::optional<Split> parse_split(std::string_view s);

struct Dataset {
  int height = 48, width = 48;       // every image has this size
  std::vector<uint8_t> pixels;       // size() * height * width gray levels, row-major
  std::vector<int8_t> labels;        // class index in [0, num_classes); -1 when unlabelled
  std::vector<Split> splits;
  std::vector<float> soft_targets;   // size() * num_classes vote distributions, or empty
  std::vector<int32_t> subjects;     // subject id (CK+ S###), -1 when unknown
  std::vector<std::string> origins;  // where each sample came from: "file:line" or a path
  int num_classes = 7;

  size_t size() const { return labels.size(); }
  size_t image_bytes() const { return static_cast<size_t>(height) * static_cast<size_t>(width); }
  const uint8_t* image(size_t i) const { return pixels.data() + i * image_bytes(); }
  bool has_soft_targets() const { return !soft_targets.empty(); }
  std::vector<size_t> indices(Split s) const;

  // Appends one sample; `image` must hold image_bytes() gray levels.
  void add(const uint8_t* image, int label, Split split, std::string origin, int32_t subject = -1);
  // A dataset of the samples at `idx`, in that order.
  Dataset subset(const std::vector<size_t>& idx) const;
  // Throws std::logic_error when the per-sample vectors disagree in length.
  void check_consistent() const;
  // The class frequencies of the samples at `idx` ([num_classes], summing to 1): the mean of
  // their soft targets when the dataset has them, else the share of each label (unlabelled
  // samples left out). A class with no sample gets half a sample, so every frequency is > 0
  // (logit adjustment takes its log). std::invalid_argument when no sample counts.
  std::vector<double> class_frequencies(const std::vector<size_t>& idx) const;
};

// An entry a reader skipped (or, in strict mode, refused): where and why.
struct DataIssue {
  std::string where;    // "path:line" or a path
  std::string field;    // "emotion", "pixels", "Usage", "header", "file", ...
  std::string message;
};

struct ReadReport {
  size_t entries_seen = 0;        // rows or files looked at
  size_t entries_kept = 0;
  std::vector<DataIssue> issues;  // one per skipped entry (first 1000 kept; count in skipped)
  size_t skipped = 0;
  std::map<std::string, size_t> skipped_by_field;  // every skip, counted by DataIssue::field
  // Facts worth a look that skipped nothing: a photo with several faces (field "faces": the
  // largest was kept), a folder that was not read (field "folder"). First 1000; all counted.
  std::vector<DataIssue> notes;
  std::map<std::string, size_t> notes_by_field;
  void skip(DataIssue issue);
  void note(DataIssue issue);
};

// Thrown for bad input: the message names the file and the line or field.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace fervid
