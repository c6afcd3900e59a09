#include "fervid/config.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "fervid/labels.h"

namespace fervid {

namespace {
constexpr std::pair<Variant, std::string_view> kVariantNames[] = {
    {Variant::kVgg16, "vgg16"}, {Variant::kM, "m"},     {Variant::kMca, "mca"},
    {Variant::kMsa, "msa"},     {Variant::kMcsa, "mcsa"}};

// VGG16's five blocks (design.md section 2).
constexpr int kBlockBase[5] = {64, 128, 256, 512, 512};

[[noreturn]] void bad_field(const std::string& field, const std::string& value,
                            const std::string& expected) {
  throw std::invalid_argument("model config: field '" + field + "' is " + value + ", expected " +
                              expected);
}
}  // namespace

std::string_view to_string(Variant v) {
  for (const auto& [variant, name] : kVariantNames) {
    if (variant == v) return name;
  }
  return "unknown";
}

Variant parse_variant(std::string_view s) {
  for (const auto& [variant, name] : kVariantNames) {
    if (name == s) return variant;
  }
  throw std::invalid_argument("unknown variant '" + std::string(s) +
                              "' (expected one of: vgg16, m, mca, msa, mcsa)");
}

bool has_fusion(Variant v) { return v != Variant::kVgg16; }
bool has_channel_attention(Variant v) { return v == Variant::kMca || v == Variant::kMcsa; }
bool has_spatial_attention(Variant v) { return v == Variant::kMsa || v == Variant::kMcsa; }

int scaled_channels(int base, double width) {
  const long rounded = std::lround(base * width / 8.0) * 8;
  return static_cast<int>(std::max(8L, rounded));
}

int ModelConfig::num_classes() const { return static_cast<int>(classes().size()); }

const std::vector<std::string>& ModelConfig::classes() const {
  static const std::vector<std::string> kDefault = default_class_names();
  return class_names.empty() ? kDefault : class_names;
}

std::vector<int> ModelConfig::block_channels() const {
  std::vector<int> out;
  for (int base : kBlockBase) out.push_back(scaled_channels(base, width));
  return out;
}

int ModelConfig::embedding_dim() const { return scaled_channels(512, width); }

void ModelConfig::validate() const {
  if (!(width > 0.0 && width <= 4.0)) bad_field("width", std::to_string(width), "in (0, 4]");
  if (input_size < 32 || input_size % 16 != 0) {
    bad_field("input_size", std::to_string(input_size), "a multiple of 16, at least 32");
  }
  if (input_size > 1024) bad_field("input_size", std::to_string(input_size), "at most 1024");
  if (in_channels != 1 && in_channels != 3) {
    bad_field("in_channels", std::to_string(in_channels), "1 (gray) or 3");
  }
  if (se_reduction < 1) bad_field("se_reduction", std::to_string(se_reduction), ">= 1");
  if (spatial_kernel < 1 || spatial_kernel % 2 == 0) {
    bad_field("spatial_kernel", std::to_string(spatial_kernel), "an odd number >= 1");
  }
  if (!(dropout >= 0.0 && dropout < 1.0)) bad_field("dropout", std::to_string(dropout), "in [0, 1)");
  if (!(norm_std > 0.0)) bad_field("norm_std", std::to_string(norm_std), "> 0");
  if (num_classes() < 2) bad_field("class_names", std::to_string(num_classes()), "at least 2");
}

}  // namespace fervid
