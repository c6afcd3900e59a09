// fervid data check | preview: what is in a dataset, what is wrong with it, and how it looks.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "data_source_flags.h"
#include "fervid/augment.h"
#include "fervid/data_check.h"
#include "fervid/data_source.h"
#include "fervid/json_text.h"
#include "fervid/labels.h"
#include "fervid/splits.h"
#ifdef FERVID_WITH_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "fervid/atomic_file.h"
#endif

namespace fervid::cli {

namespace {

struct SourceFlags {
  std::string source;
  DataSourceFlags flags;
  const CLI::App* cmd = nullptr;

  void add_to(CLI::App* c) {
    cmd = c;
    c->add_option("SOURCE", source, "FER2013 CSV (.csv/.csv.gz), image folder, CK+48, CK+ or photo folder")->required();
    flags.add_to(c, DataSourceFlags::Use::kInspect);
  }
  DataSourceOptions options() const {
    DataSourceOptions o;
    flags.apply(cmd, o);
    return o;
  }
};

// Issues (or notes) of one field, for the per-reason listings.
std::vector<const DataIssue*> of_field(const std::vector<DataIssue>& list, const std::string& field) {
  std::vector<const DataIssue*> out;
  for (const auto& i : list) {
    if (i.field == field) out.push_back(&i);
  }
  return out;
}

size_t count_of(const std::map<std::string, size_t>& by_field, const std::string& field) {
  const auto it = by_field.find(field);
  return it == by_field.end() ? 0 : it->second;
}

struct CheckOptions {
  SourceFlags source;
  bool json = false;
  int show_issues = 10;
};

nlohmann::json check_to_json(const OpenedSource& src, const DataCheck& c, const std::string& path,
                             const std::string& ferplus) {
  using nlohmann::json;
  json splits = json::object();
  for (int s = 0; s < kNumSplits; ++s) {
    json per = json::object();
    size_t total = 0;
    for (int k = 0; k < src.data.num_classes; ++k) {
      per[std::string(kExpressionNames[static_cast<size_t>(k)])] = c.counts[static_cast<size_t>(s)][static_cast<size_t>(k)];
      total += c.counts[static_cast<size_t>(s)][static_cast<size_t>(k)];
    }
    const size_t unlabelled = c.counts[static_cast<size_t>(s)][static_cast<size_t>(src.data.num_classes)];
    if (unlabelled > 0) per["unlabelled"] = unlabelled;  // --keep-contempt
    total += unlabelled;
    if (total == 0) continue;
    per["total"] = total;
    splits[std::string(to_string(static_cast<Split>(s)))] = per;
  }
  auto listed = [](const std::vector<DataIssue>& list) {
    json a = json::array();
    for (const auto& i : list) a.push_back({{"where", i.where}, {"field", i.field}, {"message", i.message}});
    return a;
  };
  auto report_json = [&](const ReadReport& r) {
    return json{{"entries_seen", r.entries_seen}, {"entries_kept", r.entries_kept}, {"skipped", r.skipped},
                {"skipped_by_field", r.skipped_by_field}, {"issues", listed(r.issues)},
                {"notes_by_field", r.notes_by_field}, {"notes", listed(r.notes)}};
  };
  json across = json::array();
  for (int a = 0; a < kNumSplits; ++a) {
    for (int b = a + 1; b < kNumSplits; ++b) {
      across.push_back({{"split", to_string(static_cast<Split>(b))}, {"also_in", to_string(static_cast<Split>(a))},
                        {"images", c.duplicates_across[static_cast<size_t>(a)][static_cast<size_t>(b)]}});
    }
  }
  json within = json::object();
  for (int s = 0; s < kNumSplits; ++s) within[std::string(to_string(static_cast<Split>(s)))] = c.duplicates_within[static_cast<size_t>(s)];
  json out = {{"source", path},
          {"format", to_string(src.format)},
          {"data_key", src.cache_key},
          {"samples", c.samples},
          {"subjects", c.subjects},
          {"image_size", {src.data.height, src.data.width}},
          {"counts", splits},
          {"read", report_json(src.report)},
          {"duplicates", {{"groups", c.duplicate_groups}, {"images_in_groups", c.images_in_duplicate_groups},
                          {"within_split", within}, {"across_splits", across},
                          {"groups_with_conflicting_labels", c.conflicting_label_groups},
                          {"examples", c.cross_split_examples}}},
          {"blank_images", {{"count", c.blank}, {"where", c.blank_origins}}},
          {"constant_images", c.constant}};
  if (!ferplus.empty()) out["ferplus"] = {{"file", ferplus}, {"read", report_json(src.ferplus_report)}};
  if (detects_faces(src.format)) {
    auto files = [](const std::vector<const DataIssue*>& list) {
      json a = json::array();
      for (const auto* i : list) a.push_back(i->where);
      return a;
    };
    out["faces"] = {{"no_face", {{"count", count_of(src.report.skipped_by_field, "face")},
                                 {"files", files(of_field(src.report.issues, "face"))}}},
                    {"several_faces", {{"count", count_of(src.report.notes_by_field, "faces")},
                                       {"files", files(of_field(src.report.notes, "faces"))}}}};
  }
  return out;
}

std::string by_field(const std::map<std::string, size_t>& counts) {
  std::string s;
  for (const auto& [field, n] : counts) s += fmt::format("{}{} '{}'", s.empty() ? "" : ", ", n, field);
  return s;
}

void print_check(const OpenedSource& src, const DataCheck& c, const std::string& path, const std::string& ferplus,
                 int show_issues) {
  std::cout << fmt::format("{} ({}): {} samples of {}x{}", path, to_string(src.format), c.samples, src.data.height,
                           src.data.width);
  std::cout << (c.subjects > 0 ? fmt::format(", {} subjects\n", c.subjects) : std::string("\n"));
  const auto& r = src.report;
  std::cout << fmt::format("read {}: {} entries, {} kept, {} skipped{}\n", path, r.entries_seen, r.entries_kept,
                           r.skipped, r.skipped > 0 ? " (by field: " + by_field(r.skipped_by_field) + ")" : "");
  if (!ferplus.empty()) {
    const auto& f = src.ferplus_report;
    std::cout << fmt::format("read {} (FER+ labels): {} rows, {} labelled, {} skipped{}\n", ferplus, f.entries_seen,
                             f.entries_kept, f.skipped,
                             f.skipped > 0 ? " (by field: " + by_field(f.skipped_by_field) + ")" : "");
  }
  std::cout << "\n";
  const auto k_unlabelled = static_cast<size_t>(src.data.num_classes);
  bool any_unlabelled = false;
  for (const auto& row : c.counts) any_unlabelled |= row[k_unlabelled] > 0;
  std::cout << fmt::format("{:<12}", "split");
  for (int k = 0; k < src.data.num_classes; ++k) std::cout << fmt::format("{:>9}", kExpressionNames[static_cast<size_t>(k)]);
  if (any_unlabelled) std::cout << fmt::format("{:>11}", "unlabelled");
  std::cout << fmt::format("{:>9}\n", "total");
  for (int s = 0; s < kNumSplits; ++s) {
    const auto& row = c.counts[static_cast<size_t>(s)];
    size_t total = 0;
    for (size_t k = 0; k <= k_unlabelled; ++k) total += row[k];
    if (total == 0) continue;
    std::cout << fmt::format("{:<12}", to_string(static_cast<Split>(s)));
    for (int k = 0; k < src.data.num_classes; ++k) std::cout << fmt::format("{:>9}", row[static_cast<size_t>(k)]);
    if (any_unlabelled) std::cout << fmt::format("{:>11}", row[k_unlabelled]);
    std::cout << fmt::format("{:>9}\n", total);
  }
  std::cout << fmt::format("\nexact duplicates: {} groups holding {} images ({} groups with conflicting labels)\n",
                           c.duplicate_groups, c.images_in_duplicate_groups, c.conflicting_label_groups);
  for (int s = 0; s < kNumSplits; ++s) {
    if (c.duplicates_within[static_cast<size_t>(s)] == 0) continue;
    std::cout << fmt::format("  within {}: {} images repeat an earlier one\n", to_string(static_cast<Split>(s)),
                             c.duplicates_within[static_cast<size_t>(s)]);
  }
  for (int a = 0; a < kNumSplits; ++a) {
    for (int b = a + 1; b < kNumSplits; ++b) {
      const auto n = c.duplicates_across[static_cast<size_t>(a)][static_cast<size_t>(b)];
      if (n == 0) continue;
      std::cout << fmt::format("  {} images also in {}: {}\n", to_string(static_cast<Split>(b)),
                               to_string(static_cast<Split>(a)), n);
    }
  }
  std::cout << fmt::format("blank (all-black) images: {}   constant images: {}\n", c.blank, c.constant);
  for (size_t i = 0; i < c.blank_origins.size() && i < 12; ++i) std::cout << "  blank: " << c.blank_origins[i] << "\n";
  const auto limit = static_cast<size_t>(std::max(show_issues, 0));
  if (detects_faces(src.format)) {
    const auto none = of_field(r.issues, "face");
    const auto several = of_field(r.notes, "faces");
    std::cout << fmt::format("\nfaces: {} images without a face (skipped), {} with several faces (the largest kept)\n",
                             count_of(r.skipped_by_field, "face"), count_of(r.notes_by_field, "faces"));
    for (size_t i = 0; i < none.size() && i < limit; ++i) std::cout << "  no face: " << none[i]->where << "\n";
    for (size_t i = 0; i < several.size() && i < limit; ++i) {
      std::cout << "  several faces: " << several[i]->where << ": " << several[i]->message << "\n";
    }
  }
  auto list = [&](const ReadReport& rep, const std::string& what) {
    if (rep.issues.empty()) return;
    std::cout << fmt::format("\n{} (first {} of {}):\n", what, std::min(rep.issues.size(), limit), rep.skipped);
    for (size_t i = 0; i < rep.issues.size() && i < limit; ++i) {
      const auto& is = rep.issues[i];
      std::cout << fmt::format("  {}: field '{}' {}\n", is.where, is.field, is.message);
    }
  };
  list(r, "skipped entries");
  list(src.ferplus_report, "skipped FER+ rows");
  const auto folders = of_field(r.notes, "folder");
  for (size_t i = 0; i < folders.size() && i < limit; ++i) {
    std::cout << (i == 0 ? "\n" : "") << "note: " << folders[i]->where << ": " << folders[i]->message << "\n";
  }
}

#ifdef FERVID_WITH_OPENCV
struct PreviewOptions {
  SourceFlags source;
  std::string out;
  int per_class = 8;
  int scale = 2;
  uint64_t seed = 0;
  std::string split = "all";
};

// The samples --split names (splits.h); a split the data has no samples of is an error too.
std::vector<size_t> preview_indices(const Dataset& ds, const std::string& name, const std::string& source) {
  if (name != "all" && !parse_split(name)) {
    throw std::invalid_argument("--split '" + name + "' is not a split; " + source + " has: " + splits_present(ds) +
                                " (folder names train, val, test work too)");
  }
  const auto idx = split_indices(ds, name);
  if (idx.empty()) {
    const std::string which = name == "all" ? "" : std::string(to_string(*parse_split(name))) + " ";
    throw std::invalid_argument("--split " + name + ": " + source + " has no " + which + "samples; it has: " + splits_present(ds));
  }
  return idx;
}

// One row per class: `per_class` samples as they are, then the same samples augmented.
void write_preview(const Dataset& ds, const PreviewOptions& o) {
  const int side = ds.height * o.scale, label_w = 90, gap = 8;
  const int cols = 2 * o.per_class;
  const bool unlabelled = std::any_of(ds.labels.begin(), ds.labels.end(), [](int8_t l) { return l < 0; });
  const int rows = ds.num_classes + (unlabelled ? 1 : 0);
  cv::Mat grid(rows * side + 24, label_w + cols * side + gap, CV_8UC1, cv::Scalar(255));
  cv::putText(grid, "original", cv::Point(label_w, 16), cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(0), 1);
  cv::putText(grid, "augmented", cv::Point(label_w + o.per_class * side + gap, 16), cv::FONT_HERSHEY_SIMPLEX, 0.45,
              cv::Scalar(0), 1);
  const auto in_split = preview_indices(ds, o.split, o.source.source);
  auto gen = make_generator(o.seed);
  for (int k = 0; k < rows; ++k) {
    const int label = k < ds.num_classes ? k : -1;  // the last row: unlabelled (--keep-contempt)
    std::vector<size_t> idx;
    for (size_t i : in_split) {
      if (static_cast<int>(idx.size()) == o.per_class) break;
      if (ds.labels[i] == label) idx.push_back(i);
    }
    const int y = 24 + k * side;
    cv::putText(grid, label >= 0 ? std::string(kExpressionNames[static_cast<size_t>(k)]) : std::string("unlabelled"),
                cv::Point(4, y + side / 2 + 5), cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(0), 1);
    if (idx.empty()) continue;
    auto raw = torch::empty({static_cast<int64_t>(idx.size()), ds.height, ds.width}, torch::kByte);
    for (size_t j = 0; j < idx.size(); ++j) std::memcpy(raw[static_cast<int64_t>(j)].data_ptr<uint8_t>(), ds.image(idx[j]), ds.image_bytes());
    auto aug = (augment(to_unit_float(raw, ds.height), AugmentOptions(), gen) * 255).round().to(torch::kByte).contiguous();
    for (size_t j = 0; j < idx.size(); ++j) {
      cv::Mat a(ds.height, ds.width, CV_8UC1, const_cast<uint8_t*>(ds.image(idx[j])));
      cv::Mat b(ds.height, ds.width, CV_8UC1, aug[static_cast<int64_t>(j)][0].data_ptr<uint8_t>());
      cv::Mat big;
      cv::resize(a, big, cv::Size(side, side), 0, 0, cv::INTER_NEAREST);
      big.copyTo(grid(cv::Rect(label_w + static_cast<int>(j) * side, y, side, side)));
      cv::resize(b, big, cv::Size(side, side), 0, 0, cv::INTER_NEAREST);
      big.copyTo(grid(cv::Rect(label_w + (o.per_class + static_cast<int>(j)) * side + gap, y, side, side)));
    }
  }
  std::vector<uchar> png;
  if (!cv::imencode(".png", grid, png)) throw std::runtime_error("cannot encode the preview PNG");
  write_file_atomically(o.out, std::string(png.begin(), png.end()));
}
#endif

}  // namespace

void add_data_command(CLI::App& app, const GlobalOptions& /*global*/) {
  auto* data = app.add_subcommand("data", "Inspect datasets: check, preview");
  data->require_subcommand(1);

  auto check = std::make_shared<CheckOptions>();
  auto* c = data->add_subcommand("check", "Counts per split and class, duplicates, blank images, invalid entries");
  check->source.add_to(c);
  c->add_flag("--json", check->json, "Print JSON instead of tables");
  c->add_option("--show-issues", check->show_issues, "Skipped entries to list")->capture_default_str();
  c->callback([check] {
    const auto options = check->source.options();
    const auto src = open_data_source(check->source.source, options);
    const auto result = check_dataset(src.data);
    if (check->json) {
      std::cout << dump_json(check_to_json(src, result, check->source.source, options.ferplus), 2) << "\n";
    } else {
      print_check(src, result, check->source.source, options.ferplus, check->show_issues);
    }
  });

#ifdef FERVID_WITH_OPENCV
  auto preview = std::make_shared<PreviewOptions>();
  auto* p = data->add_subcommand("preview", "A PNG grid of samples per class, as they are and augmented");
  preview->source.add_to(p);
  p->add_option("--out", preview->out, "Output PNG")->required();
  p->add_option("--per-class", preview->per_class, "Samples per class")->check(CLI::Range(1, 32))->capture_default_str();
  p->add_option("--scale", preview->scale, "Pixel magnification")->check(CLI::Range(1, 8))->capture_default_str();
  p->add_option("--seed", preview->seed, "Augmentation seed")->capture_default_str();
  p->add_option("--split", preview->split, "Split to draw from: Training, PublicTest, PrivateTest (or train, val, test), all")
      ->capture_default_str();
  p->callback([preview] {
    const auto src = open_data_source(preview->source.source, preview->source.options());
    write_preview(src.data, *preview);
    std::cout << "wrote " << preview->out << "\n";
  });
#endif
}

}  // namespace fervid::cli
