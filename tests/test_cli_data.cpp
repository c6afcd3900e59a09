// `fervid data check | preview` on the shared datasets (ctest labels: data, cli).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "data_dir.h"

using fervid::test::data_dir;
using fervid::test::run;
namespace fs = std::filesystem;

TEST(CliData, CheckFer2013Json) {
  auto r = run("data check " + (data_dir() / "fer2013/fer2013.csv.gz").string() + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["samples"], 35887);
  EXPECT_EQ(j["counts"]["Training"]["total"], 28709);
  EXPECT_EQ(j["counts"]["PublicTest"]["happy"], 895);
  EXPECT_EQ(j["counts"]["PrivateTest"]["disgust"], 55);
  std::map<std::string, int> across;
  for (const auto& a : j["duplicates"]["across_splits"]) {
    across[a["split"].get<std::string>() + "<" + a["also_in"].get<std::string>()] = a["images"];
  }
  EXPECT_EQ(across["PublicTest<Training"], 279);
  EXPECT_EQ(across["PrivateTest<Training"], 286);
  EXPECT_EQ(across["PrivateTest<PublicTest"], 44);
  EXPECT_EQ(j["blank_images"]["count"], 12);
}

TEST(CliData, CheckCkPlus48) {
  auto r = run("data check " + (data_dir() / "ckplus/CK+48").string() + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["read"]["entries_seen"], 981);
  EXPECT_EQ(j["samples"], 927);
  EXPECT_EQ(j["read"]["skipped"], 54);  // contempt
  EXPECT_EQ(j["subjects"], 106);  // of the 118 subjects, 12 posed only contempt (MANIFEST.tsv agrees)
}

TEST(CliData, PreviewWritesAPng) {
  const auto out = fs::temp_directory_path() / ("fervid_preview_" + std::to_string(::getpid()) + ".png");
  auto r = run("data preview " + (data_dir() / "ckplus/CK+48").string() + " --split all --out " + out.string());
  ASSERT_EQ(r.status, 0) << r.out;
  std::ifstream in(out, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
  EXPECT_GT(fs::file_size(out), 10000u);
  fs::remove(out);
}

TEST(CliData, BadSourcesFailNamingThem) {
  auto r = run("data check /no/such/fer.csv");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("/no/such/fer.csv"), std::string::npos) << r.out;
  const auto bad = fs::temp_directory_path() / ("fervid_bad_" + std::to_string(::getpid()) + ".csv");
  std::ofstream(bad) << "emotion,pixels,Usage\n9,1 2 3,Training\n";
  r = run("data check " + bad.string() + " --strict");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find(bad.string() + ":2: field 'emotion'"), std::string::npos) << r.out;
  r = run("data check " + bad.string() + " --json");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out)["read"]["skipped"], 1);
  fs::remove(bad);
}
