// Write a whole file so that readers see either the old file or the complete new
// one, never a half-written one (temporary file in the same folder, fsync, rename).
#pragma once

#include <functional>
#include <ostream>
#include <string>

namespace fervid {

// Calls `write` with a binary stream to a temporary file beside `path`, then renames it over
// `path`. On any failure (write throws, stream error, fsync or rename fails) the temporary
// file is removed, `path` is untouched, and std::runtime_error names the path.
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);
// The same for bytes already in memory (a PNG, a JSON report).
void write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace fervid
