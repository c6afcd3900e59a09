// CK+48 from the shared datasets through the generic source API, and its protocols (label: data).
#include <map>
#include <set>

#include "fervid/data_source.h"
#include "fervid/splits.h"
#include "test_util.h"

using namespace fervid;

#ifdef FERVID_WITH_OPENCV  // CK+48 is PNG images: reading them needs OpenCV
namespace {
const OpenedSource& ckplus() {
  static const OpenedSource src = open_data_source((fervid::test::data_dir() / "ckplus/CK+48").string());
  return src;
}
}  // namespace

TEST(CkPlusData, ContemptDroppedLeaves927Images) {
  const auto& src = ckplus();
  EXPECT_EQ(src.format, SourceFormat::kCkPlus48);
  EXPECT_EQ(src.report.entries_seen, 981u);
  EXPECT_EQ(src.data.size(), 927u);
  std::set<int32_t> subjects(src.data.subjects.begin(), src.data.subjects.end());
  EXPECT_EQ(subjects.size(), 106u);  // 118 in all; 12 subjects posed only contempt
  EXPECT_EQ(subjects.count(-1), 0u);
}

TEST(CkPlusData, SubjectIndependentTenFoldNeverSharesASubject) {
  const auto& ds = ckplus().data;
  for (uint64_t seed : {1u, 2u, 3u}) {
    const auto folds = subject_kfold(ds, 10, seed);
    ASSERT_EQ(folds.size(), 10u);
    std::map<int32_t, size_t> fold_of;
    size_t total = 0;
    for (size_t f = 0; f < folds.size(); ++f) {
      EXPECT_GT(folds[f].size(), 40u) << "fold " << f << " is nearly empty";
      std::set<int> classes;
      for (auto i : folds[f]) {
        auto [it, inserted] = fold_of.emplace(ds.subjects[i], f);
        EXPECT_EQ(it->second, f) << "subject S" << ds.subjects[i] << " is in folds " << it->second << " and " << f;
        classes.insert(ds.labels[i]);
        ++total;
      }
      EXPECT_GE(classes.size(), 5u) << "fold " << f << " is poorly stratified";
    }
    EXPECT_EQ(total, 927u);
  }
}

TEST(CkPlusData, PaperRandomSplitIsNineToOne) {
  const auto& ds = ckplus().data;
  auto [train, test] = random_split(ds, 0.1, 1);
  EXPECT_EQ(train.size() + test.size(), 927u);
  EXPECT_NEAR(static_cast<double>(test.size()), 92.7, 3.0);
}
#else
// The core without OpenCV refuses image sources by name instead of failing later.
TEST(CkPlusData, WithoutOpenCvTheFormatIsRefusedByName) {
  const auto dir = (fervid::test::data_dir() / "ckplus/CK+48").string();
  try {
    open_data_source(dir);
    FAIL() << "opened " << dir << " without OpenCV";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(dir), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("needs fervid built with OpenCV"), std::string::npos) << e.what();
  }
}
#endif
