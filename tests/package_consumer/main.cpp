// Builds an MCSA-VGGNet through the installed package, saves and reloads it, runs one face.
#include <fervid/model.h>
#include <fervid/model_io.h>
#include <fervid/runtime.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  fervid::configure_runtime(1);
  fervid::ModelConfig config;
  config.width = 0.25;
  fervid::MCSANet net(config);
  fervid::save_model(argv[1], net);
  auto loaded = fervid::load_model(argv[1]);
  torch::NoGradGuard no_grad;
  auto out = loaded.net->forward(torch::zeros({1, 1, 48, 48}));
  std::cout << "logits " << out.logits.sizes() << " embedding " << out.embedding.sizes() << "\n";
  return out.logits.size(1) == 7 ? 0 : 1;
}
