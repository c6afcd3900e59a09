// The face recipes the benchmarks compare: the model's own, and the model served as it was before
// BlazeFace (OpenCV's Haar cascade, margin 0.1, no shift), for runs beside Haar in one process.
#pragma once

#include <string>

#include "fervid/analyzer.h"

namespace fervid::bench {

inline AnalyzerOptions served_with_haar() {
  AnalyzerOptions o;
  o.recipe.set("detector", std::string("haar"));
  o.recipe.set("margin", 0.1);
  o.recipe.set("offset_y", 0.0);
  return o;
}

}  // namespace fervid::bench
