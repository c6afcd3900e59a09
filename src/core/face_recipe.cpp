#include "fervid/face_recipe.h"

#include "fervid/json_text.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <ostream>
#include <sstream>
#include <stdexcept>

namespace fervid {

using nlohmann::json;

namespace {

constexpr double kMaxPixels = 100000;  // face sizes and scan sides: far past any image we read

std::string number_text(double v) {
  std::ostringstream s;
  s.precision(15);
  s << v;
  return s.str();
}

std::vector<RecipeOption> make_table() {
  using R = FaceRecipe;
  auto real = [](double lo, double hi, bool lo_open, bool hi_open) {
    RecipeRange r;
    r.lo = lo;
    r.hi = hi;
    r.lo_open = lo_open;
    r.hi_open = hi_open;
    return r;
  };
  auto closed = [&](double lo, double hi, const char* zero = nullptr) {
    auto r = real(lo, hi, false, false);
    r.zero = zero;
    return r;
  };
  std::vector<RecipeOption> t;
  auto add = [&](const char* name, const char* help, RecipeOption::Field field, RecipeRange range,
                 std::vector<std::string> choices, bool per_request) {
    RecipeOption o;
    o.name = name;
    o.help = help;
    o.field = field;
    o.range = range;
    o.choices = std::move(choices);
    o.per_request = per_request;
    t.push_back(std::move(o));
  };
  add("detector", "Face detector: blazeface (MediaPipe's neural detector, with eye keypoints) or haar (OpenCV's cascade)",
      &R::detector, {}, {"blazeface", "haar"}, false);
  add("min_score", "BlazeFace: smallest score a face is kept with", &R::min_score, real(0, 1, true, true), {}, true);
  add("nms_iou", "BlazeFace: overlap above which two detections are one face", &R::nms_iou, real(0, 1, true, false), {},
      true);
  add("tile_above", "BlazeFace: images longer than this are also scanned in tiles, for small faces",
      &R::tile_above, closed(256, kMaxPixels, "whole image only"), {}, true);
  add("min_face", "Smallest face side in pixels", &R::min_face, closed(1, kMaxPixels), {}, true);
  add("max_face", "Largest face side in pixels", &R::max_face, closed(1, kMaxPixels, "no limit"), {}, true);
  add("neighbors", "Haar: detections a face needs (higher: fewer false faces)", &R::neighbors, closed(0, 100), {}, true);
  add("scale_step", "Haar: detector window growth per scale", &R::scale_step, real(1, 2, true, false), {}, true);
  add("detect_side", "Haar: detect on a copy at most this long", &R::detect_side, closed(48, kMaxPixels, "full size"),
      {}, true);
  add("margin", "Crop margin around the face box, as a fraction of its side", &R::margin, closed(0, 2), {}, false);
  add("offset_y", "Move the crop down by this fraction of the box's height (negative: up)", &R::offset_y,
      closed(-1, 1), {}, false);
  add("align", "Rotate each face so the eyes are level (--no-align: do not)", &R::align, {}, {}, false);
  add("align_with", "Where alignment finds the eyes: keypoints (BlazeFace's) or landmarks68 (dlib's; Haar always)",
      &R::align_with, {}, {"keypoints", "landmarks68"}, false);
  add("border", "Crop pixels past the image edge: replicate (edge pixels) or constant (black)", &R::border, {},
      {"replicate", "constant"}, false);
  return t;
}

[[noreturn]] void refuse(const RecipeOption& o, const std::string& where, const std::string& got) {
  throw std::invalid_argument(where + " must be " + o.allowed() + ", got " + got);
}

}  // namespace

// ---- FaceRecipe ----------------------------------------------------------------------------

FaceRecipe FaceRecipe::version1() {
  FaceRecipe r;
  r.detector = "haar";
  r.min_score = 0.5;
  r.nms_iou = 0.3;
  r.tile_above = 800;
  r.min_face = 30;
  r.max_face = 0;
  r.neighbors = 6;
  r.scale_step = 1.1;
  r.detect_side = 640;
  r.margin = 0.1;
  r.offset_y = 0.0;
  r.align = false;
  r.align_with = "keypoints";
  r.border = "replicate";
  return r;
}

void FaceRecipe::validate() const {
  check_face_recipe(*this, {"face recipe ", [](const RecipeOption& o) { return "field '" + o.name + "'"; }});
}

bool FaceRecipe::operator==(const FaceRecipe& o) const {
  for (const auto& opt : face_recipe_options()) {
    if (opt.get(*this) != opt.get(o)) return false;
  }
  return true;
}

// ---- ranges and options --------------------------------------------------------------------

std::string choices_text(const std::vector<std::string>& choices) {
  std::string s;
  for (size_t i = 0; i < choices.size(); ++i) s += (i == 0 ? "" : i + 1 == choices.size() ? " or " : ", ") + choices[i];
  return s;
}

bool RecipeRange::contains(double v) const {
  if (!std::isfinite(v)) return false;  // "inf" and "nan" parse as numbers; no option means them
  if (zero && v == 0) return true;
  return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
}

std::string RecipeRange::text(bool integer) const {
  const std::string kind = integer ? "an integer " : "";
  const std::string interval =
      std::isinf(hi) ? kind + (lo_open ? "> " : ">= ") + number_text(lo)
                     : kind + "in " + (lo_open ? "(" : "[") + number_text(lo) + ", " + number_text(hi) + (hi_open ? ")" : "]");
  return zero ? "0 (" + std::string(zero) + ") or " + interval : interval;
}

std::optional<json> parse_option_text(const std::string& text, OptionText kind) {
  switch (kind) {
    case OptionText::kText:
      return json(text);
    case OptionText::kBoolean: {
      std::string t;
      for (char c : text) t += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (t == "1" || t == "true" || t == "yes" || t == "on") return json(true);
      if (t == "0" || t == "false" || t == "no" || t == "off") return json(false);
      return std::nullopt;
    }
    case OptionText::kInteger:
    case OptionText::kNumber:
      break;
  }
  const bool integer = kind == OptionText::kInteger;
  if (text.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const bool digits = text.find_first_not_of("0123456789", text[0] == '-' ? 1 : 0) == std::string::npos &&
                      text.size() > (text[0] == '-' ? 1u : 0u);
  if (integer && digits) {  // exactly, past double's 53 bits
    if (text[0] == '-') {
      const long long v = std::strtoll(text.c_str(), &end, 10);
      if (errno == ERANGE) return std::nullopt;
      return json(static_cast<int64_t>(v));
    }
    const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
    if (errno == ERANGE) return std::nullopt;
    return json(static_cast<uint64_t>(v));
  }
  const double x = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(x)) return std::nullopt;
  if (!integer) return json(x);
  if (x != std::floor(x) || std::fabs(x) > 9.2e18) return std::nullopt;  // whole, and an int64
  return json(static_cast<int64_t>(x));
}

std::string RecipeOption::flag() const {
  std::string f = "--" + name;
  for (auto& c : f) c = c == '_' ? '-' : c;
  return f;
}

std::string RecipeOption::allowed() const {
  if (is_bool()) return "true or false";
  if (!choices.empty()) return choices_text(choices);
  return range.text(std::holds_alternative<int FaceRecipe::*>(field));
}

json RecipeOption::get(const FaceRecipe& r) const {
  return std::visit([&](auto m) { return json(r.*m); }, field);
}

void RecipeOption::copy(const FaceRecipe& from, FaceRecipe& to) const {
  std::visit([&](auto m) { to.*m = from.*m; }, field);
}

void RecipeOption::set(FaceRecipe& r, const json& v, const std::string& where) const {
  const std::string got = dump_json(v);
  if (auto m = std::get_if<std::string FaceRecipe::*>(&field)) {
    if (!v.is_string()) refuse(*this, where, got);
    const auto s = v.get<std::string>();
    bool known = false;
    for (const auto& c : choices) known |= c == s;
    if (!known) refuse(*this, where, got);
    r.**m = s;
  } else if (auto b = std::get_if<bool FaceRecipe::*>(&field)) {
    if (!v.is_boolean()) refuse(*this, where, got);
    r.**b = v.get<bool>();
  } else if (auto i = std::get_if<int FaceRecipe::*>(&field)) {
    if (!v.is_number_integer()) refuse(*this, where, got);
    const double x = v.get<double>();  // exact for the range's integers; a huge value is out of range
    if (!range.contains(x)) refuse(*this, where, got);
    r.**i = static_cast<int>(x);
  } else if (auto d = std::get_if<double FaceRecipe::*>(&field)) {
    if (!v.is_number()) refuse(*this, where, got);
    const double x = v.get<double>();
    if (!std::isfinite(x) || !range.contains(x)) refuse(*this, where, got);
    r.**d = x;
  }
}

void RecipeOption::set_text(FaceRecipe& r, const std::string& text, const std::string& where) const {
  const auto kind = is_bool()                                         ? OptionText::kBoolean
                    : !choices.empty()                                ? OptionText::kText
                    : std::holds_alternative<int FaceRecipe::*>(field) ? OptionText::kInteger
                                                                      : OptionText::kNumber;
  const auto v = parse_option_text(text, kind);
  if (!v) refuse(*this, where, text);
  try {
    set(r, *v, where);
  } catch (const std::invalid_argument&) {
    refuse(*this, where, text);  // the text as given
  }
}

void RecipeOption::check(const FaceRecipe& r, const std::string& where) const {
  FaceRecipe scratch;
  set(scratch, get(r), where);
}

const std::vector<RecipeOption>& face_recipe_options() {
  static const std::vector<RecipeOption> table = make_table();
  return table;
}

const RecipeOption* find_face_recipe_option(std::string_view name) {
  for (const auto& o : face_recipe_options()) {
    if (o.name == name) return &o;
  }
  return nullptr;
}

RecipeWhere recipe_flag_where() {
  return {"", [](const RecipeOption& o) { return o.flag(); }};
}
RecipeWhere recipe_query_where() {
  return {"", [](const RecipeOption& o) { return "query parameter " + o.name; }};
}
RecipeWhere recipe_field_where(const std::string& context, const std::string& prefix) {
  return {context + ": ", [prefix](const RecipeOption& o) { return "field '" + prefix + o.name + "'"; }};
}

void check_face_recipe(const FaceRecipe& r, const RecipeWhere& where) {
  for (const auto& o : face_recipe_options()) o.check(r, where(o));
  if (r.max_face > 0 && r.max_face < r.min_face) {
    throw std::invalid_argument(where(*find_face_recipe_option("max_face")) + " (" + std::to_string(r.max_face) +
                                ") is smaller than " + where.name(*find_face_recipe_option("min_face")) + " (" +
                                std::to_string(r.min_face) + ")");
  }
}

json to_json(const FaceRecipe& r) {
  json j = json::object();
  for (const auto& o : face_recipe_options()) j[o.name] = o.get(r);
  return j;
}

FaceRecipe face_recipe_from_json(const json& j, const std::string& context, const std::string& prefix) {
  const std::string object = prefix.empty() ? "the face recipe" : "field '" + prefix.substr(0, prefix.size() - 1) + "'";
  if (!j.is_object()) throw std::invalid_argument(context + ": " + object + " is not a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (!find_face_recipe_option(key)) {
      throw std::invalid_argument(context + ": field '" + prefix + key + "' is not a face recipe option");
    }
  }
  const auto where = recipe_field_where(context, prefix);
  FaceRecipe r;
  for (const auto& o : face_recipe_options()) {
    if (!j.contains(o.name)) throw std::invalid_argument(context + ": " + object + " lacks field '" + o.name + "'");
    o.set(r, j.at(o.name), where(o));
  }
  check_face_recipe(r, where);
  return r;
}

std::string describe(const FaceRecipe& r) {
  std::string s;
  for (const auto& o : face_recipe_options()) {
    const auto v = o.get(r);
    s += (s.empty() ? "" : ", ") + o.name + " " +
         (v.is_string() ? v.get<std::string>() : v.is_number_float() ? number_text(v.get<double>()) : v.dump());
  }
  return s;
}

std::ostream& operator<<(std::ostream& os, const FaceRecipe& r) { return os << describe(r); }

// ---- overrides -----------------------------------------------------------------------------

FaceRecipeOverrides::FaceRecipeOverrides() : given_(face_recipe_options().size(), false) {}

FaceRecipeOverrides FaceRecipeOverrides::all_of(const FaceRecipe& r) {
  FaceRecipeOverrides o;
  o.values_ = r;
  o.given_.assign(o.given_.size(), true);
  return o;
}

size_t FaceRecipeOverrides::index(const RecipeOption& o) const {
  const auto& t = face_recipe_options();
  for (size_t i = 0; i < t.size(); ++i) {
    if (&t[i] == &o || t[i].name == o.name) return i;
  }
  throw std::invalid_argument("not a face recipe option: " + o.name);
}

void FaceRecipeOverrides::set(const RecipeOption& o, const json& value, const std::string& where) {
  o.set(values_, value, where);
  given_[index(o)] = true;
}

void FaceRecipeOverrides::set_text(const RecipeOption& o, const std::string& text, const std::string& where) {
  o.set_text(values_, text, where);
  given_[index(o)] = true;
}

void FaceRecipeOverrides::set(const std::string& name, const json& value) {
  const auto* o = find_face_recipe_option(name);
  if (!o) throw std::invalid_argument("'" + name + "' is not a face recipe option");
  set(*o, value, name);
}

void FaceRecipeOverrides::merge(const FaceRecipeOverrides& other) {
  const auto& t = face_recipe_options();
  for (size_t i = 0; i < t.size(); ++i) {
    if (!other.given_[i]) continue;
    t[i].copy(other.values_, values_);
    given_[i] = true;
  }
}

void FaceRecipeOverrides::clear() { given_.assign(given_.size(), false); }

bool FaceRecipeOverrides::given(const RecipeOption& o) const { return given_[index(o)]; }

bool FaceRecipeOverrides::given(std::string_view name) const {
  const auto* o = find_face_recipe_option(name);
  return o && given(*o);
}

bool FaceRecipeOverrides::empty() const {
  for (bool g : given_) {
    if (g) return false;
  }
  return true;
}

std::vector<const RecipeOption*> FaceRecipeOverrides::given_options() const {
  std::vector<const RecipeOption*> out;
  const auto& t = face_recipe_options();
  for (size_t i = 0; i < t.size(); ++i) {
    if (given_[i]) out.push_back(&t[i]);
  }
  return out;
}

FaceRecipe FaceRecipeOverrides::apply(FaceRecipe base, const RecipeWhere& where) const {
  const auto& t = face_recipe_options();
  for (size_t i = 0; i < t.size(); ++i) {
    if (given_[i]) t[i].copy(values_, base);
  }
  check_face_recipe(base, where);
  return base;
}

json FaceRecipeOverrides::to_json() const {
  json j = json::object();
  const auto& t = face_recipe_options();
  for (size_t i = 0; i < t.size(); ++i) j[t[i].name] = given_[i] ? t[i].get(values_) : json(nullptr);
  return j;
}

FaceRecipeOverrides FaceRecipeOverrides::from_json(const json& j, const std::string& context, const std::string& prefix) {
  FaceRecipeOverrides o;
  if (!j.is_object()) return o;
  const auto where = recipe_field_where(context, prefix);
  for (const auto& opt : face_recipe_options()) {
    if (!j.contains(opt.name) || j.at(opt.name).is_null()) continue;
    o.set(opt, j.at(opt.name), where(opt));
  }
  return o;
}

}  // namespace fervid
