// One entry point from a path on the command line to a Dataset: FER2013 CSV (with FER+
// labels on request), image folders, CK+48, the original CK+ distribution, uncropped photos.
// Folder formats need the OpenCV part of the library (FERVID_WITH_OPENCV).
#pragma once

#include <string>

#include "fervid/dataset.h"
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
  bool strict = false;
  int size = 48;                              // folder formats: output side (FER2013 is 48)
  bool drop_contempt = true;                  // CK+: drop contempt (else an error)
  bool align = false;                         // photos / ckplus: eye-line alignment
  bool use_cache = false;                     // read through the dataset cache (cache.h)
  std::string cache_dir;                      // "" = default_cache_dir()
};

struct OpenedSource {
  Dataset data;
  ReadReport report;         // empty on a cache hit (the cache stores samples, not reports)
  SourceFormat format = SourceFormat::kAuto;
  std::string cache_key;     // also identifies the data in reports
  bool cache_hit = false;
};

// Throws DataError naming the source when it is missing, of an unknown kind, or unreadable.
OpenedSource open_data_source(const std::string& source, const DataSourceOptions& options = {});

}  // namespace fervid
