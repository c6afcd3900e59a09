// Image-folder and CK+ readers on small synthetic trees built in a temp folder: layouts,
// class-name mapping, contempt, empty and unknown folders, unreadable images, CK+ label files.
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>

#include "fervid/image_readers.h"
#include "fervid/labels.h"
#include "vision_test_util.h"

namespace fervid {
namespace {

using test::TempDir;

int label_of(const char* name) { return *expression_index(name); }

std::string data_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  return "<no DataError>";
}

// A gray image of one level, so a test can tell which file a sample came from.
cv::Mat flat(int w, int h, int level) { return cv::Mat(h, w, CV_8UC1, cv::Scalar(level)); }

void expect_all(const Dataset& ds, size_t i, int level) {
  const uint8_t* p = ds.image(i);
  EXPECT_TRUE(std::all_of(p, p + ds.image_bytes(), [&](uint8_t v) { return v == level; }))
      << "sample " << i << " (" << ds.origins[i] << ") is not all " << level;
}

TEST(ImageFolder, SplitLayoutWithKaggleAndCkSpellings) {
  TempDir dir;
  const auto& r = dir.path();
  test::write_image(r / "train" / "happy" / "b.png", flat(60, 60, 10));
  test::write_image(r / "train" / "happy" / "a.jpg", flat(30, 40, 20));  // not square: stretched
  test::write_image(r / "train" / "anger" / "c.bmp", cv::Mat(48, 48, CV_8UC3, cv::Scalar(30, 30, 30)));
  test::write_image(r / "test" / "Sadness" / "d.png", flat(100, 100, 40));
  test::write_bytes(r / "train" / "happy" / "README.txt", {'h', 'i'});  // not an image: ignored
  test::write_bytes(r / "train" / "happy" / ".hidden.png", {'x'});      // hidden: ignored
  ReadReport rep;
  const Dataset ds = read_image_folder(r.u8string(), {}, &rep);
  ds.check_consistent();
  ASSERT_EQ(ds.size(), 4u);
  EXPECT_EQ(ds.height, 48);
  EXPECT_EQ(ds.width, 48);
  EXPECT_EQ(rep.entries_seen, 4u);
  EXPECT_EQ(rep.entries_kept, 4u);
  EXPECT_EQ(rep.skipped, 0u);
  // Byte order of names: split folders test < train, classes anger < happy, files a < b.
  EXPECT_EQ(ds.labels[0], label_of("sad"));
  EXPECT_EQ(ds.splits[0], Split::kPrivateTest);
  EXPECT_EQ(ds.labels[1], label_of("angry"));
  EXPECT_EQ(ds.labels[2], label_of("happy"));
  EXPECT_EQ(ds.labels[3], label_of("happy"));
  EXPECT_EQ(ds.splits[1], Split::kTraining);
  EXPECT_NE(ds.origins[2].find("a.jpg"), std::string::npos);
  EXPECT_NE(ds.origins[3].find("b.png"), std::string::npos);
  expect_all(ds, 0, 40);
  expect_all(ds, 1, 30);
  expect_all(ds, 3, 10);
  EXPECT_EQ(ds.subjects[0], -1);
  // Only one split.
  ImageFolderOptions only;
  only.split = Split::kPrivateTest;
  EXPECT_EQ(read_image_folder(r.u8string(), only).size(), 1u);
  only.split = Split::kPublicTest;
  EXPECT_NE(
      data_error_of([&] { read_image_folder(r.u8string(), only); }).find("no folder for split PublicTest"),
      std::string::npos);
}

TEST(ImageFolder, ClassLayoutNeedsASplitAndHonoursSize) {
  TempDir dir;
  const auto& r = dir.path();
  test::write_image(r / "surprise" / "x.png", flat(20, 20, 99));
  test::write_image(r / "neutral" / "y.png", flat(20, 20, 5));
  const std::string msg = data_error_of([&] { read_image_folder(r.u8string()); });
  EXPECT_NE(msg.find("give ImageFolderOptions::split"), std::string::npos) << msg;
  ImageFolderOptions o;
  o.split = Split::kPublicTest;
  o.size = 64;
  const Dataset ds = read_image_folder(r.u8string(), o);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds.height, 64);
  EXPECT_EQ(ds.labels[0], label_of("neutral"));
  EXPECT_EQ(ds.labels[1], label_of("surprise"));
  EXPECT_EQ(ds.splits[1], Split::kPublicTest);
  expect_all(ds, 1, 99);
}

TEST(ImageFolder, UnknownClassFolderIsAnErrorNamingIt) {
  TempDir dir;
  test::write_image(dir.path() / "train" / "happy" / "a.png", flat(10, 10, 1));
  test::write_image(dir.path() / "train" / "bored" / "b.png", flat(10, 10, 1));
  const std::string msg = data_error_of([&] { read_image_folder(dir.path().u8string()); });
  EXPECT_NE(msg.find((dir.path() / "train" / "bored").u8string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("class folder 'bored'"), std::string::npos) << msg;
}

TEST(ImageFolder, ContemptIsDroppedAndCountedOrRefused) {
  TempDir dir;
  ImageFolderOptions o;
  o.split = Split::kTraining;
  test::write_image(dir.path() / "happy" / "a.png", flat(10, 10, 1));
  test::write_image(dir.path() / "contempt" / "b.png", flat(10, 10, 2));
  test::write_image(dir.path() / "contempt" / "c.png", flat(10, 10, 3));
  ReadReport rep;
  const Dataset ds = read_image_folder(dir.path().u8string(), o, &rep);
  EXPECT_EQ(ds.size(), 1u);
  EXPECT_EQ(rep.entries_seen, 3u);
  EXPECT_EQ(rep.skipped, 2u);
  ASSERT_EQ(rep.issues.size(), 2u);
  EXPECT_EQ(rep.issues[0].field, "class");
  EXPECT_NE(rep.issues[0].where.find("b.png"), std::string::npos);
  o.drop_contempt = false;
  const std::string msg = data_error_of([&] { read_image_folder(dir.path().u8string(), o); });
  EXPECT_NE(msg.find("class folder 'contempt'"), std::string::npos) << msg;
}

TEST(ImageFolder, EmptyFoldersAreErrorsNamingThem) {
  TempDir dir;
  const auto root = dir.path() / "root";
  std::string msg = data_error_of([&] { read_image_folder(root.u8string()); });
  EXPECT_NE(msg.find(root.u8string() + ": dataset folder not found"), std::string::npos) << msg;
  std::filesystem::create_directories(root);
  msg = data_error_of([&] { read_image_folder(root.u8string()); });
  EXPECT_NE(msg.find(root.u8string() + ": empty folder"), std::string::npos) << msg;
  std::filesystem::create_directories(root / "train");
  msg = data_error_of([&] { read_image_folder(root.u8string()); });
  EXPECT_NE(msg.find((root / "train").u8string() + ": no class folders"), std::string::npos) << msg;
  std::filesystem::create_directories(root / "train" / "fear");
  test::write_bytes(root / "train" / "fear" / "notes.txt", {'x'});
  msg = data_error_of([&] { read_image_folder(root.u8string()); });
  EXPECT_NE(msg.find((root / "train" / "fear").u8string() + ": empty class folder"), std::string::npos)
      << msg;
  // A stray non-split folder next to split folders.
  test::write_image(root / "train" / "fear" / "a.png", flat(10, 10, 1));
  test::write_image(root / "happy" / "b.png", flat(10, 10, 1));
  msg = data_error_of([&] { read_image_folder(root.u8string()); });
  EXPECT_NE(msg.find("folder 'happy' is not a split"), std::string::npos) << msg;
}

TEST(ImageFolder, UnreadableImageIsACountedSkipOrAStrictError) {
  TempDir dir;
  test::write_image(dir.path() / "train" / "fear" / "good.png", flat(10, 10, 1));
  const auto bad = dir.path() / "train" / "fear" / "broken.png";
  test::write_bytes(bad, {'n', 'o', 't', ' ', 'a', ' ', 'p', 'n', 'g'});
  ReadReport rep;
  const Dataset ds = read_image_folder(dir.path().u8string(), {}, &rep);
  EXPECT_EQ(ds.size(), 1u);
  EXPECT_EQ(rep.entries_seen, 2u);
  EXPECT_EQ(rep.entries_kept, 1u);
  EXPECT_EQ(rep.skipped, 1u);
  ASSERT_EQ(rep.issues.size(), 1u);
  EXPECT_EQ(rep.issues[0].where, bad.u8string());
  EXPECT_EQ(rep.issues[0].field, "file");
  EXPECT_NE(rep.issues[0].message.find("not an image format"), std::string::npos) << rep.issues[0].message;
  ImageFolderOptions strict;
  strict.strict = true;
  const std::string msg = data_error_of([&] { read_image_folder(dir.path().u8string(), strict); });
  EXPECT_NE(msg.find(bad.u8string()), std::string::npos) << msg;
  // A header over the pixel limit is a counted skip too, not an allocation.
  test::write_bytes(dir.path() / "train" / "fear" / "huge.png", test::crafted_png(30000, 30000));
  ReadReport rep2;
  EXPECT_EQ(read_image_folder(dir.path().u8string(), {}, &rep2).size(), 1u);
  EXPECT_EQ(rep2.skipped, 2u);
}

TEST(ImageFolder, NonAsciiFolderNames) {
  TempDir dir;
  const auto root = dir.path() / std::filesystem::u8path(u8"visages-été");
  test::write_image(root / "train" / "happy" / std::filesystem::u8path(u8"sourire-ü.png"), flat(12, 12, 77));
  const Dataset ds = read_image_folder(root.u8string());
  ASSERT_EQ(ds.size(), 1u);
  expect_all(ds, 0, 77);
  EXPECT_NE(ds.origins[0].find(u8"sourire-ü.png"), std::string::npos);
}

TEST(CkPlus48, SubjectsFromFileNames) {
  TempDir dir;
  test::write_image(dir.path() / "anger" / "S010_004_00000017.png", flat(48, 48, 1));
  test::write_image(dir.path() / "happy" / "S137_001_00000012.png", flat(48, 48, 2));
  test::write_image(dir.path() / "happy" / "face7.png", flat(48, 48, 3));
  ReadReport rep;
  const Dataset ds = read_ckplus48(dir.path().u8string(), {}, &rep);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds.subjects[0], 10);
  EXPECT_EQ(ds.subjects[1], 137);
  EXPECT_EQ(ds.splits[0], Split::kTraining);
  EXPECT_EQ(rep.entries_seen, 3u);
  ASSERT_EQ(rep.issues.size(), 1u);
  EXPECT_EQ(rep.issues[0].field, "name");
  EXPECT_NE(rep.issues[0].where.find("face7.png"), std::string::npos);
}

// The original CK+ layout: frames S###/###/S###_###_########.png, labels in Emotion/.
class CkPlusOriginal : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.path() / "CK+";
    // S005/001: 6 frames of levels 10..60, labelled 3 (disgust) in CK+'s float format.
    for (int f = 1; f <= 6; ++f) frame("S005", "001", f, 10 * f);
    label("S005", "001", 6, "   3.0000000e+00\n");
    // S010/002: contempt (2), 4 frames.
    for (int f = 1; f <= 4; ++f) frame("S010", "002", f, 100 + f);
    label("S010", "002", 4, "   2.0000000e+00\n");
    // S011/001: frames but no label file (CK+ labels only some sequences): ignored.
    for (int f = 1; f <= 3; ++f) frame("S011", "001", f, 200);
    // S012/003: a label file that is not a number.
    for (int f = 1; f <= 3; ++f) frame("S012", "003", f, 150);
    label("S012", "003", 3, "happy\n");
    // S013/001: labelled 7 (surprise) but its frames folder is missing.
    label("S013", "001", 9, "7.0\n");
  }
  void frame(const std::string& s, const std::string& q, int f, int level) {
    char name[64];
    std::snprintf(name, sizeof name, "%s_%s_%08d.png", s.c_str(), q.c_str(), f);
    test::write_image(root_ / "cohn-kanade-images" / s / q / name, flat(64, 48, level));
  }
  void label(const std::string& s, const std::string& q, int f, const std::string& text) {
    char name[64];
    std::snprintf(name, sizeof name, "%s_%s_%08d_emotion.txt", s.c_str(), q.c_str(), f);
    test::write_bytes(root_ / "Emotion" / s / q / name, std::vector<uint8_t>(text.begin(), text.end()));
  }
  TempDir dir_;
  std::filesystem::path root_;
};

TEST_F(CkPlusOriginal, LastThreeFramesOfEachLabelledSequence) {
  ReadReport rep;
  const Dataset ds = read_ckplus(root_.u8string(), nullptr, {}, &rep);
  ds.check_consistent();
  ASSERT_EQ(ds.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(ds.labels[i], label_of("disgust"));
    EXPECT_EQ(ds.subjects[i], 5);
    expect_all(ds, i, 40 + 10 * static_cast<int>(i));  // frames 4, 5, 6
  }
  EXPECT_EQ(rep.entries_kept, 3u);
  // 3 contempt frames dropped, 1 bad label file, 1 label without frames.
  EXPECT_EQ(rep.skipped, 5u);
  size_t contempt = 0, bad_label = 0, no_frames = 0;
  for (const auto& issue : rep.issues) {
    if (issue.field == "class") ++contempt;
    if (issue.field == "emotion" && issue.where.find("S012_003_00000003_emotion.txt") != std::string::npos)
      ++bad_label;
    if (issue.field == "emotion" && issue.message.find("without frames") != std::string::npos) ++no_frames;
  }
  EXPECT_EQ(contempt, 3u);
  EXPECT_EQ(bad_label, 1u);
  EXPECT_EQ(no_frames, 1u);
}

TEST_F(CkPlusOriginal, FirstFrameAsNeutralAndStrictMode) {
  CkPlusOptions o;
  o.first_frame_neutral = true;
  const Dataset ds = read_ckplus(root_.u8string(), nullptr, o);
  // S005: frame 1 as neutral, then 4..6 disgust; S010 (contempt, dropped): frame 1 as neutral,
  // since the first frame of every sequence is neutral whatever the sequence's label.
  ASSERT_EQ(ds.size(), 5u);
  EXPECT_EQ(ds.labels[0], label_of("neutral"));
  expect_all(ds, 0, 10);
  EXPECT_EQ(ds.labels[1], label_of("disgust"));
  EXPECT_EQ(ds.labels[4], label_of("neutral"));
  EXPECT_EQ(ds.subjects[4], 10);
  expect_all(ds, 4, 101);
  o.folder.strict = true;
  const std::string msg = data_error_of([&] { read_ckplus(root_.u8string(), nullptr, o); });
  EXPECT_NE(msg.find("S012_003_00000003_emotion.txt: field 'emotion' is 'happy"), std::string::npos) << msg;
  o.folder.strict = false;
  o.folder.drop_contempt = false;
  const std::string msg2 = data_error_of([&] { read_ckplus(root_.u8string(), nullptr, o); });
  EXPECT_NE(msg2.find("contempt"), std::string::npos) << msg2;
}

TEST(CkPlusOriginalLayout, MissingFoldersAreErrors) {
  TempDir dir;
  std::string msg = data_error_of([&] { read_ckplus(dir.path().u8string(), nullptr); });
  EXPECT_NE(msg.find("cohn-kanade-images"), std::string::npos) << msg;
  std::filesystem::create_directories(dir.path() / "cohn-kanade-images");
  std::filesystem::create_directories(dir.path() / "Emotion");
  msg = data_error_of([&] { read_ckplus(dir.path().u8string(), nullptr); });
  EXPECT_NE(msg.find("no *_emotion.txt label files"), std::string::npos) << msg;
}

}  // namespace
}  // namespace fervid
