// FER2013 CSV and FER+ votes (design.md section 5).
#include <zlib.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "fervid/json_text.h"
#include "fervid/labels.h"
#include "fervid/readers.h"

namespace fervid {

namespace {

constexpr int kFerSide = 48;
constexpr int kFerPixels = kFerSide * kFerSide;

// Streams the lines of a plain or gzip file (zlib reads both). Throws DataError on a read
// error, including a gzip stream that ends early: every complete line before the damage is
// returned first, so the error names the exact last complete line.
class LineReader {
 public:
  explicit LineReader(const std::string& path) : path_(path) {
    file_ = gzopen(path.c_str(), "rb");
    if (!file_) throw DataError(path + ": cannot open (" + std::strerror(errno) + ")");
    gzbuffer(file_, 1 << 18);
  }
  ~LineReader() {
    if (file_) gzclose(file_);
  }
  LineReader(const LineReader&) = delete;
  LineReader& operator=(const LineReader&) = delete;

  // The next line without its end-of-line characters; false at the end of the file.
  bool next(std::string_view& line) {
    for (;;) {
      const auto nl = std::memchr(buf_.data() + pos_, '\n', end_ - pos_);
      if (nl) {
        const size_t stop = static_cast<size_t>(static_cast<const char*>(nl) - buf_.data());
        line = std::string_view(buf_.data() + pos_, stop - pos_);
        pos_ = stop + 1;
        ++number_;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        return true;
      }
      if (!error_.empty()) {
        // What is left in the buffer is a line cut by the damage: not a line to parse.
        throw DataError(path_ + ": " + error_ + " after line " + std::to_string(number_) +
                        " (the last complete line)");
      }
      if (eof_) {
        if (pos_ == end_) return false;
        line = std::string_view(buf_.data() + pos_, end_ - pos_);  // last line without '\n'
        pos_ = end_;
        ++number_;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        return true;
      }
      fill();
    }
  }
  size_t line_number() const { return number_; }

 private:
  void fill() {
    if (pos_ > 0) {  // keep the partial line at the front
      std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
      end_ -= pos_;
      pos_ = 0;
    }
    if (buf_.size() - end_ < (1u << 16)) buf_.resize(buf_.size() * 2 + (1u << 16));
    const int n = gzread(file_, buf_.data() + end_, static_cast<unsigned>(buf_.size() - end_));
    int err = Z_OK;
    const char* msg = gzerror(file_, &err);
    // zlib returns what it could inflate before the damage, and reports the damage with it or
    // on the next call; keep those bytes, report once their complete lines are consumed.
    if (n > 0) end_ += static_cast<size_t>(n);
    if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) {
      error_ = err == Z_BUF_ERROR ? "truncated gzip stream (unexpected end of file)"
                                  : std::string("read error: ") + (msg ? msg : "unknown");
      return;
    }
    if (n == 0) eof_ = true;
  }

  std::string path_;
  gzFile file_ = nullptr;
  std::vector<char> buf_ = std::vector<char>(1 << 20);
  size_t pos_ = 0, end_ = 0, number_ = 0;
  bool eof_ = false;
  std::string error_;  // set once the stream failed; thrown when the buffer holds no complete line
};

std::vector<std::string_view> split_commas(std::string_view line) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    const auto comma = line.find(',', start);
    out.push_back(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

bool parse_int(std::string_view s, int& v) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

// Parses exactly kFerPixels space-separated gray levels; on failure `error` says why.
bool parse_pixels(std::string_view s, uint8_t* out, std::string& error) {
  const char* p = s.data();
  const char* end = p + s.size();
  int count = 0;
  while (p < end) {
    while (p < end && *p == ' ') ++p;
    if (p == end) break;
    int v = 0;
    const auto [q, ec] = std::from_chars(p, end, v);
    if (ec != std::errc() || (q < end && *q != ' ')) {
      error = "value " + std::to_string(count + 1) + " is not an integer";
      return false;
    }
    if (v < 0 || v > 255) {
      error = "value " + std::to_string(count + 1) + " is " + std::to_string(v) + ", outside 0..255";
      return false;
    }
    if (count < kFerPixels) out[count] = static_cast<uint8_t>(v);
    ++count;
    p = q;
  }
  if (count != kFerPixels) {
    error = "has " + std::to_string(count) + " values, expected " + std::to_string(kFerPixels);
    return false;
  }
  return true;
}

}  // namespace

Dataset read_fer2013_csv(const std::string& path, const ReadOptions& options, ReadReport* report) {
  ReadReport local;
  ReadReport& rep = report ? *report : local;
  LineReader reader(path);
  std::string_view line;
  if (!reader.next(line)) throw DataError(path + ":1: empty file, expected header 'emotion,pixels,Usage'");
  if (line.size() >= 3 && std::memcmp(line.data(), "\xEF\xBB\xBF", 3) == 0) line.remove_prefix(3);
  if (line != "emotion,pixels,Usage") {
    throw DataError(path + ":1: header is '" + printable_utf8(line.substr(0, 80)) +
                    "', expected 'emotion,pixels,Usage'");
  }
  Dataset ds;
  ds.height = ds.width = kFerSide;
  // Room for the rows the file can hold (a row is at least ~2,000 bytes even gzipped; FER2013
  // has 35,887): one allocation for the real file, not 82 MB for a small one.
  std::error_code size_ec;
  const auto file_bytes = std::filesystem::file_size(path, size_ec);
  const size_t rows = size_ec ? 16 : std::clamp<size_t>(static_cast<size_t>(file_bytes / 2000), 16, 36000);
  ds.pixels.reserve(rows * kFerPixels);
  std::array<uint8_t, kFerPixels> image{};
  while (reader.next(line)) {
    if (line.empty()) continue;
    ++rep.entries_seen;
    const std::string where = path + ":" + std::to_string(reader.line_number());
    auto bad = [&](const std::string& field, const std::string& message) {
      if (options.strict) throw DataError(where + ": field '" + field + "' " + message);
      rep.skip({where, field, message});
    };
    const auto fields = split_commas(line);
    if (fields.size() != 3) {
      bad("row", "has " + std::to_string(fields.size()) + " fields, expected 3");
      continue;
    }
    int label = -1;
    if (!parse_int(fields[0], label) || label < 0 || label >= kNumExpressions) {
      bad("emotion", "is '" + printable_utf8(fields[0].substr(0, 20)) + "', expected 0..6");
      continue;
    }
    std::string error;
    if (!parse_pixels(fields[1], image.data(), error)) {
      bad("pixels", error);
      continue;
    }
    const auto split = parse_split(fields[2]);
    if (!split || (fields[2] != "Training" && fields[2] != "PublicTest" && fields[2] != "PrivateTest")) {
      bad("Usage", "is '" + printable_utf8(fields[2].substr(0, 20)) + "', expected Training, PublicTest or PrivateTest");
      continue;
    }
    ds.add(image.data(), label, *split, where);
    ++rep.entries_kept;
  }
  return ds;
}

int ferplus_label(const int votes[10], FerPlusOptions::Labels rule, std::string* why) {
  // FER+ columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF.
  static const char* kColumns[10] = {"neutral", "happiness", "surprise", "sadness", "anger",
                                     "disgust", "fear",      "contempt", "unknown", "NF (not a face)"};
  auto excluded = [&](std::string reason) {
    if (why) *why = std::move(reason);
    return -1;
  };
  std::array<int, 10> v{};
  int total = 0;
  for (int i = 0; i < 10; ++i) {
    v[static_cast<size_t>(i)] = votes[i] <= 1 ? 0 : votes[i];  // FER+ drops single votes as outliers
    total += v[static_cast<size_t>(i)];
  }
  if (total == 0) return excluded("no class has more than one vote (FER+ drops single votes)");
  int best = 0;
  for (int i = 1; i < 10; ++i) {
    if (v[static_cast<size_t>(i)] > v[static_cast<size_t>(best)]) best = i;
  }
  const int top = v[static_cast<size_t>(best)];
  std::string tied;
  int ties = 0;
  for (int i = 0; i < 10; ++i) {
    if (v[static_cast<size_t>(i)] != top) continue;
    ++ties;
    tied += (tied.empty() ? "" : " and ") + std::string(kColumns[i]);
  }
  if (ties > 1) return excluded("tie between " + tied + " (" + std::to_string(top) + " votes each)");
  if (rule == FerPlusOptions::Labels::kMajority && 2 * top <= total) {
    return excluded("no majority: " + std::string(kColumns[best]) + " has " + std::to_string(top) + " of " +
                    std::to_string(total) + " votes (counting classes with more than one vote)");
  }
  static const int kToOurs[10] = {6, 3, 5, 4, 0, 1, 2, -1, -1, -1};  // contempt, unknown, NF: none
  if (kToOurs[best] < 0) {
    return excluded("most votes for " + std::string(kColumns[best]) + ", not one of the 7 expressions");
  }
  return kToOurs[best];
}

void apply_ferplus(Dataset& fer, const std::string& ferplus_csv, const FerPlusOptions& options, ReadReport* report) {
  ReadReport local;
  ReadReport& rep = report ? *report : local;
  static const char* kHeader = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF";
  LineReader reader(ferplus_csv);
  std::string_view line;
  if (!reader.next(line) || line != kHeader) {
    throw DataError(ferplus_csv + ":1: header is not '" + std::string(kHeader) + "'");
  }
  if (!(options.mix >= 0.0 && options.mix <= 1.0)) {
    throw std::invalid_argument("FER+ label mix must be in [0, 1], got " + std::to_string(options.mix));
  }
  const bool mixing = options.mix > 0.0;
  std::vector<size_t> keep;
  std::vector<int8_t> labels(fer.size(), -1);
  std::vector<float> soft;
  if (options.soft_targets || mixing) soft.assign(fer.size() * kNumExpressions, 0.0f);
  size_t row = 0;
  static const int kToOurs[7] = {6, 3, 5, 4, 0, 1, 2};
  while (reader.next(line)) {
    if (line.empty()) continue;
    const std::string where = ferplus_csv + ":" + std::to_string(reader.line_number());
    if (row >= fer.size()) {
      throw DataError(where + ": more FER+ rows than FER2013 rows (" + std::to_string(fer.size()) +
                      "); FER+ aligns by row with the complete fer2013.csv");
    }
    const auto fields = split_commas(line);
    if (fields.size() != 12) throw DataError(where + ": has " + std::to_string(fields.size()) + " fields, expected 12");
    const auto usage = parse_split(fields[0]);
    if (!usage || *usage != fer.splits[row]) {
      throw DataError(where + ": field 'Usage' is '" + printable_utf8(fields[0].substr(0, 20)) + "' but FER2013 row " +
                      std::to_string(row + 1) + " is " + std::string(to_string(fer.splits[row])) +
                      " (the files are not row-aligned)");
    }
    ++rep.entries_seen;
    int votes[10];
    for (int i = 0; i < 10; ++i) {
      if (!parse_int(fields[static_cast<size_t>(i) + 2], votes[i]) || votes[i] < 0 || votes[i] > 10) {
        throw DataError(where + ": vote column " + std::to_string(i + 3) + " is '" +
                        printable_utf8(fields[static_cast<size_t>(i) + 2].substr(0, 20)) + "', expected 0..10");
      }
    }
    if (mixing) {
      // FER2013's label, mixed with FER+'s votes where there are any for the 7 expressions.
      int total = 0;
      if (!fields[1].empty()) {
        for (int i = 0; i < 7; ++i) total += votes[i];
      }
      float* q = soft.data() + row * kNumExpressions;
      const float w = total > 0 ? static_cast<float>(options.mix) : 0.0f;
      q[static_cast<size_t>(fer.labels[row])] = 1.0f - w;
      for (int i = 0; total > 0 && i < 7; ++i)
        q[static_cast<size_t>(kToOurs[i])] += w * static_cast<float>(votes[i]) / static_cast<float>(total);
      if (total == 0) rep.note({where, "votes", "no FER+ votes for the 7 expressions: FER2013's one-hot label alone"});
      labels[row] = fer.labels[row];
      keep.push_back(row);
      ++rep.entries_kept;
      ++row;
      continue;
    }
    std::string why;
    const int label = fields[1].empty() ? -1 : ferplus_label(votes, options.labels, &why);
    if (fields[1].empty()) {
      rep.skip({where, "Image name", "dropped by FER+ (not a face)"});
    } else if (label < 0) {
      rep.skip({where, "votes", "no label under the " +
                                    std::string(options.labels == FerPlusOptions::Labels::kMajority ? "majority"
                                                                                                    : "plurality") +
                                    " rule: " + why});
    } else {
      labels[row] = static_cast<int8_t>(label);
      keep.push_back(row);
      if (options.soft_targets) {
        int total = 0;
        for (int i = 0; i < 7; ++i) total += votes[i];
        for (int i = 0; i < 7; ++i) soft[row * kNumExpressions + static_cast<size_t>(kToOurs[i])] =
            static_cast<float>(votes[i]) / static_cast<float>(total);
      }
      ++rep.entries_kept;
    }
    ++row;
  }
  if (row != fer.size()) {
    throw DataError(ferplus_csv + ": " + std::to_string(row) + " rows, FER2013 has " + std::to_string(fer.size()) +
                    " (FER+ aligns by row with the complete fer2013.csv)");
  }
  fer.labels = std::move(labels);
  if (options.soft_targets || mixing) fer.soft_targets = std::move(soft);
  fer = fer.subset(keep);
}

}  // namespace fervid
