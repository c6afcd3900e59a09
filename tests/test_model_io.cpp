// Model files: round trip, and every way a file can be wrong.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <filesystem>
#include <fstream>

#include "fervid/model_io.h"
#include "model_file_bytes.h"
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
  // The file format, rebuilt independently of the library: preamble, header, data, FNV-1a 64.
  const auto parts = test::ModelFileBytes::read(path("m.fervid"));
  const auto& header = parts.header;
  auto rebuild = [&](const nlohmann::json& h) {
    auto f = parts;
    f.header = h;
    return f.bytes();
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

// A file that is not a model is refused after its first bytes, never read whole: a device that
// never ends (/dev/zero) and a large sparse file with a good preamble and a header claiming a
// huge data section.
TEST_F(ModelIo, AFileIsReadNoFurtherThanItsHeaderAllows) {
  EXPECT_NE(load_error("/dev/zero").find("not a fervid model"), std::string::npos) << load_error("/dev/zero");
  auto net = small();
  save_model(path("m.fervid"), net);
  auto parts = test::ModelFileBytes::read(path("m.fervid"));
  parts.header["data_bytes"] = uint64_t{1} << 40;  // a terabyte
  const auto file = path("huge.fervid");
  write(file, parts.bytes());
  fs::resize_file(file, uint64_t{3} << 30);  // 3 GB, sparse: reading it whole would take them
  const auto msg = load_error(file);
  EXPECT_NE(msg.find("data section of 1099511627776 bytes"), std::string::npos) << msg;
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
  EXPECT_THROW(load_model_from_bytes(std::string(64, '\0'), "<bytes>"), ModelFileError);
  EXPECT_NO_THROW(load_model_from_bytes(bytes_of(path("m.fervid")), "<bytes>"));
}

// Weights that are NaN or infinite (a diverged run) are refused by name, not served as "-nan%".
TEST_F(ModelIo, NonFiniteWeightsAreRefusedNamingTheTensor) {
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    auto net = small();
    {
      torch::NoGradGuard no_grad;
      net->parameters().front().view(-1)[0] = bad;
    }
    save_model(path("bad.fervid"), net);
    const auto msg = load_error(path("bad.fervid"));
    EXPECT_NE(msg.find("holds NaN or infinite values"), std::string::npos) << msg;
    EXPECT_NE(msg.find("tensor '"), std::string::npos) << msg;
    EXPECT_NE(msg.find("bad.fervid"), std::string::npos) << msg;
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

// ---- the face recipe (format version 2) -------------------------------------------------------

TEST_F(ModelIo, TheFaceRecipeTravelsWithTheModel) {
  auto net = small();
  FaceRecipe recipe;
  recipe.detector = "haar";
  recipe.margin = 0.25;
  recipe.offset_y = -0.05;
  recipe.align = true;
  recipe.align_with = "landmarks68";
  recipe.border = "constant";
  recipe.min_face = 44;
  save_model(path("m.fervid"), net, {{"note", "recipe"}}, recipe);
  EXPECT_EQ(read_face_recipe(path("m.fervid")), recipe);
  const auto loaded = load_model(path("m.fervid"));
  EXPECT_EQ(loaded.face_recipe, recipe);
  EXPECT_EQ(loaded.format_version, 2);
  const auto header = read_model_header(path("m.fervid"));
  EXPECT_EQ(header.format_version, kModelFormatVersion);
  EXPECT_TRUE(header.recipe_stored);
  EXPECT_EQ(header.face_recipe, recipe);
  EXPECT_EQ(header.metadata.at("note"), "recipe");
  // The header holds every option of the table by name.
  const auto parts = test::ModelFileBytes::read(path("m.fervid"));
  EXPECT_EQ(parts.version, 2u);
  ASSERT_TRUE(parts.header.contains("face_recipe"));
  EXPECT_EQ(parts.header["face_recipe"].size(), face_recipe_options().size());
  EXPECT_EQ(parts.header["face_recipe"]["margin"], 0.25);
  EXPECT_EQ(parts.header["face_recipe"]["detector"], "haar");
  // A default save records FaceRecipe{}.
  save_model(path("d.fervid"), net);
  EXPECT_EQ(read_face_recipe(path("d.fervid")), FaceRecipe{});
  // An invalid recipe is not written.
  recipe.margin = 5;
  EXPECT_THROW(save_model(path("bad.fervid"), net, {}, recipe), std::invalid_argument);
}

TEST_F(ModelIo, VersionOneFilesLoadWithTheVersionOneRecipe) {
  auto net = small();
  FaceRecipe aligned;
  aligned.align = true;
  save_model(path("v2.fervid"), net, {{"note", "old"}}, aligned);
  test::ModelFileBytes::read(path("v2.fervid")).as_version1().write(path("v1.fervid"));
  auto loaded = load_model(path("v1.fervid"));
  EXPECT_EQ(loaded.format_version, 1);
  EXPECT_EQ(loaded.face_recipe, FaceRecipe::version1());
  EXPECT_EQ(loaded.face_recipe.detector, "haar");
  EXPECT_EQ(loaded.face_recipe.margin, 0.1);
  EXPECT_FALSE(loaded.face_recipe.align);
  EXPECT_FALSE(read_model_header(path("v1.fervid")).recipe_stored);
  EXPECT_EQ(loaded.metadata.at("note"), "old");
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 1, 48, 48});
  net->eval();
  EXPECT_TRUE(torch::equal(net->forward(x).logits, loaded.net->forward(x).logits));
  // Versions 0 and 3 are refused, naming what this build reads.
  for (uint32_t v : {0u, 3u}) {
    auto other = test::ModelFileBytes::read(path("v2.fervid"));
    other.version = v;
    other.write(path("vx.fervid"));
    const auto msg = load_error(path("vx.fervid"));
    EXPECT_NE(msg.find("unsupported format version " + std::to_string(v)), std::string::npos) << msg;
    EXPECT_NE(msg.find("versions 1 to 2"), std::string::npos) << msg;
  }
}

TEST_F(ModelIo, AMalformedRecipeIsRefusedNamingTheFileAndTheField) {
  auto net = small();
  save_model(path("m.fervid"), net);
  const auto parts = test::ModelFileBytes::read(path("m.fervid"));
  struct Case {
    std::string name, expect;
    std::function<void(nlohmann::json&)> edit;
  };
  const std::vector<Case> cases = {
      {"detector", "field 'face_recipe.detector' must be blazeface or haar, got \"sift\"",
       [](auto& r) { r["detector"] = "sift"; }},
      {"margin", "field 'face_recipe.margin' must be in [0, 2], got 3", [](auto& r) { r["margin"] = 3; }},
      {"type", "field 'face_recipe.min_face' must be an integer in [1, 100000], got \"big\"",
       [](auto& r) { r["min_face"] = "big"; }},
      {"missing", "lacks field 'border'", [](auto& r) { r.erase("border"); }},
      {"unknown", "field 'face_recipe.sharpen' is not a face recipe option", [](auto& r) { r["sharpen"] = 1; }},
      {"sizes", "field 'face_recipe.max_face' (20) is smaller than", [](auto& r) { r["max_face"] = 20; }},
      {"absent", "header lacks field 'face_recipe'", [](auto& r) { r = nullptr; }},
  };
  for (const auto& c : cases) {
    auto crafted = parts;
    c.edit(crafted.header["face_recipe"]);
    if (crafted.header["face_recipe"].is_null()) crafted.header.erase("face_recipe");
    const auto file = path(c.name + ".fervid");
    crafted.write(file);
    const auto msg = load_error(file);
    EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
    EXPECT_NE(msg.find(file), std::string::npos) << c.name << ": " << msg;
    EXPECT_THROW(read_face_recipe(file), ModelFileError) << c.name;
  }
}

TEST_F(ModelIo, RewritingTheRecipeKeepsTheWeightsAndUpgradesVersionOne) {
  auto net = small();
  save_model(path("m.fervid"), net, {{"note", "keep"}});
  test::ModelFileBytes::read(path("m.fervid")).as_version1().write(path("v1.fervid"));
  FaceRecipe recipe;
  recipe.margin = 0.2;
  recipe.align = true;
  rewrite_face_recipe(path("v1.fervid"), recipe, path("v2.fervid"));
  const auto before = test::ModelFileBytes::read(path("m.fervid"));
  const auto after = test::ModelFileBytes::read(path("v2.fervid"));
  EXPECT_EQ(after.version, 2u);
  EXPECT_EQ(after.data, before.data);  // the weights byte for byte
  EXPECT_EQ(after.header["tensors"], before.header["tensors"]);
  EXPECT_EQ(after.header["metadata"], before.header["metadata"]);
  EXPECT_EQ(read_face_recipe(path("v2.fervid")), recipe);
  // In place, atomically: no temporary file is left; an invalid recipe leaves the file alone.
  recipe.detector = "haar";
  rewrite_face_recipe(path("v2.fervid"), recipe, path("v2.fervid"));
  EXPECT_EQ(read_face_recipe(path("v2.fervid")).detector, "haar");
  recipe.margin = -1;
  EXPECT_THROW(rewrite_face_recipe(path("v2.fervid"), recipe, path("v2.fervid")), std::invalid_argument);
  EXPECT_EQ(read_face_recipe(path("v2.fervid")).margin, 0.2);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir_)) files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 3u) << "m, v1, v2 and nothing else";
}

TEST_F(ModelIo, TheCalibrationTravelsWithTheModelAndIsCheckedByField) {
  auto net = small();
  save_model(path("plain.fervid"), net);
  EXPECT_EQ(load_model(path("plain.fervid")).calibration.temperature, 1.0);
  Calibration cal;
  cal.temperature = 1.75;
  cal.fit = {{"split", "PublicTest"}, {"samples", 10}};
  save_model(path("cal.fervid"), net, {{"note", "keep"}}, FaceRecipe{}, cal);
  const auto m = load_model(path("cal.fervid"));
  EXPECT_EQ(m.calibration.temperature, 1.75);
  EXPECT_EQ(m.calibration.fit.at("split"), "PublicTest");
  EXPECT_EQ(read_model_header(path("cal.fervid")).calibration.temperature, 1.75);
  // A header without the field (files written before it existed): temperature 1.
  auto parts = test::ModelFileBytes::read(path("cal.fervid"));
  parts.header.erase("calibration");
  parts.write(path("absent.fervid"));
  EXPECT_EQ(load_model(path("absent.fervid")).calibration.temperature, 1.0);
  // Bad values: an error naming the file and the field.
  const std::vector<std::pair<nlohmann::json, std::string>> cases = {
      {{{"temperature", 0.0}}, "'calibration.temperature' is 0.0, expected a number in [0.05, 20]"},
      {{{"temperature", 50}}, "'calibration.temperature' is 50"},
      {{{"temperature", "hot"}}, "'calibration.temperature' is not a number"},
      {{{"split", "x"}}, "'calibration.temperature' is missing"},
      {nlohmann::json::array(), "'calibration' is not an object"},
  };
  for (const auto& [value, expect] : cases) {
    auto crafted = test::ModelFileBytes::read(path("cal.fervid"));
    crafted.header["calibration"] = value;
    crafted.write(path("bad.fervid"));
    const auto msg = load_error(path("bad.fervid"));
    EXPECT_NE(msg.find(expect), std::string::npos) << value.dump() << ": " << msg;
    EXPECT_NE(msg.find(path("bad.fervid")), std::string::npos) << msg;
  }
  cal.temperature = -1;
  EXPECT_THROW(save_model(path("never.fervid"), net, {}, FaceRecipe{}, cal), std::invalid_argument);
  EXPECT_FALSE(fs::exists(path("never.fervid")));
}

TEST_F(ModelIo, RewritingTheCalibrationKeepsEverythingElse) {
  auto net = small();
  FaceRecipe recipe;
  recipe.margin = 0.3;
  save_model(path("m.fervid"), net, {{"note", "keep"}}, recipe);
  Calibration cal;
  cal.temperature = 0.8;
  cal.fit = {{"samples", 3}};
  rewrite_calibration(path("m.fervid"), cal, path("c.fervid"));
  const auto before = test::ModelFileBytes::read(path("m.fervid"));
  const auto after = test::ModelFileBytes::read(path("c.fervid"));
  EXPECT_EQ(after.data, before.data);
  EXPECT_EQ(after.header["metadata"], before.header["metadata"]);
  EXPECT_EQ(after.header["face_recipe"], before.header["face_recipe"]);
  EXPECT_EQ(load_model(path("c.fervid")).calibration.temperature, 0.8);
  // Version 1 is upgraded and keeps the recipe it is served with.
  before.as_version1().write(path("v1.fervid"));
  rewrite_calibration(path("v1.fervid"), cal, path("v1c.fervid"));
  EXPECT_EQ(read_face_recipe(path("v1c.fervid")), FaceRecipe::version1());
  EXPECT_EQ(load_model(path("v1c.fervid")).calibration.temperature, 0.8);
  // An invalid calibration leaves the file alone.
  cal.temperature = 100;
  EXPECT_THROW(rewrite_calibration(path("c.fervid"), cal, path("c.fervid")), std::invalid_argument);
  EXPECT_EQ(load_model(path("c.fervid")).calibration.temperature, 0.8);
}
