// The torch-free data layer on synthetic files: FER2013 CSV validation, FER+ rules, the cache,
// splits; and the tensor side: augmentation and the batch loader.
#include <zlib.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "fervid/augment.h"
#include "fervid/cache.h"
#include "fervid/data_check.h"
#include "fervid/data_source.h"
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

// Gzip of `s` (as gzwrite makes it), with a full flush after the first `lines` lines; returns
// the compressed bytes and, in *cut, the compressed size at that flush: a file cut there holds
// exactly those complete lines.
std::string gzip_with_flush_after(const std::string& s, size_t lines, size_t* cut) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw std::runtime_error("deflateInit2");
  std::string out;
  auto pump = [&](const char* data, size_t n, int flush) {
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data));
    z.avail_in = static_cast<uInt>(n);
    char buf[1 << 16];
    do {
      z.next_out = reinterpret_cast<Bytef*>(buf);
      z.avail_out = sizeof buf;
      deflate(&z, flush);
      out.append(buf, sizeof buf - z.avail_out);
    } while (z.avail_out == 0);
  };
  size_t split = 0;
  for (size_t i = 0; i < lines; ++i) split = s.find('\n', split) + 1;
  pump(s.data(), split, Z_FULL_FLUSH);
  *cut = out.size();
  pump(s.data() + split, s.size() - split, Z_FINISH);
  deflateEnd(&z);
  return out;
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

// A binary file passed for a CSV: what is quoted back is escaped, never raw bytes or terminal
// control sequences.
TEST_F(Fer2013Csv, QuotedFieldsAreEscapedNotEchoedRaw) {
  write_text(path("bin.csv"), std::string("emotion,pixels,Usage\n\x1b[2J\xff\x01,1 2,Train\x07\n"));
  ReadReport rep;
  read_fer2013_csv(path("bin.csv"), {}, &rep);
  ASSERT_EQ(rep.issues.size(), 1u);
  EXPECT_NE(rep.issues[0].message.find("'\\x1B[2J\\xFF\\x01'"), std::string::npos) << rep.issues[0].message;
  write_text(path("binhead.csv"), "\x1b]0;title\x07,x\n");
  const auto msg = error_of([&] { read_fer2013_csv(path("binhead.csv")); });
  EXPECT_NE(msg.find("\\x1B]0;title\\x07"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\x1b'), std::string::npos) << msg;
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
  // The error names the last complete line exactly: a stream cut right after line 151 (the
  // header and 150 rows, about 1.3 MB, past the reader's 1 MB buffer), and one cut a few
  // bytes into line 152. Lines before it are parsed (strict: they are all valid).
  std::string rows = "emotion,pixels,Usage\n";
  for (int i = 0; i < 300; ++i) rows += std::to_string(i % 7) + "," + pixels_row(2304, i) + ",Training\n";
  size_t cut = 0;
  const std::string gz = gzip_with_flush_after(rows, 151, &cut);
  write_text(path("cut151.csv.gz"), gz.substr(0, cut));
  const auto at_line = error_of([&] { read_fer2013_csv(path("cut151.csv.gz"), {true}); });
  EXPECT_NE(at_line.find(path("cut151.csv.gz") + ": truncated gzip stream (unexpected end of file) after line 151 "),
            std::string::npos)
      << at_line;
  write_text(path("cut151b.csv.gz"), gz.substr(0, cut + 40));  // part of line 152 (not a line)
  const auto inside = error_of([&] { read_fer2013_csv(path("cut151b.csv.gz"), {true}); });
  EXPECT_NE(inside.find("after line 151 "), std::string::npos) << inside;
  // The uncut file reads whole: the flush itself is not damage.
  write_text(path("whole.csv.gz"), gz);
  EXPECT_EQ(read_fer2013_csv(path("whole.csv.gz"), {true}).size(), 300u);
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
  // The reason given is the one that applied, and only that one.
  auto why = [&](const int* votes, L rule) {
    std::string w;
    EXPECT_EQ(ferplus_label(votes, rule, &w), -1);
    return w;
  };
  EXPECT_EQ(why(tie, L::kMajority), "tie between neutral and happiness (4 votes each)");
  EXPECT_EQ(why(no_majority, L::kMajority),
            "no majority: neutral has 4 of 10 votes (counting classes with more than one vote)");
  EXPECT_EQ(why(unknown, L::kMajority), "most votes for unknown, not one of the 7 expressions");
  EXPECT_EQ(why(contempt, L::kMajority), "most votes for contempt, not one of the 7 expressions");
  const int singles[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  EXPECT_EQ(why(singles, L::kPlurality), "no class has more than one vote (FER+ drops single votes)");
  std::string untouched = "x";
  EXPECT_EQ(ferplus_label(happy, L::kMajority, &untouched), 3);
  EXPECT_EQ(untouched, "x");
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
  ASSERT_EQ(rep.issues.size(), 1u);
  EXPECT_EQ(rep.issues[0].where, path("new.csv") + ":3");
  EXPECT_EQ(rep.issues[0].field, "Image name");
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
  // A row with a tie is skipped with that reason alone.
  write_text(path("tie.csv"), header + "Training,fer0.png,4,4,2,0,0,0,0,0,0,0\n" +
                                  "PublicTest,fer1.png,0,0,0,0,10,0,0,0,0,0\n" + "PrivateTest,fer2.png,0,9,0,0,0,0,0,0,0,1\n");
  auto third = read_fer2013_csv(path("a.csv"));
  ReadReport tie_rep;
  apply_ferplus(third, path("tie.csv"), {}, &tie_rep);
  ASSERT_EQ(tie_rep.issues.size(), 1u);
  EXPECT_EQ(tie_rep.issues[0].where, path("tie.csv") + ":2");
  EXPECT_EQ(tie_rep.issues[0].message,
            "no label under the majority rule: tie between neutral and happiness (4 votes each)");
}

TEST_F(FerPlusFile, AMixKeepsFer2013sLabelsAndBlendsInTheVotes) {
  write_text(path("a.csv"), good_csv());  // labels angry, happy, neutral
  const std::string header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n";
  write_text(path("new.csv"), header + "Training,fer0.png,0,0,0,0,6,0,0,4,0,0\n" +
                                  "PublicTest,,0,0,0,0,0,0,0,0,0,10\n" + "PrivateTest,fer2.png,2,8,0,0,0,0,0,0,0,0\n");
  auto ds = read_fer2013_csv(path("a.csv"));
  ReadReport rep;
  FerPlusOptions o;
  o.mix = 0.25;
  apply_ferplus(ds, path("new.csv"), o, &rep);
  ASSERT_EQ(ds.size(), 3u);  // nothing dropped
  EXPECT_EQ(rep.skipped, 0u);
  EXPECT_EQ(ds.labels, (std::vector<int8_t>{0, 3, 6}));
  ASSERT_TRUE(ds.has_soft_targets());
  auto q = [&](size_t row, int k) { return ds.soft_targets[row * 7 + static_cast<size_t>(k)]; };
  // Row 0: FER2013 angry; FER+ votes anger 6 (contempt is not one of the 7): angry 1.
  EXPECT_FLOAT_EQ(q(0, 0), 1.0f);
  // Row 1: dropped by FER+ (no image name): FER2013's one-hot alone, noted.
  EXPECT_FLOAT_EQ(q(1, 3), 1.0f);
  ASSERT_EQ(rep.notes.size(), 1u);
  EXPECT_EQ(rep.notes[0].where, path("new.csv") + ":3");
  // Row 2: FER2013 neutral; FER+ neutral 2, happiness 8: 0.75 + 0.25 * 0.2 neutral, 0.25 * 0.8 happy.
  EXPECT_FLOAT_EQ(q(2, 6), 0.8f);
  EXPECT_FLOAT_EQ(q(2, 3), 0.2f);
  for (size_t r = 0; r < 3; ++r) {
    float sum = 0;
    for (int k = 0; k < 7; ++k) sum += q(r, k);
    EXPECT_NEAR(sum, 1.0f, 1e-6) << r;
  }
  auto again = read_fer2013_csv(path("a.csv"));
  o.mix = 1.5;
  EXPECT_NE(error_of([&] { apply_ferplus(again, path("new.csv"), o); }).find("mix must be in [0, 1], got 1.5"),
            std::string::npos);
  // As a data source option: it needs the votes file, and it keys the cache apart.
  DataSourceOptions so;
  so.ferplus_mix = 0.25;
  EXPECT_NE(error_of([&] { open_data_source(path("a.csv"), so); }).find("--ferplus-mix needs the FER+ votes (--ferplus)"),
            std::string::npos);
  so.ferplus = path("new.csv");
  EXPECT_EQ(open_data_source(path("a.csv"), so).data.size(), 3u);
  EXPECT_EQ(data_source_options_from_json(to_json(so), "test", "source.").ferplus_mix, 0.25);
}

// open_data_source: the FER2013 file and the FER+ file are counted apart.
TEST_F(FerPlusFile, SourceReportsTheTwoFilesSeparately) {
  write_text(path("a.csv"), good_csv());
  const std::string header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n";
  write_text(path("new.csv"), header + "Training,fer0.png,0,0,0,0,10,0,0,0,0,0\n" +
                                  "PublicTest,fer1.png,5,5,0,0,0,0,0,0,0,0\n" + "PrivateTest,fer2.png,2,8,0,0,0,0,0,0,0,0\n");
  DataSourceOptions o;
  o.ferplus = path("new.csv");
  const auto src = open_data_source(path("a.csv"), o);
  EXPECT_EQ(src.data.size(), 2u);
  EXPECT_EQ(src.report.entries_seen, 3u);
  EXPECT_EQ(src.report.entries_kept, 3u);
  EXPECT_EQ(src.report.skipped, 0u);
  EXPECT_EQ(src.ferplus_report.entries_seen, 3u);
  EXPECT_EQ(src.ferplus_report.entries_kept, 2u);
  EXPECT_EQ(src.ferplus_report.skipped, 1u);
  EXPECT_EQ(src.ferplus_report.skipped_by_field.at("votes"), 1u);
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

// The cache header is validated like a model header: sizes, offsets, dimensions and values
// out of bounds are a DataError naming the file (never a library exception, never a read past
// the file), and cached_dataset rebuilds the data instead.
TEST_F(Cache, ACorruptedHeaderIsRefusedAndTheDataRebuilt) {
  const auto ds = synthetic(23);
  save_dataset_cache(path("d.fvds"), ds, "k1");
  std::ifstream in(path("d.fvds"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  uint64_t hs = 0;
  std::memcpy(&hs, bytes.data() + 12, 8);
  const auto header = nlohmann::json::parse(bytes.substr(20, hs));
  const std::string data = bytes.substr(20 + hs);
  auto with = [&](const std::function<void(nlohmann::json&)>& change) {
    auto h = header;
    change(h);
    const std::string text = h.dump();
    const uint64_t n = text.size();
    std::string out = bytes.substr(0, 12);
    out.append(reinterpret_cast<const char*>(&n), 8);
    return out + text + data;
  };
  const std::vector<std::pair<std::string, std::function<void(nlohmann::json&)>>> cases = {
      {"samples beyond the data", [](auto& h) { h["samples"] = uint64_t{1} << 60; }},
      {"samples negative", [](auto& h) { h["samples"] = -1; }},
      {"samples a string", [](auto& h) { h["samples"] = "23"; }},
      {"no samples", [](auto& h) { h.erase("samples"); }},
      {"zero height", [](auto& h) { h["height"] = 0; }},
      {"huge width", [](auto& h) { h["width"] = 1 << 30; }},
      {"255 classes", [](auto& h) { h["num_classes"] = 255; }},
      {"2 classes: labels out of range", [](auto& h) { h["num_classes"] = 2; }},
      {"data_bytes past the end", [](auto& h) { h["data_bytes"] = h["data_bytes"].template get<uint64_t>() * 4; }},
      {"a section outside the file", [](auto& h) { h["sections"]["origins"]["offset"] = uint64_t{1} << 62; }},
      {"a section longer than the data", [](auto& h) { h["sections"]["origins"]["bytes"] = ~uint64_t{0}; }},
      {"no section table", [](auto& h) { h["sections"] = 7; }},
      {"a section missing", [](auto& h) { h["sections"].erase("labels"); }},
      {"soft targets of the wrong size", [](auto& h) { h["sections"]["soft_targets"]["bytes"] = 12; }},
      {"not an object", [](auto& h) { h = nlohmann::json::array({1, 2}); }},
  };
  for (const auto& [what, change] : cases) {
    write_text(path("bad.fvds"), with(change));
    try {
      load_dataset_cache(path("bad.fvds"));
      ADD_FAILURE() << what << ": loaded";
    } catch (const DataError& e) {
      const std::string m = e.what();
      EXPECT_EQ(m.rfind(path("bad.fvds"), 0), 0u) << what << ": " << m;
      EXPECT_EQ(m.find("json"), std::string::npos) << what << ": a library's words: " << m;
    } catch (const std::exception& e) {
      ADD_FAILURE() << what << ": not a DataError: " << e.what();
    }
  }
  // The same file, untouched but rewritten through the helper, still loads: the cases above
  // fail for what they change.
  write_text(path("same.fvds"), with([](auto&) {}));
  EXPECT_EQ(load_dataset_cache(path("same.fvds")).labels, ds.labels);
  // A cache that fails is rebuilt, not fatal.
  std::filesystem::create_directories(path("cache"));
  write_text(path("cache/k2.fvds"), with([](auto& h) { h["key"] = "k2"; h["samples"] = uint64_t{1} << 60; }));
  bool hit = true;
  const auto rebuilt = cached_dataset("k2", [&] { return ds; }, path("cache"), &hit);
  EXPECT_FALSE(hit);
  EXPECT_EQ(rebuilt.labels, ds.labels);
  EXPECT_EQ(load_dataset_cache(path("cache/k2.fvds"), "k2").labels, ds.labels) << "the rebuilt cache replaced it";
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

// Sets `p`'s modification time to `t` (so a test can change content but not size or time).
void set_mtime(const std::string& p, fs::file_time_type t) { fs::last_write_time(p, t); }

TEST_F(Cache, FileKeyFollowsContentNotTimestamps) {
  write_text(path("src.csv"), good_csv());
  const auto t0 = fs::last_write_time(path("src.csv"));
  const auto k1 = cache_key({path("src.csv")}, "r");
  // Same size, same modification time, other content: another key.
  std::string edited = good_csv();
  edited[21] = edited[21] == '0' ? '1' : '0';  // the first row's emotion
  write_text(path("src.csv"), edited);
  set_mtime(path("src.csv"), t0);
  ASSERT_EQ(fs::file_size(path("src.csv")), good_csv().size());
  const auto k2 = cache_key({path("src.csv")}, "r");
  EXPECT_NE(k1, k2);
  // Same content, new modification time (a copy, a touch): the same key.
  write_text(path("src.csv"), good_csv());
  set_mtime(path("src.csv"), t0 + std::chrono::hours(5));
  EXPECT_EQ(cache_key({path("src.csv")}, "r"), k1);
  // The path is part of the key (origins name it).
  write_text(path("copy.csv"), good_csv());
  EXPECT_NE(cache_key({path("copy.csv")}, "r"), k1);
  // An unreadable source is an error naming it.
  EXPECT_NE(error_of([&] { cache_key({path("absent.csv")}, "r"); }).find(path("absent.csv")), std::string::npos);
}

TEST_F(Cache, ContentHashMemoIsUsedOnlyWhileTheFileIsUnchanged) {
  write_text(path("m.csv"), good_csv());
  const auto t0 = fs::last_write_time(path("m.csv"));
  const auto plain = cache_key({path("m.csv")}, "r");
  auto memos = [&] {
    std::vector<fs::path> out;
    std::error_code ec;
    for (auto it = fs::directory_iterator(path("memo/hashes"), ec); !ec && it != fs::directory_iterator(); ++it)
      out.push_back(it->path());
    return out;
  };
  // Changed less than 2 s ago: hashed, not remembered (its change time could repeat).
  EXPECT_EQ(cache_key({path("m.csv")}, "r", path("memo")), plain);
  EXPECT_TRUE(memos().empty());
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  EXPECT_EQ(cache_key({path("m.csv")}, "r", path("memo")), plain);
  const auto files = memos();
  ASSERT_EQ(files.size(), 1u);
  // The memo is used: a forged hash in it changes the key.
  std::ifstream in(files[0], std::ios::binary);
  std::string memo((std::istreambuf_iterator<char>(in)), {});
  in.close();
  ASSERT_GT(memo.size(), 65u);
  write_text(files[0].string(), memo.substr(0, memo.size() - 65) + std::string(64, 'a') + "\n");
  EXPECT_NE(cache_key({path("m.csv")}, "r", path("memo")), plain);
  // Other content, same size and modification time: the change time moved, so the file is
  // hashed again and the key is the content's.
  std::string edited = good_csv();
  edited[21] = '5';
  write_text(path("m.csv"), edited);
  set_mtime(path("m.csv"), t0);
  const auto fresh = cache_key({path("m.csv")}, "r");
  EXPECT_NE(fresh, plain);
  EXPECT_EQ(cache_key({path("m.csv")}, "r", path("memo")), fresh);
}

TEST_F(Cache, FolderKeyFollowsListingSizesAndTimes) {
  fs::create_directories(path("imgs/happy"));
  write_text(path("imgs/happy/a.png"), "aaaa");
  const auto t0 = fs::last_write_time(path("imgs/happy/a.png"));
  const auto k1 = cache_key({path("imgs")}, "r");
  EXPECT_EQ(cache_key({path("imgs")}, "r"), k1);
  write_text(path("imgs/happy/b.png"), "bbbb");  // a new file
  const auto k2 = cache_key({path("imgs")}, "r");
  EXPECT_NE(k2, k1);
  write_text(path("imgs/happy/a.png"), "aaaaa");  // a new size
  set_mtime(path("imgs/happy/a.png"), t0);
  const auto k3 = cache_key({path("imgs")}, "r");
  EXPECT_NE(k3, k2);
  set_mtime(path("imgs/happy/a.png"), t0 + std::chrono::seconds(10));  // a new time
  EXPECT_NE(cache_key({path("imgs")}, "r"), k3);
}

TEST_F(Cache, SourceRebuildsWhenContentOrOptionsChange) {
  write_text(path("f.csv"), good_csv());
  const auto t0 = fs::last_write_time(path("f.csv"));
  DataSourceOptions o;
  o.use_cache = true;
  o.cache_dir = path("cache");
  auto first = open_data_source(path("f.csv"), o);
  EXPECT_FALSE(first.cache_hit);
  auto second = open_data_source(path("f.csv"), o);
  EXPECT_TRUE(second.cache_hit);
  EXPECT_EQ(second.data.pixels, first.data.pixels);
  EXPECT_EQ(second.cache_key, first.cache_key);
  // One gray level changed in place (same size, same time): rebuilt, with the new pixels.
  std::string edited = good_csv();
  const auto at = edited.find(",7 8 9") + 1;  // the first row's first pixel: 7 -> 8
  edited[at] = '8';
  write_text(path("f.csv"), edited);
  set_mtime(path("f.csv"), t0);
  auto third = open_data_source(path("f.csv"), o);
  EXPECT_FALSE(third.cache_hit);
  EXPECT_NE(third.cache_key, first.cache_key);
  EXPECT_EQ(third.data.image(0)[0], 8);
  // Another option that changes the samples: another key.
  o.ferplus_rule = FerPlusOptions::Labels::kPlurality;
  EXPECT_NE(open_data_source(path("f.csv"), o).cache_key, third.cache_key);
}

TEST(DataSource, FlagsThatDoNotApplyOrAreOutOfRangeNameTheFlag) {
  const auto dir = fs::temp_directory_path() / ("fervid_source_flags_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string csv = (dir / "f.csv").string();
  write_text(csv, good_csv());
  auto msg_of = [&](DataSourceOptions o) { return error_of([&] { open_data_source(csv, o); }); };
  DataSourceOptions o;
  o.face.set("min_face", 20);
  EXPECT_NE(msg_of(o).find("--min-face applies to sources whose faces are detected (--format photos or ckplus); " +
                           csv + " is read as --format fer2013"),
            std::string::npos)
      << msg_of(o);
  o = {};
  o.frames_per_sequence = 2;
  EXPECT_NE(msg_of(o).find("--frames-per-sequence applies to the original CK+ distribution"), std::string::npos);
  o = {};
  o.format = SourceFormat::kPhotos;
  // A value out of range is refused when set, as the flag names it (face_recipe.h's table).
  EXPECT_EQ(error_of([&] { o.face.set_text(*find_face_recipe_option("scale_step"), "3", "--scale-step"); }),
            "--scale-step must be in (1, 2], got 3");
  EXPECT_FALSE(o.face.given("scale_step"));
  o.face.set("min_face", 80);
  o.face.set("max_face", 40);
  EXPECT_NE(msg_of(o).find("--max-face (40) is smaller than --min-face (80)"), std::string::npos) << msg_of(o);
  o = {};
  o.format = SourceFormat::kFolder;
  o.size = 0;
  EXPECT_NE(msg_of(o).find("--size must be in 1..4096, got 0"), std::string::npos) << msg_of(o);
  fs::remove_all(dir);
}

TEST(DataSource, OptionsJsonRoundTripAndBadFields) {
  DataSourceOptions o;
  o.format = SourceFormat::kCkPlus;
  o.face.set("min_face", 24);
  o.face.set("scale_step", 1.05);
  o.face.set("margin", 0.2);
  o.frames_per_sequence = 5;
  o.first_frame_neutral = true;
  o.keep_contempt = true;
  o.face.set("align", true);
  const auto j = to_json(o);
  EXPECT_TRUE(j.at("max_face").is_null());
  EXPECT_EQ(j.at("min_face"), 24);  // the recipe's options at the top level, by name
  const auto back = data_source_options_from_json(j, "train config");
  EXPECT_EQ(back.format, SourceFormat::kCkPlus);
  EXPECT_TRUE(back.face.given("min_face"));
  EXPECT_FALSE(back.face.given("max_face"));
  const auto recipe = source_face_recipe(back);
  EXPECT_EQ(recipe.min_face, 24);
  EXPECT_EQ(recipe.scale_step, 1.05);
  EXPECT_EQ(recipe.margin, 0.2);
  EXPECT_TRUE(recipe.align);
  EXPECT_EQ(recipe.max_face, FaceRecipe{}.max_face);
  EXPECT_EQ(back.frames_per_sequence, std::optional<int>(5));
  EXPECT_TRUE(back.first_frame_neutral);
  EXPECT_TRUE(back.keep_contempt);
  EXPECT_EQ(to_json(back), j);
  auto bad = j;
  bad["min_face"] = "big";
  EXPECT_EQ(error_of([&] { data_source_options_from_json(bad, "train config"); }),
            "train config: field 'source.min_face' must be an integer in [1, 100000], got \"big\"");
  bad = j;
  bad["format"] = "jpeg";
  EXPECT_NE(error_of([&] { data_source_options_from_json(bad, "train config"); }).find("field 'source.format'"),
            std::string::npos);
}

TEST(Dataset, ClassFrequenciesFromLabelsOrSoftTargets) {
  Dataset ds;
  ds.num_classes = 3;
  ds.height = ds.width = 1;
  const uint8_t px = 0;
  for (int label : {0, 0, 0, 1, -1}) ds.add(&px, label, Split::kTraining, "t");
  // Labels 0, 0, 0, 1 (the unlabelled sample left out); class 2 has none: half a sample.
  auto f = ds.class_frequencies({0, 1, 2, 3, 4});
  ASSERT_EQ(f.size(), 3u);
  EXPECT_NEAR(f[0], 3 / 4.5, 1e-12);
  EXPECT_NEAR(f[1], 1 / 4.5, 1e-12);
  EXPECT_NEAR(f[2], 0.5 / 4.5, 1e-12);
  EXPECT_NEAR(ds.class_frequencies({3})[1], 1 / 2.0, 1e-12) << "only the samples asked for";
  EXPECT_THROW(ds.class_frequencies({4}), std::invalid_argument);
  // Soft targets: their mean.
  ds.soft_targets = {1, 0, 0, 0.5f, 0.5f, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1};
  f = ds.class_frequencies({0, 1});
  EXPECT_NEAR(f[0], 1.5 / 2.5, 1e-6);
  EXPECT_NEAR(f[2], 0.5 / 2.5, 1e-6);
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

// augment() draws, in this order, n values each: flip, angle, scale, tx, ty, brightness,
// contrast, erase, area, aspect, x, y (uniform in [0, 1), double). The tests draw the same
// numbers from a generator with the same seed to know what each image got.
std::vector<torch::Tensor> augment_draws(uint64_t seed, int64_t n) {
  auto gen = make_generator(seed);
  std::vector<torch::Tensor> r;
  for (int i = 0; i < 12; ++i) r.push_back(torch::rand({n}, gen, torch::kDouble));
  return r;
}

// A Gaussian spot (sigma 1.5 px) centred at (cy, cx) in an s x s image, in [0, 1].
torch::Tensor spot(int s, double cy, double cx) {
  auto rows = torch::arange(s, torch::kDouble).view({s, 1}), cols = torch::arange(s, torch::kDouble).view({1, s});
  return torch::exp(-((rows - cy).pow(2) + (cols - cx).pow(2)) / (2 * 1.5 * 1.5)).to(torch::kFloat);
}

// Centre of mass (row, column) of each image of [N, 1, H, W], restricted to columns [c0, c1).
std::pair<torch::Tensor, torch::Tensor> centroid(const torch::Tensor& y, int64_t c0, int64_t c1) {
  using torch::indexing::Slice;
  const auto part = y.index({Slice(), 0, Slice(), Slice(c0, c1)}).to(torch::kDouble);
  auto rows = torch::arange(y.size(2), torch::kDouble).view({1, -1, 1});
  auto cols = torch::arange(c0, c1, torch::kDouble).view({1, 1, -1});
  auto mass = part.sum({1, 2});
  return {(part * rows).sum({1, 2}) / mass, (part * cols).sum({1, 2}) / mass};
}

TEST_F(Augment, ShiftMovesContentByTheDrawnOffset) {
  auto o = AugmentOptions::none();
  o.max_shift = 0.1;
  const int64_t n = 32, s = 41;  // centre 20; a spot there stays 4+ px from the border
  auto x = spot(static_cast<int>(s), 20, 20).view({1, 1, s, s}).repeat({n, 1, 1, 1});
  auto gen = make_generator(11);
  auto y = augment(x, o, gen);
  const auto d = augment_draws(11, n);
  // tx, ty are uniform in [-2 max_shift, 2 max_shift] in affine_grid units (the side is 2):
  // content moves by -tx * W / 2 pixels, i.e. at most max_shift * W.
  auto tx = d[3] * (4 * o.max_shift) - 2 * o.max_shift, ty = d[4] * (4 * o.max_shift) - 2 * o.max_shift;
  auto [cy, cx] = centroid(y, 0, s);
  auto want_x = 20 - tx * s / 2.0, want_y = 20 - ty * s / 2.0;
  EXPECT_LT((cx - want_x).abs().max().item<double>(), 1e-3);
  EXPECT_LT((cy - want_y).abs().max().item<double>(), 1e-3);
  EXPECT_LE((cx - 20).abs().max().item<double>(), o.max_shift * s + 1e-6);
  EXPECT_GT((cx - 20).abs().max().item<double>(), 0.5 * o.max_shift * s) << "32 draws should spread";
  // Mass is kept (bilinear resampling of content away from the border).
  EXPECT_TRUE(torch::allclose(y.sum({1, 2, 3}), x.sum({1, 2, 3}), 1e-3, 1e-3));
}

TEST_F(Augment, ScaleZoomsAboutTheCentre) {
  auto o = AugmentOptions::none();
  o.min_scale = o.max_scale = 1.25;  // no randomness: a known zoom
  const int s = 49;                  // centre 24
  auto x = (spot(s, 24, 10) + spot(s, 24, 38)).view({1, 1, s, s});  // 14 px left and right of centre
  auto gen = make_generator(3);
  auto y = augment(x, o, gen);
  auto [ly, lx] = centroid(y, 0, 24);
  auto [ry, rx] = centroid(y, 25, s);
  EXPECT_NEAR(lx.item<double>(), 24 - 14 * 1.25, 0.05);
  EXPECT_NEAR(rx.item<double>(), 24 + 14 * 1.25, 0.05);
  EXPECT_NEAR(ly.item<double>(), 24, 1e-3);
  // 1.25x magnification spreads each spot: its mass grows by about 1.25^2.
  EXPECT_NEAR(y.sum().item<double>() / x.sum().item<double>(), 1.25 * 1.25, 0.02);
  // A zoom below 1 shrinks towards the centre.
  o.min_scale = o.max_scale = 0.8;
  auto z = augment(x, o, gen);
  EXPECT_NEAR(centroid(z, 0, 24).second.item<double>(), 24 - 14 * 0.8, 0.05);
}

TEST_F(Augment, BrightnessShiftsTheMeanContrastScalesTheSpread) {
  const int64_t n = 16;
  auto x = torch::rand({n, 1, 24, 24}) * 0.4 + 0.3;  // [0.3, 0.7]: no clamping below
  auto mean = x.mean({1, 2, 3}).to(torch::kDouble), std = x.std({1, 2, 3}).to(torch::kDouble);
  // Brightness alone: every pixel + b, b uniform in [-0.2, 0.2]; the spread is unchanged.
  auto o = AugmentOptions::none();
  o.brightness = 0.2;
  auto gen = make_generator(5);
  auto y = augment(x, o, gen);
  const auto b = augment_draws(5, n)[5] * 0.4 - 0.2;
  auto dmean = y.mean({1, 2, 3}).to(torch::kDouble) - mean;
  EXPECT_LT((dmean - b).abs().max().item<double>(), 1e-5);
  EXPECT_LE(dmean.abs().max().item<double>(), 0.2 + 1e-5);
  EXPECT_GT(dmean.max().item<double>(), 0.0);
  EXPECT_LT(dmean.min().item<double>(), 0.0) << "16 draws give both signs";
  EXPECT_TRUE(torch::allclose(y.std({1, 2, 3}).to(torch::kDouble), std, 1e-4, 1e-5));
  // Contrast alone: the spread times k, k uniform in [0.7, 1.3], about an unchanged mean.
  o = AugmentOptions::none();
  o.contrast = 0.3;
  auto gen2 = make_generator(6);
  auto z = augment(x, o, gen2);
  const auto k = augment_draws(6, n)[6] * 0.6 + 0.7;
  auto ratio = z.std({1, 2, 3}).to(torch::kDouble) / std;
  EXPECT_LT((ratio - k).abs().max().item<double>(), 1e-4);
  EXPECT_GE(ratio.min().item<double>(), 0.7 - 1e-4);
  EXPECT_LE(ratio.max().item<double>(), 1.3 + 1e-4);
  EXPECT_LT(ratio.min().item<double>(), 1.0);
  EXPECT_GT(ratio.max().item<double>(), 1.0);
  EXPECT_TRUE(torch::allclose(z.mean({1, 2, 3}).to(torch::kDouble), mean, 1e-5, 1e-5));
}

TEST_F(Augment, RandomErasingIsOneRectangleOfTheConfiguredAreaAndValue) {
  const int64_t n = 64, h = 48, w = 48;
  auto o = AugmentOptions::none();
  o.erase_prob = 1.0;
  o.erase_min_area = 0.02;
  o.erase_max_area = 0.2;
  o.erase_value = 0.75;
  auto x = torch::zeros({n, 1, h, w});
  auto gen = make_generator(21);
  auto y = augment(x, o, gen);
  const auto d = augment_draws(21, n);
  for (int64_t i = 0; i < n; ++i) {
    auto erased = y[i][0].eq(0.75f);
    const auto count = erased.sum().item<int64_t>();
    ASSERT_GT(count, 0) << "image " << i;
    // Every changed pixel has the configured value, and they fill their bounding box.
    EXPECT_EQ(y[i][0].ne(0).sum().item<int64_t>(), count);
    auto rows = erased.any(1).nonzero(), cols = erased.any(0).nonzero();
    const auto bh = rows.max().item<int64_t>() - rows.min().item<int64_t>() + 1;
    const auto bw = cols.max().item<int64_t>() - cols.min().item<int64_t>() + 1;
    EXPECT_EQ(bh * bw, count) << "image " << i << " is not one rectangle";
    // Its area: the drawn fraction, to within half a column of whole pixels.
    const double area = d[8][i].item<double>() * (o.erase_max_area - o.erase_min_area) + o.erase_min_area;
    EXPECT_LE(std::abs(static_cast<double>(count) - area * h * w), bh / 2.0 + 1e-9) << "image " << i;
    EXPECT_GE(static_cast<double>(count), o.erase_min_area * h * w - bh / 2.0);
    EXPECT_LE(static_cast<double>(count), o.erase_max_area * h * w + bh / 2.0);
  }
  // Probability 0.5: some images untouched. Value < 0: each image's own mean gray.
  o.erase_prob = 0.5;
  o.erase_value = -1;
  auto img = torch::rand({n, 1, h, w});
  auto gen2 = make_generator(22);
  auto z = augment(img, o, gen2);
  const auto erase = augment_draws(22, n)[7] < 0.5;
  for (int64_t i = 0; i < n; ++i) {
    auto changed = (z[i] - img[i]).abs() > 1e-4f;  // the identity resampling is exact to float rounding
    if (!erase[i].item<bool>()) {
      EXPECT_EQ(changed.sum().item<int64_t>(), 0) << "image " << i;
      continue;
    }
    EXPECT_GT(changed.sum().item<int64_t>(), 0);
    const float m = img[i].mean().item<float>();
    EXPECT_TRUE(torch::allclose(z[i].masked_select(changed), torch::full({changed.sum().item<int64_t>()}, m), 1e-5, 1e-5));
  }
  EXPECT_GT(erase.sum().item<int64_t>(), 16);
  EXPECT_LT(erase.sum().item<int64_t>(), 48);
  o.erase_min_area = 0.3;  // above the maximum
  EXPECT_THROW(augment(img, o, gen2), c10::Error);
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

// The order of an epoch is the seeded shuffle the trainer's resume contract fixes
// (seed * 1000003 + epoch), computed once per epoch, whichever order batches are asked in.
TEST_F(Loader, EpochOrderIsTheSeededShuffleWhateverTheCallOrder) {
  auto ds = synthetic(100, 7, 8);
  std::vector<size_t> idx(100);
  for (size_t i = 0; i < 100; ++i) idx[i] = (i * 37) % 100;  // not sorted: the order starts from this list
  LoaderOptions o;
  o.batch_size = 16;
  o.seed = 7;
  BatchLoader loader(ds, idx, o);
  auto expected = [&](int64_t epoch) {
    auto v = idx;
    seeded_shuffle(v, 7 * 1000003u + static_cast<uint64_t>(epoch));
    return v;
  };
  // Batches of epochs 1 and 0 interleaved, then epoch 5 backwards.
  std::vector<size_t> e0, e1;
  for (int64_t b = 0; b < loader.batches_per_epoch(); ++b) {
    const auto a = loader.make_batch(1, b).samples;
    e1.insert(e1.end(), a.begin(), a.end());
    const auto c = loader.make_batch(0, b).samples;
    e0.insert(e0.end(), c.begin(), c.end());
  }
  EXPECT_EQ(e0, expected(0));
  EXPECT_EQ(e1, expected(1));
  std::vector<std::vector<size_t>> e5(static_cast<size_t>(loader.batches_per_epoch()));
  for (int64_t b = loader.batches_per_epoch() - 1; b >= 0; --b) e5[static_cast<size_t>(b)] = loader.make_batch(5, b).samples;
  std::vector<size_t> flat;
  for (const auto& part : e5) flat.insert(flat.end(), part.begin(), part.end());
  EXPECT_EQ(flat, expected(5));
  // Without shuffling: the given order.
  o.shuffle = false;
  BatchLoader plain(ds, idx, o);
  EXPECT_EQ(plain.make_batch(3, 0).samples, std::vector<size_t>(idx.begin(), idx.begin() + 16));
}
