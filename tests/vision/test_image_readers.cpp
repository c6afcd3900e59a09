// Image-folder and CK+ readers on small synthetic trees built in a temp folder: layouts,
// class-name mapping, contempt, empty and unknown folders, unreadable images, CK+ label files.
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <set>

#include "fervid/cache.h"
#include "fervid/data_source.h"
#include "fervid/image_readers.h"
#include "fervid/labels.h"
#include "fervid/vision.h"
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

TEST(ImageFolder, ClassLayoutWithoutSplitFoldersIsTrainingOrTheGivenSplit) {
  TempDir dir;
  const auto& r = dir.path();
  test::write_image(r / "surprise" / "x.png", flat(20, 20, 99));
  test::write_image(r / "neutral" / "y.png", flat(20, 20, 5));
  ReadReport rep;
  const Dataset all = read_image_folder(r.u8string(), {}, &rep);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all.splits[0], Split::kTraining);
  EXPECT_EQ(all.splits[1], Split::kTraining);
  EXPECT_EQ(rep.skipped, 0u);
  EXPECT_TRUE(rep.notes.empty());
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
  EXPECT_NE(rep.issues[0].message.find("--keep-contempt"), std::string::npos) << rep.issues[0].message;
  o.drop_contempt = false;
  const std::string msg = data_error_of([&] { read_image_folder(dir.path().u8string(), o); });
  EXPECT_NE(msg.find("class folder 'contempt'"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("drop_contempt"), std::string::npos) << "no C++ names in messages: " << msg;
  // Kept: unlabelled samples, nothing skipped.
  o.keep_contempt = true;
  ReadReport kept_rep;
  const Dataset kept = read_image_folder(dir.path().u8string(), o, &kept_rep);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept_rep.skipped, 0u);
  EXPECT_EQ(kept.labels[0], -1);  // contempt/ sorts before happy/
  EXPECT_EQ(kept.labels[1], -1);
  EXPECT_EQ(kept.labels[2], label_of("happy"));
  expect_all(kept, 1, 3);
}

TEST(ImageFolder, JaffeCodes) {
  EXPECT_EQ(jaffe_label("KA.AN1.39.tiff"), label_of("angry"));
  EXPECT_EQ(jaffe_label("KL.DI2.171.tiff"), label_of("disgust"));
  EXPECT_EQ(jaffe_label("KM.FE3.131.tiff"), label_of("fear"));
  EXPECT_EQ(jaffe_label("KR.HA1.74.tiff"), label_of("happy"));
  EXPECT_EQ(jaffe_label("MK.NE2.114.tiff"), label_of("neutral"));
  EXPECT_EQ(jaffe_label("NA.SA3.81.tiff"), label_of("sad"));
  EXPECT_EQ(jaffe_label("YM.SU1.58.tiff"), label_of("surprise"));
  EXPECT_EQ(jaffe_label("tm.ha.1.png"), label_of("happy"));  // any case; digits optional
  EXPECT_EQ(jaffe_label("KA.XX1.39.tiff"), std::nullopt);    // unknown code
  EXPECT_EQ(jaffe_label("KA.HAPPY.39.tiff"), std::nullopt);  // code then letters
  EXPECT_EQ(jaffe_label("happy.png"), std::nullopt);
  EXPECT_EQ(jaffe_label("KA.AN1"), std::nullopt);            // no extension part
  EXPECT_EQ(jaffe_label(".AN1.39.tiff"), std::nullopt);
}

TEST(ImageFolder, FlatFolderTakesLabelsAndSubjectsFromJaffeNames) {
  TempDir dir;
  const auto& r = dir.path();
  test::write_image(r / "KA.AN1.39.png", flat(30, 30, 10));
  test::write_image(r / "YM.HA2.60.png", flat(30, 30, 20));
  test::write_image(r / "KA.SU1.41.png", flat(30, 30, 30));
  test::write_image(r / "portrait.png", flat(30, 30, 40));       // no code: counted skip
  test::write_image(r / "extra" / "KA.NE1.1.png", flat(30, 30, 50));  // beside the images: not read
  ReadReport rep;
  const Dataset ds = read_image_folder(r.u8string(), {}, &rep);
  ds.check_consistent();
  ASSERT_EQ(ds.size(), 3u);
  EXPECT_EQ(rep.entries_seen, 4u);
  ASSERT_EQ(rep.skipped, 1u);
  EXPECT_EQ(rep.issues[0].where, (r / "portrait.png").u8string());
  EXPECT_EQ(rep.issues[0].field, "name");
  EXPECT_NE(rep.issues[0].message.find("no JAFFE expression code"), std::string::npos) << rep.issues[0].message;
  ASSERT_EQ(rep.notes.size(), 1u);
  EXPECT_EQ(rep.notes[0].where, (r / "extra").u8string());
  EXPECT_EQ(rep.notes[0].field, "folder");
  // Byte order of names: KA.AN1, KA.SU1, YM.HA2; subjects KA -> 0, YM -> 1.
  EXPECT_EQ(ds.labels[0], label_of("angry"));
  EXPECT_EQ(ds.labels[1], label_of("surprise"));
  EXPECT_EQ(ds.labels[2], label_of("happy"));
  EXPECT_EQ(ds.subjects, (std::vector<int32_t>{0, 0, 1}));
  EXPECT_EQ(ds.splits[2], Split::kTraining);
  expect_all(ds, 2, 20);
  // Strict: the unnamed image is an error naming it.
  ImageFolderOptions strict;
  strict.strict = true;
  const std::string msg = data_error_of([&] { read_image_folder(r.u8string(), strict); });
  EXPECT_NE(msg.find((r / "portrait.png").u8string() + ": field 'name'"), std::string::npos) << msg;
  // A flat split folder: train/<image>.
  TempDir split_dir;
  test::write_image(split_dir.path() / "test" / "KA.FE1.2.png", flat(30, 30, 60));
  const Dataset split_ds = read_image_folder(split_dir.path().u8string());
  ASSERT_EQ(split_ds.size(), 1u);
  EXPECT_EQ(split_ds.splits[0], Split::kPrivateTest);
  EXPECT_EQ(split_ds.labels[0], label_of("fear"));
}

TEST(ImageFolder, EmptyFoldersAreErrorsNamingThem) {
  TempDir dir;
  const auto root = dir.path() / "root";
  std::string msg = data_error_of([&] { read_image_folder(root.u8string()); });
  EXPECT_NE(msg.find(root.u8string() + ": dataset folder not found"), std::string::npos) << msg;
  std::filesystem::create_directories(root);
  msg = data_error_of([&] { read_image_folder(root.u8string()); });
  EXPECT_NE(msg.find(root.u8string() + ": empty folder (no images, no class folders"), std::string::npos) << msg;
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
  EXPECT_EQ(msg2.find("drop_contempt"), std::string::npos) << msg2;
}

TEST_F(CkPlusOriginal, FramesPerSequenceAndKeptContempt) {
  CkPlusOptions o;
  o.frames_per_sequence = 2;
  o.folder.keep_contempt = true;
  ReadReport rep;
  const Dataset ds = read_ckplus(root_.u8string(), nullptr, o, &rep);
  // S005: frames 5, 6 (disgust); S010: frames 3, 4 (contempt, kept unlabelled).
  ASSERT_EQ(ds.size(), 4u);
  EXPECT_EQ(ds.labels[0], label_of("disgust"));
  expect_all(ds, 0, 50);
  expect_all(ds, 1, 60);
  EXPECT_EQ(ds.labels[2], -1);
  EXPECT_EQ(ds.labels[3], -1);
  expect_all(ds, 3, 104);
  EXPECT_EQ(ds.subjects[3], 10);
  EXPECT_EQ(rep.skipped, 2u);  // the bad label file and the label without frames
  o.frames_per_sequence = 0;
  try {
    read_ckplus(root_.u8string(), nullptr, o);
    ADD_FAILURE() << "frames_per_sequence 0 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--frames-per-sequence must be >= 1, got 0"), std::string::npos) << e.what();
  }
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

// ---- photo folders and the cache key of detected sources --------------------------------------

// The demo portrait's head and shoulders (its face, 92 px in the 512 px image, fills about half
// of this 180 px square), resized to `side` pixels.
cv::Mat portrait(int side) {
  const cv::Mat a = read_image(std::string(FERVID_EXAMPLES_DIR) + "/astronaut.png");
  cv::Mat out;
  cv::resize(a(cv::Rect(128, 20, 180, 180)), out, cv::Size(side, side), 0, 0, cv::INTER_AREA);
  return out;
}

// Two portraits side by side on gray: a 200 px one at x 0, a 140 px one at x 260.
cv::Mat two_portraits() {
  cv::Mat canvas(220, 420, CV_8UC3, cv::Scalar(128, 128, 128));
  portrait(200).copyTo(canvas(cv::Rect(0, 10, 200, 200)));
  portrait(140).copyTo(canvas(cv::Rect(260, 40, 140, 140)));
  return canvas;
}

TEST(PhotoFolder, SeveralFacesAreNotedNoFaceIsSkippedBothNamed) {
  TempDir dir;
  const auto& r = dir.path();
  test::write_image(r / "KA.HA1.1.png", two_portraits());
  test::write_image(r / "KA.SA1.2.png", portrait(160));
  test::write_image(r / "KB.NE1.3.png", flat(160, 160, 128));  // no face
  FacePipelineOptions haar;  // the synthetic portraits are drawn for the cascade
  haar.detector.detector = DetectorKind::kHaar;
  const FacePipeline pipeline(haar);
  ASSERT_EQ(pipeline.detector().detect(two_portraits()).size(), 2u) << "the fixture needs two faces";
  ReadReport rep;
  const Dataset ds = read_photo_folder(r.u8string(), pipeline, {}, &rep);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds.labels[0], label_of("happy"));
  EXPECT_EQ(ds.labels[1], label_of("sad"));
  ASSERT_EQ(rep.skipped, 1u);
  EXPECT_EQ(rep.issues[0].where, (r / "KB.NE1.3.png").u8string());
  EXPECT_EQ(rep.issues[0].field, "face");
  EXPECT_EQ(rep.skipped_by_field.at("face"), 1u);
  ASSERT_EQ(rep.notes.size(), 1u);
  EXPECT_EQ(rep.notes[0].where, (r / "KA.HA1.1.png").u8string());
  EXPECT_EQ(rep.notes[0].field, "faces");
  EXPECT_NE(rep.notes[0].message.find("2 faces found; the largest"), std::string::npos) << rep.notes[0].message;
  EXPECT_EQ(rep.notes_by_field.at("faces"), 1u);
  // The kept face is the larger (left) one: what the pipeline makes of it.
  const auto boxes = pipeline.detector().detect(two_portraits());
  const cv::Rect big = largest_face(boxes);
  EXPECT_LT(big.x, 200);
  const cv::Mat expected = pipeline.prepare(two_portraits(), big).face;
  EXPECT_EQ(std::memcmp(expected.data, ds.image(0), ds.image_bytes()), 0);
}

TEST(DataSourceRecipe, EveryDetectionAndCropSettingChangesTheKey) {
  DataSourceOptions base;
  const auto photos = data_source_recipe(SourceFormat::kPhotos, base);
  std::vector<std::function<void(DataSourceOptions&)>> changes = {
      [](DataSourceOptions& o) { o.face.set("min_face", 31); },
      [](DataSourceOptions& o) { o.face.set("max_face", 500); },
      [](DataSourceOptions& o) { o.face.set("neighbors", 7); },
      [](DataSourceOptions& o) { o.face.set("scale_step", 1.2); },
      [](DataSourceOptions& o) { o.face.set("detect_side", 320); },
      [](DataSourceOptions& o) { o.face.set("margin", 0.25); },
      [](DataSourceOptions& o) { o.face.set("align", true); },
      [](DataSourceOptions& o) { o.face.set("detector", "haar"); },
      [](DataSourceOptions& o) { o.face.set("min_score", 0.6); },
      [](DataSourceOptions& o) { o.face.set("nms_iou", 0.4); },
      [](DataSourceOptions& o) { o.face.set("tile_above", 0); },
      [](DataSourceOptions& o) { o.face.set("offset_y", 0.05); },
      [](DataSourceOptions& o) { o.face.set("border", "constant"); },
      [](DataSourceOptions& o) {
        o.face.set("align", true);
        o.face.set("align_with", "landmarks68");
      },
      [](DataSourceOptions& o) { o.size = 64; },
      [](DataSourceOptions& o) { o.keep_contempt = true; }};
  std::set<std::string> seen = {photos};
  for (const auto& change : changes) {
    DataSourceOptions o = base;
    change(o);
    const auto r = data_source_recipe(SourceFormat::kPhotos, o);
    EXPECT_TRUE(seen.insert(r).second) << r;
  }
  // Defaults are written out (the whole recipe), so a changed default changes the key too.
  EXPECT_NE(photos.find(to_json(FaceRecipe{}).dump()), std::string::npos) << photos;
  // CK+'s own options.
  DataSourceOptions ck = base;
  const auto ck0 = data_source_recipe(SourceFormat::kCkPlus, ck);
  ck.frames_per_sequence = 2;
  EXPECT_NE(data_source_recipe(SourceFormat::kCkPlus, ck), ck0);
  ck.frames_per_sequence.reset();
  ck.first_frame_neutral = true;
  EXPECT_NE(data_source_recipe(SourceFormat::kCkPlus, ck), ck0);
}

TEST(DataSourceRecipe, APhotoFolderIsRebuiltWhenADetectorSettingChanges) {
  TempDir dir;
  const auto root = dir.path() / "photos";
  test::write_image(root / "KA.SA1.2.png", portrait(160));
  DataSourceOptions o;
  o.format = SourceFormat::kPhotos;
  o.use_cache = true;
  o.cache_dir = (dir.path() / "cache").u8string();
  const auto a = open_data_source(root.u8string(), o);
  ASSERT_EQ(a.data.size(), 1u);
  EXPECT_FALSE(a.cache_hit);
  EXPECT_TRUE(open_data_source(root.u8string(), o).cache_hit);
  o.face.set("margin", 0.3);
  const auto b = open_data_source(root.u8string(), o);
  EXPECT_FALSE(b.cache_hit);
  ASSERT_EQ(b.data.size(), 1u);
  EXPECT_NE(b.data.pixels, a.data.pixels) << "a wider margin frames the face differently";
  o.face.clear();
  o.face.set("min_face", 200);  // larger than the face: nothing found, and not the cached sample
  const auto c = open_data_source(root.u8string(), o);
  EXPECT_FALSE(c.cache_hit);
  EXPECT_EQ(c.data.size(), 0u);
  EXPECT_EQ(c.report.skipped_by_field.at("face"), 1u);
}

}  // namespace
}  // namespace fervid
