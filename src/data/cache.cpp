#include "fervid/cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <type_traits>

#include "fervid/atomic_file.h"
#include "fervid/hash.h"

namespace fervid {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr char kMagic[8] = {'F', 'E', 'R', 'V', 'I', 'D', 'D', 'S'};
constexpr size_t kPreamble = 8 + 4 + 8;
constexpr size_t kAlign = 64;

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

// Read-only mapping of a whole file, unmapped on destruction.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) throw DataError(path + ": cannot open cache (" + std::strerror(errno) + ")");
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      throw DataError(path + ": cannot stat cache");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        throw DataError(path + ": cannot map cache (" + std::strerror(errno) + ")");
      }
      data_ = static_cast<const char*>(p);
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
};

std::string hex64(uint64_t v) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(v));
  return hex;
}

// The SHA-256 of a file's content, through the memo in `memo_dir` when one is given (cache.h).
std::string content_sha256(const std::string& path, const std::string& canonical, const std::string& memo_dir) {
  struct stat st {};
  if (memo_dir.empty() || ::stat(path.c_str(), &st) != 0) return sha256_file(path);
  auto ns = [](const struct timespec& t) {
    return std::to_string(static_cast<int64_t>(t.tv_sec) * 1000000000 + static_cast<int64_t>(t.tv_nsec));
  };
  const std::string identity = canonical + "\n" + std::to_string(st.st_size) + " " + ns(st.st_mtim) + " " +
                               ns(st.st_ctim) + " " + std::to_string(st.st_ino) + " " + std::to_string(st.st_dev) + "\n";
  const std::string memo = memo_dir + "/hashes/" + hex64(fnv1a(canonical)) + ".sha256";
  {
    std::ifstream in(memo, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() == identity.size() + 65 && text.compare(0, identity.size(), identity) == 0 && text.back() == '\n') {
      return text.substr(identity.size(), 64);
    }
  }
  const auto started = std::chrono::system_clock::now();
  const std::string sha = sha256_file(path);
  const auto changed = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::seconds(st.st_ctim.tv_sec) +
                                                                      std::chrono::nanoseconds(st.st_ctim.tv_nsec)));
  if (started - changed >= std::chrono::seconds(2)) {
    try {
      fs::create_directories(memo_dir + "/hashes");
      write_file_atomically(memo, identity + sha + "\n");
    } catch (const std::exception&) {
      // Only a speed-up: without the memo the next key hashes the file again.
    }
  }
  return sha;
}

}  // namespace

std::string cache_key(const std::vector<std::string>& sources, const std::string& recipe, const std::string& memo_dir) {
  std::string text = "v" + std::to_string(kCacheFormatVersion) + "|p" + std::to_string(kPreprocessVersion) + "|" + recipe;
  for (const auto& s : sources) {
    const fs::path p = fs::u8path(s);
    std::error_code ec;
    const auto canonical = fs::weakly_canonical(p, ec);
    const std::string where = ec ? p.u8string() : canonical.u8string();
    text += "|" + where;
    if (fs::is_directory(p, ec)) {
      // Listing, sizes and modification times (see cache.h): cheap for thousands of images.
      std::vector<std::string> entries;
      auto it = fs::recursive_directory_iterator(p, ec);
      for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        std::error_code fec;
        if (!it->is_regular_file(fec)) continue;
        const auto size = fs::file_size(it->path(), fec);
        const auto mtime = fs::last_write_time(it->path(), fec).time_since_epoch().count();
        entries.push_back(it->path().lexically_relative(p).generic_u8string() + ":" + std::to_string(size) + ":" +
                          std::to_string(mtime));
      }
      if (ec) throw DataError(s + ": cannot list the folder for the cache key (" + ec.message() + ")");
      std::sort(entries.begin(), entries.end());
      for (const auto& e : entries) text += "|" + e;
    } else {
      try {
        text += ":sha256=" + content_sha256(s, where, memo_dir);
      } catch (const std::exception& e) {
        throw DataError(s + ": cannot read it for the cache key (" + e.what() + ")");
      }
    }
  }
  return hex64(fnv1a(text));
}

std::string default_cache_dir() {
  if (const char* d = std::getenv("FERVID_CACHE"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/fervid";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/fervid";
  return (fs::temp_directory_path() / "fervid-cache").string();
}

void save_dataset_cache(const std::string& path, const Dataset& ds, const std::string& key) {
  ds.check_consistent();
  const size_t n = ds.size();
  std::string origins;
  for (const auto& o : ds.origins) origins += o + "\n";
  struct Section {
    const char* name;
    const void* data;
    size_t bytes;
  };
  std::vector<uint8_t> splits(n);
  for (size_t i = 0; i < n; ++i) splits[i] = static_cast<uint8_t>(ds.splits[i]);
  const std::vector<Section> sections = {
      {"pixels", ds.pixels.data(), ds.pixels.size()},
      {"labels", ds.labels.data(), n},
      {"splits", splits.data(), n},
      {"subjects", ds.subjects.data(), n * sizeof(int32_t)},
      {"soft_targets", ds.soft_targets.data(), ds.soft_targets.size() * sizeof(float)},
      {"origins", origins.data(), origins.size()},
  };
  json table = json::object();
  size_t offset = 0;
  for (const auto& s : sections) {
    table[s.name] = {{"offset", offset}, {"bytes", s.bytes}};
    offset = align_up(offset + s.bytes);
  }
  const json header = {{"format", "fervid-dataset"}, {"version", kCacheFormatVersion}, {"key", key},
                       {"samples", n}, {"height", ds.height}, {"width", ds.width},
                       {"num_classes", ds.num_classes}, {"sections", table}, {"data_bytes", offset}};
  std::string h = header.dump();
  h.resize(align_up(kPreamble + h.size()) - kPreamble, ' ');  // sections start aligned
  write_file_atomically(path, [&](std::ostream& out) {
    const uint32_t version = kCacheFormatVersion;
    const uint64_t hs = h.size();
    out.write(kMagic, 8);
    out.write(reinterpret_cast<const char*>(&version), 4);
    out.write(reinterpret_cast<const char*>(&hs), 8);
    out.write(h.data(), static_cast<long>(h.size()));
    size_t written = 0;
    static const char zeros[kAlign] = {};
    for (const auto& s : sections) {
      out.write(static_cast<const char*>(s.data), static_cast<long>(s.bytes));
      written += s.bytes;
      out.write(zeros, static_cast<long>(align_up(written) - written));
      written = align_up(written);
    }
  });
}

namespace {

// The cache's header is trusted no more than a model file's: every size and offset is checked
// against the file before anything is copied, and a header that is not what this build writes
// is a DataError (the cache is rebuilt), never a library's exception.
constexpr int kMaxCacheSide = 4096;
constexpr int kMaxCacheClasses = 64;

template <typename T>
T header_number(const json& header, const char* field, const std::string& path) {
  const auto it = header.find(field);
  // The parser stores a non-negative integer as unsigned: an unsigned field refuses the others.
  if (it == header.end() || !it->is_number_integer() || (std::is_unsigned_v<T> && !it->is_number_unsigned())) {
    throw DataError(path + ": corrupted cache header: field '" + field + "' is missing or not a whole number");
  }
  return it->get<T>();
}

}  // namespace

Dataset parse_dataset_cache(const char* b, size_t size, const std::string& path, const std::string& expected_key) {
  if (size < kPreamble || std::memcmp(b, kMagic, 8) != 0) throw DataError(path + ": not a fervid dataset cache");
  uint32_t version;
  uint64_t hs;
  std::memcpy(&version, b + 8, 4);
  std::memcpy(&hs, b + 12, 8);
  if (version != kCacheFormatVersion) {
    throw DataError(path + ": cache format version " + std::to_string(version) + ", this build reads " +
                    std::to_string(kCacheFormatVersion));
  }
  if (hs > size - kPreamble) throw DataError(path + ": truncated cache header");
  json header;
  try {
    header = json::parse(b + kPreamble, b + kPreamble + hs);
  } catch (const json::exception&) {
    throw DataError(path + ": corrupted cache header (not JSON)");
  }
  if (!header.is_object()) throw DataError(path + ": corrupted cache header (not a JSON object)");
  const auto key_it = header.find("key");
  const std::string key = key_it != header.end() && key_it->is_string() ? key_it->get<std::string>() : "";
  if (!expected_key.empty() && key != expected_key) {
    throw DataError(path + ": cache key " + key + " does not match " + expected_key);
  }
  const size_t data_start = kPreamble + hs;
  const auto data_bytes = header_number<uint64_t>(header, "data_bytes", path);
  if (data_bytes > size - data_start) throw DataError(path + ": truncated cache");
  Dataset ds;
  const auto n = header_number<uint64_t>(header, "samples", path);
  const auto h = header_number<int64_t>(header, "height", path), w = header_number<int64_t>(header, "width", path);
  const auto k = header_number<int64_t>(header, "num_classes", path);
  if (h < 1 || h > kMaxCacheSide || w < 1 || w > kMaxCacheSide || k < 1 || k > kMaxCacheClasses) {
    throw DataError(path + ": corrupted cache header: images of " + std::to_string(w) + "x" + std::to_string(h) +
                    " with " + std::to_string(k) + " classes");
  }
  ds.height = static_cast<int>(h);
  ds.width = static_cast<int>(w);
  ds.num_classes = static_cast<int>(k);
  // Every sample has at least its pixels in the data section: this bounds n before any product.
  if (n > data_bytes / ds.image_bytes()) {
    throw DataError(path + ": corrupted cache header: " + std::to_string(n) + " samples do not fit in " +
                    std::to_string(data_bytes) + " bytes");
  }
  const auto sections = header.find("sections");
  if (sections == header.end() || !sections->is_object()) {
    throw DataError(path + ": corrupted cache header: no section table");
  }
  // A section's bytes, checked to lie inside the data section (and to be `expected` long when
  // that is known).
  auto section = [&](const char* name, size_t expected, size_t* length = nullptr) -> const char* {
    const auto it = sections->find(name);
    if (it == sections->end() || !it->is_object()) {
      throw DataError(path + ": corrupted cache header: section '" + std::string(name) + "' missing");
    }
    const auto offset = header_number<uint64_t>(*it, "offset", path), bytes = header_number<uint64_t>(*it, "bytes", path);
    if (offset > data_bytes || bytes > data_bytes - offset) {
      throw DataError(path + ": corrupted cache header: section '" + std::string(name) + "' lies outside the file");
    }
    if (expected != SIZE_MAX && bytes != expected) throw DataError(path + ": cache section " + name + " has the wrong size");
    if (length) *length = bytes;
    return b + data_start + offset;
  };
  const size_t pixel_bytes = n * ds.image_bytes();
  const char* px = section("pixels", pixel_bytes);
  ds.pixels.assign(reinterpret_cast<const uint8_t*>(px), reinterpret_cast<const uint8_t*>(px) + pixel_bytes);
  const char* lb = section("labels", n);
  ds.labels.assign(reinterpret_cast<const int8_t*>(lb), reinterpret_cast<const int8_t*>(lb) + n);
  for (const int8_t l : ds.labels) {
    if (l < -1 || l >= ds.num_classes) throw DataError(path + ": corrupted label value " + std::to_string(l) + " in cache");
  }
  const char* sp = section("splits", n);
  ds.splits.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const auto v = static_cast<uint8_t>(sp[i]);
    if (v >= kNumSplits) throw DataError(path + ": corrupted split value in cache");
    ds.splits[i] = static_cast<Split>(v);
  }
  ds.subjects.resize(n);
  std::memcpy(ds.subjects.data(), section("subjects", n * sizeof(int32_t)), n * sizeof(int32_t));
  size_t soft_bytes = 0;
  const char* soft = section("soft_targets", SIZE_MAX, &soft_bytes);
  if (soft_bytes > 0) {
    ds.soft_targets.resize(n * static_cast<size_t>(ds.num_classes));
    if (soft_bytes != ds.soft_targets.size() * sizeof(float)) {
      throw DataError(path + ": cache section soft_targets has the wrong size");
    }
    std::memcpy(ds.soft_targets.data(), soft, soft_bytes);
    for (const float v : ds.soft_targets) {
      if (!std::isfinite(v) || v < 0.0f) throw DataError(path + ": corrupted soft target in cache");
    }
  }
  size_t obytes = 0;
  const char* o = section("origins", SIZE_MAX, &obytes);
  ds.origins.reserve(n);
  size_t start = 0;
  for (size_t i = 0; i < obytes && ds.origins.size() <= n; ++i) {
    if (o[i] == '\n') {
      ds.origins.emplace_back(o + start, i - start);
      start = i + 1;
    }
  }
  if (ds.origins.size() != n || start != obytes) throw DataError(path + ": corrupted origins section in cache");
  return ds;
}

Dataset load_dataset_cache(const std::string& path, const std::string& expected_key) {
  MappedFile f(path);
  return parse_dataset_cache(f.data(), f.size(), path, expected_key);
}

Dataset cached_dataset(const std::string& key, const std::function<Dataset()>& build, const std::string& dir, bool* hit) {
  const std::string path = dir + "/" + key + ".fvds";
  std::error_code ec;
  if (fs::exists(path, ec)) {
    try {
      auto ds = load_dataset_cache(path, key);
      if (hit) *hit = true;
      return ds;
    } catch (const DataError& e) {
      std::cerr << "fervid: ignoring cache: " << e.what() << "\n";
    }
  }
  if (hit) *hit = false;
  auto ds = build();
  try {
    fs::create_directories(dir);
    save_dataset_cache(path, ds, key);
  } catch (const std::exception& e) {
    std::cerr << "fervid: cannot write cache " << path << ": " << e.what() << "\n";
  }
  return ds;
}

}  // namespace fervid
