// `fervid data check | preview` and `fervid train` on image folders as a user lays them out:
// class folders without split folders, flat JAFFE-named photo folders, contempt kept or
// dropped, the detector and CK+ flags, and errors that speak in flags and paths. Fixtures are
// crops of the demo portrait (examples/astronaut.png) written into a temp folder per test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "../cli_runner.h"
#include "vision_test_util.h"

namespace fs = std::filesystem;
using fervid::test::run;
using nlohmann::json;

namespace {

class CliDataFolders : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fervid_cli_data_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    astronaut_ = cv::imread(std::string(FERVID_SOURCE_DIR) + "/examples/astronaut.png");
    ASSERT_FALSE(astronaut_.empty());
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The portrait's head and shoulders (one face, about half the side) at side x side.
  cv::Mat portrait(int side) const {
    cv::Mat out;
    cv::resize(astronaut_(cv::Rect(128, 20, 180, 180)), out, cv::Size(side, side), 0, 0, cv::INTER_AREA);
    return out;
  }
  // The face region only, as a face-crop dataset holds it (about the detector's box).
  cv::Mat crop(int dx) const { return astronaut_(cv::Rect(150 + dx, 40, 160, 160)).clone(); }
  // Two portraits, 200 and 140 px: two faces.
  cv::Mat two_portraits() const {
    cv::Mat canvas(220, 420, CV_8UC3, cv::Scalar(128, 128, 128));
    portrait(200).copyTo(canvas(cv::Rect(0, 10, 200, 200)));
    portrait(140).copyTo(canvas(cv::Rect(260, 40, 140, 140)));
    return canvas;
  }
  std::string p(const std::string& relative) const { return (dir_ / relative).string(); }
  void write(const std::string& relative, const cv::Mat& image) const {
    fervid::test::write_image(dir_ / relative, image);
  }
  static json parse(const fervid::test::Result& r) {
    try {
      return json::parse(r.out);
    } catch (const json::exception&) {
      ADD_FAILURE() << "not JSON: " << r.out;
      return json::object();
    }
  }

  fs::path dir_;
  cv::Mat astronaut_;
};

TEST_F(CliDataFolders, ClassFoldersWithoutSplitFolders) {
  write("crops/happy/a.png", crop(0));
  write("crops/happy/b.png", crop(8));
  write("crops/sad/c.png", crop(-8));
  auto r = run("data check " + p("crops") + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = parse(r);
  EXPECT_EQ(j["format"], "folder");
  EXPECT_EQ(j["samples"], 3);
  EXPECT_EQ(j["counts"]["Training"]["happy"], 2);
  EXPECT_EQ(j["counts"]["Training"]["sad"], 1);
  EXPECT_EQ(j["counts"].size(), 1u) << "one split";
  // Text: the table, and no C++ names anywhere.
  r = run("data check " + p("crops"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("read " + p("crops") + ": 3 entries, 3 kept, 0 skipped"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("::"), std::string::npos) << r.out;
  // Preview: every split by default; a split the data lacks and a name that is no split are
  // errors that list what there is.
  r = run("data preview " + p("crops") + " --out " + p("grid.png"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(fs::exists(p("grid.png")));
  r = run("data preview " + p("crops") + " --split test --out " + p("grid2.png"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--split test: " + p("crops") + " has no PrivateTest samples; it has: Training, all"),
            std::string::npos)
      << r.out;
  r = run("data preview " + p("crops") + " --split bogus --out " + p("grid2.png"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--split 'bogus' is not a split; " + p("crops") + " has: Training, all"), std::string::npos)
      << r.out;
  EXPECT_FALSE(fs::exists(p("grid2.png")));
}

TEST_F(CliDataFolders, JaffeStylePhotoFolder) {
  write("jaffe/KA.HA1.1.png", two_portraits());  // two faces: the larger kept, noted
  write("jaffe/KA.SA1.2.png", portrait(160));
  write("jaffe/KB.NE1.3.png", cv::Mat(160, 160, CV_8UC3, cv::Scalar(90, 90, 90)));  // no face: skipped
  write("jaffe/portrait.png", portrait(160));                                      // no code: skipped
  write("jaffe/more/KC.AN1.4.png", portrait(160));                                 // sub-folder: not read
  auto r = run("data check " + p("jaffe") + " --format photos --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = parse(r);
  EXPECT_EQ(j["samples"], 2);
  EXPECT_EQ(j["subjects"], 1);  // KA (KB's only image has no face)
  EXPECT_EQ(j["counts"]["Training"]["happy"], 1);
  EXPECT_EQ(j["counts"]["Training"]["sad"], 1);
  EXPECT_EQ(j["read"]["entries_seen"], 4);
  EXPECT_EQ(j["read"]["skipped_by_field"]["name"], 1);
  EXPECT_EQ(j["read"]["skipped_by_field"]["face"], 1);
  EXPECT_EQ(j["faces"]["no_face"]["count"], 1);
  EXPECT_EQ(j["faces"]["no_face"]["files"], json::array({p("jaffe/KB.NE1.3.png")}));
  EXPECT_EQ(j["faces"]["several_faces"]["count"], 1);
  EXPECT_EQ(j["faces"]["several_faces"]["files"], json::array({p("jaffe/KA.HA1.1.png")}));
  bool named = false;
  for (const auto& issue : j["read"]["issues"]) named |= issue["where"] == p("jaffe/portrait.png") && issue["field"] == "name";
  EXPECT_TRUE(named) << j["read"]["issues"].dump();
  // The same as text, file names included.
  r = run("data check " + p("jaffe") + " --format photos");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("faces: 1 images without a face (skipped), 1 with several faces (the largest kept)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("no face: " + p("jaffe/KB.NE1.3.png")), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("several faces: " + p("jaffe/KA.HA1.1.png") + ": 2 faces found"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(p("jaffe/portrait.png") + ": field 'name' has no JAFFE expression code"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("note: " + p("jaffe/more") + ": not read"), std::string::npos) << r.out;
  // The detector flags reach the detector: a minimum face side above every face finds none.
  r = run("data check " + p("jaffe") + " --format photos --min-face 300 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  j = parse(r);
  EXPECT_EQ(j["samples"], 0);
  EXPECT_EQ(j["faces"]["no_face"]["count"], 3);
}

TEST_F(CliDataFolders, FlagsThatDoNotApplyOrAreOutOfRangeAreErrorsNamingThem) {
  write("crops/happy/a.png", crop(0));
  auto r = run("data check " + p("crops") + " --min-face 20");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--min-face applies to sources whose faces are detected (--format photos or ckplus); " +
                       p("crops") + " is read as --format folder"),
            std::string::npos)
      << r.out;
  r = run("data check " + p("crops") + " --format photos --scale-step 3");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--scale-step must be in (1, 2], got 3"), std::string::npos) << r.out;
  r = run("data check " + p("crops") + " --first-frame-neutral");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--first-frame-neutral applies to the original CK+ distribution (--format ckplus)"),
            std::string::npos)
      << r.out;
  r = run("data check " + p("empty"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find(p("empty") + ": no such file or folder"), std::string::npos) << r.out;
  fs::create_directories(p("empty"));
  r = run("data check " + p("empty"));
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find(p("empty") + ": empty folder"), std::string::npos) << r.out;
}

TEST_F(CliDataFolders, ContemptDroppedByDefaultKeptUnlabelledOnRequest) {
  write("ck/happy/a.png", crop(0));
  write("ck/contempt/b.png", crop(4));
  write("ck/contempt/c.png", crop(-4));
  auto r = run("data check " + p("ck") + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = parse(r);
  EXPECT_EQ(j["samples"], 1);
  EXPECT_EQ(j["read"]["skipped_by_field"]["class"], 2);
  EXPECT_FALSE(j["counts"]["Training"].contains("unlabelled"));
  r = run("data check " + p("ck") + " --keep-contempt --json");
  ASSERT_EQ(r.status, 0) << r.out;
  j = parse(r);
  EXPECT_EQ(j["samples"], 3);
  EXPECT_EQ(j["read"]["skipped"], 0);
  EXPECT_EQ(j["counts"]["Training"]["unlabelled"], 2);
  EXPECT_EQ(j["counts"]["Training"]["happy"], 1);
  EXPECT_EQ(j["counts"]["Training"]["total"], 3);
  r = run("data check " + p("ck") + " --keep-contempt");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("unlabelled"), std::string::npos) << r.out;
  r = run("data preview " + p("ck") + " --keep-contempt --out " + p("grid.png"));
  EXPECT_EQ(r.status, 0) << r.out;
}

TEST_F(CliDataFolders, CkPlusFrameFlags) {
  // The original layout: one labelled sequence (happy, code 5) of 4 frames showing a face.
  for (int f = 1; f <= 4; ++f) write("CK+/cohn-kanade-images/S005/001/S005_001_0000000" + std::to_string(f) + ".png", portrait(160));
  fs::create_directories(p("CK+/Emotion/S005/001"));
  std::ofstream(p("CK+/Emotion/S005/001/S005_001_00000004_emotion.txt")) << "   5.0000000e+00\n";
  auto r = run("data check " + p("CK+") + " --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = parse(r);
  EXPECT_EQ(j["format"], "ckplus");
  EXPECT_EQ(j["counts"]["Training"]["happy"], 3);
  EXPECT_EQ(j["counts"]["Training"]["neutral"], 0);
  r = run("data check " + p("CK+") + " --frames-per-sequence 2 --first-frame-neutral --json");
  ASSERT_EQ(r.status, 0) << r.out;
  j = parse(r);
  EXPECT_EQ(j["counts"]["Training"]["happy"], 2);
  EXPECT_EQ(j["counts"]["Training"]["neutral"], 1);
  EXPECT_EQ(j["subjects"], 1);
  r = run("data check " + p("CK+") + " --frames-per-sequence 0");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--frames-per-sequence must be >= 1, got 0"), std::string::npos) << r.out;
}

TEST_F(CliDataFolders, TrainReadsAClassFolderWithDetectorFlagsAndRecordsThem) {
  for (const char* cls : {"happy", "sad"}) {
    write(std::string("photos/") + cls + "/a.png", portrait(160));
    write(std::string("photos/") + cls + "/b.png", portrait(150));
  }
  const std::string cmd = "FERVID_CACHE=" + p("cache") + " " + FERVID_CLI_PATH +
                          " --threads 1 train --data " + p("photos") +
                          " --format photos --min-face 40 --neighbors 5 --scale-step 1.15 --train-split all"
                          " --val-fraction 0.5 --epochs 1 --batch 2 --width 0.125 --out " +
                          p("run") + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  ASSERT_EQ(pclose(pipe), 0) << out;
  std::ifstream in(p("run/config.json"));
  const auto config = json::parse(in);
  EXPECT_EQ(config["source"]["format"], "photos");
  EXPECT_EQ(config["source"]["min_face"], 40);
  EXPECT_EQ(config["source"]["neighbors"], 5);
  EXPECT_DOUBLE_EQ(config["source"]["scale_step"].get<double>(), 1.15);
  EXPECT_TRUE(config["source"]["margin"].is_null());
  // The model records the recipe its faces were cropped with: the flags over the defaults.
  const auto info = run("info --model " + p("run/last.fervid") + " --json");
  ASSERT_EQ(info.status, 0) << info.out;
  const auto recipe = json::parse(info.out)["model"]["face_recipe"];
  EXPECT_EQ(recipe["min_face"], 40);
  EXPECT_EQ(recipe["neighbors"], 5);
  EXPECT_DOUBLE_EQ(recipe["scale_step"].get<double>(), 1.15);
  EXPECT_EQ(recipe["margin"], 0.1);
  EXPECT_EQ(recipe["detector"], "blazeface");
  // The cache was written under FERVID_CACHE, not the user's cache folder.
  EXPECT_FALSE(fs::is_empty(p("cache")));
}

}  // namespace
