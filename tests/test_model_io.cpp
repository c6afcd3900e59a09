// Model files: round trip, and every way a file can be wrong.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <filesystem>
#include <fstream>

#include "fervid/model_io.h"
#include "test_util.h"

using namespace fervid;
namespace fs = std::filesystem;

namespace {

class ModelIo : public fervid::test::TempDirTest {
 protected:
  static MCSANet small(Variant v = Variant::kMcsa) {
    ModelConfig c;
    c.variant = v;
    c.width = 0.25;
    c.input_size = 48;
    return MCSANet(c);
  }
  static std::string bytes_of(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }
  static void write(const std::string& p, const std::string& b) {
    std::ofstream(p, std::ios::binary).write(b.data(), static_cast<long>(b.size()));
  }
  // The error message of load_model(p), or "" if it loaded.
  static std::string load_error(const std::string& p) {
    try {
      load_model(p);
    } catch (const ModelFileError& e) {
      return e.what();
    }
    return "";
  }
};

}  // namespace

TEST_F(ModelIo, SaveThenLoadGivesIdenticalLogits) {
  auto net = small();
  // Train-mode steps so BN running statistics differ from their defaults.
  for (int i = 0; i < 3; ++i) net->forward(torch::randn({4, 1, 48, 48}));
  net->eval();
  save_model(path("m.fervid"), net, {{"note", "unit test"}});
  auto loaded = load_model(path("m.fervid"));
  EXPECT_EQ(loaded.metadata.at("note"), "unit test");
  EXPECT_EQ(architecture_mismatch(loaded.net->config(), net->config()), "");
  torch::NoGradGuard no_grad;
  auto x = torch::randn({3, 1, 48, 48});
  EXPECT_TRUE(torch::equal(net->forward(x).logits, loaded.net->forward(x).logits));
  EXPECT_TRUE(torch::equal(net->forward(x).embedding, loaded.net->forward(x).embedding));
  EXPECT_FALSE(fs::exists(path("m.fervid.tmp." + std::to_string(::getpid()))));
}

TEST_F(ModelIo, LoadWeightsIntoADifferentArchitectureNamesTheField) {
  auto net = small(Variant::kMcsa);
  save_model(path("m.fervid"), net);
  auto other = small(Variant::kVgg16);
  try {
    load_weights(path("m.fervid"), other);
    FAIL() << "mcsa weights loaded into vgg16";
  } catch (const ModelFileError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("architecture differs in field variant"), std::string::npos) << msg;
    EXPECT_NE(msg.find("\"mcsa\""), std::string::npos) << msg;
    EXPECT_NE(msg.find(path("m.fervid")), std::string::npos) << msg;
  }
  ModelConfig wide = net->config();
  wide.width = 0.5;
  MCSANet wider(wide);
  try {
    load_weights(path("m.fervid"), wider);
    FAIL();
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("field width"), std::string::npos) << e.what();
  }
  auto same = small(Variant::kMcsa);
  EXPECT_NO_THROW(load_weights(path("m.fervid"), same));
}

TEST_F(ModelIo, TruncatedForeignCorruptedAndNewerFilesAreRefused) {
  auto net = small();
  save_model(path("m.fervid"), net);
  const auto good = bytes_of(path("m.fervid"));

  write(path("short.fervid"), good.substr(0, good.size() / 2));
  EXPECT_NE(load_error(path("short.fervid")).find("truncated"), std::string::npos);
  write(path("tiny.fervid"), good.substr(0, 10));
  EXPECT_NE(load_error(path("tiny.fervid")).find("truncated"), std::string::npos);

  write(path("foreign.pt"), "PK\x03\x04 this is a zip, not a fervid model");
  EXPECT_NE(load_error(path("foreign.pt")).find("not a fervid model"), std::string::npos);
  write(path("empty.fervid"), "");
  EXPECT_NE(load_error(path("empty.fervid")).find("not a fervid model"), std::string::npos);

  auto flipped = good;
  flipped[flipped.size() - 100] ^= 0x40;  // a weight byte
  write(path("flip.fervid"), flipped);
  EXPECT_NE(load_error(path("flip.fervid")).find("checksum mismatch"), std::string::npos);

  auto newer = good;
  newer[8] = 9;  // the version field follows the 8-byte magic
  write(path("v9.fervid"), newer);
  const auto msg = load_error(path("v9.fervid"));
  EXPECT_NE(msg.find("unsupported format version 9"), std::string::npos) << msg;

  EXPECT_NE(load_error(path("absent.fervid")).find("cannot open"), std::string::npos);
  EXPECT_NE(load_error(path("absent.fervid")).find("absent.fervid"), std::string::npos);
}

// A file whose header was edited and whose checksum was recomputed (as anyone can): every bad
// field of the tensor table is refused with the file's name and the field, never a crash or a
// read outside the file.
TEST_F(ModelIo, CraftedTensorTablesAreRefusedByName) {
  auto net = small();
  save_model(path("m.fervid"), net);
  const auto good = bytes_of(path("m.fervid"));
  const size_t preamble = 8 + 4 + 8;
  uint64_t header_size = 0;
  std::memcpy(&header_size, good.data() + 12, 8);
  const auto header = nlohmann::json::parse(good.substr(preamble, header_size));
  const auto data = good.substr(preamble + header_size, good.size() - preamble - header_size - 8);
  // The file format, rebuilt independently of the library: preamble, header, data, FNV-1a 64.
  auto rebuild = [&](const nlohmann::json& h) {
    const auto text = h.dump();
    std::string out = good.substr(0, 12);
    const uint64_t n = text.size();
    out.append(reinterpret_cast<const char*>(&n), 8);
    out += text;
    out += data;
    uint64_t f = 1469598103934665603ull;
    for (unsigned char c : out) f = (f ^ c) * 1099511628211ull;
    out.append(reinterpret_cast<const char*>(&f), 8);
    return out;
  };
  write(path("same.fervid"), rebuild(header));
  ASSERT_EQ(load_error(path("same.fervid")), "");  // the rebuild itself is faithful

  struct Case {
    std::string name, expect;
    std::function<void(nlohmann::json&)> edit;
  };
  const std::vector<Case> cases = {
      {"no-offset", "malformed tensor table", [](auto& h) { h["tensors"][0].erase("offset"); }},
      {"string-shape", "malformed tensor table", [](auto& h) { h["tensors"][0]["shape"] = "big"; }},
      {"no-table", "malformed tensor table", [](auto& h) { h.erase("tensors"); }},
      {"dtype", "unknown dtype 'float99'", [](auto& h) { h["tensors"][0]["dtype"] = "float99"; }},
      {"overflow", "lies outside the data section",
       [](auto& h) { h["tensors"][0]["offset"] = std::numeric_limits<uint64_t>::max() - 3; }},
      {"past-end", "lies outside the data section",
       [](auto& h) { h["tensors"][0]["offset"] = h["data_bytes"].template get<uint64_t>() - 4; }},
      {"nbytes", "bytes, its shape and dtype", [](auto& h) { h["tensors"][0]["nbytes"] = 4; }},
      {"shape", "the network expects", [](auto& h) { h["tensors"][0]["shape"] = {1, 2, 3}; }},
  };
  for (const auto& c : cases) {
    auto h = header;
    c.edit(h);
    const auto file = path(c.name + ".fervid");
    write(file, rebuild(h));
    const auto msg = load_error(file);
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
    EXPECT_NE(msg.find(file), std::string::npos) << c.name << ": " << msg;
  }
}

TEST_F(ModelIo, ConfigIsReadFromTheHeaderAlone) {
  auto net = small(Variant::kMsa);
  save_model(path("m.fervid"), net, {{"command", "fervid train ..."}});
  nlohmann::json meta;
  const auto c = read_model_config(path("m.fervid"), &meta);
  EXPECT_EQ(c.variant, Variant::kMsa);
  EXPECT_EQ(c.input_size, 48);
  EXPECT_EQ(meta.at("command"), "fervid train ...");
}

TEST_F(ModelIo, FailedSaveLeavesTheOldFileIntact) {
  auto net = small();
  save_model(path("m.fervid"), net);
  const auto before = bytes_of(path("m.fervid"));
  EXPECT_THROW(save_model(path("no/such/dir/m.fervid"), net), ModelFileError);
  auto other = small(Variant::kM);
  save_model(path("m.fervid"), other);  // overwrite works and is complete
  EXPECT_NE(bytes_of(path("m.fervid")), before);
  EXPECT_EQ(read_model_config(path("m.fervid")).variant, Variant::kM);
}
