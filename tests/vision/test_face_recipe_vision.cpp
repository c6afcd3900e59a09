// The face recipe on the OpenCV side: its defaults are the pipeline's (so they cannot drift
// apart), the mapping both ways, and the Analyzer serving a model with the model's own recipe:
// a model trained with alignment is served aligned, a version-1 file with the version-1 rule.
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "../model_file_bytes.h"
#include "fervid/analyzer.h"
#include "fervid/model.h"
#include "fervid/model_io.h"
#include "vision_test_util.h"

namespace fervid {
namespace {

const std::string kDemo = std::string(FERVID_EXAMPLES_DIR) + "/astronaut.png";

TEST(FaceRecipeVision, DefaultsAreThePipelinesDefaults) {
  const FaceRecipe r;
  const FacePipelineOptions p;
  const FaceDetectorOptions& d = p.detector;
  EXPECT_EQ(r.detector, detector_kind_name(d.detector));
  EXPECT_EQ(static_cast<float>(r.min_score), d.min_score);
  EXPECT_EQ(static_cast<float>(r.nms_iou), d.nms_iou);
  EXPECT_EQ(r.tile_above, d.tile_above);
  EXPECT_EQ(r.min_face, d.min_face_size);
  EXPECT_EQ(r.max_face, d.max_face_size);
  EXPECT_EQ(r.neighbors, d.min_neighbors);
  EXPECT_EQ(r.scale_step, d.scale_factor);
  EXPECT_EQ(r.detect_side, d.max_detect_side);
  EXPECT_EQ(r.margin, p.preprocess.margin);
  EXPECT_EQ(r.offset_y, p.preprocess.offset_y);
  EXPECT_EQ(r.align, p.preprocess.align);
  EXPECT_EQ(r.align_with, align_with_name(p.align_with));
  EXPECT_EQ(r.border, p.preprocess.border == BorderMode::kConstant ? "constant" : "replicate");
  // The same through the mapping, both ways, and against the structs' own defaults.
  EXPECT_EQ(face_recipe_of(p), r);
  EXPECT_EQ(face_recipe_of(to_pipeline_options(r, 48)), r);
  EXPECT_EQ(face_recipe_of(FacePipelineOptions{}), FaceRecipe{});
  FacePipelineOptions q;
  q.detector = FaceDetectorOptions{};
  q.preprocess = PreprocessOptions{};
  EXPECT_EQ(face_recipe_of(q), FaceRecipe{});
}

TEST(FaceRecipeVision, MappingWritesTheRecipeAndKeepsTheRest) {
  FaceRecipe r = FaceRecipe::version1();
  r.min_score = 0.7;
  r.nms_iou = 0.45;
  r.tile_above = 0;
  r.max_face = 500;
  r.neighbors = 4;
  r.scale_step = 1.2;
  r.detect_side = 0;
  r.margin = 0.3;
  r.offset_y = -0.1;
  r.align = true;
  r.align_with = "landmarks68";
  r.border = "constant";
  FacePipelineOptions o;
  o.detector.cascade_path = "/some/cascade.xml";
  o.preprocess.size = 64;
  o.preprocess.border_value = 7;
  apply_face_recipe(r, o);
  EXPECT_EQ(o.detector.detector, DetectorKind::kHaar);
  EXPECT_EQ(o.detector.cascade_path, "/some/cascade.xml");  // not the recipe's
  EXPECT_EQ(o.preprocess.size, 64);
  EXPECT_EQ(o.preprocess.border_value, 7);
  EXPECT_EQ(o.preprocess.border, BorderMode::kConstant);
  EXPECT_EQ(o.align_with, AlignWith::kLandmarks68);
  EXPECT_EQ(o.detector.min_score, 0.7f);
  EXPECT_EQ(o.detector.max_face_size, 500);
  EXPECT_TRUE(o.needs_landmark_model());
  EXPECT_EQ(face_recipe_of(o), r);
  EXPECT_EQ(to_pipeline_options(r, 96).preprocess.size, 96);
  r.margin = 9;
  try {
    apply_face_recipe(r, o);
    FAIL() << "margin 9 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("field 'margin' must be in [0, 2], got 9"), std::string::npos) << e.what();
  }
}

// A small model (width 0.125, the CLI tests') saved with a recipe, in a temporary folder.
class ServedRecipe : public ::testing::Test {
 protected:
  std::string save(const std::string& name, const FaceRecipe& recipe) const {
    ModelConfig c;
    c.width = 0.125;
    torch::manual_seed(1);
    MCSANet net(c);
    const std::string p = dir_.file(name).string();
    save_model(p, net, {{"made_by", "test_face_recipe_vision"}}, recipe);
    return p;
  }
  test::TempDir dir_;
};

TEST_F(ServedRecipe, AModelTrainedWithAlignmentIsServedAligned) {
  FaceRecipe trained;
  trained.align = true;  // BlazeFace's eye keypoints: no landmark model needed
  const std::string model = save("aligned.fervid", trained);
  const AnalyzerOptions nothing;  // named: GCC 12 warns (falsely) about the default argument's temporary
  const Analyzer analyzer(model, nothing);
  EXPECT_TRUE(analyzer.pipeline().options().preprocess.align);
  EXPECT_TRUE(analyzer.recipe().align);
  EXPECT_EQ(analyzer.model_recipe(), trained);
  EXPECT_EQ(analyzer.recipe(), trained);
  EXPECT_EQ(analyzer.pipeline().options().preprocess.size, 48);

  const cv::Mat image = read_image(kDemo);
  const auto faces = analyzer.pipeline().run(image);
  ASSERT_EQ(faces.size(), 1u) << "the demo portrait has one face";
  ASSERT_EQ(faces[0].keypoints.size(), static_cast<size_t>(kNumBlazeFaceKeypoints));
  EXPECT_NE(faces[0].eye_angle, 0.0) << "aligned: the eye line's angle is measured and undone";
  EXPECT_DOUBLE_EQ(faces[0].eye_angle, eye_line_angle(faces[0].keypoints));
  // The crop is the aligned crop, not the plain one.
  cv::Mat gray;
  cv::cvtColor(image, gray, cv::COLOR_BGR2GRAY);
  PreprocessOptions aligned = analyzer.pipeline().options().preprocess;
  const cv::Mat want = preprocess_face(gray, faces[0].box, aligned, &faces[0].keypoints);
  EXPECT_EQ(cv::norm(faces[0].face, want, cv::NORM_INF), 0.0);
  aligned.align = false;
  EXPECT_GT(cv::norm(faces[0].face, preprocess_face(gray, faces[0].box, aligned), cv::NORM_L1), 0.0);
  const auto expressions = analyzer.analyze(image);
  ASSERT_EQ(expressions.size(), 1u);
  EXPECT_EQ(expressions[0].box, faces[0].box);

  // Flags override the model's recipe field by field; options given in full replace it.
  AnalyzerOptions unaligned;
  unaligned.recipe.set("align", false);
  unaligned.recipe.set("margin", 0.2);
  const Analyzer plain(model, unaligned);
  EXPECT_FALSE(plain.pipeline().options().preprocess.align);
  EXPECT_EQ(plain.pipeline().options().preprocess.margin, 0.2);
  EXPECT_EQ(plain.recipe().detector, "blazeface");  // the model's
  EXPECT_TRUE(plain.model_recipe().align);
  AnalyzerOptions full;
  full.faces = FacePipelineOptions{};
  EXPECT_FALSE(Analyzer(model, full).pipeline().options().preprocess.align);
}

TEST_F(ServedRecipe, AVersionOneFileIsServedWithTheVersionOneRecipe) {
  FaceRecipe trained;
  trained.align = true;
  const std::string v2 = save("v2.fervid", trained);
  const std::string v1 = dir_.file("v1.fervid").string();
  test::ModelFileBytes::read(v2).as_version1().write(v1);
  const AnalyzerOptions nothing;
  const Analyzer analyzer(v1, nothing);
  EXPECT_FALSE(analyzer.pipeline().options().preprocess.align);
  EXPECT_EQ(analyzer.pipeline().detector().kind(), DetectorKind::kHaar);
  EXPECT_EQ(analyzer.pipeline().options().preprocess.margin, 0.1);
  EXPECT_EQ(analyzer.model_recipe(), FaceRecipe::version1());
}

TEST_F(ServedRecipe, ACallMayChangeHowFacesAreFoundNotHowTheyAreCut) {
  const std::string model = save("m.fervid", FaceRecipe{});
  const AnalyzerOptions nothing;
  const Analyzer analyzer(model, nothing);
  const cv::Mat image = read_image(kDemo);
  const auto want = analyzer.analyze(image);
  ASSERT_EQ(want.size(), 1u);
  FaceRecipe request = analyzer.recipe();
  const auto same = analyzer.analyze(image, request);
  ASSERT_EQ(same.size(), 1u);
  EXPECT_EQ(same[0].box, want[0].box);
  EXPECT_EQ(same[0].probs, want[0].probs);
  request.min_face = 400;  // the astronaut's face is about 90 px
  EXPECT_TRUE(analyzer.analyze(image, request).empty());
  request.min_face = 20;
  request.min_score = 0.6;
  ASSERT_EQ(analyzer.analyze(image, request).size(), 1u);
  request.margin = 0.3;
  try {
    analyzer.analyze(image, request);
    FAIL() << "a call changed the model's margin";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("margin is the model's"), std::string::npos) << e.what();
  }
}

TEST_F(ServedRecipe, AWholeImageIsTheCropWhateverTheRecipesMarginAndShift) {
  // The shipped recipe moves the crop up (offset_y < 0) to match FER2013's framing; an image
  // given as the face (--whole-image, a FER2013 row) must be classified as it is.
  FaceRecipe plain, shifted;
  shifted.margin = 0.178;
  shifted.offset_y = -0.3;
  const AnalyzerOptions nothing;
  const Analyzer a(save("plain.fervid", plain), nothing), b(save("shifted.fervid", shifted), nothing);
  cv::Mat crop = read_image(kDemo)(cv::Rect(160, 50, 140, 150)).clone();
  const auto x = a.analyze_whole(crop), y = b.analyze_whole(crop);
  EXPECT_EQ(x.probs, y.probs);
  EXPECT_EQ(y.box, cv::Rect(0, 0, crop.cols, crop.rows));
  // ... while a detected face is cut with the recipe's shift.
  const auto fa = a.analyze(read_image(kDemo)), fb = b.analyze(read_image(kDemo));
  ASSERT_EQ(fa.size(), 1u);
  ASSERT_EQ(fb.size(), 1u);
  EXPECT_NE(fa[0].probs, fb[0].probs);
}

}  // namespace
}  // namespace fervid
