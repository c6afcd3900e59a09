// fervid_dump_logits: fervid's side of the Python reference check (bench/reference/).
// Loads a model file with fervid::load_model (or first builds a seeded random network of any
// variant and saves it with fervid::save_model), runs it in eval mode on a deterministic input
// and prints JSON: {"parameter_count", "tensor_count", "input_shape", "logits", "embedding"}.
// bench/reference/check_same_outputs.py runs the same file through fervid_ref.py and compares.
//
//   fervid_dump_logits --model FILE [--batch N] [--input-seed S] [--input RAW_F32]
//   fervid_dump_logits --random VARIANT --save FILE [--width W] [--input-size S]
//                      [--multiscale auto|on|off] [--seed S] [--batch N] [--input-seed S]
//
// The input is the splitmix64 sequence of fervid_ref.deterministic_input (exact in float32), or
// raw little-endian float32 values from a file ([N, C, S, S] with N = size / (C * S * S)).
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "fervid/model.h"
#include "fervid/model_io.h"
#include "fervid/runtime.h"

using nlohmann::json;

namespace {

struct Options {
  std::string model, random_variant, save, input_file, multiscale = "auto";
  double width = 0.125;
  int input_size = 32, batch = 2, threads = 0;
  uint64_t seed = 1, input_seed = 0;
};

constexpr const char* kUsage =
    "usage: fervid_dump_logits (--model FILE | --random VARIANT --save FILE [--width W] [--input-size S]\n"
    "                          [--multiscale auto|on|off] [--seed S]) [--batch N] [--input-seed S]\n"
    "                          [--input RAW_F32] [--threads N]\n";

Options parse(int argc, char** argv) {
  Options o;
  auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) throw std::invalid_argument(std::string("option ") + argv[i] + " needs a value");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--model") o.model = value(i);
    else if (a == "--random") o.random_variant = value(i);
    else if (a == "--save") o.save = value(i);
    else if (a == "--input") o.input_file = value(i);
    else if (a == "--multiscale") o.multiscale = value(i);
    else if (a == "--width") o.width = std::stod(value(i));
    else if (a == "--input-size") o.input_size = std::stoi(value(i));
    else if (a == "--batch") o.batch = std::stoi(value(i));
    else if (a == "--threads") o.threads = std::stoi(value(i));
    else if (a == "--seed") o.seed = std::stoull(value(i));
    else if (a == "--input-seed") o.input_seed = std::stoull(value(i));
    else if (a == "-h" || a == "--help") { std::cout << kUsage; std::exit(0); }
    else throw std::invalid_argument("unknown option '" + a + "'");
  }
  if (o.model.empty() == o.random_variant.empty()) throw std::invalid_argument("give exactly one of --model, --random");
  if (!o.random_variant.empty() && o.save.empty()) throw std::invalid_argument("--random needs --save FILE");
  if (o.batch < 1) throw std::invalid_argument("--batch must be >= 1, got " + std::to_string(o.batch));
  if (o.multiscale != "auto" && o.multiscale != "on" && o.multiscale != "off") {
    throw std::invalid_argument("--multiscale is '" + o.multiscale + "', expected auto, on or off");
  }
  return o;
}

// fervid_ref.deterministic_input: element i is splitmix64's (i+1)-th output from state `seed`,
// its top 24 bits mapped to [-1, 1) (exact in float32).
torch::Tensor deterministic_input(const std::vector<int64_t>& shape, uint64_t seed) {
  auto x = torch::empty(shape, torch::kFloat);
  auto* p = x.data_ptr<float>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    uint64_t z = seed + static_cast<uint64_t>(i + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    p[i] = static_cast<float>(static_cast<double>(z >> 40) / static_cast<double>(1 << 23) - 1.0);
  }
  return x;
}

torch::Tensor read_raw_input(const std::string& path, const fervid::ModelConfig& c) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("input file " + path + ": cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  const int64_t per_image = int64_t{c.in_channels} * c.input_size * c.input_size;
  const int64_t values = static_cast<int64_t>(bytes.size() / sizeof(float));
  if (bytes.size() % sizeof(float) != 0 || values == 0 || values % per_image != 0) {
    throw std::runtime_error("input file " + path + ": " + std::to_string(bytes.size()) +
                             " bytes is not a whole number of float32 images of " +
                             std::to_string(per_image) + " values");
  }
  auto x = torch::empty({values / per_image, c.in_channels, c.input_size, c.input_size}, torch::kFloat);
  std::memcpy(x.data_ptr<float>(), bytes.data(), bytes.size());
  return x;
}

// A seeded network whose every parameter and BatchNorm statistic is away from its default
// (ones, zeros), so that a reference that mixed up any of them would show in the logits.
fervid::MCSANet random_network(const Options& o) {
  fervid::ModelConfig c;
  c.variant = fervid::parse_variant(o.random_variant);
  c.width = o.width;
  c.input_size = o.input_size;
  c.multiscale = o.multiscale == "auto" ? -1 : o.multiscale == "on" ? 1 : 0;
  torch::manual_seed(o.seed);
  fervid::MCSANet net(c);
  torch::NoGradGuard no_grad;
  for (auto& m : net->modules(/*include_self=*/false)) {
    if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.normal_(0.0, 0.1);
      bn->running_mean.normal_(0.0, 0.1);
      bn->running_var.uniform_(0.5, 1.5);
      bn->num_batches_tracked.fill_(static_cast<int64_t>(o.seed));
    }
  }
  // The shipped init (N(0, 0.01)) leaves logits near 0; widen it so differences show.
  auto params = net->named_parameters();
  auto& head = params["head.weight"];
  head.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(head.size(1))));
  params["head.bias"].normal_(0.0, 0.1);
  return net;
}

json rows(const torch::Tensor& t) {
  json out = json::array();
  auto a = t.contiguous().to(torch::kDouble);
  for (int64_t i = 0; i < a.size(0); ++i) {
    const double* p = a[i].data_ptr<double>();
    out.push_back(std::vector<double>(p, p + a.size(1)));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    fervid::configure_runtime(o.threads);
    std::string path = o.model;
    if (!o.random_variant.empty()) {
      auto net = random_network(o);
      fervid::save_model(o.save, net, json{{"made_by", "fervid_dump_logits --random"}, {"seed", o.seed}});
      path = o.save;
    }
    auto loaded = fervid::load_model(path);  // what the check is about: the file, as fervid reads it
    auto& net = loaded.net;
    const auto& c = net->config();
    net->eval();
    torch::NoGradGuard no_grad;
    auto x = o.input_file.empty() ? deterministic_input({o.batch, c.in_channels, c.input_size, c.input_size}, o.input_seed)
                                  : read_raw_input(o.input_file, c);
    auto out = net->forward(x);
    int64_t params = 0;
    for (const auto& p : net->parameters()) params += p.numel();
    json j = {{"model", path},
              {"variant", std::string(fervid::to_string(c.variant))},
              {"parameter_count", params},
              {"tensor_count", net->named_parameters().size() + net->named_buffers().size()},
              {"input_shape", x.sizes().vec()},
              {"input_seed", o.input_seed},
              {"logits", rows(out.logits)},
              {"embedding", rows(out.embedding)}};
    std::cout << j.dump() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "fervid_dump_logits: " << e.what() << "\n" << kUsage;
    return 1;
  }
}
