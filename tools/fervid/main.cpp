// fervid: facial expression recognition (MCSA-VGGNet). Thin front-end over libfervid.
#include <exception>
#include <iostream>

#include "commands.h"
#include "fervid/runtime.h"

int main(int argc, char** argv) {
  CLI::App app{"fervid " FERVID_VERSION ": facial expression recognition with MCSA-VGGNet"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("fervid ") + FERVID_VERSION);
  fervid::cli::GlobalOptions global;
  app.add_option("--threads", global.threads, "Intra-op threads (0 = every core)")
      ->check(CLI::NonNegativeNumber);
  app.parse_complete_callback([&] { fervid::configure_runtime(global.threads); });

  fervid::cli::add_info_command(app, global);
  fervid::cli::add_data_command(app, global);
  fervid::cli::add_eval_command(app, global);
  fervid::cli::add_model_command(app, global);
#ifdef FERVID_WITH_OPENCV
  fervid::cli::add_predict_command(app, global);
  fervid::cli::add_video_command(app, global);
#ifdef FERVID_WITH_SERVER
  fervid::cli::add_serve_command(app, global);
#endif
#endif
  std::string command_line = "fervid";
  for (int i = 1; i < argc; ++i) command_line += std::string(" ") + argv[i];
  fervid::cli::add_train_command(app, global, command_line);
  fervid::cli::add_cv_command(app, global, command_line);
  fervid::cli::add_ablate_command(app, global, command_line);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::cerr << "fervid: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
