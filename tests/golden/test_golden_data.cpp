// Golden outputs of the shipped model on FER2013 PrivateTest rows, one per expression (ctest
// labels `data` and `golden`, FERVID_DATA): each recorded row (tests/golden/expected.json,
// "fer2013_private_test", written by scripts/record_golden.py with FERVID_DATA) gives the recorded
// label and probabilities within 1e-3, through the folded and the plain network. Only row indices
// and numbers are in the repository; the pixels are read from the shared data.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "data_dir.h"
#include "fervid/classifier.h"
#include "fervid/hash.h"
#include "fervid/labels.h"
#include "fervid/readers.h"

namespace fs = std::filesystem;

namespace {

const fs::path kRoot = FERVID_SOURCE_DIR;

TEST(GoldenData, Fer2013PrivateTestRowOfEveryExpression) {
  std::ifstream in(kRoot / "tests" / "golden" / "expected.json");
  ASSERT_TRUE(in) << "tests/golden/expected.json is missing: run scripts/record_golden.py";
  const auto want = nlohmann::json::parse(in);
  const std::string model = (kRoot / want.at("model").get<std::string>()).string();
  ASSERT_EQ(fervid::sha256_file(model), want.at("model_sha256").get<std::string>())
      << model << " changed: run FERVID_DATA=... scripts/record_golden.py and review the new outputs";
  ASSERT_TRUE(want.contains("fer2013_private_test"))
      << "no FER2013 rows recorded: run FERVID_DATA=... scripts/record_golden.py";
  const auto& fer = want.at("fer2013_private_test");
  const double tol = want.at("tolerance").get<double>();
  const auto& rows = fer.at("rows");

  // One row per expression, all seven.
  std::set<std::string> labels;
  for (const auto& r : rows) labels.insert(r.at("label").get<std::string>());
  ASSERT_EQ(labels.size(), static_cast<size_t>(fervid::kNumExpressions)) << rows.dump(2);

  // The whole file, none skipped: dataset index == CSV data row.
  const fs::path csv = fervid::test::data_dir() / fer.at("data").get<std::string>();
  fervid::ReadReport report;
  const fervid::Dataset ds = fervid::read_fer2013_csv(csv.string(), {}, &report);
  ASSERT_EQ(report.skipped, 0u) << csv << ": row indices would not match";
  ASSERT_EQ(ds.size(), 35887u) << csv;

  for (const bool fold : {true, false}) {
    fervid::ClassifierOptions o;
    o.fold_batchnorm = fold;
    const fervid::Classifier classifier(model, o);
    ASSERT_EQ(classifier.input_size(), ds.height);
    const auto& names = classifier.class_names();
    for (const auto& r : rows) {
      const auto row = r.at("row").get<size_t>();
      const std::string what = "row " + std::to_string(row) + (fold ? " folded" : " plain");
      ASSERT_LT(row, ds.size()) << what;
      // The row is the recorded one: its split and its dataset label.
      EXPECT_EQ(ds.splits[row], fervid::Split::kPrivateTest) << what;
      EXPECT_EQ(fervid::kExpressionNames.at(static_cast<size_t>(ds.labels[row])), r.at("emotion").get<std::string>())
          << what;
      const auto s = classifier.classify(ds.image(row));
      EXPECT_EQ(names.at(static_cast<size_t>(s.label)), r.at("label").get<std::string>()) << what;
      ASSERT_EQ(s.probs.size(), names.size()) << what;
      for (size_t k = 0; k < names.size(); ++k)
        EXPECT_NEAR(s.probs[k], r.at("probs").at(names[k]).get<double>(), tol) << what << " " << names[k];
    }
  }
}

}  // namespace
