// fervid info: per-layer parameters, multiply-accumulates and output shapes.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>
#include <memory>

#include "commands.h"
#include "fervid/classifier.h"
#include "fervid/config_json.h"
#include "fervid/hash.h"
#include "fervid/json_text.h"
#include "fervid/model_io.h"
#include "fervid/summary.h"

namespace fervid::cli {

namespace {

struct InfoOptions {
  std::string variant = "mcsa";
  std::string model;
  double width = 1.0;
  int input = 48;
  std::string multiscale = "auto";  // auto | on | off
  int reduction = 16;
  bool json = false;
};

std::string shape_string(const std::vector<int64_t>& s) {
  std::string out;
  for (size_t i = 1; i < s.size(); ++i) out += (i > 1 ? "x" : "") + std::to_string(s[i]);
  return out;
}

nlohmann::json to_json(const ModelSummary& s) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : s.layers) {
    layers.push_back({{"name", l.name}, {"kind", l.kind}, {"output_shape", l.output_shape},
                      {"params", l.params}, {"kernel_params", l.kernel_params}, {"macs", l.macs}});
  }
  return {{"config", config_to_json(s.config)},
          {"layers", layers},
          {"totals",
           {{"params", s.total_params},
            {"macs", s.total_macs},
            {"backbone_conv_params", s.backbone_conv_params},
            {"backbone_conv_macs", s.backbone_conv_macs},
            {"buffers", s.buffers},
            {"float32_bytes", 4 * (s.total_params + s.buffers)}}}};
}

void print_table(const ModelSummary& s) {
  const auto& c = s.config;
  std::cout << fmt::format("fervid {}  width {}  input 1x{}x{}  multiscale {}  classes {}\n\n",
                           to_string(c.variant), c.width, c.input_size, c.input_size,
                           c.uses_multiscale() ? "on" : "off", c.num_classes());
  std::cout << fmt::format("{:<42} {:<14} {:>14} {:>12} {:>14}\n", "layer", "kind", "output", "params", "MACs");
  for (const auto& l : s.layers) {
    std::cout << fmt::format("{:<42} {:<14} {:>14} {:>12} {:>14}\n", l.name, l.kind,
                             shape_string(l.output_shape), l.params, l.macs);
  }
  std::cout << fmt::format("\nbackbone convolutions (K^2*I*O): {:>10} params  {:>10} MACs\n",
                           human_count(static_cast<double>(s.backbone_conv_params)),
                           human_count(static_cast<double>(s.backbone_conv_macs)));
  std::cout << fmt::format("whole network:                   {:>10} params  {:>10} MACs  ({} BN buffers, {:.1f} MB float32)\n",
                           human_count(static_cast<double>(s.total_params)),
                           human_count(static_cast<double>(s.total_macs)), s.buffers,
                           4.0 * static_cast<double>(s.total_params + s.buffers) / 1e6);
}

}  // namespace

std::string human_count(double n) {
  if (n >= 1e9) return fmt::format("{:.2f} G", n / 1e9);
  if (n >= 1e6) return fmt::format("{:.2f} M", n / 1e6);
  if (n >= 1e3) return fmt::format("{:.2f} K", n / 1e3);
  return fmt::format("{:.0f}", n);
}

void add_info_command(CLI::App& app, const GlobalOptions& /*global*/) {
  auto opt = std::make_shared<InfoOptions>();
  auto* cmd = app.add_subcommand("info", "Per-layer parameters, multiply-accumulates and output shapes of a network");
  cmd->add_option("--variant", opt->variant, "vgg16 | m | mca | msa | mcsa")
      ->check(CLI::IsMember({"vgg16", "m", "mca", "msa", "mcsa"}))->capture_default_str();
  cmd->add_option("--width", opt->width, "Channel width multiplier (1.0 = the paper's VGG16)")->capture_default_str();
  cmd->add_option("--input", opt->input, "Square input size, a multiple of 16, >= 32")->capture_default_str();
  cmd->add_option("--multiscale", opt->multiscale, "Inception-style last conv of blocks 3-5: auto (on unless vgg16) | on | off")
      ->check(CLI::IsMember({"auto", "on", "off"}))->capture_default_str();
  cmd->add_option("--reduction", opt->reduction, "SE channel-attention reduction r")->capture_default_str();
  cmd->add_flag("--json", opt->json, "Print JSON instead of a table");
  auto* model = cmd->add_option("--model", opt->model,
                                "Describe a model file instead (no value: the shipped default model)")
                    ->expected(0, 1);
  cmd->callback([opt, model] {
    ModelConfig config;
    nlohmann::json about;
    ModelHeader header;
    if (model->count() > 0) {
      const std::string path = opt->model.empty() ? default_model_path() : opt->model;
      header = read_model_header(path);
      config = header.config;
      about = {{"path", path},
               {"sha256", sha256_file(path)},
               {"format_version", header.format_version},
               {"classes", config.classes()},
               {"face_recipe", to_json(header.face_recipe)},
               {"face_recipe_stored", header.recipe_stored},
               {"metadata", header.metadata}};
    } else {
      config.variant = parse_variant(opt->variant);
      config.width = opt->width;
      config.input_size = opt->input;
      config.multiscale = opt->multiscale == "auto" ? -1 : (opt->multiscale == "on" ? 1 : 0);
      config.se_reduction = opt->reduction;
    }
    config.validate();
    const auto s = summarize(config);
    if (opt->json) {
      auto j = to_json(s);
      if (!about.is_null()) j["model"] = about;
      std::cout << dump_json(j, 2) << "\n";
      return;
    }
    if (!about.is_null()) {
      const auto& m = about["metadata"];
      std::cout << fmt::format("model {}\n  sha256 {}\n  format version {}\n  classes {}\n",
                               about["path"].get<std::string>(), about["sha256"].get<std::string>(),
                               about["format_version"].get<int>(), fmt::join(config.classes(), " "));
      std::cout << fmt::format("  face recipe{}: {}\n",
                               about["face_recipe_stored"].get<bool>() ? "" : " (not stored: a version-1 file's)",
                               describe(header.face_recipe));
      if (m.contains("command")) std::cout << "  trained by: " << m["command"].get<std::string>() << "\n";
      if (m.contains("epoch") && m.contains("val_accuracy"))
        std::cout << fmt::format("  epoch {} of the run, {} accuracy {:.2f}%\n", m["epoch"].get<int>() + 1,
                                 m.value("val_split", "validation"), 100 * m["val_accuracy"].get<double>());
      std::cout << "\n";
    }
    print_table(s);
  });
}

}  // namespace fervid::cli
