// The torch-free data layer on synthetic files: FER2013 CSV validation, FER+ rules, the cache,
// splits; and the tensor side: augmentation and the batch loader.
#include <zlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include "fervid/augment.h"
#include "fervid/cache.h"
#include "fervid/data_check.h"
#include "fervid/loader.h"
#include "fervid/readers.h"
#include "fervid/splits.h"
#include "test_util.h"

using namespace fervid;
namespace fs = std::filesystem;

namespace {

using TempDir = fervid::test::TempDirTest;

std::string pixels_row(int count, int value = 7) {
  std::string s;
  for (int i = 0; i < count; ++i) s += (i ? " " : "") + std::to_string((value + i) % 256);
  return s;
}

std::string good_csv() {
  return "emotion,pixels,Usage\n0," + pixels_row(2304) + ",Training\n3," + pixels_row(2304, 9) + ",PublicTest\n6," +
         pixels_row(2304, 11) + ",PrivateTest\n";
}

void write_text(const std::string& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

void write_gzip(const std::string& p, const std::string& s) {
  gzFile f = gzopen(p.c_str(), "wb");
  gzwrite(f, s.data(), static_cast<unsigned>(s.size()));
  gzclose(f);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

Dataset synthetic(size_t n, int classes = 7, int side = 8) {
  Dataset ds;
  ds.height = ds.width = side;
  std::vector<uint8_t> img(static_cast<size_t>(side * side));
  for (size_t i = 0; i < n; ++i) {
    for (size_t p = 0; p < img.size(); ++p) img[p] = static_cast<uint8_t>((i * 31 + p * 7) % 256);
    ds.add(img.data(), static_cast<int>(i % static_cast<size_t>(classes)), Split::kTraining, "s" + std::to_string(i),
           static_cast<int32_t>(i / 5));
  }
  return ds;
}

}  // namespace

class Fer2013Csv : public TempDir {};

TEST_F(Fer2013Csv, ReadsPlainAndGzip) {
  write_text(path("a.csv"), good_csv());
  write_gzip(path("a.csv.gz"), good_csv());
  for (const auto& p : {path("a.csv"), path("a.csv.gz")}) {
    ReadReport rep;
    auto ds = read_fer2013_csv(p, {}, &rep);
    ASSERT_EQ(ds.size(), 3u);
    EXPECT_EQ(rep.entries_kept, 3u);
    EXPECT_EQ(ds.labels[1], 3);
    EXPECT_EQ(ds.splits[2], Split::kPrivateTest);
    EXPECT_EQ(ds.image(0)[0], 7);
    EXPECT_EQ(ds.image(0)[2303], (7 + 2303) % 256);
    EXPECT_EQ(ds.origins[1], p + ":3");
  }
}

TEST_F(Fer2013Csv, InvalidRowsAreCountedWithLineAndField) {
  const std::string csv = "emotion,pixels,Usage\n0," + pixels_row(2304) + ",Training\n" +  // line 2 ok
                          "1," + pixels_row(2303) + ",Training\n" +                         // line 3: 2,303 pixels
                          "9," + pixels_row(2304) + ",Training\n" +                         // line 4: label 9
                          "2," + pixels_row(2304) + ",Holdout\n" +                          // line 5: Usage
                          "2,1 2 300" + pixels_row(2301).insert(0, " ") + ",Training\n" +  // line 6: 300
                          "2,abc\n";                                                        // line 7: 2 fields
  write_text(path("b.csv"), csv);
  ReadReport rep;
  auto ds = read_fer2013_csv(path("b.csv"), {}, &rep);
  EXPECT_EQ(ds.size(), 1u);
  ASSERT_EQ(rep.skipped, 5u);
  EXPECT_EQ(rep.issues[0].where, path("b.csv") + ":3");
  EXPECT_EQ(rep.issues[0].field, "pixels");
  EXPECT_NE(rep.issues[0].message.find("2303"), std::string::npos);
  EXPECT_EQ(rep.issues[1].field, "emotion");
  EXPECT_NE(rep.issues[1].message.find("'9'"), std::string::npos);
  EXPECT_EQ(rep.issues[2].field, "Usage");
  EXPECT_EQ(rep.issues[3].field, "pixels");
  EXPECT_NE(rep.issues[3].message.find("300"), std::string::npos);
  EXPECT_EQ(rep.issues[4].field, "row");
  // Strict: the first invalid row is an error naming file, line and field.
  const auto msg = error_of([&] { read_fer2013_csv(path("b.csv"), {true}); });
  EXPECT_NE(msg.find(path("b.csv") + ":3: field 'pixels'"), std::string::npos) << msg;
}

TEST_F(Fer2013Csv, StructuralErrors) {
  write_text(path("noheader.csv"), "0," + pixels_row(2304) + ",Training\n");
  EXPECT_NE(error_of([&] { read_fer2013_csv(path("noheader.csv")); }).find(":1: header is"), std::string::npos);
  write_text(path("wrong.csv"), "label,pixels,split\n");
  EXPECT_NE(error_of([&] { read_fer2013_csv(path("wrong.csv")); }).find("expected 'emotion,pixels,Usage'"), std::string::npos);
  write_text(path("empty.csv"), "");
  EXPECT_NE(error_of([&] { read_fer2013_csv(path("empty.csv")); }).find("empty file"), std::string::npos);
  EXPECT_NE(error_of([&] { read_fer2013_csv(path("absent.csv")); }).find("cannot open"), std::string::npos);
  // A gzip stream cut in the middle.
  std::string big = "emotion,pixels,Usage\n";
  for (int i = 0; i < 200; ++i) big += std::to_string(i % 7) + "," + pixels_row(2304, i) + ",Training\n";
  write_gzip(path("full.csv.gz"), big);
  std::ifstream in(path("full.csv.gz"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  write_text(path("cut.csv.gz"), bytes.substr(0, bytes.size() / 2));
  const auto msg = error_of([&] { read_fer2013_csv(path("cut.csv.gz")); });
  EXPECT_NE(msg.find("truncated gzip"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path("cut.csv.gz")), std::string::npos) << msg;
}

TEST(FerPlus, LabelRules) {
  using L = FerPlusOptions::Labels;
  // Columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF.
  const int happy[10] = {2, 8, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(ferplus_label(happy, L::kMajority), 3);
  const int outlier[10] = {1, 4, 0, 0, 0, 0, 0, 0, 0, 0};  // the single neutral vote is dropped
  EXPECT_EQ(ferplus_label(outlier, L::kMajority), 3);
  const int no_majority[10] = {4, 3, 3, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(ferplus_label(no_majority, L::kMajority), -1);
  EXPECT_EQ(ferplus_label(no_majority, L::kPlurality), 6);
  const int tie[10] = {4, 4, 2, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(ferplus_label(tie, L::kPlurality), -1);
  const int unknown[10] = {0, 2, 0, 0, 0, 0, 0, 0, 8, 0};
  EXPECT_EQ(ferplus_label(unknown, L::kMajority), -1);
  const int contempt[10] = {2, 0, 0, 0, 0, 0, 0, 8, 0, 0};
  EXPECT_EQ(ferplus_label(contempt, L::kMajority), -1);
  const int anger[10] = {0, 0, 0, 0, 6, 4, 0, 0, 0, 0};
  EXPECT_EQ(ferplus_label(anger, L::kMajority), 0);
}

class FerPlusFile : public TempDir {};

TEST_F(FerPlusFile, AlignsByRowAndGivesSoftTargets) {
  write_text(path("a.csv"), good_csv());
  const std::string header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n";
  write_text(path("new.csv"), header + "Training,fer0.png,0,0,0,0,10,0,0,0,0,0\n" +
                                  "PublicTest,,0,0,0,0,0,0,0,0,0,10\n" + "PrivateTest,fer2.png,2,8,0,0,0,0,0,0,0,0\n");
  auto ds = read_fer2013_csv(path("a.csv"));
  ReadReport rep;
  apply_ferplus(ds, path("new.csv"), {FerPlusOptions::Labels::kMajority, true}, &rep);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(rep.skipped, 1u);
  EXPECT_EQ(ds.labels[0], 0);
  EXPECT_EQ(ds.labels[1], 3);
  ASSERT_TRUE(ds.has_soft_targets());
  EXPECT_FLOAT_EQ(ds.soft_targets[7 + 3], 0.8f);  // happy
  EXPECT_FLOAT_EQ(ds.soft_targets[7 + 6], 0.2f);  // neutral
  // Misaligned files are refused, naming the line.
  write_text(path("bad.csv"), header + "PublicTest,fer0.png,0,0,0,0,10,0,0,0,0,0\n");
  auto again = read_fer2013_csv(path("a.csv"));
  const auto msg = error_of([&] { apply_ferplus(again, path("bad.csv")); });
  EXPECT_NE(msg.find("bad.csv:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not row-aligned"), std::string::npos) << msg;
}

class Cache : public TempDir {};

TEST_F(Cache, RoundTripKeyAndErrors) {
  auto ds = synthetic(23);
  ds.soft_targets.assign(23 * 7, 0.25f);
  save_dataset_cache(path("d.fvds"), ds, "k1");
  auto back = load_dataset_cache(path("d.fvds"), "k1");
  EXPECT_EQ(back.pixels, ds.pixels);
  EXPECT_EQ(back.labels, ds.labels);
  EXPECT_EQ(back.splits, ds.splits);
  EXPECT_EQ(back.subjects, ds.subjects);
  EXPECT_EQ(back.origins, ds.origins);
  EXPECT_EQ(back.soft_targets, ds.soft_targets);
  EXPECT_NE(error_of([&] { load_dataset_cache(path("d.fvds"), "other"); }).find("does not match"), std::string::npos);
  write_text(path("junk.fvds"), "hello");
  EXPECT_NE(error_of([&] { load_dataset_cache(path("junk.fvds")); }).find("not a fervid dataset cache"), std::string::npos);
  std::ifstream in(path("d.fvds"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  write_text(path("cut.fvds"), bytes.substr(0, bytes.size() - 300));
  EXPECT_NE(error_of([&] { load_dataset_cache(path("cut.fvds")); }).find("truncated"), std::string::npos);
}

TEST_F(Cache, KeyFollowsSourceAndRecipe) {
  write_text(path("src.csv"), good_csv());
  const auto k1 = cache_key({path("src.csv")}, "fer2013");
  EXPECT_EQ(k1, cache_key({path("src.csv")}, "fer2013"));
  EXPECT_NE(k1, cache_key({path("src.csv")}, "fer2013|size=64"));
  write_text(path("src.csv"), good_csv() + "\n");  // size changes
  EXPECT_NE(k1, cache_key({path("src.csv")}, "fer2013"));
  int builds = 0;
  bool hit = true;
  auto build = [&] { ++builds; return synthetic(5); };
  cached_dataset("key", build, path("cache"), &hit);
  EXPECT_FALSE(hit);
  auto ds = cached_dataset("key", build, path("cache"), &hit);
  EXPECT_TRUE(hit);
  EXPECT_EQ(builds, 1);
  EXPECT_EQ(ds.size(), 5u);
}

TEST(DataCheck, CountsDuplicatesAndBlanks) {
  Dataset ds;
  ds.height = ds.width = 2;
  const uint8_t a[4] = {1, 2, 3, 4}, b[4] = {9, 9, 9, 9}, zero[4] = {0, 0, 0, 0};
  ds.add(a, 0, Split::kTraining, "t0");
  ds.add(a, 0, Split::kTraining, "t1");     // within Training
  ds.add(a, 1, Split::kPublicTest, "p0");   // across Training -> PublicTest, label conflict
  ds.add(a, 1, Split::kPrivateTest, "q0");  // across Training and PublicTest -> PrivateTest
  ds.add(b, 2, Split::kPrivateTest, "q1");  // constant, not blank
  ds.add(zero, 3, Split::kTraining, "t2");  // blank
  const auto c = check_dataset(ds);
  EXPECT_EQ(c.samples, 6u);
  EXPECT_EQ(c.counts[0][0], 2u);
  EXPECT_EQ(c.duplicate_groups, 1u);
  EXPECT_EQ(c.images_in_duplicate_groups, 4u);
  EXPECT_EQ(c.duplicates_within[0], 1u);
  EXPECT_EQ(c.duplicates_across[0][1], 1u);
  EXPECT_EQ(c.duplicates_across[0][2], 1u);
  EXPECT_EQ(c.duplicates_across[1][2], 1u);
  EXPECT_EQ(c.conflicting_label_groups, 1u);
  EXPECT_EQ(c.blank, 1u);
  EXPECT_EQ(c.constant, 2u);
  EXPECT_EQ(c.blank_origins, std::vector<std::string>{"t2"});
}

TEST(Splits, RandomSplitIsStratifiedAndSeeded) {
  auto ds = synthetic(700);
  auto [train, test] = random_split(ds, 0.1, 5);
  EXPECT_EQ(train.size() + test.size(), 700u);
  EXPECT_EQ(test.size(), 70u);
  std::vector<int> per_class(7, 0);
  for (auto i : test) per_class[static_cast<size_t>(ds.labels[i])]++;
  for (int c : per_class) EXPECT_EQ(c, 10);
  EXPECT_EQ(random_split(ds, 0.1, 5).second, test);
  EXPECT_NE(random_split(ds, 0.1, 6).second, test);
  std::set<size_t> all(train.begin(), train.end());
  all.insert(test.begin(), test.end());
  EXPECT_EQ(all.size(), 700u);
}

TEST(Splits, SubjectKfoldKeepsSubjectsTogether) {
  auto ds = synthetic(300);  // subjects of 5 samples
  const auto folds = subject_kfold(ds, 10, 3);
  ASSERT_EQ(folds.size(), 10u);
  std::map<int32_t, size_t> fold_of;
  size_t total = 0;
  for (size_t f = 0; f < folds.size(); ++f) {
    EXPECT_GE(folds[f].size(), 25u);
    for (auto i : folds[f]) {
      auto [it, inserted] = fold_of.emplace(ds.subjects[i], f);
      EXPECT_EQ(it->second, f) << "subject " << ds.subjects[i] << " in two folds";
      ++total;
    }
  }
  EXPECT_EQ(total, 300u);
  EXPECT_EQ(subject_kfold(ds, 10, 3), folds);
  ds.subjects[0] = -1;
  EXPECT_THROW(subject_kfold(ds, 10, 3), std::invalid_argument);
}

class Augment : public fervid::test::Seeded {};

TEST_F(Augment, NoneIsIdentityAndSeedsRepeat) {
  auto x = torch::rand({4, 1, 48, 48});
  auto gen = make_generator(1);
  EXPECT_TRUE(torch::equal(augment(x, AugmentOptions::none(), gen), x));
  AugmentOptions o;
  o.erase_prob = 0.5;
  auto g1 = make_generator(42), g2 = make_generator(42), g3 = make_generator(43);
  auto a = augment(x, o, g1), b = augment(x, o, g2), c = augment(x, o, g3);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  EXPECT_EQ(a.sizes(), x.sizes());
  EXPECT_GE(a.min().item<float>(), 0.0f);
  EXPECT_LE(a.max().item<float>(), 1.0f);
}

TEST_F(Augment, FlipIsAnExactMirror) {
  auto o = AugmentOptions::none();
  o.flip_prob = 1.0;
  auto x = torch::rand({2, 1, 16, 16});
  auto gen = make_generator(0);
  EXPECT_TRUE(torch::allclose(augment(x, o, gen), x.flip({3}), 1e-5, 1e-5));
}

TEST_F(Augment, RotationMovesAPointByTheAngle) {
  auto o = AugmentOptions::none();
  o.max_rotation_deg = 10;
  auto x = torch::zeros({64, 1, 33, 33});
  x.index_put_({torch::indexing::Slice(), 0, 16, torch::indexing::Slice(20, 33)}, 1.0);  // a bar right of centre
  auto gen = make_generator(9);
  auto y = augment(x, o, gen);
  // Mass is preserved away from the borders, and the bar's centre of mass moves by at most
  // 10 degrees about the image centre.
  auto rows = torch::arange(33).to(torch::kFloat).view({1, 1, 33, 1}) - 16;
  auto cols = torch::arange(33).to(torch::kFloat).view({1, 1, 1, 33}) - 16;
  auto mass = y.sum({1, 2, 3});
  auto cy = (y * rows).sum({1, 2, 3}) / mass, cx = (y * cols).sum({1, 2, 3}) / mass;
  auto angle = torch::atan2(cy, cx).abs() * 180.0 / 3.14159265;
  EXPECT_LE(angle.max().item<float>(), 10.5f);
  EXPECT_GE(angle.max().item<float>(), 5.0f) << "64 draws within +/-10 should reach past 5 degrees";
}

TEST_F(Augment, OfflineExpansionIs15Variants) {
  auto x = torch::rand({3, 1, 24, 24});
  auto y = expand_15x(x);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{45, 1, 24, 24}));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(torch::equal(y[i * 15], x[i]));
  EXPECT_TRUE(torch::allclose(y[5], x[0].flip({2}), 1e-5, 1e-5));  // variant 5: the mirror
  EXPECT_FALSE(torch::allclose(y[1], x[0], 1e-2, 1e-2));
}

TEST_F(Augment, UnitFloatAndNormalise) {
  auto u8 = torch::full({2, 48, 48}, 255, torch::kByte);
  auto f = to_unit_float(u8, 64);
  EXPECT_EQ(f.sizes(), (std::vector<int64_t>{2, 1, 64, 64}));
  EXPECT_TRUE(torch::allclose(f, torch::ones_like(f)));
  EXPECT_TRUE(torch::allclose(normalize(f, 0.5, 0.5), torch::ones_like(f)));
}

class Loader : public fervid::test::Seeded {};

TEST_F(Loader, DeterministicResumableAndComplete) {
  auto ds = synthetic(100, 7, 48);
  std::vector<size_t> idx(100);
  for (size_t i = 0; i < 100; ++i) idx[i] = i;
  LoaderOptions o;
  o.batch_size = 16;
  o.seed = 7;
  o.augment = AugmentOptions();
  BatchLoader loader(ds, idx, o);
  EXPECT_EQ(loader.batches_per_epoch(), 7);
  loader.start_epoch(2);
  std::vector<Batch> all;
  while (auto b = loader.next()) all.push_back(*b);
  ASSERT_EQ(all.size(), 7u);
  std::set<size_t> seen;
  for (const auto& b : all) seen.insert(b.samples.begin(), b.samples.end());
  EXPECT_EQ(seen.size(), 100u);
  EXPECT_EQ(all.back().images.size(0), 4);
  // A second loader resumed at batch 3 of the same epoch yields the same batches.
  BatchLoader again(ds, idx, o);
  again.start_epoch(2, 3);
  for (int b = 3; b < 7; ++b) {
    auto batch = again.next();
    ASSERT_TRUE(batch);
    EXPECT_EQ(batch->samples, all[static_cast<size_t>(b)].samples);
    EXPECT_TRUE(torch::equal(batch->images, all[static_cast<size_t>(b)].images));
  }
  EXPECT_FALSE(again.next());
  // Another epoch: another order.
  EXPECT_NE(loader.make_batch(3, 0).samples, all[0].samples);
  // Labels travel with their images.
  for (size_t i = 0; i < all[0].samples.size(); ++i) {
    EXPECT_EQ(all[0].labels[static_cast<int64_t>(i)].item<int64_t>(), ds.labels[all[0].samples[i]]);
  }
}
