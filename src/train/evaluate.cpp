#include "fervid/evaluate.h"

#include <torch/nn/functional.h>

#include <cmath>
#include <stdexcept>

#include "fervid/augment.h"
#include "fervid/loader.h"
#include "train/device_batch.h"

namespace fervid {

namespace F = torch::nn::functional;

std::string_view to_string(Tta t) {
  switch (t) {
    case Tta::kNone: return "none";
    case Tta::kFlip: return "flip";
    case Tta::kTenCrop: return "tencrop";
  }
  return "none";
}

Tta parse_tta(std::string_view s) {
  if (s == "none") return Tta::kNone;
  if (s == "flip") return Tta::kFlip;
  if (s == "tencrop") return Tta::kTenCrop;
  throw std::invalid_argument("unknown TTA '" + std::string(s) + "' (expected none, flip or tencrop)");
}

torch::Tensor tta_views(const torch::Tensor& images, Tta tta) {
  TORCH_CHECK(images.dim() == 4, "tta_views: expected [N, C, S, S], got ", images.sizes());
  if (tta == Tta::kNone) return images;
  if (tta == Tta::kFlip) return torch::cat({images, images.flip({3})}, 0);
  const int64_t s = images.size(2), w = images.size(3);
  const int64_t c = static_cast<int64_t>(std::lround(0.9 * static_cast<double>(s)));
  const int64_t cw = static_cast<int64_t>(std::lround(0.9 * static_cast<double>(w)));
  const std::pair<int64_t, int64_t> corners[] = {{0, 0}, {0, w - cw}, {s - c, 0}, {s - c, w - cw}, {(s - c) / 2, (w - cw) / 2}};
  std::vector<torch::Tensor> views;
  for (const auto& [y, x] : corners) {
    auto crop = images.narrow(2, y, c).narrow(3, x, cw);
    views.push_back(F::interpolate(crop, F::InterpolateFuncOptions()
                                             .size(std::vector<int64_t>{s, w})
                                             .mode(torch::kBilinear)
                                             .align_corners(false)));
  }
  const auto n = views.size();
  for (size_t i = 0; i < n; ++i) views.push_back(views[i].flip({3}));
  return torch::cat(views, 0);
}

Predictions predict(MCSANet& net, const Dataset& data, const std::vector<size_t>& indices, Tta tta, int batch_size,
                    double temperature) {
  TORCH_CHECK(temperature > 0, "predict: temperature must be > 0, got ", temperature);
  const auto& cfg = net->config();
  const auto params = net->parameters();
  const torch::Device device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  LoaderOptions lo;
  lo.batch_size = batch_size;
  lo.shuffle = false;
  lo.input_size = cfg.input_size;
  lo.norm_mean = cfg.norm_mean;
  lo.norm_std = cfg.norm_std;
  if (!device.is_cpu()) detail::defer_to_device(lo, data);  // resize and normalise on the device
  BatchLoader loader(data, indices, lo);
  loader.start_epoch(0);
  net->eval();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> probs, labels, embeddings;
  while (auto b = loader.next()) {
    auto images = b->images;
    if (!device.is_cpu()) {
      images = detail::finish_on_device(images, device, cfg.input_size, nullptr, nullptr, cfg.norm_mean, cfg.norm_std);
    }
    const auto n = images.size(0);
    auto out = net->forward(tta_views(images, tta));
    auto p = torch::softmax(temperature == 1.0 ? out.logits : out.logits / temperature, 1);
    const auto views = p.size(0) / n;
    probs.push_back(p.view({views, n, -1}).mean(0).to(torch::kCPU));
    embeddings.push_back(out.embedding.narrow(0, 0, n).to(torch::kCPU));
    labels.push_back(b->labels);
  }
  if (probs.empty()) throw std::invalid_argument("predict: no samples to evaluate");
  return {torch::cat(probs), torch::cat(labels), torch::cat(embeddings)};
}

namespace {

torch::Tensor scaled_log_probs(const Predictions& p, double temperature) {
  TORCH_CHECK(p.probs.dim() == 2 && p.labels.dim() == 1 && p.probs.size(0) == p.labels.size(0) && p.probs.size(0) > 0,
              "temperature: expected probs [N, K] and labels [N] with N > 0, got ", p.probs.sizes(), " and ",
              p.labels.sizes());
  TORCH_CHECK(temperature > 0, "temperature must be > 0, got ", temperature);
  return torch::log_softmax(p.probs.to(torch::kDouble).clamp_min(1e-30).log() / temperature, 1);
}

}  // namespace

double nll_at_temperature(const Predictions& p, double temperature) {
  const auto lp = scaled_log_probs(p, temperature);
  return -lp.gather(1, p.labels.to(torch::kLong).unsqueeze(1)).mean().item<double>();
}

Predictions at_temperature(const Predictions& p, double temperature) {
  return {scaled_log_probs(p, temperature).exp().to(torch::kFloat), p.labels, p.embeddings};
}

TemperatureFit fit_temperature(const Predictions& p) {
  // Golden-section search on beta = 1 / T, where the NLL is convex (log-sum-exp of terms linear
  // in beta, minus a linear term).
  const double phi = (std::sqrt(5.0) - 1) / 2;
  double lo = 1.0 / 20.0, hi = 1.0 / 0.05;
  auto f = [&](double beta) { return nll_at_temperature(p, 1.0 / beta); };
  double a = hi - phi * (hi - lo), b = lo + phi * (hi - lo);
  double fa = f(a), fb = f(b);
  while (hi - lo > 1e-6) {
    if (fa < fb) {
      hi = b, b = a, fb = fa;
      a = hi - phi * (hi - lo), fa = f(a);
    } else {
      lo = a, a = b, fa = fb;
      b = lo + phi * (hi - lo), fb = f(b);
    }
  }
  TemperatureFit fit;
  fit.temperature = 2.0 / (lo + hi);
  fit.nll_before = nll_at_temperature(p, 1.0);
  fit.nll_after = nll_at_temperature(p, fit.temperature);
  fit.samples = p.labels.size(0);
  return fit;
}

Calibration calibrate_temperature(MCSANet& net, const Dataset& data, const std::vector<size_t>& indices,
                                  const std::string& split) {
  const auto p = predict(net, data, indices, Tta::kNone, 256, 1.0);
  const auto fit = fit_temperature(p);
  const int k = net->config().num_classes();
  Calibration c;
  c.temperature = fit.temperature;
  c.fit = {{"method", "temperature scaling (NLL)"}, {"split", split}, {"samples", fit.samples},
           {"nll_before", fit.nll_before}, {"nll_after", fit.nll_after},
           {"ece_before", compute_metrics(p, k).ece},
           {"ece_after", compute_metrics(at_temperature(p, fit.temperature), k).ece}};
  return c;
}

EmbeddingStats embedding_stats(const torch::Tensor& embeddings, const torch::Tensor& labels, int num_classes) {
  EmbeddingStats s;
  auto e = embeddings.to(torch::kDouble);
  std::vector<torch::Tensor> centres;
  double intra = 0;
  int64_t count = 0;
  for (int k = 0; k < num_classes; ++k) {
    auto mask = labels.eq(k);
    const auto n = mask.sum().item<int64_t>();
    if (n == 0) continue;
    auto members = e.index({mask});
    auto centre = members.mean(0);
    intra += (members - centre).norm(2, 1).sum().item<double>();
    count += n;
    centres.push_back(centre);
    s.classes.push_back(k);
  }
  if (count == 0) return s;
  s.intra_mean = intra / static_cast<double>(count);
  if (centres.size() >= 2) {
    auto c = torch::stack(centres);
    auto d = torch::cdist(c.unsqueeze(0), c.unsqueeze(0)).squeeze(0);
    const auto m = static_cast<int64_t>(centres.size());
    auto off = 1 - torch::eye(m, torch::kDouble);
    s.inter_mean = (d * off).sum().item<double>() / static_cast<double>(m * (m - 1));
    s.inter_min = (d + torch::eye(m, torch::kDouble) * 1e300).min().item<double>();
    s.ratio = s.intra_mean > 0 ? s.inter_mean / s.intra_mean : 0;
  }
  return s;
}

EvalMetrics compute_metrics(const Predictions& p, int num_classes, int ece_bins) {
  EvalMetrics m;
  const auto probs = p.probs.to(torch::kDouble);
  const auto labels = p.labels;
  m.samples = labels.size(0);
  auto [conf_t, pred_t] = probs.max(1);
  const auto* y = labels.data_ptr<int64_t>();
  const auto pred = pred_t.contiguous();
  const auto* yhat = pred.data_ptr<int64_t>();
  m.confusion.assign(static_cast<size_t>(num_classes), std::vector<int64_t>(static_cast<size_t>(num_classes), 0));
  int64_t correct = 0;
  for (int64_t i = 0; i < m.samples; ++i) {
    m.confusion[static_cast<size_t>(y[i])][static_cast<size_t>(yhat[i])]++;
    correct += y[i] == yhat[i];
  }
  m.accuracy = m.samples ? static_cast<double>(correct) / static_cast<double>(m.samples) : 0;
  double f1_sum = 0, recall_sum = 0;
  int present = 0;
  for (int k = 0; k < num_classes; ++k) {
    ClassMetrics c;
    int64_t tp = m.confusion[static_cast<size_t>(k)][static_cast<size_t>(k)], predicted = 0;
    for (int j = 0; j < num_classes; ++j) {
      c.support += m.confusion[static_cast<size_t>(k)][static_cast<size_t>(j)];
      predicted += m.confusion[static_cast<size_t>(j)][static_cast<size_t>(k)];
    }
    c.precision = predicted ? static_cast<double>(tp) / static_cast<double>(predicted) : 0;
    c.recall = c.support ? static_cast<double>(tp) / static_cast<double>(c.support) : 0;
    c.f1 = c.precision + c.recall > 0 ? 2 * c.precision * c.recall / (c.precision + c.recall) : 0;
    if (c.support > 0) {
      f1_sum += c.f1;
      recall_sum += c.recall;
      ++present;
    }
    m.per_class.push_back(c);
  }
  m.macro_f1 = present ? f1_sum / present : 0;
  m.uar = present ? recall_sum / present : 0;
  // ECE: |accuracy - confidence| per equal-width confidence bin, weighted by the bin's share.
  const auto conf = conf_t.contiguous();
  const auto* cp = conf.data_ptr<double>();
  m.reliability.resize(static_cast<size_t>(ece_bins));
  for (int b = 0; b < ece_bins; ++b) {
    m.reliability[static_cast<size_t>(b)].lower = static_cast<double>(b) / ece_bins;
    m.reliability[static_cast<size_t>(b)].upper = static_cast<double>(b + 1) / ece_bins;
  }
  for (int64_t i = 0; i < m.samples; ++i) {
    const int b = std::min(ece_bins - 1, static_cast<int>(cp[i] * ece_bins));
    auto& bin = m.reliability[static_cast<size_t>(b)];
    bin.count++;
    bin.confidence += cp[i];
    bin.accuracy += y[i] == yhat[i];
  }
  for (auto& bin : m.reliability) {
    if (bin.count == 0) continue;
    bin.confidence /= static_cast<double>(bin.count);
    bin.accuracy /= static_cast<double>(bin.count);
    m.ece += static_cast<double>(bin.count) / static_cast<double>(m.samples) * std::abs(bin.accuracy - bin.confidence);
  }
  if (p.embeddings.defined()) m.embedding = embedding_stats(p.embeddings, labels, num_classes);
  return m;
}

torch::Tensor project_2d(const torch::Tensor& embeddings) {
  auto e = embeddings.to(torch::kDouble);
  e = e - e.mean(0, true);
  auto svd = torch::linalg_svd(e, /*full_matrices=*/false);
  auto v = std::get<2>(svd);  // [D, D]: rows are the right singular vectors
  return e.matmul(v.narrow(0, 0, std::min<int64_t>(2, v.size(0))).t()).to(torch::kFloat);
}

nlohmann::json to_json(const EvalMetrics& m, const std::vector<std::string>& names) {
  using nlohmann::json;
  json per = json::object();
  for (size_t k = 0; k < m.per_class.size(); ++k) {
    const auto& c = m.per_class[k];
    per[k < names.size() ? names[k] : std::to_string(k)] = {
        {"precision", c.precision}, {"recall", c.recall}, {"f1", c.f1}, {"support", c.support}};
  }
  json bins = json::array();
  for (const auto& b : m.reliability) {
    bins.push_back({{"lower", b.lower}, {"upper", b.upper}, {"confidence", b.confidence}, {"accuracy", b.accuracy}, {"count", b.count}});
  }
  return {{"samples", m.samples},
          {"accuracy", m.accuracy},
          {"macro_f1", m.macro_f1},
          {"uar", m.uar},
          {"ece", m.ece},
          {"per_class", per},
          {"confusion_matrix", {{"rows", "true class"}, {"columns", "predicted class"}, {"classes", names}, {"counts", m.confusion}}},
          {"reliability", bins},
          {"embedding", {{"intra_class_mean_distance", m.embedding.intra_mean},
                         {"inter_class_center_mean_distance", m.embedding.inter_mean},
                         {"inter_class_center_min_distance", m.embedding.inter_min},
                         {"inter_over_intra", m.embedding.ratio}}}};
}

EvalMetrics eval_metrics_from_json(const nlohmann::json& j) {
  EvalMetrics m;
  m.samples = j.at("samples").get<int64_t>();
  m.accuracy = j.at("accuracy").get<double>();
  m.macro_f1 = j.at("macro_f1").get<double>();
  m.ece = j.at("ece").get<double>();
  const auto& cm = j.at("confusion_matrix");
  m.confusion = cm.at("counts").get<std::vector<std::vector<int64_t>>>();
  for (const auto& name : cm.at("classes")) {
    const auto& c = j.at("per_class").at(name.get<std::string>());
    m.per_class.push_back({c.at("precision").get<double>(), c.at("recall").get<double>(), c.at("f1").get<double>(),
                           c.at("support").get<int64_t>()});
  }
  for (const auto& b : j.at("reliability")) {
    m.reliability.push_back({b.at("lower").get<double>(), b.at("upper").get<double>(), b.at("confidence").get<double>(),
                             b.at("accuracy").get<double>(), b.at("count").get<int64_t>()});
  }
  const auto& e = j.at("embedding");
  m.embedding.intra_mean = e.at("intra_class_mean_distance").get<double>();
  m.embedding.inter_mean = e.at("inter_class_center_mean_distance").get<double>();
  m.embedding.inter_min = e.at("inter_class_center_min_distance").get<double>();
  m.embedding.ratio = e.at("inter_over_intra").get<double>();
  // Reports written before UAR was one of their fields: the mean recall of the classes present.
  if (j.contains("uar")) {
    m.uar = j.at("uar").get<double>();
  } else {
    double sum = 0;
    int present = 0;
    for (const auto& c : m.per_class)
      if (c.support > 0) {
        sum += c.recall;
        ++present;
      }
    m.uar = present ? sum / present : 0;
  }
  return m;
}

}  // namespace fervid
