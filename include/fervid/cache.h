// A compact, versioned, memory-mappable cache of decoded and preprocessed samples, so training
// never re-parses CSV or images (FER2013 loads from it in well under a second).
//
// File layout (little-endian): magic "FERVIDDS", u32 version, u64 header size, a JSON header
// (key, recipe, sizes, section offsets), then 64-byte-aligned raw sections: pixels (u8
// N*H*W), labels (i8 N), splits (u8 N), subjects (i32 N), soft targets (f32 N*K, optional),
// origins ('\n'-joined text). Written to a temporary name and renamed.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "fervid/dataset.h"

namespace fervid {

inline constexpr int kCacheFormatVersion = 1;

// A key for a dataset built by `recipe` (reader, options, preprocessing: any text that
// changes the samples) from `sources` (files or folders; each contributes its path, size and
// modification time, folders recursively). Hex, 16 characters.
std::string cache_key(const std::vector<std::string>& sources, const std::string& recipe);

// $FERVID_CACHE, else $XDG_CACHE_HOME/fervid, else ~/.cache/fervid.
std::string default_cache_dir();

void save_dataset_cache(const std::string& path, const Dataset& ds, const std::string& key);
// Throws DataError (naming the file) when it is missing, foreign, truncated, of another
// version, or was made for another key (pass "" to accept any key).
Dataset load_dataset_cache(const std::string& path, const std::string& expected_key = "");

// The dataset for `key`: from `dir`/<key>.fvds when present and valid, else built by `build`
// and saved there (a cache that cannot be written is reported on stderr, not fatal).
// `*hit` tells which happened.
Dataset cached_dataset(const std::string& key, const std::function<Dataset()>& build,
                       const std::string& dir = default_cache_dir(), bool* hit = nullptr);

}  // namespace fervid
