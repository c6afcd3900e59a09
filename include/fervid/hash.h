// SHA-256 of files and bytes, for reports and model cards (which model, which data).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace fervid {

std::string sha256_hex(const void* data, size_t size);
// Throws std::runtime_error naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace fervid
