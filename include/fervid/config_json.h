// ModelConfig <-> JSON (model files, run configs, `info --json`). Torch-free.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "fervid/config.h"

namespace fervid {

nlohmann::json config_to_json(const ModelConfig& c);
// Throws std::invalid_argument naming the missing or invalid field.
ModelConfig config_from_json(const nlohmann::json& j);

// The first architecture field on which two configurations differ, with both values, e.g.
// "variant (\"mcsa\" vs \"vgg16\")"; "" when they agree. Fields: variant, width, input_size,
// in_channels, multiscale, se_reduction, spatial_kernel, class_names.
std::string architecture_mismatch(const ModelConfig& a, const ModelConfig& b);

}  // namespace fervid
