// Model configuration: everything needed to rebuild a network, and what a model file records
// beside its weights (design.md section 2). Plain data, no torch: safe to include anywhere.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace fervid {

// The paper's family (section 3.2). kVgg16 is the plain baseline below them all.
enum class Variant { kVgg16, kM, kMca, kMsa, kMcsa };

std::string_view to_string(Variant v);
// Throws std::invalid_argument naming the accepted values.
Variant parse_variant(std::string_view s);
bool has_fusion(Variant v);             // every variant but kVgg16
bool has_channel_attention(Variant v);  // kMca, kMcsa
bool has_spatial_attention(Variant v);  // kMsa, kMcsa

struct ModelConfig {
  Variant variant = Variant::kMcsa;
  double width = 1.0;        // channel multiplier; 1.0 is the paper's VGG16
  int input_size = 48;       // square, grayscale; multiple of 16, >= 32
  int in_channels = 1;       // grayscale
  // Inception-style last convolution in blocks 3, 4, 5 (the abstract's multiscale kernels).
  // -1 = the variant's default: on for m/mca/msa/mcsa, off for vgg16.
  int multiscale = -1;
  int se_reduction = 16;     // r in SE channel attention
  int spatial_kernel = 7;    // spatial attention kernel (odd)
  double dropout = 0.5;      // before the FC-7 head
  std::vector<std::string> class_names;  // empty = the 7 FER2013 expressions
  // Input normalisation applied to gray levels in [0, 1]: (x - mean) / std.
  double norm_mean = 0.5;
  double norm_std = 0.5;

  bool uses_multiscale() const { return multiscale < 0 ? has_fusion(variant) : multiscale != 0; }
  int num_classes() const;
  const std::vector<std::string>& classes() const;
  // Channel counts of the five VGG blocks after the width multiplier (multiples of 8, >= 8).
  std::vector<int> block_channels() const;
  int embedding_dim() const;  // width of the pooled vector the head and the losses see

  // Throws std::invalid_argument with the field name and value when a field is out of range.
  void validate() const;
  // "" when `field` is in range, else the rule it breaks ("in (0, 4]"): the rules validate()
  // applies, for callers that name fields their own way (the training options' flags). Fields:
  // width, input_size, in_channels, se_reduction, spatial_kernel, dropout, norm_std, class_names.
  std::string unmet_rule(std::string_view field) const;
};

// A width-scaled channel count: round(base * width) to the nearest multiple of 8, at least 8.
int scaled_channels(int base, double width);

}  // namespace fervid
