#include "fervid/model_io.h"

#include <cstring>
#include <cerrno>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "fervid/atomic_file.h"
#include "fervid/json_text.h"

namespace fervid {

namespace {

using nlohmann::json;

constexpr char kMagic[8] = {'F', 'E', 'R', 'V', 'I', 'D', 'M', 'F'};
constexpr size_t kPreambleSize = sizeof(kMagic) + 4 + 8;  // magic, version u32, header size u64
constexpr uint64_t kMaxHeader = 64u << 20;
constexpr uint64_t kMaxData = uint64_t{2} << 30;  // 2 GiB: VGG16 at full width is about 60 MB

uint64_t fnv1a(const char* data, size_t n, uint64_t h = 1469598103934665603ull) {
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= 1099511628211ull;
  }
  return h;
}

template <typename T>
void put(std::string& out, T v) {  // little-endian hosts only (checked below)
  out.append(reinterpret_cast<const char*>(&v), sizeof(v));
}
template <typename T>
T get(const std::string& in, size_t offset) {
  T v;
  std::memcpy(&v, in.data() + offset, sizeof(v));
  return v;
}

bool little_endian() {
  const uint16_t one = 1;
  unsigned char b;
  std::memcpy(&b, &one, 1);
  return b == 1;
}

std::string dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat: return "float32";
    case torch::kDouble: return "float64";
    case torch::kLong: return "int64";
    default: throw ModelFileError(std::string("unsupported tensor dtype ") + c10::toString(t));
  }
}
torch::ScalarType dtype_from(const std::string& s) {
  if (s == "float32") return torch::kFloat;
  if (s == "float64") return torch::kDouble;
  if (s == "int64") return torch::kLong;
  throw std::invalid_argument("unknown dtype '" + s + "'");
}

// Every parameter and buffer, by its dotted module path.
std::vector<std::pair<std::string, torch::Tensor>> named_state(MCSANet& net) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : net->named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : net->named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

struct Parsed {
  json header;
  std::string bytes;  // the whole file
  size_t data_start = 0;
  int version = kModelFormatVersion;
  FaceRecipe recipe;
  Calibration calibration;
};

// The one rule for what a file of each version is served with.
FaceRecipe header_recipe(const json& header, int version, const std::string& path) {
  if (version == 1) return FaceRecipe::version1();
  const std::string where = "model file " + path;
  if (!header.contains("face_recipe")) throw ModelFileError(where + ": header lacks field 'face_recipe'");
  try {
    return face_recipe_from_json(header.at("face_recipe"), where, "face_recipe.");
  } catch (const std::invalid_argument& e) {
    throw ModelFileError(e.what());
  }
}

// magic, version, header size, header, data, FNV-1a of all of it.
std::string compose(const json& header, int version, const char* data, size_t data_size) {
  const std::string h = header.dump();
  std::string bytes(kMagic, sizeof(kMagic));
  put<uint32_t>(bytes, static_cast<uint32_t>(version));
  put<uint64_t>(bytes, h.size());
  bytes += h;
  bytes.append(data, data_size);
  put<uint64_t>(bytes, fnv1a(bytes.data(), bytes.size()));
  return bytes;
}

// The preamble's checks (magic, version, header size): the header size, or a named error.
uint64_t check_preamble(const std::string& b, const std::string& where) {
  if (b.size() < sizeof(kMagic) || std::memcmp(b.data(), kMagic, sizeof(kMagic)) != 0) {
    throw ModelFileError(where + "not a fervid model (bad magic tag)");
  }
  if (b.size() < kPreambleSize) throw ModelFileError(where + "truncated (" + std::to_string(b.size()) + " bytes)");
  const auto version = get<uint32_t>(b, sizeof(kMagic));
  if (version < static_cast<uint32_t>(kOldestModelFormatVersion) || version > static_cast<uint32_t>(kModelFormatVersion)) {
    throw ModelFileError(where + "unsupported format version " + std::to_string(version) + " (this build reads versions " +
                         std::to_string(kOldestModelFormatVersion) + " to " + std::to_string(kModelFormatVersion) + ")");
  }
  const auto header_size = get<uint64_t>(b, sizeof(kMagic) + 4);
  if (header_size > kMaxHeader) throw ModelFileError(where + "corrupted header size " + std::to_string(header_size));
  return header_size;
}

// Appends up to n more bytes of `in` to b.
void read_more(std::istream& in, std::string& b, uint64_t n) {
  const size_t at = b.size();
  b.resize(at + n);
  in.read(b.data() + at, static_cast<std::streamsize>(n));
  b.resize(at + static_cast<size_t>(in.gcount()));
}

// The file's bytes, read no further than its own header says it reaches (plus one byte, to tell
// trailing bytes): a file that is not a model (/dev/zero, a sparse 3 GB file) is refused after
// its first bytes, never read whole.
std::string read_model_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelFileError("model file " + path + ": cannot open (" + std::strerror(errno) + ")");
  const std::string where = "model file " + path + ": ";
  std::string b;
  read_more(in, b, kPreambleSize);
  const uint64_t header_size = check_preamble(b, where);
  read_more(in, b, header_size + 8);  // the header and its checksum
  if (b.size() < kPreambleSize + header_size) return b;  // parse_model names the truncation
  uint64_t data_size = 0;
  try {
    data_size = json::parse(b.begin() + kPreambleSize, b.begin() + static_cast<std::ptrdiff_t>(kPreambleSize + header_size))
                    .at("data_bytes")
                    .get<uint64_t>();
  } catch (const json::exception&) {
    return b;  // parse_model names what is wrong with the header
  }
  if (data_size > kMaxData) return b;  // parse_model refuses it, nothing more read
  read_more(in, b, data_size + 8 + 1);  // the data, its checksum, and one byte too many
  return b;
}

Parsed parse_model(std::string bytes, const std::string& path) {
  if (!little_endian()) throw ModelFileError("model files are little-endian; this host is not");
  Parsed p;
  p.bytes = std::move(bytes);
  const auto& b = p.bytes;
  const std::string where = "model file " + path + ": ";
  const auto header_size = check_preamble(b, where);
  p.version = static_cast<int>(get<uint32_t>(b, sizeof(kMagic)));
  if (b.size() < kPreambleSize + header_size + 8) {
    throw ModelFileError(where + "truncated (" + std::to_string(b.size()) + " bytes, header alone needs " +
                         std::to_string(kPreambleSize + header_size + 8) + ")");
  }
  try {
    p.header = json::parse(b.begin() + kPreambleSize, b.begin() + static_cast<long>(kPreambleSize + header_size));
  } catch (const json::exception& e) {
    throw ModelFileError(where + "corrupted header: " + json_error_text(e));
  }
  p.data_start = kPreambleSize + header_size;
  uint64_t data_size = 0;
  try {
    data_size = p.header.at("data_bytes").get<uint64_t>();
  } catch (const json::exception& e) {
    throw ModelFileError(where + "header lacks field 'data_bytes'");
  }
  if (data_size > kMaxData) {
    throw ModelFileError(where + "corrupted header: data section of " + std::to_string(data_size) +
                         " bytes (the limit is " + std::to_string(kMaxData) + ")");
  }
  const uint64_t expected = p.data_start + data_size + 8;
  if (b.size() < expected) {
    throw ModelFileError(where + "truncated (" + std::to_string(b.size()) + " bytes, expected " +
                         std::to_string(expected) + ")");
  }
  if (b.size() > expected) throw ModelFileError(where + "trailing bytes after the checksum");
  const auto stored = get<uint64_t>(b, b.size() - 8);
  if (fnv1a(b.data(), b.size() - 8) != stored) throw ModelFileError(where + "checksum mismatch (corrupted file)");
  p.recipe = header_recipe(p.header, p.version, path);
  if (p.header.contains("calibration")) {
    try {
      p.calibration = Calibration::from_json(p.header.at("calibration"), "model file " + path);
    } catch (const std::invalid_argument& e) {
      throw ModelFileError(e.what());
    }
  }
  return p;
}

Parsed read_and_verify(const std::string& path) { return parse_model(read_model_bytes(path), path); }

ModelConfig header_config(const Parsed& p, const std::string& path) {
  try {
    return config_from_json(p.header.at("config"));
  } catch (const std::exception& e) {
    throw ModelFileError("model file " + path + ": " + e.what());
  }
}

// A crafted header (the checksum is easy to recompute) must still give a named error, never a
// crash or a read outside the file: every field is checked before it is used.
void copy_weights(const Parsed& p, const std::string& path, MCSANet& net) {
  const std::string where = "model file " + path + ": ";
  try {
    std::map<std::string, json> table;
    for (const auto& t : p.header.at("tensors")) table[t.at("name").get<std::string>()] = t;
    auto state = named_state(net);
    if (table.size() != state.size()) {
      throw ModelFileError(where + "holds " + std::to_string(table.size()) + " tensors, the network has " +
                           std::to_string(state.size()));
    }
    torch::NoGradGuard no_grad;
    const uint64_t data_size = p.header.at("data_bytes").get<uint64_t>();
    for (auto& [name, tensor] : state) {
      auto it = table.find(name);
      if (it == table.end()) throw ModelFileError(where + "missing tensor '" + name + "'");
      const auto& t = it->second;
      const std::string what = where + "tensor '" + name + "': ";
      const auto shape = t.at("shape").get<std::vector<int64_t>>();
      if (shape != tensor.sizes().vec()) {
        throw ModelFileError(what + "shape " + json(shape).dump() + ", the network expects " +
                             json(tensor.sizes().vec()).dump());
      }
      const auto dtype_field = t.at("dtype").get<std::string>();
      torch::ScalarType dtype;
      try {
        dtype = dtype_from(dtype_field);
      } catch (const std::invalid_argument& e) {
        throw ModelFileError(what + e.what());
      }
      const auto offset = t.at("offset").get<uint64_t>();
      const auto nbytes = t.at("nbytes").get<uint64_t>();
      uint64_t numel = 1;
      for (auto d : shape) numel *= static_cast<uint64_t>(d);  // shape equals the network's: small, positive
      if (offset > data_size || nbytes > data_size - offset) {  // no overflow in offset + nbytes
        throw ModelFileError(what + "lies outside the data section (offset " + std::to_string(offset) +
                             ", " + std::to_string(nbytes) + " bytes, section " + std::to_string(data_size) + ")");
      }
      if (nbytes != numel * c10::elementSize(dtype)) {
        throw ModelFileError(what + std::to_string(nbytes) + " bytes, its shape and dtype " + dtype_field +
                             " need " + std::to_string(numel * c10::elementSize(dtype)));
      }
      auto src = torch::from_blob(const_cast<char*>(p.bytes.data() + p.data_start + offset), shape,
                                  torch::TensorOptions().dtype(dtype));
      tensor.copy_(src);  // copies (and converts dtype); the file buffer is not kept
      if (tensor.is_floating_point() && !torch::isfinite(tensor).all().item<bool>()) {
        throw ModelFileError(what + "holds NaN or infinite values (a diverged training run?)");
      }
    }
  } catch (const json::exception& e) {
    throw ModelFileError(where + "malformed tensor table in the header (" + json_error_text(e) + ")");
  }
}

}  // namespace

json config_to_json(const ModelConfig& c) {
  return json{{"variant", to_string(c.variant)},
              {"width", c.width},
              {"input_size", c.input_size},
              {"in_channels", c.in_channels},
              {"multiscale", c.uses_multiscale()},
              {"se_reduction", c.se_reduction},
              {"spatial_kernel", c.spatial_kernel},
              {"dropout", c.dropout},
              {"class_names", c.classes()},
              {"norm_mean", c.norm_mean},
              {"norm_std", c.norm_std}};
}

ModelConfig config_from_json(const json& j) {
  ModelConfig c;
  auto field = [&](const char* name) -> const json& {
    if (!j.contains(name)) throw std::invalid_argument(std::string("config lacks field '") + name + "'");
    return j.at(name);
  };
  try {
    c.variant = parse_variant(field("variant").get<std::string>());
    c.width = field("width").get<double>();
    c.input_size = field("input_size").get<int>();
    c.in_channels = field("in_channels").get<int>();
    c.multiscale = field("multiscale").get<bool>() ? 1 : 0;
    c.se_reduction = field("se_reduction").get<int>();
    c.spatial_kernel = field("spatial_kernel").get<int>();
    c.dropout = field("dropout").get<double>();
    c.class_names = field("class_names").get<std::vector<std::string>>();
    c.norm_mean = field("norm_mean").get<double>();
    c.norm_std = field("norm_std").get<double>();
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("config field has the wrong type: ") + json_error_text(e));
  }
  c.validate();
  return c;
}

std::string architecture_mismatch(const ModelConfig& a, const ModelConfig& b) {
  auto differ = [](const std::string& field, const auto& x, const auto& y) {
    return field + " (" + json(x).dump() + " vs " + json(y).dump() + ")";
  };
  if (a.variant != b.variant) return differ("variant", to_string(a.variant), to_string(b.variant));
  if (a.block_channels() != b.block_channels()) return differ("width", a.width, b.width);
  if (a.input_size != b.input_size) return differ("input_size", a.input_size, b.input_size);
  if (a.in_channels != b.in_channels) return differ("in_channels", a.in_channels, b.in_channels);
  if (a.uses_multiscale() != b.uses_multiscale()) return differ("multiscale", a.uses_multiscale(), b.uses_multiscale());
  if (a.se_reduction != b.se_reduction) return differ("se_reduction", a.se_reduction, b.se_reduction);
  if (a.spatial_kernel != b.spatial_kernel) return differ("spatial_kernel", a.spatial_kernel, b.spatial_kernel);
  if (a.classes() != b.classes()) return differ("class_names", a.classes(), b.classes());
  return "";
}

void save_model(const std::string& path, MCSANet& net, const json& metadata, const FaceRecipe& recipe,
                const Calibration& calibration) {
  if (!little_endian()) throw ModelFileError("model files are little-endian; this host is not");
  recipe.validate();
  Calibration::from_json(calibration.to_json(), "saving model " + path);  // validates
  json table = json::array();
  std::string data;
  for (auto& [name, tensor] : named_state(net)) {
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    const auto nbytes = static_cast<size_t>(t.numel()) * t.element_size();
    table.push_back({{"name", name}, {"dtype", dtype_name(t.scalar_type())},
                     {"shape", t.sizes().vec()}, {"offset", data.size()}, {"nbytes", nbytes}});
    data.append(static_cast<const char*>(t.data_ptr()), nbytes);
  }
  const auto& cfg = net->config();
  json header = {{"format", "fervid-model"},
                 {"version", kModelFormatVersion},
                 {"config", config_to_json(cfg)},
                 {"preprocessing",
                  {{"input_size", cfg.input_size}, {"channels", cfg.in_channels == 1 ? "gray" : "bgr"},
                   {"resize", "bilinear"}, {"scale", 1.0 / 255.0}, {"mean", cfg.norm_mean}, {"std", cfg.norm_std}}},
                 {"face_recipe", to_json(recipe)},
                 {"calibration", calibration.to_json()},
                 {"metadata", metadata.is_null() ? json::object() : metadata},
                 {"tensors", table},
                 {"data_bytes", data.size()}};
  const std::string bytes = compose(header, kModelFormatVersion, data.data(), data.size());
  try {
    write_file_atomically(path, bytes);
  } catch (const std::exception& e) {
    throw ModelFileError(std::string("saving model: ") + e.what());
  }
}

LoadedModel load_model(const std::string& path) { return load_model_from_bytes(read_model_bytes(path), path); }

LoadedModel load_model_from_bytes(std::string bytes, const std::string& path) {
  const auto p = parse_model(std::move(bytes), path);
  LoadedModel m;
  m.net = MCSANet(header_config(p, path));
  copy_weights(p, path, m.net);
  m.net->eval();
  m.metadata = p.header.value("metadata", json::object());
  m.face_recipe = p.recipe;
  m.calibration = p.calibration;
  m.format_version = p.version;
  return m;
}

json load_weights(const std::string& path, MCSANet& net) {
  const auto p = read_and_verify(path);
  const auto file_config = header_config(p, path);
  const auto diff = architecture_mismatch(file_config, net->config());
  if (!diff.empty()) {
    throw ModelFileError("model file " + path + ": architecture differs in field " + diff +
                         " (file vs network)");
  }
  copy_weights(p, path, net);
  return p.header.value("metadata", json::object());
}

ModelConfig read_model_config(const std::string& path, json* metadata) {
  const auto p = read_and_verify(path);
  if (metadata) *metadata = p.header.value("metadata", json::object());
  return header_config(p, path);
}

ModelHeader read_model_header(const std::string& path) {
  const auto p = read_and_verify(path);
  ModelHeader h;
  h.format_version = p.version;
  h.config = header_config(p, path);
  h.metadata = p.header.value("metadata", json::object());
  h.face_recipe = p.recipe;
  h.recipe_stored = p.version >= 2;
  h.calibration = p.calibration;
  return h;
}

FaceRecipe read_face_recipe(const std::string& path) { return read_and_verify(path).recipe; }

namespace {

// Rewrites the header of a file that loads (weights byte for byte the same) as the current
// version, with `edit` applied to it.
void rewrite_header(const std::string& path, const std::string& out_path, const std::function<void(json&)>& edit) {
  const auto p = read_and_verify(path);
  header_config(p, path);  // a file that does not load is not rewritten
  json header = p.header;
  header["version"] = kModelFormatVersion;
  header["face_recipe"] = to_json(p.recipe);  // a version-1 file keeps the recipe it is served with
  edit(header);
  const size_t data_size = p.bytes.size() - 8 - p.data_start;
  const std::string bytes = compose(header, kModelFormatVersion, p.bytes.data() + p.data_start, data_size);
  try {
    write_file_atomically(out_path, bytes);
  } catch (const std::exception& e) {
    throw ModelFileError(std::string("saving model: ") + e.what());
  }
}

}  // namespace

void rewrite_face_recipe(const std::string& path, const FaceRecipe& recipe, const std::string& out_path) {
  recipe.validate();
  rewrite_header(path, out_path, [&](json& header) { header["face_recipe"] = to_json(recipe); });
}

void rewrite_calibration(const std::string& path, const Calibration& calibration, const std::string& out_path) {
  Calibration::from_json(calibration.to_json(), "calibration");  // validates
  rewrite_header(path, out_path, [&](json& header) { header["calibration"] = calibration.to_json(); });
}

json Calibration::to_json() const {
  json j = fit.is_object() ? fit : json::object();
  j["temperature"] = temperature;
  return j;
}

Calibration Calibration::from_json(const json& j, const std::string& where) {
  auto bad = [&](const std::string& why) { throw std::invalid_argument(where + ": field 'calibration.temperature' " + why); };
  if (!j.is_object()) throw std::invalid_argument(where + ": field 'calibration' is not an object (" + j.dump() + ")");
  if (!j.contains("temperature")) bad("is missing");
  const auto& t = j.at("temperature");
  if (!t.is_number()) bad("is not a number (" + t.dump() + ")");
  Calibration c;
  c.temperature = t.get<double>();
  if (!(c.temperature >= kMinTemperature && c.temperature <= kMaxTemperature)) {
    std::ostringstream range;
    range << "[" << kMinTemperature << ", " << kMaxTemperature << "]";
    bad("is " + t.dump() + ", expected a number in " + range.str());
  }
  c.fit = j;
  c.fit.erase("temperature");
  return c;
}

}  // namespace fervid
