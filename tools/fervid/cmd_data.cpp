// fervid data check | preview: what is in a dataset, what is wrong with it, and how it looks.
#include <fmt/format.h>

#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "fervid/augment.h"
#include "fervid/data_check.h"
#include "fervid/data_source.h"
#include "fervid/labels.h"
#ifdef FERVID_WITH_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "fervid/atomic_file.h"
#endif

namespace fervid::cli {

namespace {

struct SourceFlags {
  std::string source;
  std::string format = "auto";
  std::string ferplus;
  std::string ferplus_rule = "majority";
  bool strict = false;
  int size = 48;
  bool keep_contempt = false;
  bool align = false;

  void add_to(CLI::App* cmd) {
    cmd->add_option("SOURCE", source, "FER2013 CSV (.csv/.csv.gz), image folder, CK+48, CK+ or photo folder")->required();
    cmd->add_option("--format", format, "auto | fer2013 | folder | ckplus48 | ckplus | photos")
        ->check(CLI::IsMember({"auto", "fer2013", "folder", "ckplus48", "ckplus", "photos"}))->capture_default_str();
    cmd->add_option("--ferplus", ferplus, "FER+ votes (fer2013new.csv): use FER+ labels instead of FER2013's");
    cmd->add_option("--ferplus-rule", ferplus_rule, "majority (FER+'s rule) | plurality (ties excluded)")
        ->check(CLI::IsMember({"majority", "plurality"}))->capture_default_str();
    cmd->add_flag("--strict", strict, "An invalid entry is an error instead of a counted skip");
    cmd->add_option("--size", size, "Image side for folder formats")->capture_default_str();
    cmd->add_flag("--keep-contempt", keep_contempt, "CK+: refuse contempt instead of dropping it");
    cmd->add_flag("--align", align, "Photos / CK+: align the eye line (dlib landmarks)");
  }
  DataSourceOptions options() const {
    DataSourceOptions o;
    o.format = parse_source_format(format);
    o.ferplus = ferplus;
    o.ferplus_rule = ferplus_rule == "plurality" ? FerPlusOptions::Labels::kPlurality : FerPlusOptions::Labels::kMajority;
    o.strict = strict;
    o.size = size;
    o.drop_contempt = !keep_contempt;
    o.align = align;
    return o;
  }
};

struct CheckOptions {
  SourceFlags source;
  bool json = false;
  int show_issues = 10;
};

nlohmann::json check_to_json(const OpenedSource& src, const DataCheck& c, const std::string& path) {
  using nlohmann::json;
  json splits = json::object();
  for (int s = 0; s < kNumSplits; ++s) {
    json per = json::object();
    size_t total = 0;
    for (int k = 0; k < src.data.num_classes; ++k) {
      per[std::string(kExpressionNames[static_cast<size_t>(k)])] = c.counts[static_cast<size_t>(s)][static_cast<size_t>(k)];
      total += c.counts[static_cast<size_t>(s)][static_cast<size_t>(k)];
    }
    if (total == 0) continue;
    per["total"] = total;
    splits[std::string(to_string(static_cast<Split>(s)))] = per;
  }
  json issues = json::array();
  for (const auto& i : src.report.issues) issues.push_back({{"where", i.where}, {"field", i.field}, {"message", i.message}});
  json across = json::array();
  for (int a = 0; a < kNumSplits; ++a) {
    for (int b = a + 1; b < kNumSplits; ++b) {
      across.push_back({{"split", to_string(static_cast<Split>(b))}, {"also_in", to_string(static_cast<Split>(a))},
                        {"images", c.duplicates_across[static_cast<size_t>(a)][static_cast<size_t>(b)]}});
    }
  }
  json within = json::object();
  for (int s = 0; s < kNumSplits; ++s) within[std::string(to_string(static_cast<Split>(s)))] = c.duplicates_within[static_cast<size_t>(s)];
  return {{"source", path},
          {"format", to_string(src.format)},
          {"data_key", src.cache_key},
          {"samples", c.samples},
          {"subjects", c.subjects},
          {"image_size", {src.data.height, src.data.width}},
          {"counts", splits},
          {"read", {{"entries_seen", src.report.entries_seen}, {"entries_kept", src.report.entries_kept},
                    {"skipped", src.report.skipped}, {"issues", issues}}},
          {"duplicates", {{"groups", c.duplicate_groups}, {"images_in_groups", c.images_in_duplicate_groups},
                          {"within_split", within}, {"across_splits", across},
                          {"groups_with_conflicting_labels", c.conflicting_label_groups},
                          {"examples", c.cross_split_examples}}},
          {"blank_images", {{"count", c.blank}, {"where", c.blank_origins}}},
          {"constant_images", c.constant}};
}

void print_check(const OpenedSource& src, const DataCheck& c, const std::string& path, int show_issues) {
  std::cout << fmt::format("{} ({}): {} samples of {}x{}", path, to_string(src.format), c.samples, src.data.height,
                           src.data.width);
  std::cout << (c.subjects > 0 ? fmt::format(", {} subjects\n", c.subjects) : std::string("\n"));
  std::cout << fmt::format("read: {} entries, {} kept, {} skipped\n\n", src.report.entries_seen, src.report.entries_kept,
                           src.report.skipped);
  std::cout << fmt::format("{:<12}", "split");
  for (int k = 0; k < src.data.num_classes; ++k) std::cout << fmt::format("{:>9}", kExpressionNames[static_cast<size_t>(k)]);
  std::cout << fmt::format("{:>9}\n", "total");
  for (int s = 0; s < kNumSplits; ++s) {
    const auto& row = c.counts[static_cast<size_t>(s)];
    size_t total = 0;
    for (int k = 0; k < src.data.num_classes; ++k) total += row[static_cast<size_t>(k)];
    if (total == 0) continue;
    std::cout << fmt::format("{:<12}", to_string(static_cast<Split>(s)));
    for (int k = 0; k < src.data.num_classes; ++k) std::cout << fmt::format("{:>9}", row[static_cast<size_t>(k)]);
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
  if (!src.report.issues.empty()) {
    std::cout << fmt::format("\nskipped entries (first {} of {}):\n", std::min<size_t>(src.report.issues.size(), static_cast<size_t>(show_issues)),
                             src.report.skipped);
    for (size_t i = 0; i < src.report.issues.size() && static_cast<int>(i) < show_issues; ++i) {
      const auto& is = src.report.issues[i];
      std::cout << fmt::format("  {}: field '{}' {}\n", is.where, is.field, is.message);
    }
  }
}

#ifdef FERVID_WITH_OPENCV
struct PreviewOptions {
  SourceFlags source;
  std::string out;
  int per_class = 8;
  int scale = 2;
  uint64_t seed = 0;
  std::string split = "Training";
};

// One row per class: `per_class` samples as they are, then the same samples augmented.
void write_preview(const Dataset& ds, const PreviewOptions& o) {
  const int side = ds.height * o.scale, label_w = 90, gap = 8;
  const int cols = 2 * o.per_class;
  cv::Mat grid(ds.num_classes * side + 24, label_w + cols * side + gap, CV_8UC1, cv::Scalar(255));
  cv::putText(grid, "original", cv::Point(label_w, 16), cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(0), 1);
  cv::putText(grid, "augmented", cv::Point(label_w + o.per_class * side + gap, 16), cv::FONT_HERSHEY_SIMPLEX, 0.45,
              cv::Scalar(0), 1);
  const auto split = parse_split(o.split);
  auto gen = make_generator(o.seed);
  for (int k = 0; k < ds.num_classes; ++k) {
    std::vector<size_t> idx;
    for (size_t i = 0; i < ds.size() && static_cast<int>(idx.size()) < o.per_class; ++i) {
      if (ds.labels[i] == k && (!split || ds.splits[i] == *split)) idx.push_back(i);
    }
    const int y = 24 + k * side;
    cv::putText(grid, std::string(kExpressionNames[static_cast<size_t>(k)]), cv::Point(4, y + side / 2 + 5),
                cv::FONT_HERSHEY_SIMPLEX, 0.45, cv::Scalar(0), 1);
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
    const auto src = open_data_source(check->source.source, check->source.options());
    const auto result = check_dataset(src.data);
    if (check->json) {
      std::cout << check_to_json(src, result, check->source.source).dump(2) << "\n";
    } else {
      print_check(src, result, check->source.source, check->show_issues);
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
  p->add_option("--split", preview->split, "Split to draw from (all: any)")->capture_default_str();
  p->callback([preview] {
    const auto src = open_data_source(preview->source.source, preview->source.options());
    write_preview(src.data, *preview);
    std::cout << "wrote " << preview->out << "\n";
  });
#endif
}

}  // namespace fervid::cli
