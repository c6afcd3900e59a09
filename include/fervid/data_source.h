// One entry point from a path on the command line to a Dataset: FER2013 CSV (with FER+
// labels on request), image folders, CK+48, the original CK+ distribution, uncropped photos.
// Folder formats need the OpenCV part of the library (FERVID_WITH_OPENCV).
//
// Error messages speak in `fervid` flags (--format, --min-face, ...) and paths: these options
// are what `fervid data check | preview` and `fervid train` set from their flags.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "fervid/dataset.h"
#include "fervid/face_recipe.h"
#include "fervid/readers.h"

namespace fervid {

enum class SourceFormat { kAuto, kFer2013, kFolder, kCkPlus48, kCkPlus, kPhotos };
std::string_view to_string(SourceFormat f);
SourceFormat parse_source_format(std::string_view s);  // auto fer2013 folder ckplus48 ckplus photos

struct DataSourceOptions {
  SourceFormat format = SourceFormat::kAuto;  // auto: *.csv[.gz] -> fer2013; a folder holding
                                              // cohn-kanade-images -> ckplus; named CK+48 -> ckplus48;
                                              // other folders -> folder
  std::string ferplus;                        // FER+ votes file: replaces FER2013's labels
  FerPlusOptions::Labels ferplus_rule = FerPlusOptions::Labels::kMajority;
  bool soft_targets = false;                  // FER+ vote distributions as soft targets
  // With `ferplus`, in (0, 1]: FER2013's labels kept, soft targets (1 - w) one-hot + w FER+
  // votes (readers.h's FerPlusOptions::mix); 0: FER+ replaces the labels.
  double ferplus_mix = 0.0;
  bool strict = false;
  int size = 48;                              // folder formats: output side (FER2013 is 48)
  // CK+ contempt (not one of our 7 classes). Default: dropped, each image a counted skip (the
  // paper's protocol). keep_contempt (--keep-contempt): kept UNLABELLED (label -1), so `data
  // check` counts them and `data preview` shows them; training refuses unlabelled samples.
  // drop_contempt = false (library only): a contempt folder or label is an error.
  bool drop_contempt = true;
  bool keep_contempt = false;
  // Face detection, alignment and crop (formats that detect faces: photos, ckplus): the fields
  // given here over FaceRecipe{} (face_recipe.h, whose defaults are the pipeline's). The flags of
  // `fervid predict` (--detector --min-face --margin --align ...); in a run's config.json the
  // option names at the top level of "source", null when not given. A given field is an error
  // for the other formats (they hold faces already cropped).
  FaceRecipeOverrides face;
  // The original CK+ distribution only (--format ckplus): the last N frames of each labelled
  // sequence (unset: 3, the paper's), and its first frame as neutral.
  std::optional<int> frames_per_sequence;
  bool first_frame_neutral = false;
  bool use_cache = false;                     // read through the dataset cache (cache.h)
  std::string cache_dir;                      // "" = default_cache_dir()
};

struct OpenedSource {
  Dataset data;
  ReadReport report;          // the source itself; empty on a cache hit (the cache stores samples)
  ReadReport ferplus_report;  // the FER+ votes file (--ferplus), counted on its own
  SourceFormat format = SourceFormat::kAuto;
  std::string cache_key;      // also identifies the data in reports
  bool cache_hit = false;
};

// Throws DataError naming the source when it is missing, of an unknown kind, or unreadable,
// and std::invalid_argument naming the flag for an option out of range or one that does not
// apply to the format (e.g. --min-face on a FER2013 CSV).
OpenedSource open_data_source(const std::string& source, const DataSourceOptions& options = {});

// The format `source` is read as: `format`, or what kAuto finds (DataError as open_data_source).
SourceFormat resolve_source_format(const std::string& source, SourceFormat format);
// Whether faces are detected and cropped in this format's images (photos, ckplus): whether the
// face recipe applies.
bool detects_faces(SourceFormat format);
// The recipe faces of `options` are found and cropped with: options.face over FaceRecipe{}.
FaceRecipe source_face_recipe(const DataSourceOptions& options);

// The text that goes into the cache key besides the source files: the format and every option
// that changes the samples, with detector and crop settings resolved to their effective values.
// `format` must be resolved (not kAuto). Exposed for tests.
std::string data_source_recipe(SourceFormat format, const DataSourceOptions& options);

// The options as a run's config.json records them ("source": {...}); unset optionals are null.
nlohmann::json to_json(const DataSourceOptions& o);
// Reads what to_json writes (missing fields keep their defaults). A value of the wrong type or
// out of its set throws std::invalid_argument: "<context>: field '<prefix><name>' ...".
DataSourceOptions data_source_options_from_json(const nlohmann::json& j, const std::string& context,
                                                const std::string& prefix = "source.");

}  // namespace fervid
