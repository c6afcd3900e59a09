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

namespace {

// Every range ModelConfig must be in, once: validate() and unmet_rule() read it.
struct FieldRule {
  const char* field;
  const char* expected;
  bool (*ok)(const ModelConfig&);
  std::string (*value)(const ModelConfig&);
};
const FieldRule kFieldRules[] = {
    {"width", "in (0, 4]", [](const ModelConfig& c) { return c.width > 0.0 && c.width <= 4.0; },
     [](const ModelConfig& c) { return std::to_string(c.width); }},
    {"input_size", "a multiple of 16 in [32, 1024]",
     [](const ModelConfig& c) { return c.input_size >= 32 && c.input_size <= 1024 && c.input_size % 16 == 0; },
     [](const ModelConfig& c) { return std::to_string(c.input_size); }},
    {"in_channels", "1 (gray) or 3", [](const ModelConfig& c) { return c.in_channels == 1 || c.in_channels == 3; },
     [](const ModelConfig& c) { return std::to_string(c.in_channels); }},
    {"se_reduction", ">= 1", [](const ModelConfig& c) { return c.se_reduction >= 1; },
     [](const ModelConfig& c) { return std::to_string(c.se_reduction); }},
    {"spatial_kernel", "an odd number >= 1",
     [](const ModelConfig& c) { return c.spatial_kernel >= 1 && c.spatial_kernel % 2 == 1; },
     [](const ModelConfig& c) { return std::to_string(c.spatial_kernel); }},
    {"dropout", "in [0, 1)", [](const ModelConfig& c) { return c.dropout >= 0.0 && c.dropout < 1.0; },
     [](const ModelConfig& c) { return std::to_string(c.dropout); }},
    {"norm_std", "> 0", [](const ModelConfig& c) { return c.norm_std > 0.0; },
     [](const ModelConfig& c) { return std::to_string(c.norm_std); }},
    {"class_names", "at least 2", [](const ModelConfig& c) { return c.num_classes() >= 2; },
     [](const ModelConfig& c) { return std::to_string(c.num_classes()); }},
};

}  // namespace

void ModelConfig::validate() const {
  for (const auto& r : kFieldRules) {
    if (!r.ok(*this)) bad_field(r.field, r.value(*this), r.expected);
  }
}

std::string ModelConfig::unmet_rule(std::string_view field) const {
  for (const auto& r : kFieldRules) {
    if (r.field == field) return r.ok(*this) ? "" : r.expected;
  }
  throw std::invalid_argument("model config: no rule for field '" + std::string(field) + "'");
}

}  // namespace fervid
