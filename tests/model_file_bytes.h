// A model file taken apart and put back together independently of the library (magic, version
// u32, header size u64, JSON header, data, FNV-1a 64 of all of it), so tests can craft files the
// library would never write: edited headers, other versions. Torch-free.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace fervid::test {

struct ModelFileBytes {
  std::string magic;  // the first 8 bytes
  uint32_t version = 0;
  nlohmann::json header;
  std::string data;

  static ModelFileBytes read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    const std::string b{std::istreambuf_iterator<char>(in), {}};
    if (b.size() < 28) throw std::runtime_error(path + ": too short for a model file");
    ModelFileBytes m;
    m.magic = b.substr(0, 8);
    std::memcpy(&m.version, b.data() + 8, 4);
    uint64_t header_size = 0;
    std::memcpy(&header_size, b.data() + 12, 8);
    m.header = nlohmann::json::parse(b.substr(20, header_size));
    m.data = b.substr(20 + header_size, b.size() - 20 - header_size - 8);
    return m;
  }

  std::string bytes() const {
    const auto text = header.dump();
    std::string out = magic;
    out.append(reinterpret_cast<const char*>(&version), 4);
    const uint64_t n = text.size();
    out.append(reinterpret_cast<const char*>(&n), 8);
    out += text;
    out += data;
    uint64_t f = 1469598103934665603ull;
    for (unsigned char c : out) f = (f ^ c) * 1099511628211ull;
    out.append(reinterpret_cast<const char*>(&f), 8);
    return out;
  }

  void write(const std::string& path) const { std::ofstream(path, std::ios::binary) << bytes(); }

  // The file as version 1 wrote it: no face recipe in the header.
  ModelFileBytes as_version1() const {
    ModelFileBytes m = *this;
    m.version = 1;
    m.header["version"] = 1;
    m.header.erase("face_recipe");
    return m;
  }
};

}  // namespace fervid::test
