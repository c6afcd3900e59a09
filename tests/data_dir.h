// Where the data-backed tests find the shared datasets. No torch here.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace fervid::test {

// The shared datasets folder (FERVID_DATA). Tests that call this carry the ctest label `data`;
// without the variable they fail with this message rather than skip (scripts/test.sh leaves
// the `data` label out when FERVID_DATA is unset).
inline std::filesystem::path data_dir() {
  const char* d = std::getenv("FERVID_DATA");
  if (!d || !*d) throw std::runtime_error("FERVID_DATA is not set: data-backed tests need ../shared/data");
  std::filesystem::path p(d);
  if (!std::filesystem::is_directory(p)) throw std::runtime_error("FERVID_DATA=" + p.string() + " is not a directory");
  return p;
}

}  // namespace fervid::test
