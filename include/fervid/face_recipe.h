// The face recipe: how a model's faces are found and cut out (detector, its settings, margin,
// offset, alignment, border), stored in the model file because a model only sees at inference
// what it learnt if the crop matches (design.md section 8). Core: no OpenCV, no torch; the
// mapping to the pipeline's options (FacePipelineOptions) is in vision.h.
//
// ONE table (face_recipe_options()) declares each option once: its name, help text, type,
// range and field. It drives the CLI flags (`--min-face`: the name with dashes), the JSON of
// model headers, run configs and reports (`min_face`), the server's query parameters
// (`min_face`), and every range check, so an out-of-range value reads the same everywhere:
// "<where> must be in [0, 2], got 3", where <where> names the flag, field or parameter.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace fervid {

struct FaceRecipe {
  // Which detector: "blazeface" (MediaPipe's neural detector, with 6 keypoints) or "haar"
  // (OpenCV's cascade, boxes only).
  std::string detector = "blazeface";
  // BlazeFace: smallest score kept; IoU above which two detections are one face; images longer
  // than tile_above are also scanned in tiles (0 = whole image only).
  double min_score = 0.65;
  double nms_iou = 0.3;
  int tile_above = 800;
  // Both detectors: smallest and largest face side in pixels of the image (max 0 = no limit).
  int min_face = 30;
  int max_face = 0;
  // Haar: neighbours a face needs, window growth per scale, longest side scanned (0 = full size).
  int neighbors = 6;
  double scale_step = 1.1;
  int detect_side = 640;
  // The crop: margin on every side (fraction of the box), shift down (fraction of its height),
  // eye-line alignment and where the eyes come from ("keypoints" | "landmarks68"), and how
  // pixels past the image are filled ("replicate" | "constant").
  double margin = 0.1;
  double offset_y = 0.0;
  bool align = false;
  std::string align_with = "keypoints";
  std::string border = "replicate";

  // The recipe of a version-1 model file (written before files carried one): what the shipped
  // model was served with then, OpenCV's Haar cascade, margin 0.1, no alignment. Every field is
  // written out, so that changing a default above does not change how old files are served.
  static FaceRecipe version1();

  // Every field in its range (the table's) and max_face 0 or >= min_face; std::invalid_argument
  // naming the field: "face recipe field 'margin' must be in [0, 2], got 3".
  void validate() const;

  bool operator==(const FaceRecipe& o) const;
  bool operator!=(const FaceRecipe& o) const { return !(*this == o); }
};

// ---- the option table ----------------------------------------------------------------------

// Allowed numbers: an interval, and optionally 0 with a meaning of its own ("no limit"). The
// training options (train_options.h) use it too, so a range reads the same in every error.
struct RecipeRange {
  double lo = 0, hi = 0;  // hi = infinity: no upper bound
  bool lo_open = false, hi_open = false;
  const char* zero = nullptr;  // non-null: 0 is allowed too, meaning this
  bool contains(double v) const;
  // "in (1, 2]", "0 (no limit) or an integer in [1, 100000]", "> 0", "an integer >= 1"
  std::string text(bool integer = false) const;
};

// A value typed on a command line or in a query, as JSON: numbers as strtod reads them (an
// integer must be whole; digits alone are read exactly, so 64-bit seeds survive), booleans 1/0,
// true/false, yes/no, on/off, text as it is. nullopt when the text is not of that kind.
enum class OptionText { kText, kBoolean, kInteger, kNumber };
std::optional<nlohmann::json> parse_option_text(const std::string& text, OptionText kind);
// "a, b or c": how a set of allowed names reads in errors.
std::string choices_text(const std::vector<std::string>& choices);

struct RecipeOption {
  using Field = std::variant<std::string FaceRecipe::*, int FaceRecipe::*, double FaceRecipe::*, bool FaceRecipe::*>;
  std::string name;  // JSON key and query parameter; the CLI flag is "--" + name with dashes
  std::string help;
  Field field;
  RecipeRange range;                 // int and double options
  std::vector<std::string> choices;  // string options
  // How faces are found (a server request may change it: no other model to load) rather than
  // how they are cut and aligned (the model's: what it learnt).
  bool per_request = false;

  std::string flag() const;     // "--min-face"
  std::string allowed() const;  // "in [0, 2]", "an integer in [1, 100000]", "blazeface or haar", "true or false"
  bool is_bool() const { return std::holds_alternative<bool FaceRecipe::*>(field); }
  nlohmann::json get(const FaceRecipe& r) const;
  // Stores `value` into r's field. A value of the wrong type or out of range throws
  // std::invalid_argument "<where> must be <allowed()>, got <value>".
  void set(FaceRecipe& r, const nlohmann::json& value, const std::string& where) const;
  // The same from text (a flag's or query parameter's value): numbers as strtod reads them,
  // booleans 1/0, true/false, yes/no, on/off; the error shows the text as given.
  void set_text(FaceRecipe& r, const std::string& text, const std::string& where) const;
  void check(const FaceRecipe& r, const std::string& where) const;  // the value already there
  void copy(const FaceRecipe& from, FaceRecipe& to) const;
};

// Every option, in the order above.
const std::vector<RecipeOption>& face_recipe_options();
// The option of this name (JSON spelling, "min_face"), or null.
const RecipeOption* find_face_recipe_option(std::string_view name);

// How errors name an option: "--min-face", "query parameter min_face",
// "<context>: field '<prefix>min_face'" (context "<context>: ", then the name).
struct RecipeWhere {
  std::string context;
  std::function<std::string(const RecipeOption&)> name;
  std::string operator()(const RecipeOption& o) const { return context + name(o); }
};
RecipeWhere recipe_flag_where();
RecipeWhere recipe_query_where();
RecipeWhere recipe_field_where(const std::string& context, const std::string& prefix);

// Every field checked (as validate()), errors naming fields with `where`; the cross-field rule
// reads "<max> (10) is smaller than <min> (20)".
void check_face_recipe(const FaceRecipe& r, const RecipeWhere& where);

// {name: value} for every option.
nlohmann::json to_json(const FaceRecipe& r);
// Reads what to_json writes: every option present, no other key, each in range; errors name
// the field ("<context>: field '<prefix>margin' must be in [0, 2], got 3").
FaceRecipe face_recipe_from_json(const nlohmann::json& j, const std::string& context, const std::string& prefix);
// "detector blazeface, min_score 0.65, ..., border replicate": one line for people.
std::string describe(const FaceRecipe& r);
std::ostream& operator<<(std::ostream& os, const FaceRecipe& r);  // describe(r)

// Some fields of a recipe, set field by field over another (a model's): what a user gave as
// flags, query parameters or in a run's config. Each value is checked when set.
class FaceRecipeOverrides {
 public:
  FaceRecipeOverrides();
  static FaceRecipeOverrides all_of(const FaceRecipe& r);  // every field given

  void set(const RecipeOption& o, const nlohmann::json& value, const std::string& where);
  void set_text(const RecipeOption& o, const std::string& text, const std::string& where);
  void set(const std::string& name, const nlohmann::json& value);  // a library caller's (where = the name)
  // `other`'s given fields replace these.
  void merge(const FaceRecipeOverrides& other);
  void clear();

  bool given(const RecipeOption& o) const;
  bool given(std::string_view name) const;
  bool empty() const;
  std::vector<const RecipeOption*> given_options() const;

  // `base` with the given fields written over it, checked as a whole (errors named by `where`).
  FaceRecipe apply(FaceRecipe base, const RecipeWhere& where = recipe_flag_where()) const;

  // {name: value or null} for every option (null: not given).
  nlohmann::json to_json() const;
  // Reads what to_json writes; missing keys and nulls are not given; errors name the field.
  // Keys that are not options are left to the caller.
  static FaceRecipeOverrides from_json(const nlohmann::json& j, const std::string& context, const std::string& prefix);

 private:
  size_t index(const RecipeOption& o) const;
  FaceRecipe values_;
  std::vector<bool> given_;
};

}  // namespace fervid
