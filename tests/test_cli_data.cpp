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

#ifdef FERVID_WITH_OPENCV  // image sources and PNG output need OpenCV
TEST(CliData, CheckCkPlus48) {
  auto r = run("data check " + (data_dir() / "ckplus/CK+48").string() + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["read"]["entries_seen"], 981);
  EXPECT_EQ(j["samples"], 927);
  EXPECT_EQ(j["read"]["skipped"], 54);  // contempt
  EXPECT_EQ(j["subjects"], 106);  // of the 118 subjects, 12 posed only contempt (MANIFEST.tsv agrees)
}
#endif

#ifdef FERVID_WITH_OPENCV  // image sources and PNG output need OpenCV
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
#endif

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

// FER2013 and FER+ are two files: each is counted on its own line, not added together.
TEST(CliData, FerPlusCountsAreReportedPerFile) {
  const auto fer = data_dir() / "fer2013/fer2013.csv.gz";
  const auto plus = data_dir() / "fer2013/fer2013new.csv";
  auto r = run("data check " + fer.string() + " --ferplus " + plus.string() + " --json");
  ASSERT_EQ(r.status, 0) << r.out.substr(0, 2000);
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["read"]["entries_seen"], 35887);
  EXPECT_EQ(j["read"]["entries_kept"], 35887);
  EXPECT_EQ(j["ferplus"]["read"]["entries_seen"], 35887);
  EXPECT_EQ(j["samples"], j["ferplus"]["read"]["entries_kept"]);
  EXPECT_EQ(j["ferplus"]["read"]["entries_kept"].get<int>() + j["ferplus"]["read"]["skipped"].get<int>(), 35887);
  // Each skipped FER+ row gives the one reason that applied.
  for (const auto& issue : j["ferplus"]["read"]["issues"]) {
    const auto m = issue["message"].get<std::string>();
    if (issue["field"] != "votes") continue;
    const int reasons = (m.find("tie between") != std::string::npos) + (m.find("no majority") != std::string::npos) +
                        (m.find("not one of the 7") != std::string::npos) +
                        (m.find("more than one vote (FER+ drops") != std::string::npos);
    ASSERT_EQ(reasons, 1) << m;
  }
}

TEST(CliData, FerPlusTextReportOnSmallFiles) {
  const auto dir = fs::temp_directory_path() / ("fervid_ferplus_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string pixels;
  for (int i = 0; i < 2304; ++i) pixels += (i ? " " : "") + std::to_string(i % 256);
  std::ofstream(dir / "fer.csv") << "emotion,pixels,Usage\n0," << pixels << ",Training\n3," << pixels
                                 << ",PublicTest\n6," << pixels << ",PrivateTest\n";
  std::ofstream(dir / "new.csv")
      << "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
      << "Training,fer0.png,0,0,0,0,10,0,0,0,0,0\n"
      << "PublicTest,fer1.png,4,4,2,0,0,0,0,0,0,0\n"
      << "PrivateTest,fer2.png,2,8,0,0,0,0,0,0,0,0\n";
  auto r = run("data check " + (dir / "fer.csv").string() + " --ferplus " + (dir / "new.csv").string());
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("read " + (dir / "fer.csv").string() + ": 3 entries, 3 kept, 0 skipped\n"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("read " + (dir / "new.csv").string() + " (FER+ labels): 3 rows, 2 labelled, 1 skipped"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find((dir / "new.csv").string() +
                       ":3: field 'votes' no label under the majority rule: tie between neutral and happiness "
                       "(4 votes each)\n"),
            std::string::npos)
      << r.out;
  fs::remove_all(dir);
}

#ifdef FERVID_WITH_OPENCV  // image sources and PNG output need OpenCV
// An unlabelled photo folder (the face_recognition examples): read, not refused; every image
// is a counted skip naming it, and the sub-folder that was not read is said.
TEST(CliData, PhotoFolderWithoutLabelsIsReportedNotRefused) {
  const auto examples = data_dir() / "faces/face_recognition/examples";
  auto r = run("data check " + examples.string() + " --format photos --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["samples"], 0);
  EXPECT_EQ(j["read"]["entries_seen"], 9);  // the 9 photos at its top level
  EXPECT_EQ(j["read"]["skipped_by_field"]["name"], 9);
  EXPECT_EQ(j["read"]["notes_by_field"]["folder"], 1);
  EXPECT_EQ(j["read"]["notes"][0]["where"], (examples / "knn_examples").string());
  bool named = false;
  for (const auto& issue : j["read"]["issues"]) named |= issue["where"] == (examples / "two_people.jpg").string();
  EXPECT_TRUE(named);
}
#endif

#ifdef FERVID_WITH_OPENCV  // image sources and PNG output need OpenCV
TEST(CliData, CkPlus48ContemptKeptUnlabelled) {
  auto r = run("data check " + (data_dir() / "ckplus/CK+48").string() + " --keep-contempt --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["samples"], 981);
  EXPECT_EQ(j["read"]["skipped"], 0);
  EXPECT_EQ(j["counts"]["Training"]["unlabelled"], 54);
  EXPECT_EQ(j["subjects"], 118);
}
#endif
