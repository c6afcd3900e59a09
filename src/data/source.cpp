#include "fervid/data_source.h"

#include <filesystem>

#include "fervid/cache.h"
#ifdef FERVID_WITH_OPENCV
#include "fervid/image_readers.h"
#include "fervid/vision.h"
#endif

namespace fervid {

namespace fs = std::filesystem;

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

Dataset read(const std::string& source, SourceFormat format, const DataSourceOptions& o, ReadReport& rep) {
  if (format == SourceFormat::kFer2013) {
    auto ds = read_fer2013_csv(source, {o.strict}, &rep);
    if (!o.ferplus.empty()) {
      if (rep.skipped > 0) {
        throw DataError(source + ": " + std::to_string(rep.skipped) +
                        " rows were skipped, so FER+ (aligned by row) cannot be applied");
      }
      apply_ferplus(ds, o.ferplus, {o.ferplus_rule, o.soft_targets}, &rep);
    }
    return ds;
  }
#ifdef FERVID_WITH_OPENCV
  ImageFolderOptions folder;
  folder.size = o.size;
  folder.strict = o.strict;
  folder.drop_contempt = o.drop_contempt;
  auto pipeline = [&] {
    FacePipelineOptions p;
    p.preprocess.size = o.size;
    p.preprocess.align = o.align;
    return FacePipeline(p);
  };
  switch (format) {
    case SourceFormat::kFolder: return read_image_folder(source, folder, &rep);
    case SourceFormat::kCkPlus48: return read_ckplus48(source, folder, &rep);
    case SourceFormat::kPhotos: return read_photo_folder(source, pipeline(), folder, &rep);
    case SourceFormat::kCkPlus: {
      CkPlusOptions ck;
      ck.folder = folder;
      const auto faces = pipeline();
      return read_ckplus(source, &faces, ck, &rep);
    }
    default: break;
  }
#endif
  throw DataError(source + ": the " + std::string(to_string(format)) +
                  " format needs fervid built with OpenCV (FERVID_WITH_OPENCV)");
}
}  // namespace

std::string_view to_string(SourceFormat f) {
  for (const auto& [v, name] : kFormats) {
    if (v == f) return name;
  }
  return "unknown";
}

SourceFormat parse_source_format(std::string_view s) {
  for (const auto& [v, name] : kFormats) {
    if (name == s) return v;
  }
  throw std::invalid_argument("unknown data format '" + std::string(s) +
                              "' (expected auto, fer2013, folder, ckplus48, ckplus or photos)");
}

OpenedSource open_data_source(const std::string& source, const DataSourceOptions& o) {
  OpenedSource out;
  out.format = o.format == SourceFormat::kAuto ? detect(source) : o.format;
  std::vector<std::string> sources = {source};
  if (!o.ferplus.empty()) sources.push_back(o.ferplus);
  const std::string recipe = std::string(to_string(out.format)) + "|size=" + std::to_string(o.size) +
                             "|ferplus_rule=" + std::to_string(static_cast<int>(o.ferplus_rule)) +
                             "|soft=" + std::to_string(o.soft_targets) + "|strict=" + std::to_string(o.strict) +
                             "|drop_contempt=" + std::to_string(o.drop_contempt) + "|align=" + std::to_string(o.align);
  out.cache_key = cache_key(sources, recipe);
  auto build = [&] { return read(source, out.format, o, out.report); };
  if (o.use_cache) {
    out.data = cached_dataset(out.cache_key, build, o.cache_dir.empty() ? default_cache_dir() : o.cache_dir,
                              &out.cache_hit);
  } else {
    out.data = build();
  }
  return out;
}

}  // namespace fervid
