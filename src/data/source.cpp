#include "fervid/data_source.h"

#include <filesystem>

#include "fervid/cache.h"
#ifdef FERVID_WITH_OPENCV
#include "fervid/image_readers.h"
#include "fervid/vision.h"
#endif

namespace fervid {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr std::pair<SourceFormat, std::string_view> kFormats[] = {
    {SourceFormat::kAuto, "auto"},         {SourceFormat::kFer2013, "fer2013"}, {SourceFormat::kFolder, "folder"},
    {SourceFormat::kCkPlus48, "ckplus48"}, {SourceFormat::kCkPlus, "ckplus"},   {SourceFormat::kPhotos, "photos"}};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

SourceFormat detect(const std::string& source) {
  std::error_code ec;
  if (fs::is_regular_file(source, ec)) {
    if (ends_with(source, ".csv") || ends_with(source, ".csv.gz")) return SourceFormat::kFer2013;
    throw DataError(source + ": not a FER2013 CSV (.csv or .csv.gz) and not a folder; give --format");
  }
  if (!fs::is_directory(source, ec)) throw DataError(source + ": no such file or folder");
  if (fs::is_directory(fs::path(source) / "cohn-kanade-images", ec)) return SourceFormat::kCkPlus;
  if (fs::path(source).lexically_normal().filename() == "CK+48" ||
      fs::path(source).lexically_normal().parent_path().filename() == "CK+48") {
    return SourceFormat::kCkPlus48;
  }
  return SourceFormat::kFolder;
}

// Flags that do not apply to the format, and values out of range: errors naming the flag.
void validate(const std::string& source, SourceFormat format, const DataSourceOptions& o) {
  auto bad = [](const std::string& message) { throw std::invalid_argument(message); };
  const std::string read_as = source + " is read as --format " + std::string(to_string(format));
  if (!o.ferplus.empty() && format != SourceFormat::kFer2013)
    bad("--ferplus applies to a FER2013 CSV; " + read_as);
  if (!(o.ferplus_mix >= 0.0 && o.ferplus_mix <= 1.0))
    bad("--ferplus-mix must be in [0, 1], got " + json(o.ferplus_mix).dump());
  if (o.ferplus_mix > 0 && o.ferplus.empty()) bad("--ferplus-mix needs the FER+ votes (--ferplus)");
  if (format != SourceFormat::kFer2013 && (o.size < 1 || o.size > 4096))
    bad("--size must be in 1..4096, got " + std::to_string(o.size));
  for (const auto* option : o.face.given_options()) {
    if (!detects_faces(format)) {
      bad(option->flag() + " applies to sources whose faces are detected (--format photos or ckplus); " + read_as);
    }
  }
  source_face_recipe(o);  // each value was checked when set; this checks them together
  if ((o.frames_per_sequence || o.first_frame_neutral) && format != SourceFormat::kCkPlus) {
    bad(std::string(o.frames_per_sequence ? "--frames-per-sequence" : "--first-frame-neutral") +
        " applies to the original CK+ distribution (--format ckplus); " + read_as);
  }
  if (o.frames_per_sequence && *o.frames_per_sequence < 1)
    bad("--frames-per-sequence must be >= 1, got " + std::to_string(*o.frames_per_sequence));
}

#ifdef FERVID_WITH_OPENCV
FacePipelineOptions pipeline_options(const DataSourceOptions& o) {
  return to_pipeline_options(source_face_recipe(o), o.size);
}

ImageFolderOptions folder_options(const DataSourceOptions& o) {
  ImageFolderOptions folder;
  folder.size = o.size;
  folder.strict = o.strict;
  folder.drop_contempt = o.drop_contempt;
  folder.keep_contempt = o.keep_contempt;
  return folder;
}

CkPlusOptions ckplus_options(const DataSourceOptions& o) {
  CkPlusOptions ck;
  ck.folder = folder_options(o);
  if (o.frames_per_sequence) ck.frames_per_sequence = *o.frames_per_sequence;
  ck.first_frame_neutral = o.first_frame_neutral;
  return ck;
}
#endif

Dataset read(const std::string& source, SourceFormat format, const DataSourceOptions& o, OpenedSource& out) {
  ReadReport& rep = out.report;
  if (format == SourceFormat::kFer2013) {
    auto ds = read_fer2013_csv(source, {o.strict}, &rep);
    if (!o.ferplus.empty()) {
      if (rep.skipped > 0) {
        throw DataError(source + ": " + std::to_string(rep.skipped) +
                        " rows were skipped, so the FER+ votes of --ferplus (aligned by row) cannot be applied");
      }
      apply_ferplus(ds, o.ferplus, {o.ferplus_rule, o.soft_targets, o.ferplus_mix}, &out.ferplus_report);
    }
    return ds;
  }
#ifdef FERVID_WITH_OPENCV
  const ImageFolderOptions folder = folder_options(o);
  switch (format) {
    case SourceFormat::kFolder: return read_image_folder(source, folder, &rep);
    case SourceFormat::kCkPlus48: return read_ckplus48(source, folder, &rep);
    case SourceFormat::kPhotos: return read_photo_folder(source, FacePipeline(pipeline_options(o)), folder, &rep);
    case SourceFormat::kCkPlus: {
      const FacePipeline faces(pipeline_options(o));
      return read_ckplus(source, &faces, ckplus_options(o), &rep);
    }
    default: break;
  }
#endif
  throw DataError(source + ": the " + std::string(to_string(format)) +
                  " format needs fervid built with OpenCV (FERVID_WITH_OPENCV)");
}

template <typename T>
void read_field(const json& j, const char* key, T& out, const std::string& context, const std::string& prefix) {
  if (!j.contains(key) || j.at(key).is_null()) return;
  try {
    out = j.at(key).get<T>();
  } catch (const json::exception&) {
    throw std::invalid_argument(context + ": field '" + prefix + key + "' has the wrong type (" + j.at(key).dump() +
                                ")");
  }
}

template <typename T>
void read_field(const json& j, const char* key, std::optional<T>& out, const std::string& context,
                const std::string& prefix) {
  if (!j.contains(key) || j.at(key).is_null()) return;
  T v{};
  read_field(j, key, v, context, prefix);
  out = v;
}

template <typename T>
json or_null(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}
}  // namespace

std::string_view to_string(SourceFormat f) {
  for (const auto& [v, name] : kFormats) {
    if (v == f) return name;
  }
  return "unknown";
}

SourceFormat resolve_source_format(const std::string& source, SourceFormat format) {
  return format == SourceFormat::kAuto ? detect(source) : format;
}

bool detects_faces(SourceFormat f) { return f == SourceFormat::kPhotos || f == SourceFormat::kCkPlus; }

FaceRecipe source_face_recipe(const DataSourceOptions& o) { return o.face.apply(FaceRecipe{}); }

SourceFormat parse_source_format(std::string_view s) {
  for (const auto& [v, name] : kFormats) {
    if (name == s) return v;
  }
  throw std::invalid_argument("unknown data format '" + std::string(s) +
                              "' (expected auto, fer2013, folder, ckplus48, ckplus or photos)");
}

std::string data_source_recipe(SourceFormat format, const DataSourceOptions& o) {
  std::string r = std::string(to_string(format)) + "|strict=" + std::to_string(o.strict);
  if (format == SourceFormat::kFer2013) {
    r += "|ferplus_rule=" + std::to_string(static_cast<int>(o.ferplus_rule)) + "|soft=" + std::to_string(o.soft_targets);
    if (o.ferplus_mix > 0) r += "|mix=" + json(o.ferplus_mix).dump();
    return r;  // 48 x 48 as stored: no crop, no resize
  }
  r += "|size=" + std::to_string(o.size) + "|drop_contempt=" + std::to_string(o.drop_contempt) +
       "|keep_contempt=" + std::to_string(o.keep_contempt);
  if (!detects_faces(format)) return r + "|crop=whole image, margin 0, bilinear";
#ifdef FERVID_WITH_OPENCV
  // Every effective setting of detection, alignment and crop, defaults included, so a change
  // of a default in face_recipe.h or vision.h changes the key too: the whole recipe, then what
  // the pipeline adds (model files, settings outside the recipe).
  const auto p = pipeline_options(o);
  const auto& d = p.detector;
  r += "|detect_on=colour|recipe=" + to_json(source_face_recipe(o)).dump() + "|cascade=" + d.cascade_path +
       "|blazeface=" + d.blazeface_path + "|retry_padded=" + std::to_string(d.retry_padded) +
       "|scale_to_min_face=" + std::to_string(d.scale_to_min_face) + "|equalize=" + std::to_string(d.equalize_histogram) +
       "|border_value=" + std::to_string(p.preprocess.border_value) +
       (p.needs_landmark_model() ? "|landmarks=" + p.landmark_model_path : std::string());
  if (format == SourceFormat::kCkPlus) {
    const auto ck = ckplus_options(o);
    r += "|frames=" + std::to_string(ck.frames_per_sequence) + "|first_neutral=" + std::to_string(ck.first_frame_neutral);
  }
#endif
  return r;
}

OpenedSource open_data_source(const std::string& source, const DataSourceOptions& o) {
  OpenedSource out;
  out.format = o.format == SourceFormat::kAuto ? detect(source) : o.format;
  validate(source, out.format, o);
  std::vector<std::string> sources = {source};
  if (!o.ferplus.empty()) sources.push_back(o.ferplus);
  const std::string dir = o.cache_dir.empty() ? default_cache_dir() : o.cache_dir;
  out.cache_key = cache_key(sources, data_source_recipe(out.format, o), o.use_cache ? dir : std::string());
  auto build = [&] { return read(source, out.format, o, out); };
  if (o.use_cache) {
    out.data = cached_dataset(out.cache_key, build, dir, &out.cache_hit);
  } else {
    out.data = build();
  }
  return out;
}

json to_json(const DataSourceOptions& s) {
  json j = {{"format", to_string(s.format)},
          {"ferplus", s.ferplus},
          {"ferplus_rule", s.ferplus_rule == FerPlusOptions::Labels::kPlurality ? "plurality" : "majority"},
          {"soft_targets", s.soft_targets},
          {"ferplus_mix", s.ferplus_mix},
          {"strict", s.strict},
          {"size", s.size},
          {"drop_contempt", s.drop_contempt},
          {"keep_contempt", s.keep_contempt},
          {"frames_per_sequence", or_null(s.frames_per_sequence)},
          {"first_frame_neutral", s.first_frame_neutral}};
  j.update(s.face.to_json());  // the recipe's options, by name, at the top level (null: not given)
  return j;
}

DataSourceOptions data_source_options_from_json(const json& j, const std::string& context, const std::string& prefix) {
  DataSourceOptions o;
  if (!j.is_object()) throw std::invalid_argument(context + ": field '" + prefix + "' is not an object");
  std::string format = "auto", rule = "majority";
  read_field(j, "format", format, context, prefix);
  try {
    o.format = parse_source_format(format);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(context + ": field '" + prefix + "format': " + e.what());
  }
  read_field(j, "ferplus", o.ferplus, context, prefix);
  read_field(j, "ferplus_rule", rule, context, prefix);
  if (rule != "majority" && rule != "plurality") {
    throw std::invalid_argument(context + ": field '" + prefix + "ferplus_rule' is '" + rule +
                                "' (expected majority or plurality)");
  }
  o.ferplus_rule = rule == "plurality" ? FerPlusOptions::Labels::kPlurality : FerPlusOptions::Labels::kMajority;
  read_field(j, "soft_targets", o.soft_targets, context, prefix);
  read_field(j, "ferplus_mix", o.ferplus_mix, context, prefix);
  read_field(j, "strict", o.strict, context, prefix);
  read_field(j, "size", o.size, context, prefix);
  read_field(j, "drop_contempt", o.drop_contempt, context, prefix);
  read_field(j, "keep_contempt", o.keep_contempt, context, prefix);
  o.face = FaceRecipeOverrides::from_json(j, context, prefix);
  read_field(j, "frames_per_sequence", o.frames_per_sequence, context, prefix);
  read_field(j, "first_frame_neutral", o.first_frame_neutral, context, prefix);
  return o;
}

}  // namespace fervid
