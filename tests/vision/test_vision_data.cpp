// Data-backed vision tests (ctest label `data`, FERVID_DATA): CK+48 counts, face detection
// against hand-annotated boxes, landmark alignment on real and rotated faces, the photo-folder
// and original-CK+ readers with detection on real photos.
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "fervid/image_readers.h"
#include "fervid/labels.h"
#include "fervid/vision.h"
#include "vision_test_util.h"

namespace fervid {
namespace {

using test::TempDir;
namespace fs = std::filesystem;

fs::path examples_dir() { return test::shared_data_dir() / "faces" / "face_recognition" / "examples"; }

cv::Mat example(const std::string& name) { return read_image((examples_dir() / name).u8string()); }

// ---- CK+48 ----------------------------------------------------------------------------------

TEST(CkPlus48Data, CountsMatchTheReadme) {
  const fs::path root = test::shared_data_dir() / "ckplus" / "CK+48";
  ReadReport rep;
  const Dataset ds = read_ckplus48(root.u8string(), {}, &rep);
  ds.check_consistent();
  // README: 981 images, 118 subjects; contempt (54) dropped -> 927.
  EXPECT_EQ(rep.entries_seen, 981u);
  EXPECT_EQ(rep.skipped, 54u);
  EXPECT_EQ(rep.entries_kept, 927u);
  ASSERT_EQ(ds.size(), 927u);
  EXPECT_EQ(ds.height, 48);
  EXPECT_EQ(ds.width, 48);
  std::map<int, size_t> per_class;
  for (auto l : ds.labels) ++per_class[l];
  auto idx = [](const char* n) { return *expression_index(n); };
  EXPECT_EQ(per_class[idx("anger")], 135u);
  EXPECT_EQ(per_class[idx("disgust")], 177u);
  EXPECT_EQ(per_class[idx("fear")], 75u);
  EXPECT_EQ(per_class[idx("happy")], 207u);
  EXPECT_EQ(per_class[idx("sadness")], 84u);
  EXPECT_EQ(per_class[idx("surprise")], 249u);
  EXPECT_EQ(per_class[idx("neutral")], 0u);  // CK+48 has no neutral class
  std::set<int32_t> kept_subjects(ds.subjects.begin(), ds.subjects.end());
  EXPECT_EQ(kept_subjects.count(-1), 0u);
  EXPECT_EQ(kept_subjects.size(), 106u);  // MANIFEST.tsv: subjects with a non-contempt sequence
  std::set<int32_t> all_subjects = kept_subjects;
  for (const auto& issue : rep.issues) {
    EXPECT_EQ(issue.field, "class");
    EXPECT_NE(issue.where.find("contempt"), std::string::npos) << issue.where;
    all_subjects.insert(std::stoi(fs::u8path(issue.where).filename().string().substr(1, 3)));
  }
  EXPECT_EQ(all_subjects.size(), 118u);
  // The images are already 48 x 48 gray crops: the pixels are the file's, unchanged.
  for (size_t i : {size_t{0}, size_t{500}, size_t{926}}) {
    ImageReadOptions gray;
    gray.color = ImageColor::kGray;
    const cv::Mat img = read_image(ds.origins[i], gray);
    ASSERT_EQ(img.size(), cv::Size(48, 48));
    EXPECT_EQ(std::memcmp(img.data, ds.image(i), 48 * 48), 0) << ds.origins[i];
  }
}

TEST(CkPlus48Data, SubjectsAndLabelsAgreeWithTheManifest) {
  const fs::path base = test::shared_data_dir() / "ckplus";
  const Dataset ds = read_ckplus48((base / "CK+48").u8string());
  std::ifstream manifest(base / "MANIFEST.tsv");
  ASSERT_TRUE(manifest) << "MANIFEST.tsv";
  std::map<std::string, std::pair<std::string, std::string>> rows;  // path -> (label, subject)
  std::string line;
  std::getline(manifest, line);  // header
  while (std::getline(manifest, line)) {
    std::vector<std::string> f;
    size_t start = 0;
    for (size_t tab; (tab = line.find('\t', start)) != std::string::npos; start = tab + 1)
      f.push_back(line.substr(start, tab - start));
    f.push_back(line.substr(start));
    ASSERT_GE(f.size(), 3u) << line;
    rows[f[0]] = {f[1], f[2]};
  }
  EXPECT_EQ(rows.size(), 981u);
  for (size_t i = 0; i < ds.size(); ++i) {
    const fs::path p = fs::u8path(ds.origins[i]);
    const std::string key = "CK+48/" + p.parent_path().filename().string() + "/" + p.filename().string();
    const auto it = rows.find(key);
    ASSERT_NE(it, rows.end()) << key;
    EXPECT_EQ(ds.labels[i], *expression_index(it->second.first)) << key;
    EXPECT_EQ(ds.subjects[i], std::stoi(it->second.second.substr(1))) << key;
  }
}

// ---- face detection -------------------------------------------------------------------------

TEST(FaceDetectionData, FindsEveryHandAnnotatedFace) {
  std::ifstream in(test::fixtures_dir() / "face_boxes.json");
  ASSERT_TRUE(in) << "tests/fixtures/face_boxes.json";
  const auto boxes = nlohmann::json::parse(in).at("images");
  ASSERT_GE(boxes.size(), 5u);
  for (const char* required :
       {"two_people.jpg", "obama-240p.jpg", "obama-480p.jpg", "obama-720p.jpg", "obama-1080p.jpg"}) {
    EXPECT_TRUE(boxes.contains(required)) << required;
  }
  const FaceDetector detector;  // the defaults are what this test vouches for
  for (const auto& [name, faces] : boxes.items()) {
    SCOPED_TRACE(name);
    const cv::Mat img = example(name);
    const auto found = detector.detect(img);
    test::expect_matches_annotation(name, img, found, faces);
    // Left to right.
    for (size_t i = 1; i < found.size(); ++i) EXPECT_LE(found[i - 1].x, found[i].x);
  }
}

TEST(FaceDetectionData, SameFacesAtEveryResolution) {
  // One photo at four scales: one face each, at the same place once scaled back to 480p.
  const FaceDetector detector;
  const auto ref = detector.detect(example("obama-480p.jpg"));
  ASSERT_EQ(ref.size(), 1u);
  for (const auto& [name, scale] : std::map<std::string, double>{
           {"obama-240p.jpg", 0.5}, {"obama-720p.jpg", 1.5}, {"obama-1080p.jpg", 2.25}}) {
    const auto found = detector.detect(example(name));
    ASSERT_EQ(found.size(), 1u) << name;
    const cv::Rect back(
        cv::Point(static_cast<int>(found[0].x / scale), static_cast<int>(found[0].y / scale)),
        cv::Size(static_cast<int>(found[0].width / scale), static_cast<int>(found[0].height / scale)));
    EXPECT_GE(box_iou(back, ref[0]), 0.8) << name;
  }
}

// ---- landmarks and alignment ------------------------------------------------------------------

class AlignmentData : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { aligner_ = new LandmarkAligner(); }  // ~100 MB: load once
  static void TearDownTestSuite() {
    delete aligner_;
    aligner_ = nullptr;
  }
  // The eye-line angle seen in a preprocessed crop: landmarks re-detected on the crop, in the
  // box that the margin leaves in its middle.
  static double angle_in_crop(const cv::Mat& crop, double margin) {
    const double inner = crop.cols / (1 + 2 * margin);
    const int off = static_cast<int>(std::lround(margin * inner));
    return eye_line_angle(
        aligner_->landmarks(crop, cv::Rect(off, off, static_cast<int>(inner), static_cast<int>(inner))));
  }
  static LandmarkAligner* aligner_;
};
LandmarkAligner* AlignmentData::aligner_ = nullptr;

TEST_F(AlignmentData, AlignedCropsHaveAHorizontalEyeLine) {
  // two_people.jpg: both heads are tilted (about 7 and 13 degrees).
  const cv::Mat img = example("two_people.jpg");
  FacePipelineOptions o;
  o.preprocess.size = 160;
  o.preprocess.align = true;
  o.align_with = AlignWith::kLandmarks68;  // this test measures dlib's landmarks
  const FacePipeline pipeline(o);
  const auto faces = pipeline.run(img);
  ASSERT_EQ(faces.size(), 2u);
  PreprocessOptions unaligned = o.preprocess;
  unaligned.align = false;
  for (const auto& f : faces) {
    SCOPED_TRACE("face at x " + std::to_string(f.box.x));
    ASSERT_EQ(f.landmarks.size(), 68u);
    EXPECT_GT(std::abs(f.eye_angle), 5.0) << "the photo's tilt (the test would pass trivially otherwise)";
    EXPECT_EQ(f.face.size(), cv::Size(160, 160));
    const double after = angle_in_crop(f.face, o.preprocess.margin);
    const double before = angle_in_crop(preprocess_face(img, f.box, unaligned), o.preprocess.margin);
    std::printf("  face at x %d: eye line %.2f deg in the photo, %.2f unaligned crop, %.2f aligned crop\n",
                f.box.x, f.eye_angle, before, after);
    EXPECT_LT(std::abs(after), 2.0);
    EXPECT_NEAR(before, f.eye_angle, 2.0);
  }
}

TEST_F(AlignmentData, RecoversASyntheticRotation) {
  const FaceDetector detector;
  for (const char* name : {"obama-480p.jpg", "lin-manuel-miranda.png", "alex-lacamoire.png"}) {
    const cv::Mat img = example(name);
    const auto boxes = detector.detect(img);
    ASSERT_EQ(boxes.size(), 1u) << name;
    const cv::Rect box = boxes[0];
    const double upright = eye_line_angle(aligner_->landmarks(img, box));
    for (const double rot : {12.0, -12.0}) {
      SCOPED_TRACE(std::string(name) + " rotated " + std::to_string(rot));
      // Rotate the photo about the face centre (counter-clockwise on screen for +12).
      const cv::Point2f c(box.x + box.width / 2.0f, box.y + box.height / 2.0f);
      cv::Mat rotated;
      cv::warpAffine(img, rotated, cv::getRotationMatrix2D(c, rot, 1.0), img.size(), cv::INTER_LINEAR,
                     cv::BORDER_REPLICATE);
      // The face's box is unchanged (it turned about its centre); the eye line turned by -rot.
      const double angle = eye_line_angle(aligner_->landmarks(rotated, box));
      std::printf("  %s rotated %+.0f: eye line %.2f deg, expected %.2f\n", name, rot, angle, upright - rot);
      EXPECT_NEAR(angle, upright - rot, 3.0);
    }
  }
  // End to end on one photo: the detector finds the rotated face, the pipeline levels it.
  const cv::Mat img = example("obama-480p.jpg");
  const cv::Rect box = detector.detect(img).at(0);
  cv::Mat rotated;
  cv::warpAffine(
      img, rotated,
      cv::getRotationMatrix2D(cv::Point2f(box.x + box.width / 2.0f, box.y + box.height / 2.0f), 12.0, 1.0),
      img.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  FacePipelineOptions o;
  o.preprocess.size = 160;
  o.preprocess.align = true;
  const auto faces = FacePipeline(o).run(rotated);
  ASSERT_EQ(faces.size(), 1u);
  EXPECT_NEAR(faces[0].eye_angle, -12.0, 3.0);
  EXPECT_LT(std::abs(angle_in_crop(faces[0].face, o.preprocess.margin)), 2.0);
}

// ---- readers with detection ----------------------------------------------------------------

TEST(PhotoFolderData, LargestFaceKeptAndFaceFreePhotoSkipped) {
  TempDir dir;
  const auto root = dir.path() / "photos";
  fs::create_directories(root / "happy");
  fs::create_directories(root / "neutral");
  fs::copy_file(examples_dir() / "obama-480p.jpg", root / "happy" / "a.jpg");
  fs::copy_file(examples_dir() / "two_people.jpg", root / "neutral" / "b.jpg");
  fs::copy_file(test::fixtures_dir() / "no_face_astronaut_backdrop.jpg", root / "neutral" / "c.jpg");
  FacePipelineOptions haar;  // the boxes below are the cascade's
  haar.detector.detector = DetectorKind::kHaar;
  const FacePipeline pipeline(haar);
  ImageFolderOptions o;
  o.split = Split::kTraining;
  ReadReport rep;
  const Dataset ds = read_photo_folder(root.u8string(), pipeline, o, &rep);
  ds.check_consistent();
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(rep.entries_seen, 3u);
  ASSERT_EQ(rep.skipped, 1u);
  EXPECT_EQ(rep.issues[0].where, (root / "neutral" / "c.jpg").u8string());
  EXPECT_EQ(rep.issues[0].field, "face");
  EXPECT_NE(rep.issues[0].message.find("no face found"), std::string::npos);
  // Each sample is exactly what the pipeline makes of the largest face.
  const cv::Mat two = example("two_people.jpg");
  const auto boxes = pipeline.detector().detect(two);
  ASSERT_EQ(boxes.size(), 2u);
  const cv::Mat expected = pipeline.prepare(two, largest_face(boxes)).face;
  EXPECT_EQ(std::memcmp(expected.data, ds.image(1), ds.image_bytes()), 0);
  EXPECT_EQ(ds.labels[1], *expression_index("neutral"));
}

TEST(CkPlusOriginalData, FramesGoThroughDetectionAndTheSamePreprocessing) {
  // A tiny original-layout tree whose frames are a real photo (gray, as CK+ frames mostly are).
  TempDir dir;
  const auto root = dir.path() / "CK+";
  cv::Mat gray;
  cv::cvtColor(example("obama-480p.jpg"), gray, cv::COLOR_BGR2GRAY);
  for (int f = 1; f <= 5; ++f) {
    char name[64];
    std::snprintf(name, sizeof name, "S042_003_%08d.png", f);
    test::write_image(root / "cohn-kanade-images" / "S042" / "003" / name, gray);
  }
  // Frame 6 shows no face: counted skip.
  test::write_image(root / "cohn-kanade-images" / "S042" / "003" / "S042_003_00000006.png",
                    read_image((test::fixtures_dir() / "no_face_astronaut_backdrop.jpg").u8string()));
  const std::string label = "   5.0000000e+00\n";  // happy
  test::write_bytes(root / "Emotion" / "S042" / "003" / "S042_003_00000006_emotion.txt",
                    std::vector<uint8_t>(label.begin(), label.end()));
  FacePipelineOptions po;
  po.preprocess.size = 64;
  const FacePipeline pipeline(po);
  ReadReport rep;
  const Dataset ds = read_ckplus(root.u8string(), &pipeline, {}, &rep);
  ASSERT_EQ(ds.size(), 2u);  // frames 4, 5 (frame 6 has no face)
  EXPECT_EQ(ds.height, 64);
  ASSERT_EQ(rep.skipped, 1u);
  EXPECT_EQ(rep.issues[0].field, "face");
  EXPECT_NE(rep.issues[0].where.find("S042_003_00000006.png"), std::string::npos);
  const auto faces = pipeline.run(gray);
  ASSERT_EQ(faces.size(), 1u);
  for (size_t i = 0; i < ds.size(); ++i) {
    EXPECT_EQ(ds.labels[i], *expression_index("happy"));
    EXPECT_EQ(ds.subjects[i], 42);
    EXPECT_EQ(std::memcmp(faces[0].face.data, ds.image(i), ds.image_bytes()), 0) << "same preprocessing";
  }
}

}  // namespace
}  // namespace fervid
