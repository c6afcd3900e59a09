// Image-folder, CK+ and photo-folder readers (include/fervid/image_readers.h).
#include "fervid/image_readers.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fervid/labels.h"
#include "fervid/vision.h"
#include "vision_internal.h"

namespace fervid {

namespace {

namespace fs = std::filesystem;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string name_of(const fs::path& p) { return p.filename().u8string(); }
std::string str(const fs::path& p) { return p.u8string(); }

// Entries of `dir` that are folders (want_dirs) or regular files, without hidden names, in
// byte order of their names (directory order is unspecified).
std::vector<fs::path> list(const fs::path& dir, bool want_dirs) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  if (ec) throw DataError(str(dir) + ": cannot list the folder (" + ec.message() + ")");
  for (; it != end; it.increment(ec)) {
    if (ec) throw DataError(str(dir) + ": cannot list the folder (" + ec.message() + ")");
    const std::string name = name_of(it->path());
    if (name.empty() || name[0] == '.') continue;
    std::error_code sec;
    const bool is_dir = it->is_directory(sec);
    if (want_dirs ? is_dir : (!is_dir && it->is_regular_file(sec))) out.push_back(it->path());
  }
  std::sort(out.begin(), out.end(),
            [](const fs::path& a, const fs::path& b) { return a.filename() < b.filename(); });
  return out;
}

std::vector<fs::path> list_images(const fs::path& dir) {
  auto files = list(dir, false);
  files.erase(std::remove_if(files.begin(), files.end(),
                             [](const fs::path& p) { return !has_image_extension(str(p)); }),
              files.end());
  return files;
}

void require_folder(const fs::path& dir, const char* what) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw DataError(str(dir) + ": " + what + " not found (no such folder)");
}

std::string class_names_list() {
  std::string s;
  for (const auto& n : kExpressionNames) s += (s.empty() ? "" : ", ") + std::string(n);
  return s;
}

// One image to read, with the label and split it gets.
struct Entry {
  fs::path file;
  int label;
  Split split;
  int32_t subject = -1;
};

// Turns files into samples: reads, finds the face (or takes the whole image), preprocesses.
class SampleMaker {
 public:
  SampleMaker(const ImageFolderOptions& options, const FacePipeline* faces, ReadReport& report)
      : options_(options), faces_(faces), report_(report) {
    image_options_ = options.image;
    // BGR, so preprocess_face does the gray conversion as for every other caller (a JPEG
    // decoded straight to gray takes its luma plane, a level or two off cv::cvtColor).
    image_options_.color = ImageColor::kBgr;
    crop_options_.size = faces ? faces->options().preprocess.size : options.size;
    crop_options_.margin = 0.0;  // a crop is already the face
    if (crop_options_.size < 1)
      throw std::invalid_argument("the image side (--size) must be >= 1, got " +
                                  std::to_string(crop_options_.size));
    dataset_.height = dataset_.width = crop_options_.size;
  }

  // A bad entry: counted skip, or DataError in strict mode.
  void bad(const std::string& where, const std::string& field, const std::string& message) {
    if (options_.strict) throw DataError(where + ": field '" + field + "' " + message);
    report_.skip({where, field, message});
  }

  void add(const Entry& e) {
    ++report_.entries_seen;
    const std::string path = str(e.file);
    cv::Mat image;
    try {
      image = read_image(path, image_options_);
    } catch (const DataError& err) {
      if (options_.strict) throw;  // already names the file and the problem
      std::string message = err.what();
      if (message.rfind(path + ": ", 0) == 0) message.erase(0, path.size() + 2);  // `where` holds the path
      report_.skip({path, "file", message});
      return;
    }
    // Detect on the image as read (BlazeFace reads colour better than gray, and the Analyzer
    // detects on colour too), then prepare from gray (what preprocess_face would do first anyway).
    const cv::Mat gray = vision_internal::to_gray(image, "image readers");
    cv::Mat face;
    if (faces_) {
      const auto boxes = faces_->detector().detect(image);
      if (boxes.empty()) {
        bad(path, "face",
            "no face found in the " + std::to_string(gray.cols) + " x " + std::to_string(gray.rows) +
                " image (min face size " + std::to_string(faces_->detector().options().min_face_size) +
                " px)");
        return;
      }
      const cv::Rect kept = largest_face(boxes);
      if (boxes.size() > 1) {
        report_.note({path, "faces",
                      std::to_string(boxes.size()) + " faces found; the largest (" + std::to_string(kept.width) +
                          " x " + std::to_string(kept.height) + " at x " + std::to_string(kept.x) + ", y " +
                          std::to_string(kept.y) + ") kept"});
      }
      face = faces_->prepare(gray, kept).face;
    } else {
      face = preprocess_face(gray, cv::Rect(0, 0, gray.cols, gray.rows), crop_options_);
    }
    dataset_.add(face.ptr<uint8_t>(), e.label, e.split, path, e.subject);
    ++report_.entries_kept;
  }

  // An entry refused before it was read: seen, then a bad entry.
  void reject(const std::string& where, const std::string& field, const std::string& message) {
    ++report_.entries_seen;
    bad(where, field, message);
  }

  // A class folder or label that is contempt, when dropping it: each image counted.
  void drop_contempt(const fs::path& file) {
    ++report_.entries_seen;
    report_.skip(
        {str(file), "class",
         "contempt is not one of the 7 expressions: dropped, as the paper does (--keep-contempt keeps it, "
         "unlabelled)"});
  }

  Dataset take() { return std::move(dataset_); }

 private:
  const ImageFolderOptions& options_;
  const FacePipeline* faces_;
  ReadReport& report_;
  ImageReadOptions image_options_;
  PreprocessOptions crop_options_;
  Dataset dataset_;
};

// The label of a class folder: -1 for a kept (unlabelled) contempt folder, nullopt for a
// dropped one; DataError otherwise.
std::optional<int> class_label(const fs::path& dir, const ImageFolderOptions& options) {
  const std::string name = name_of(dir);
  if (const auto idx = expression_index(name)) return idx;
  if (lower(name) == "contempt") {
    if (options.keep_contempt) return -1;
    if (options.drop_contempt) return std::nullopt;
    throw DataError(str(dir) + ": class folder 'contempt' is not one of the 7 expressions (" +
                    class_names_list() + "); by default its images are dropped, as the paper does");
  }
  throw DataError(str(dir) + ": class folder '" + name + "' is not an expression we know (" +
                  class_names_list() + ", or the CK+ / Kaggle spellings)");
}

// <dir>/<class>/<image>, all with `split`.
void collect_classes(const fs::path& dir, Split split, const ImageFolderOptions& options, SampleMaker& maker,
                     std::vector<Entry>& entries) {
  const auto classes = list(dir, true);
  if (classes.empty())
    throw DataError(str(dir) + ": no class folders (expected e.g. " + class_names_list() + ")");
  for (const auto& cls : classes) {
    const auto label = class_label(cls, options);
    const auto images = list_images(cls);
    if (images.empty()) {
      throw DataError(str(cls) +
                      ": empty class folder (no .png, .jpg, .jpeg, .bmp, .pgm, .tif, .tiff, .webp images)");
    }
    for (const auto& img : images) {
      if (label) {
        entries.push_back({img, *label, split});
      } else {
        maker.drop_contempt(img);
      }
    }
  }
}

// The first dot-separated part of a JAFFE name ("KA" in "KA.AN1.39.tiff").
std::string jaffe_subject(const std::string& name) { return name.substr(0, name.find('.')); }

// <dir>/<image> with labels from JAFFE file names; folders beside the images are noted, not read.
void collect_flat(const fs::path& dir, Split split, SampleMaker& maker, std::vector<Entry>& entries,
                  ReadReport& report) {
  for (const auto& sub : list(dir, true)) {
    report.note({str(sub), "folder",
                 "not read: " + str(dir) +
                     " holds images at its top level, so it is read as a flat folder (labels from JAFFE "
                     "file names such as KA.AN1.39.tiff; for labelled folders, keep only class folders "
                     "such as happy/ and sad/ there) and its sub-folders are ignored"});
  }
  std::vector<std::string> subjects;
  const size_t first = entries.size();
  for (const auto& img : list_images(dir)) {
    const std::string name = name_of(img);
    const auto label = jaffe_label(name);
    if (!label) {
      maker.reject(str(img), "name",
                   "has no JAFFE expression code (AN, DI, FE, HA, NE, SA or SU, as in KA.AN1.39.tiff), which "
                   "a flat folder takes its labels from");
      continue;
    }
    entries.push_back({img, *label, split});
    subjects.push_back(jaffe_subject(name));
  }
  // Subject ids: the subjects' names in byte order, numbered from 0 (deterministic).
  std::vector<std::string> sorted = subjects;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  for (size_t i = 0; i < subjects.size(); ++i) {
    entries[first + i].subject = static_cast<int32_t>(
        std::lower_bound(sorted.begin(), sorted.end(), subjects[i]) - sorted.begin());
  }
}

// One split's folder: flat when it holds images, else class folders.
void collect_split(const fs::path& dir, Split split, const ImageFolderOptions& options, SampleMaker& maker,
                   std::vector<Entry>& entries, ReadReport& report) {
  if (!list_images(dir).empty()) {
    collect_flat(dir, split, maker, entries, report);
  } else {
    collect_classes(dir, split, options, maker, entries);
  }
}

// Any layout (see read_image_folder); entries in a deterministic order.
std::vector<Entry> collect_folder(const std::string& root_name, const ImageFolderOptions& options,
                                  SampleMaker& maker, ReadReport& report) {
  const fs::path root = fs::u8path(root_name);
  require_folder(root, "dataset folder");
  const auto dirs = list(root, true);
  const bool has_images = !list_images(root).empty();
  if (dirs.empty() && !has_images) {
    throw DataError(root_name +
                    ": empty folder (no images, no class folders such as happy/, no split folders such as "
                    "train/)");
  }
  const bool split_layout = !has_images && std::any_of(dirs.begin(), dirs.end(), [](const fs::path& d) {
    return parse_split(name_of(d)).has_value();
  });
  std::vector<Entry> entries;
  if (!split_layout) {
    collect_split(root, options.split.value_or(Split::kTraining), options, maker, entries, report);
    return entries;
  }
  bool matched = false;
  std::string present;
  for (const auto& d : dirs) {
    const auto split = parse_split(name_of(d));
    if (!split) {
      throw DataError(str(d) + ": folder '" + name_of(d) +
                      "' is not a split (train, val, valid, test, ...) but " + "its sibling folders are");
    }
    present += (present.empty() ? "" : ", ") + name_of(d);
    if (options.split && *split != *options.split) continue;
    matched = true;
    collect_split(d, *split, options, maker, entries, report);
  }
  if (!matched) {
    throw DataError(root_name + ": no folder for split " + std::string(to_string(*options.split)) +
                    " (its split folders: " + present + ")");
  }
  return entries;
}

// The number after 'S' in "S005", or -1.
int32_t subject_number(const std::string& s) {
  if (s.size() < 2 || (s[0] != 'S' && s[0] != 's')) return -1;
  size_t i = 1;
  int64_t v = 0;
  for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && i < 10; ++i)
    v = v * 10 + (s[i] - '0');
  return i > 1 ? static_cast<int32_t>(v) : -1;
}

// "S###_###_########.<ext>": subject number, or -1 when the name does not follow the pattern.
int32_t ckplus_frame_subject(const std::string& name) {
  const auto dot = name.rfind('.');
  const std::string stem = name.substr(0, dot);
  if (stem.size() != 17 || stem[0] != 'S' || stem[4] != '_' || stem[8] != '_') return -1;
  for (size_t i : {1, 2, 3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16}) {
    if (!std::isdigit(static_cast<unsigned char>(stem[i]))) return -1;
  }
  return subject_number(stem.substr(0, 4));
}

}  // namespace

std::optional<int> jaffe_label(const std::string& file_name) {
  const auto dot = file_name.find('.');
  if (dot == std::string::npos || dot == 0) return std::nullopt;
  const auto end = file_name.find('.', dot + 1);
  if (end == std::string::npos) return std::nullopt;  // "<subject>.<code>" then at least an extension
  const std::string part = file_name.substr(dot + 1, end - dot - 1);
  if (part.size() < 2 ||
      !std::all_of(part.begin() + 2, part.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
    return std::nullopt;
  // JAFFE's codes, mapped by name through the one table of class names.
  static const std::pair<const char*, const char*> kCodes[] = {{"an", "angry"}, {"di", "disgust"}, {"fe", "fear"},
                                                               {"ha", "happy"}, {"ne", "neutral"}, {"sa", "sad"},
                                                               {"su", "surprise"}};
  const std::string code = lower(part.substr(0, 2));
  for (const auto& [c, name] : kCodes) {
    if (code == c) return expression_index(name);
  }
  return std::nullopt;
}

Dataset read_image_folder(const std::string& root, const ImageFolderOptions& options, ReadReport* report) {
  ReadReport local;
  ReadReport& rep = report ? *report : local;
  SampleMaker maker(options, nullptr, rep);
  for (const auto& e : collect_folder(root, options, maker, rep)) maker.add(e);
  return maker.take();
}

Dataset read_photo_folder(const std::string& root, const FacePipeline& faces,
                          const ImageFolderOptions& options, ReadReport* report) {
  ReadReport local;
  ReadReport& rep = report ? *report : local;
  SampleMaker maker(options, &faces, rep);
  for (const auto& e : collect_folder(root, options, maker, rep)) maker.add(e);
  return maker.take();
}

Dataset read_ckplus48(const std::string& root, const ImageFolderOptions& options, ReadReport* report) {
  ReadReport local;
  SampleMaker maker(options, nullptr, report ? *report : local);
  const fs::path dir = fs::u8path(root);
  require_folder(dir, "CK+48 folder");
  std::vector<Entry> entries;
  collect_classes(dir, options.split.value_or(Split::kTraining), options, maker, entries);
  for (auto& e : entries) {
    e.subject = ckplus_frame_subject(name_of(e.file));
    if (e.subject < 0) {
      maker.reject(str(e.file), "name",
                   "does not follow CK+'s S###_###_########.png (subject, sequence, frame)");
      continue;
    }
    maker.add(e);
  }
  return maker.take();
}

Dataset read_ckplus(const std::string& root, const FacePipeline* faces, const CkPlusOptions& options,
                    ReadReport* report) {
  if (options.frames_per_sequence < 1) {
    throw std::invalid_argument("--frames-per-sequence must be >= 1, got " +
                                std::to_string(options.frames_per_sequence));
  }
  ReadReport local;
  ReadReport& rep = report ? *report : local;
  const ImageFolderOptions& fo = options.folder;
  SampleMaker maker(fo, faces, rep);
  const fs::path base = fs::u8path(root);
  const fs::path images = base / "cohn-kanade-images";
  const fs::path emotion = base / "Emotion";
  require_folder(base, "CK+ folder");
  require_folder(images, "CK+ image folder");
  require_folder(emotion, "CK+ label folder");
  static const char* kCodes[8] = {"neutral", "anger", "contempt", "disgust",
                                  "fear",    "happy", "sadness",  "surprise"};
  const Split split = fo.split.value_or(Split::kTraining);
  size_t label_files = 0;
  for (const auto& subject_dir : list(emotion, true)) {
    const int32_t subject = subject_number(name_of(subject_dir));
    for (const auto& seq_dir : list(subject_dir, true)) {
      for (const auto& file : list(seq_dir, false)) {
        const std::string name = name_of(file);
        if (name.size() < 12 || name.compare(name.size() - 12, 12, "_emotion.txt") != 0) continue;
        ++label_files;
        const std::string where = str(file);
        std::ifstream in(file);
        if (!in) {
          maker.reject(where, "emotion", "cannot open the label file");
          continue;
        }
        std::stringstream text;
        text << in.rdbuf();
        const std::string content = text.str().substr(0, 200);  // one number; a long file is wrong anyway
        char* end = nullptr;
        const double code = std::strtod(content.c_str(), &end);
        const bool rest_blank =
            end && std::all_of(static_cast<const char*>(end), content.c_str() + content.size(),
                               [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
        if (end == content.c_str() || !rest_blank || !std::isfinite(code) || code < 0 || code > 7 ||
            std::abs(code - std::round(code)) > 1e-6) {
          maker.reject(where, "emotion", "is '" + content.substr(0, 30) + "', expected one CK+ code 0..7");
          continue;
        }
        const int ck = static_cast<int>(std::lround(code));
        const fs::path frames_dir = images / subject_dir.filename() / seq_dir.filename();
        std::error_code ec;
        const auto frames =
            fs::is_directory(frames_dir, ec) ? list_images(frames_dir) : std::vector<fs::path>{};
        if (frames.empty()) {
          maker.reject(where, "emotion", "labels a sequence without frames (" + str(frames_dir) + ")");
          continue;
        }
        const size_t n = std::min(frames.size(), static_cast<size_t>(options.frames_per_sequence));
        std::vector<Entry> picked;
        if (options.first_frame_neutral && frames.size() > n)
          picked.push_back({frames.front(), *expression_index(kCodes[0]), split, subject});
        const auto label = expression_index(kCodes[ck]);
        for (size_t i = frames.size() - n; i < frames.size(); ++i) {
          if (label) {
            picked.push_back({frames[i], *label, split, subject});
          } else if (fo.keep_contempt) {
            picked.push_back({frames[i], -1, split, subject});
          } else if (fo.drop_contempt) {
            maker.drop_contempt(frames[i]);
          } else {
            throw DataError(where +
                            ": emotion code 2 (contempt) is not one of the 7 expressions; by default its "
                            "frames are dropped, as the paper does");
          }
        }
        for (const auto& e : picked) maker.add(e);
      }
    }
  }
  if (label_files == 0)
    throw DataError(str(emotion) + ": no *_emotion.txt label files under Emotion/S###/###/");
  return maker.take();
}

}  // namespace fervid
