// Detector evaluation against hand annotations (include/fervid/detection_eval.h).
#include "fervid/detection_eval.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <tuple>

#include "fervid/dataset.h"
#include "fervid/vision.h"

namespace fervid {

namespace {

cv::Rect rect_of(const nlohmann::json& j, const std::string& where) {
  if (!j.is_array() || j.size() != 4)
    throw std::invalid_argument(where + ": expected [x, y, w, h], got " + j.dump());
  for (const auto& v : j)
    if (!v.is_number()) throw std::invalid_argument(where + ": expected numbers in [x, y, w, h], got " + j.dump());
  const cv::Rect r(static_cast<int>(std::lround(j[0].get<double>())), static_cast<int>(std::lround(j[1].get<double>())),
                   static_cast<int>(std::lround(j[2].get<double>())), static_cast<int>(std::lround(j[3].get<double>())));
  if (r.width <= 0 || r.height <= 0) throw std::invalid_argument(where + ": empty box " + j.dump());
  return r;
}

cv::Size size_of(const nlohmann::json& j, const std::string& where) {
  if (!j.is_array() || j.size() != 2 || !j[0].is_number_integer() || !j[1].is_number_integer() || j[0].get<int>() <= 0 ||
      j[1].get<int>() <= 0)
    throw std::invalid_argument(where + ": expected [width, height], got " + j.dump());
  return {j[0].get<int>(), j[1].get<int>()};
}

}  // namespace

bool AnnotatedFace::has(const std::string& tag) const {
  return std::find(tags.begin(), tags.end(), tag) != tags.end();
}

const AnnotatedImage& FaceAnnotations::image(const std::string& name) const {
  for (const auto& i : images)
    if (i.name == name) return i;
  throw std::out_of_range("no annotated image named " + name);
}

FaceAnnotations read_face_annotations(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw DataError(path + ": face annotations not found");
  FaceAnnotations out;
  std::string where = path;
  try {
    const auto j = nlohmann::json::parse(in);
    if (!j.contains("images") || !j["images"].is_object()) throw std::invalid_argument("no \"images\" object");
    for (const auto& [name, entry] : j["images"].items()) {
      where = path + ": images." + name;
      AnnotatedImage img;
      img.name = name;
      img.size = size_of(entry.at("size"), where + ".size");
      for (const auto& f : entry.at("faces")) {
        AnnotatedFace face;
        face.box = rect_of(f.at("box"), where + ".faces");
        if (f.contains("tags")) face.tags = f["tags"].get<std::vector<std::string>>();
        img.faces.push_back(std::move(face));
      }
      out.images.push_back(std::move(img));
    }
    if (j.contains("galleries")) {
      for (const auto& [name, entry] : j["galleries"].items()) {
        where = path + ": galleries." + name;
        Gallery g;
        g.name = name;
        g.canvas = size_of(entry.at("size"), where + ".size");
        g.background = entry.value("background", 0);
        for (const auto& t : entry.at("tiles")) {
          GalleryTile tile;
          tile.source = t.at("src").get<std::string>();
          tile.rect = rect_of(t.at("rect"), where + ".tiles.rect");
          tile.image = rect_of(t.at("image_rect"), where + ".tiles.image_rect");
          out.image(tile.source);  // must be annotated
          g.tiles.push_back(std::move(tile));
        }
        for (const auto& f : entry.at("faces")) {
          AnnotatedFace face;
          face.box = rect_of(f.at("box"), where + ".faces");
          if (f.contains("tags")) face.tags = f["tags"].get<std::vector<std::string>>();
          g.faces.push_back(std::move(face));
        }
        out.galleries.push_back(std::move(g));
      }
    }
  } catch (const DataError&) {
    throw;
  } catch (const std::exception& e) {
    throw DataError(where + ": malformed face annotations: " + e.what());
  }
  return out;
}

cv::Mat compose_gallery(const Gallery& gallery, const FaceAnnotations& annotations,
                        const std::function<cv::Mat(const std::string&)>& read, AnnotatedImage* faces) {
  cv::Mat canvas(gallery.canvas, CV_8UC3, cv::Scalar::all(gallery.background));
  const cv::Rect bounds(0, 0, canvas.cols, canvas.rows);
  for (const auto& tile : gallery.tiles) {
    (void)annotations.image(tile.source);
    cv::Mat src = read(tile.source);
    if (src.channels() == 1) cv::cvtColor(src, src, cv::COLOR_GRAY2BGR);
    const bool shrink = tile.image.width < src.cols || tile.image.height < src.rows;
    cv::Mat resized;
    cv::resize(src, resized, tile.image.size(), 0, 0, shrink ? cv::INTER_AREA : cv::INTER_LINEAR);
    if ((tile.image & bounds) != tile.image)
      throw std::invalid_argument("gallery " + gallery.name + ": a tile's image lies outside the canvas");
    resized.copyTo(canvas(tile.image));
  }
  if (faces) {
    faces->name = gallery.name;
    faces->size = gallery.canvas;
    faces->faces = gallery.faces;
  }
  return canvas;
}

FaceMatch match_faces(const std::vector<cv::Rect>& detections, const std::vector<cv::Rect>& truth, double min_iou) {
  FaceMatch m;
  m.truth_match.assign(truth.size(), -1);
  m.detection_match.assign(detections.size(), -1);
  std::vector<std::tuple<double, size_t, size_t>> pairs;
  for (size_t t = 0; t < truth.size(); ++t)
    for (size_t d = 0; d < detections.size(); ++d) {
      const double iou = box_iou(truth[t], detections[d]);
      if (iou >= min_iou) pairs.emplace_back(-iou, t, d);  // highest first, then lower indices
    }
  std::sort(pairs.begin(), pairs.end());
  for (const auto& [neg_iou, t, d] : pairs) {
    if (m.truth_match[t] >= 0 || m.detection_match[d] >= 0) continue;
    m.truth_match[t] = static_cast<int>(d);
    m.detection_match[d] = static_cast<int>(t);
  }
  return m;
}

void DetectionCounts::add(const AnnotatedImage& truth, const std::vector<cv::Rect>& boxes_found, double min_iou) {
  std::vector<cv::Rect> boxes;
  for (const auto& f : truth.faces) boxes.push_back(f.box);
  const FaceMatch m = match_faces(boxes_found, boxes, min_iou);
  faces += static_cast<int64_t>(boxes.size());
  detections += static_cast<int64_t>(boxes_found.size());
  for (size_t t = 0; t < boxes.size(); ++t) {
    const bool hit = m.truth_match[t] >= 0;
    found += hit;
    for (const auto& tag : truth.faces[t].tags) {
      auto& [f, n] = by_tag[tag];
      f += hit;
      ++n;
    }
  }
  for (int t : m.detection_match) correct += t >= 0;
}

nlohmann::json DetectionCounts::to_json() const {
  nlohmann::json tags = nlohmann::json::object();
  for (const auto& [tag, fn] : by_tag)
    tags[tag] = {{"found", fn.first}, {"faces", fn.second}, {"recall", fn.second ? double(fn.first) / fn.second : 0.0}};
  return {{"faces", faces},         {"found", found},         {"detections", detections},
          {"correct", correct},     {"recall", recall()},     {"precision", precision()},
          {"by_tag", tags}};
}

}  // namespace fervid
