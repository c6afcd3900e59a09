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
// Bump when a reader or the face preprocessing (detection, alignment, crop, resize) changes
// the samples it makes from the same file with the same options: every key changes with it,
// so no cache made by the older code is used.
inline constexpr int kPreprocessVersion = 1;

// A key for a dataset built by `recipe` (reader and every option that changes the samples:
// size, crop margin, detector and alignment settings, ...) from `sources`. Hex, 16 characters.
// Includes kCacheFormatVersion and kPreprocessVersion.
// - A file (FER2013 CSV or .csv.gz, FER+ votes) contributes its path and the SHA-256 of its
//   content: an edited file gets a new key even with the same size and modification time.
//   Hashing FER2013's 94 MB .csv.gz takes about 0.45 s of CPU (bench/bench_data.cpp), so with
//   `memo_dir` a file's hash is remembered there (<memo_dir>/hashes/) with its size,
//   modification and change times, inode and device, and reused while all five are unchanged:
//   every write changes the change time, which no user can set. A hash taken within 2 s of the
//   file's last change is not remembered (the clock may not have ticked since: git's "racy
//   clean" rule).
// - A folder contributes its path and its listing, recursively: each file's relative path,
//   size and modification time. Contents are NOT hashed (that would cost as much as decoding
//   every image), so replacing a file by another of the same size with its old modification
//   time keeps the key; delete the cache (default_cache_dir()) after such an edit.
// Throws DataError naming a file that cannot be read.
std::string cache_key(const std::vector<std::string>& sources, const std::string& recipe,
                      const std::string& memo_dir = "");

// $FERVID_CACHE, else $XDG_CACHE_HOME/fervid, else ~/.cache/fervid.
std::string default_cache_dir();

void save_dataset_cache(const std::string& path, const Dataset& ds, const std::string& key);
// Throws DataError (naming the file) when it is missing, foreign, truncated, of another
// version, or was made for another key (pass "" to accept any key).
// Every size, offset and value of the header is checked against the file first.
Dataset load_dataset_cache(const std::string& path, const std::string& expected_key = "");
// The same from a cache file's bytes (`path` names it in messages): the fuzzer's entry point.
Dataset parse_dataset_cache(const char* bytes, size_t size, const std::string& path,
                            const std::string& expected_key = "");

// The dataset for `key`: from `dir`/<key>.fvds when present and valid, else built by `build`
// and saved there (a cache that cannot be written is reported on stderr, not fatal).
// `*hit` tells which happened.
Dataset cached_dataset(const std::string& key, const std::function<Dataset()>& build,
                       const std::string& dir = default_cache_dir(), bool* hit = nullptr);

}  // namespace fervid
