// Writes the fuzzers' seeds into DIR/<target>/: one small valid input of each format (and a few
// near misses), so that fuzzing starts from the formats' structure, not from noise. scripts/fuzz.sh
// runs it before every fuzzing run (the CSV rows, synthetic as they are, stay out of the repository).
//   fuzz_make_seeds DIR
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "fervid/cache.h"
#include "fervid/model.h"
#include "fervid/model_io.h"
#ifdef FERVID_WITH_OPENCV
#include <opencv2/imgcodecs.hpp>
#endif

namespace fs = std::filesystem;

namespace {

void write(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

std::string fer_row(int label, const char* usage, int seed) {
  std::string row = std::to_string(label) + ",";
  for (int i = 0; i < 48 * 48; ++i) row += (i ? " " : "") + std::to_string((i * 7 + seed * 31) % 256);
  return row + "," + usage + "\n";
}

std::string gzip(const std::string& text) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, text.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = static_cast<uInt>(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_make_seeds DIR\n";
    return 2;
  }
  const fs::path dir = argv[1];
  // A model file: the smallest network (width 1/16, 32 px), with a temperature.
  {
    torch::manual_seed(1);
    fervid::ModelConfig c;
    c.width = 0.0625;
    c.input_size = 32;
    fervid::MCSANet net(c);
    fervid::Calibration cal;
    cal.temperature = 1.5;
    fs::create_directories(dir / "fuzz_model_file");
    fervid::save_model((dir / "fuzz_model_file" / "tiny.fervid").string(), net, {{"note", "fuzz seed"}}, {}, cal);
  }
  // A dataset cache: five 4x4 samples with soft targets.
  {
    fervid::Dataset d;
    d.height = d.width = 4;
    d.num_classes = 7;
    for (int i = 0; i < 5; ++i) {
      d.pixels.insert(d.pixels.end(), 16, static_cast<uint8_t>(40 * i));
      d.labels.push_back(static_cast<int8_t>(i == 4 ? -1 : i));
      d.splits.push_back(static_cast<fervid::Split>(i % 3));
      d.subjects.push_back(i == 0 ? -1 : 10 + i);
      d.origins.push_back("seed:" + std::to_string(i));
      for (int k = 0; k < 7; ++k) d.soft_targets.push_back(k == i % 7 ? 1.0f : 0.0f);
    }
    fs::create_directories(dir / "fuzz_dataset_cache");
    fervid::save_dataset_cache((dir / "fuzz_dataset_cache" / "small.fvds").string(), d, "seedkey");
  }
  // FER2013 CSV: three good rows, plain and gzip; and rows with each kind of fault.
  {
    const std::string head = "emotion,pixels,Usage\n";
    const std::string good = head + fer_row(3, "Training", 1) + fer_row(0, "PublicTest", 2) + fer_row(6, "PrivateTest", 3);
    write(dir / "fuzz_fer2013_csv" / "good.csv", good);
    write(dir / "fuzz_fer2013_csv" / "good.csv.gz", gzip(good));
    write(dir / "fuzz_fer2013_csv" / "faults.csv",
          head + "9,1 2 3,Training\n" + "2,,PublicTest\n" + fer_row(1, "Elsewhere", 4) + "x,y\n" +
              "\"3\",\"1 2\",\"Training\"\n");
  }
  // FER+ votes aligned with the fuzzer's nine-row stand-in (three rows of each split).
  {
    std::string f = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n";
    const char* usage[3] = {"Training", "PublicTest", "PrivateTest"};
    const char* votes[9] = {"10,0,0,0,0,0,0,0,0,0", "0,10,0,0,0,0,0,0,0,0", "5,5,0,0,0,0,0,0,0,0",
                            "0,0,0,0,0,0,0,0,10,0", "2,2,2,2,2,0,0,0,0,0",  "0,0,0,0,0,0,0,10,0,0",
                            "0,0,0,0,0,0,0,0,0,10", "1,1,1,1,1,1,1,1,1,1",  "0,0,6,4,0,0,0,0,0,0"};
    for (int i = 0; i < 9; ++i) {
      f += std::string(usage[i / 3]) + "," + (i == 4 ? "" : "fer" + std::to_string(i) + ".png") + "," + votes[i] + "\n";
    }
    write(dir / "fuzz_ferplus" / "votes.csv", f);
  }
  // TF.js graphs: the tiny test graph and the test suite's malformed ones.
  fs::create_directories(dir / "fuzz_tfjs_graph");
  for (const auto& e : fs::directory_iterator(FERVID_TFJS_TINY_DIR "/bad")) {
    if (e.path().extension() == ".json") fs::copy_file(e.path(), dir / "fuzz_tfjs_graph" / e.path().filename(), fs::copy_options::overwrite_existing);
  }
  fs::copy_file(FERVID_TFJS_TINY_DIR "/model.json", dir / "fuzz_tfjs_graph" / "model.json", fs::copy_options::overwrite_existing);
#ifdef FERVID_WITH_OPENCV
  // Small images of every format the server takes, gray and colour.
  {
    cv::Mat img(12, 16, CV_8UC3);
    for (int y = 0; y < img.rows; ++y)
      for (int x = 0; x < img.cols; ++x) img.at<cv::Vec3b>(y, x) = cv::Vec3b(x * 15, y * 20, (x + y) * 8);
    cv::Mat gray(9, 7, CV_8UC1, cv::Scalar(90));
    for (const std::string ext : {".png", ".jpg", ".bmp", ".webp", ".tiff", ".pgm"}) {
      std::vector<uint8_t> buf;
      if (cv::imencode(ext, ext == ".pgm" ? gray : img, buf))
        write(dir / "fuzz_image_decode" / ("small" + ext), std::string(buf.begin(), buf.end()));
    }
  }
#endif
  std::cout << "wrote seeds under " << dir << "\n";
  return 0;
}
