// The face recipe's option table (face_recipe.h): names in every spelling, one wording for range
// errors wherever a value comes from, JSON round trips, overrides field by field. Core only
// (the defaults against the pipeline's are tests/vision/test_face_recipe_vision.cpp's).
#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "fervid/face_recipe.h"

namespace fervid {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(FaceRecipeTable, EveryOptionOnceInEverySpelling) {
  const auto& table = face_recipe_options();
  const std::vector<std::string> names = {"detector", "min_score",  "nms_iou", "tile_above", "min_face",
                                          "max_face", "neighbors",  "scale_step", "detect_side", "margin",
                                          "offset_y", "align", "align_with", "border"};
  ASSERT_EQ(table.size(), names.size());
  std::set<std::string> seen;
  for (size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(table[i].name, names[i]);
    EXPECT_TRUE(seen.insert(table[i].name).second) << table[i].name;
    EXPECT_EQ(find_face_recipe_option(table[i].name), &table[i]);
    EXPECT_FALSE(table[i].help.empty()) << table[i].name;
  }
  EXPECT_EQ(find_face_recipe_option("min-face"), nullptr);  // JSON spelling only
  EXPECT_EQ(find_face_recipe_option("min_face")->flag(), "--min-face");
  EXPECT_EQ(find_face_recipe_option("offset_y")->flag(), "--offset-y");
  EXPECT_EQ(find_face_recipe_option("align_with")->flag(), "--align-with");
  // Each option has a field of its own: copying one through the table changes only its key.
  FaceRecipe different;
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"detector", "haar"}, {"min_score", "0.6"}, {"nms_iou", "0.4"}, {"tile_above", "0"}, {"min_face", "31"},
           {"max_face", "900"}, {"neighbors", "5"}, {"scale_step", "1.2"}, {"detect_side", "0"}, {"margin", "0.2"},
           {"offset_y", "0.1"}, {"align", "true"}, {"align_with", "landmarks68"}, {"border", "constant"}}) {
    find_face_recipe_option(name)->set_text(different, text, name);
  }
  const auto defaults = to_json(FaceRecipe{});
  for (const auto& o : table) {
    FaceRecipe r;
    o.copy(different, r);
    const auto changed = to_json(r);
    for (const auto& [key, value] : changed.items())
      EXPECT_EQ(value == defaults[key], key != o.name) << o.name << " vs " << key;
  }
  // Detection settings may change per request; how a face is cut is the model's.
  for (const char* n : {"min_score", "nms_iou", "tile_above", "min_face", "max_face", "neighbors", "scale_step",
                        "detect_side"})
    EXPECT_TRUE(find_face_recipe_option(n)->per_request) << n;
  for (const char* n : {"detector", "margin", "offset_y", "align", "align_with", "border"})
    EXPECT_FALSE(find_face_recipe_option(n)->per_request) << n;
}

TEST(FaceRecipeTable, RangeErrorsReadTheSameWhereverTheValueComesFrom) {
  const auto& margin = *find_face_recipe_option("margin");
  FaceRecipe r;
  EXPECT_EQ(error_of([&] { margin.set_text(r, "3", "--margin"); }), "--margin must be in [0, 2], got 3");
  EXPECT_EQ(error_of([&] { margin.set_text(r, "3", "query parameter margin"); }),
            "query parameter margin must be in [0, 2], got 3");
  const auto field = recipe_field_where("model file m.fervid", "face_recipe.");
  EXPECT_EQ(error_of([&] { margin.set(r, 3, field(margin)); }),
            "model file m.fervid: field 'face_recipe.margin' must be in [0, 2], got 3");
  EXPECT_EQ(error_of([&] { margin.set_text(r, "wide", "--margin"); }), "--margin must be in [0, 2], got wide");
  EXPECT_EQ(error_of([&] { find_face_recipe_option("scale_step")->set_text(r, "3", "--scale-step"); }),
            "--scale-step must be in (1, 2], got 3");
  EXPECT_EQ(error_of([&] { find_face_recipe_option("min_score")->set_text(r, "1", "--min-score"); }),
            "--min-score must be in (0, 1), got 1");
  EXPECT_EQ(error_of([&] { find_face_recipe_option("min_face")->set_text(r, "-3", "query parameter min_face"); }),
            "query parameter min_face must be an integer in [1, 100000], got -3");
  EXPECT_EQ(error_of([&] { find_face_recipe_option("min_face")->set_text(r, "40.5", "--min-face"); }),
            "--min-face must be an integer in [1, 100000], got 40.5");
  EXPECT_EQ(error_of([&] { find_face_recipe_option("detect_side")->set_text(r, "20", "--detect-side"); }),
            "--detect-side must be 0 (full size) or an integer in [48, 100000], got 20");
  EXPECT_EQ(error_of([&] { find_face_recipe_option("tile_above")->set_text(r, "1e9", "--tile-above"); }),
            "--tile-above must be 0 (whole image only) or an integer in [256, 100000], got 1e9");
  EXPECT_EQ(error_of([&] { find_face_recipe_option("detector")->set_text(r, "sift", "--detector"); }),
            "--detector must be blazeface or haar, got sift");
  EXPECT_EQ(error_of([&] { find_face_recipe_option("align")->set(r, "yes", "field 'align'"); }),
            "field 'align' must be true or false, got \"yes\"");
  EXPECT_EQ(r, FaceRecipe{}) << "a refused value changes nothing";
  // Accepted values, and zero where it means something.
  find_face_recipe_option("max_face")->set_text(r, "0", "--max-face");
  find_face_recipe_option("detect_side")->set_text(r, "0", "--detect-side");
  find_face_recipe_option("offset_y")->set_text(r, "-0.1", "--offset-y");
  find_face_recipe_option("align")->set_text(r, "on", "align");
  find_face_recipe_option("border")->set_text(r, "constant", "--border");
  EXPECT_EQ(r.offset_y, -0.1);
  EXPECT_TRUE(r.align);
  EXPECT_EQ(r.border, "constant");
  // The cross-field rule.
  r.min_face = 50;
  r.max_face = 20;
  EXPECT_EQ(error_of([&] { check_face_recipe(r, recipe_flag_where()); }), "--max-face (20) is smaller than --min-face (50)");
  EXPECT_EQ(error_of([&] { r.validate(); }), "face recipe field 'max_face' (20) is smaller than field 'min_face' (50)");
}

TEST(FaceRecipeTable, JsonRoundTripAndStrictReading) {
  FaceRecipe r = FaceRecipe::version1();
  r.align = true;
  r.offset_y = 0.05;
  const auto j = to_json(r);
  EXPECT_EQ(j.size(), face_recipe_options().size());
  EXPECT_EQ(face_recipe_from_json(j, "test", ""), r);
  auto missing = j;
  missing.erase("margin");
  EXPECT_EQ(error_of([&] { face_recipe_from_json(missing, "cfg", "recipe."); }), "cfg: field 'recipe' lacks field 'margin'");
  auto extra = j;
  extra["sharpen"] = true;
  EXPECT_EQ(error_of([&] { face_recipe_from_json(extra, "cfg", "recipe."); }),
            "cfg: field 'recipe.sharpen' is not a face recipe option");
  EXPECT_NE(describe(r).find("detector haar"), std::string::npos) << describe(r);
  EXPECT_NE(describe(r).find("offset_y 0.05"), std::string::npos) << describe(r);
}

TEST(FaceRecipeTable, VersionOneRecipeIsTheHaarCascadeWithMargin01Unaligned) {
  const auto v1 = FaceRecipe::version1();
  EXPECT_EQ(v1.detector, "haar");
  EXPECT_EQ(v1.margin, 0.1);
  EXPECT_FALSE(v1.align);
  EXPECT_EQ(v1.offset_y, 0.0);
  EXPECT_NO_THROW(v1.validate());
  EXPECT_NO_THROW(FaceRecipe{}.validate());
}

TEST(FaceRecipeOverrides, GivenFieldsOverTheBaseOneByOne) {
  FaceRecipeOverrides o;
  EXPECT_TRUE(o.empty());
  o.set_text(*find_face_recipe_option("margin"), "0.2", "--margin");
  o.set(*find_face_recipe_option("align"), true, "--align");
  EXPECT_FALSE(o.empty());
  EXPECT_TRUE(o.given("margin"));
  EXPECT_FALSE(o.given("detector"));
  EXPECT_EQ(o.given_options().size(), 2u);
  const auto r = o.apply(FaceRecipe::version1());
  EXPECT_EQ(r.detector, "haar");  // the base's
  EXPECT_EQ(r.margin, 0.2);
  EXPECT_TRUE(r.align);
  // to_json: every option, null when not given; from_json reads it back.
  const auto j = o.to_json();
  EXPECT_EQ(j.size(), face_recipe_options().size());
  EXPECT_TRUE(j["detector"].is_null());
  EXPECT_EQ(j["margin"], 0.2);
  const auto back = FaceRecipeOverrides::from_json(j, "cfg", "source.");
  EXPECT_EQ(back.to_json(), j);
  EXPECT_EQ(error_of([&] { FaceRecipeOverrides::from_json({{"margin", -1}}, "train config", "source."); }),
            "train config: field 'source.margin' must be in [0, 2], got -1");
  // merge: the other's given fields win; all_of gives every field.
  FaceRecipeOverrides later;
  later.set("margin", 0.3);
  later.set("detector", "haar");
  o.merge(later);
  EXPECT_EQ(o.apply(FaceRecipe{}).margin, 0.3);
  EXPECT_EQ(o.apply(FaceRecipe{}).detector, "haar");
  EXPECT_TRUE(o.apply(FaceRecipe{}).align);
  EXPECT_EQ(FaceRecipeOverrides::all_of(FaceRecipe::version1()).apply(FaceRecipe{}), FaceRecipe::version1());
  // The whole is checked after the fields are applied, named as the caller names them.
  FaceRecipeOverrides sizes;
  sizes.set("max_face", 20);
  EXPECT_EQ(error_of([&] { sizes.apply(FaceRecipe{}); }), "--max-face (20) is smaller than --min-face (30)");
  EXPECT_EQ(error_of([&] { sizes.apply(FaceRecipe{}, recipe_query_where()); }),
            "query parameter max_face (20) is smaller than query parameter min_face (30)");
  o.clear();
  EXPECT_TRUE(o.empty());
}

}  // namespace
}  // namespace fervid
