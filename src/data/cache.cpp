#include "fervid/cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

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

Dataset load_dataset_cache(const std::string& path, const std::string& expected_key) {
  MappedFile f(path);
  const char* b = f.data();
  if (f.size() < kPreamble || std::memcmp(b, kMagic, 8) != 0) throw DataError(path + ": not a fervid dataset cache");
  uint32_t version;
  uint64_t hs;
  std::memcpy(&version, b + 8, 4);
  std::memcpy(&hs, b + 12, 8);
  if (version != kCacheFormatVersion) {
    throw DataError(path + ": cache format version " + std::to_string(version) + ", this build reads " +
                    std::to_string(kCacheFormatVersion));
  }
  if (hs > f.size() - kPreamble) throw DataError(path + ": truncated cache header");
  json header;
  try {
    header = json::parse(b + kPreamble, b + kPreamble + hs);
  } catch (const json::exception& e) {
    throw DataError(path + ": corrupted cache header: " + e.what());
  }
  const std::string key = header.value("key", "");
  if (!expected_key.empty() && key != expected_key) {
    throw DataError(path + ": cache key " + key + " does not match " + expected_key);
  }
  const size_t data_start = kPreamble + hs;
  if (f.size() < data_start + header.at("data_bytes").get<size_t>()) throw DataError(path + ": truncated cache");
  Dataset ds;
  const size_t n = header.at("samples").get<size_t>();
  ds.height = header.at("height").get<int>();
  ds.width = header.at("width").get<int>();
  ds.num_classes = header.at("num_classes").get<int>();
  auto section = [&](const char* name, size_t expected) -> const char* {
    const auto& s = header.at("sections").at(name);
    const auto bytes = s.at("bytes").get<size_t>();
    if (expected != SIZE_MAX && bytes != expected) throw DataError(path + ": cache section " + name + " has the wrong size");
    return b + data_start + s.at("offset").get<size_t>();
  };
  const size_t pixel_bytes = n * ds.image_bytes();
  const char* px = section("pixels", pixel_bytes);
  ds.pixels.assign(reinterpret_cast<const uint8_t*>(px), reinterpret_cast<const uint8_t*>(px) + pixel_bytes);
  const char* lb = section("labels", n);
  ds.labels.assign(reinterpret_cast<const int8_t*>(lb), reinterpret_cast<const int8_t*>(lb) + n);
  const char* sp = section("splits", n);
  ds.splits.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const auto v = static_cast<uint8_t>(sp[i]);
    if (v >= kNumSplits) throw DataError(path + ": corrupted split value in cache");
    ds.splits[i] = static_cast<Split>(v);
  }
  ds.subjects.resize(n);
  std::memcpy(ds.subjects.data(), section("subjects", n * sizeof(int32_t)), n * sizeof(int32_t));
  const size_t soft_bytes = header.at("sections").at("soft_targets").at("bytes").get<size_t>();
  if (soft_bytes > 0) {
    ds.soft_targets.resize(n * static_cast<size_t>(ds.num_classes));
    std::memcpy(ds.soft_targets.data(), section("soft_targets", ds.soft_targets.size() * sizeof(float)), soft_bytes);
  }
  const auto obytes = header.at("sections").at("origins").at("bytes").get<size_t>();
  const char* o = section("origins", SIZE_MAX);
  ds.origins.reserve(n);
  size_t start = 0;
  for (size_t i = 0; i < obytes; ++i) {
    if (o[i] == '\n') {
      ds.origins.emplace_back(o + start, i - start);
      start = i + 1;
    }
  }
  if (ds.origins.size() != n) throw DataError(path + ": corrupted origins section in cache");
  return ds;
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
