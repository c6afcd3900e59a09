// The TF.js graph reader (include/fervid/tfjs_graph.h) against TensorFlow.js itself: a small
// hand-written graph whose values are exact in float32 (tests/fixtures/tfjs_tiny/, two of them
// also worked out by hand), BlazeFace on a synthetic input (tests/fixtures/blazeface_reference.json,
// recorded with @tensorflow/tfjs 4.22.0's CPU backend: tests/reference/tfjs/README.md), and the
// malformed files it must refuse by name.
#include <gtest/gtest.h>
#include <unistd.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "fervid/model_io.h"
#include "fervid/tfjs_graph.h"

namespace fervid {
namespace {

const std::string kFixtures = FERVID_FIXTURES_DIR;
const std::string kBlazeFace = std::string(FERVID_SOURCE_DIR) + "/models/third_party/blazeface/blazeface.json";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

torch::Tensor tensor_of(const nlohmann::json& values, const nlohmann::json& shape) {
  std::vector<float> v = values.get<std::vector<float>>();
  return torch::from_blob(v.data(), {static_cast<int64_t>(v.size())}, torch::kFloat32)
      .clone()
      .reshape(shape.get<std::vector<int64_t>>());
}

std::string error_of(const std::string& path) {
  try {
    TfjsGraph g(path);
  } catch (const ModelFileError& e) {
    return e.what();
  }
  return "(loaded)";
}

TEST(TfjsGraph, TinyGraphEqualsTensorFlowJsExactly) {
  const auto expected = read_json(kFixtures + "/tfjs_tiny/expected.json");
  TfjsGraph g(kFixtures + "/tfjs_tiny/model.json");
  ASSERT_EQ(g.output_names(), (std::vector<std::string>{"Identity", "Identity_1", "Identity_2", "Identity_3"}));
  const auto input = tensor_of(expected["input"]["values"], expected["input"]["shape"]);
  const auto out = g.run(input);
  ASSERT_EQ(out.size(), 4u);
  for (size_t k = 0; k < out.size(); ++k) {
    const auto& e = expected["outputs"][g.output_names()[k] + ":0"];
    const auto want = tensor_of(e["values"], e["shape"]);
    ASSERT_EQ(out[k].sizes(), want.sizes()) << g.output_names()[k];
    // Multiples of 1/8 throughout: float32 arithmetic is exact, so the answers must be equal.
    EXPECT_TRUE(torch::equal(out[k], want)) << g.output_names()[k] << "\n" << out[k] << "\n" << want;
  }
  // The two values worked out by hand, both where TF's asymmetric SAME padding decides them.
  EXPECT_EQ(out[0].flatten()[18].item<float>(), 6.5f);    // conv_s2 at (1, 1), channel 2
  EXPECT_EQ(out[3].flatten()[11].item<float>(), 8.375f);  // dw_s2 at (1, 2), channel 1
  EXPECT_GT(g.multiply_accumulates(), 0);
  EXPECT_EQ(g.input_shape(), (std::vector<int64_t>{1, 6, 6, 2}));
}

TEST(TfjsGraph, RunTwiceAndBatchedGivesTheSame) {
  // In-place reuse of intermediate values must not leak from one run into the next.
  const auto expected = read_json(kFixtures + "/tfjs_tiny/expected.json");
  TfjsGraph g(kFixtures + "/tfjs_tiny/model.json");
  const auto input = tensor_of(expected["input"]["values"], expected["input"]["shape"]);
  const auto first = g.run(input);
  const auto second = g.run(input);
  for (size_t k = 0; k < first.size(); ++k) EXPECT_TRUE(torch::equal(first[k], second[k]));
  const auto before = input.clone();
  (void)g.run(input);
  EXPECT_TRUE(torch::equal(input, before)) << "the caller's input was overwritten";
}

TEST(TfjsGraph, RefusesMalformedFilesByName) {
  const std::string bad = kFixtures + "/tfjs_tiny/bad/";
  std::string m = error_of(bad + "unsupported_op.json");
  EXPECT_NE(m.find("unsupported_op.json"), std::string::npos) << m;
  EXPECT_NE(m.find("'relu'"), std::string::npos) << m;
  EXPECT_NE(m.find("Sigmoid"), std::string::npos) << m;
  m = error_of(bad + "weights_size_mismatch.json");
  EXPECT_NE(m.find("988"), std::string::npos) << m;
  EXPECT_NE(m.find("984"), std::string::npos) << m;
  m = error_of(bad + "dangling_input.json");
  EXPECT_NE(m.find("no_such_node"), std::string::npos) << m;
  EXPECT_NE(m.find("'add'"), std::string::npos) << m;
  m = error_of(bad + "bad_dtype.json");
  EXPECT_NE(m.find("uint32"), std::string::npos) << m;
  EXPECT_NE(m.find("conv_s2/bias"), std::string::npos) << m;
  m = error_of(bad + "no_such_file.json");
  EXPECT_NE(m.find("not found"), std::string::npos) << m;
  // Not JSON at all, and JSON that is not a graph model.
  const auto dir = std::filesystem::temp_directory_path() / ("fervid-tfjs-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream((dir / "garbage.json").string()) << "\x01\x02 not json";
  std::ofstream((dir / "layers.json").string()) << R"({"format": "layers-model", "modelTopology": {}})";
  EXPECT_NE(error_of((dir / "garbage.json").string()).find("not JSON"), std::string::npos);
  EXPECT_NE(error_of((dir / "layers.json").string()).find("not a TF.js graph model"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(TfjsGraph, WrongInputIsRefusedWithItsShape) {
  TfjsGraph g(kFixtures + "/tfjs_tiny/model.json");
  try {
    g.run(torch::zeros({1, 5, 6, 2}));
    FAIL() << "accepted a 5 x 6 input";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("[1,5,6,2]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(g.run(torch::zeros({1, 6, 6, 2}, torch::kFloat64)), std::invalid_argument);
}

TEST(TfjsGraph, BlazeFaceOnASyntheticInputEqualsTensorFlowJs) {
  const auto ref = read_json(kFixtures + "/blazeface_reference.json");
  const auto& case0 = ref["inputs"][0];
  ASSERT_EQ(case0["id"], "synthetic_sin");
  auto input = torch::empty({1, 256, 256, 3});
  float* p = input.data_ptr<float>();
  for (int y = 0; y < 256; ++y)
    for (int x = 0; x < 256; ++x)
      for (int c = 0; c < 3; ++c)
        p[(y * 256 + x) * 3 + c] = static_cast<float>(std::sin(0.05 * x + 0.07 * y + c));
  TfjsGraph g(kBlazeFace);
  EXPECT_EQ(g.compute_nodes(), 140);
  // 188.7 M multiply-accumulates per 256 x 256 pass (the issue's count, from the graph's shapes).
  EXPECT_NEAR(static_cast<double>(g.multiply_accumulates()) / 1e6, 188.7, 0.5);
  const auto out = g.run(input);
  ASSERT_EQ(out.size(), 4u);
  for (size_t k = 0; k < out.size(); ++k) {
    const auto& values = case0["outputs"][g.output_names()[k] + ":0"];
    const auto want = torch::tensor(values.get<std::vector<float>>()).reshape(out[k].sizes());
    // 6 significant digits in the fixture, float32 sums in another order in TF.js: relative
    // 1e-4 plus 2e-3 absolute (regressors reach ~150 pixels).
    const auto diff = (out[k] - want).abs() - (1e-4 * want.abs() + 2e-3);
    EXPECT_LE(diff.max().item<float>(), 0.0f) << g.output_names()[k] << ": max |diff| "
                                               << (out[k] - want).abs().max().item<float>();
  }
}

// The oneDNN engine (src/nn/tfjs_dnnl.cpp: fused residual blocks, in-place sums, filters
// reordered once) against the libtorch one, which the tests above hold to TF.js.
TEST(TfjsGraph, BothEnginesGiveTheSameOutputs) {
  const auto expected = read_json(kFixtures + "/tfjs_tiny/expected.json");
  TfjsGraph fast(kFixtures + "/tfjs_tiny/model.json");
  TfjsGraph plain(kFixtures + "/tfjs_tiny/model.json", TfjsEngine::kLibtorch);
  EXPECT_EQ(plain.engine(), "libtorch");
#ifdef FERVID_EXPECT_ONEDNN
  // Built with oneDNN's headers: the tiny graph (a residual from the input, one from a pooling,
  // Pad, asymmetric SAME) and BlazeFace must run on it, not fall back.
  EXPECT_EQ(fast.engine(), "onednn");
#endif
  const auto input = tensor_of(expected["input"]["values"], expected["input"]["shape"]);
  const auto batch = torch::cat({input, input * 0.5, -input}, 0);
  const auto before = batch.clone();
  for (const auto& x : {input, batch}) {
    const auto a = fast.run(x), b = plain.run(x);
    ASSERT_EQ(a.size(), b.size());
    for (size_t k = 0; k < a.size(); ++k) EXPECT_TRUE(torch::equal(a[k], b[k])) << fast.output_names()[k];
  }
  EXPECT_TRUE(torch::equal(batch, before)) << "the caller's input was overwritten";

  TfjsGraph face(kBlazeFace);
  TfjsGraph face_plain(kBlazeFace, TfjsEngine::kLibtorch);
#ifdef FERVID_EXPECT_ONEDNN
  EXPECT_EQ(face.engine(), "onednn");
#endif
  torch::manual_seed(7);
  const auto frames = torch::rand({3, 256, 256, 3}) * 2 - 1;
  for (int rep = 0; rep < 2; ++rep) {  // the second run reuses the plan built by the first
    const auto a = face.run(frames), b = face_plain.run(frames);
    for (size_t k = 0; k < a.size(); ++k)
      EXPECT_TRUE(torch::allclose(a[k], b[k], 1e-5, 1e-4))
          << face.output_names()[k] << ": max |diff| " << (a[k] - b[k]).abs().max().item<float>();
  }
  // One frame alone gives what it gives inside the batch.
  const auto one = face.run(frames.slice(0, 1, 2).contiguous());
  const auto all = face.run(frames);
  for (size_t k = 0; k < one.size(); ++k) EXPECT_TRUE(torch::allclose(one[k][0], all[k][1], 1e-5, 1e-4));
}

}  // namespace
}  // namespace fervid

namespace fervid {
// A graph the fuzzer found (fuzz/corpus/fuzz_tfjs_graph/regression-reshape-size.json): its
// Reshape asks for a size the tensor does not have. libtorch's error escaped the reader; it is
// now a ModelFileError naming the file.
TEST(TfjsGraph, AGraphThatDoesNotRunOnItsDeclaredShapeIsAModelFileError) {
  const auto dir = std::filesystem::temp_directory_path() / ("fervid-tfjs-reshape-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::filesystem::copy_file(kFixtures + "/tfjs_tiny/weights.bin", dir / "weights.bin",
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::copy_file(std::string(FERVID_SOURCE_DIR) + "/fuzz/corpus/fuzz_tfjs_graph/regression-reshape-size.json",
                             dir / "model.json", std::filesystem::copy_options::overwrite_existing);
  try {
    TfjsGraph g((dir / "model.json").string(), TfjsEngine::kLibtorch);
    ADD_FAILURE() << "read";
  } catch (const ModelFileError& e) {
    EXPECT_NE(std::string(e.what()).find("does not run on its declared input shape"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find((dir / "model.json").string()), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}
}  // namespace fervid
