// FER2013 and FER+ from the shared datasets (ctest label: data).
#include <filesystem>

#include "fervid/cache.h"
#include "fervid/data_check.h"
#include "fervid/readers.h"
#include "test_util.h"

using namespace fervid;

namespace {
std::string fer_csv() { return (fervid::test::data_dir() / "fer2013/fer2013.csv.gz").string(); }

const Dataset& fer() {
  static const Dataset ds = read_fer2013_csv(fer_csv(), {true});  // strict: the file is clean
  return ds;
}
}  // namespace

TEST(Fer2013Data, CountsMatchTheDataReadme) {
  const auto c = check_dataset(fer());
  EXPECT_EQ(c.samples, 35887u);
  // ../shared/data/README.md, per split and class (angry .. neutral).
  const std::vector<size_t> training = {3995, 436, 4097, 7215, 4830, 3171, 4965, 0};
  const std::vector<size_t> public_test = {467, 56, 496, 895, 653, 415, 607, 0};
  const std::vector<size_t> private_test = {491, 55, 528, 879, 594, 416, 626, 0};
  EXPECT_EQ(c.counts[0], training);
  EXPECT_EQ(c.counts[1], public_test);
  EXPECT_EQ(c.counts[2], private_test);
}

TEST(Fer2013Data, KnownDefectsAreReported) {
  const auto c = check_dataset(fer());
  EXPECT_EQ(c.duplicates_across[0][1], 279u);  // PublicTest images also in Training
  EXPECT_EQ(c.duplicates_across[0][2], 286u);  // PrivateTest images also in Training
  EXPECT_EQ(c.duplicates_across[1][2], 44u);   // PrivateTest images also in PublicTest
  EXPECT_EQ(c.blank, 12u);
  EXPECT_GT(c.duplicate_groups, 1000u);
}

TEST(Fer2013Data, FerPlusMajorityLabels) {
  auto ds = fer();
  ReadReport rep;
  apply_ferplus(ds, (fervid::test::data_dir() / "fer2013/fer2013new.csv").string(), {FerPlusOptions::Labels::kMajority, true},
                &rep);
  EXPECT_EQ(rep.entries_seen, 35887u);
  EXPECT_EQ(ds.size() + rep.skipped, 35887u);
  EXPECT_GT(ds.size(), 30000u);  // FER+ keeps most images under the majority rule
  ASSERT_TRUE(ds.has_soft_targets());
  size_t agree = 0;
  for (size_t i = 0; i < ds.size(); ++i) {
    const float* q = ds.soft_targets.data() + i * 7;
    const auto argmax = std::max_element(q, q + 7) - q;
    agree += argmax == ds.labels[i];
  }
  EXPECT_EQ(agree, ds.size()) << "the majority label is the most-voted class";
}

TEST(Fer2013Data, CacheRoundTripOfTheWholeFile) {
  const auto dir = std::filesystem::temp_directory_path() / ("fervid_cache_test_" + std::to_string(::getpid()));
  const auto key = cache_key({fer_csv()}, "fer2013-test");
  bool hit = true;
  cached_dataset(key, [] { return fer(); }, dir.string(), &hit);
  EXPECT_FALSE(hit);
  auto ds = cached_dataset(key, [] { return Dataset(); }, dir.string(), &hit);  // speed: bench/bench_data
  std::filesystem::remove_all(dir);
  EXPECT_TRUE(hit);
  EXPECT_EQ(ds.pixels, fer().pixels);
  EXPECT_EQ(ds.origins.back(), fer().origins.back());
  EXPECT_EQ(ds.labels, fer().labels);
  EXPECT_EQ(ds.splits, fer().splits);
}
