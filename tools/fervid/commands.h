// The fervid CLI's subcommands. Each registers its options struct (declared once, with
// defaults and help text) and a callback; main() runs the chosen one.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace fervid::cli {

struct GlobalOptions {
  int threads = 0;  // 0 = every core
};

void add_info_command(CLI::App& app, const GlobalOptions& global);
void add_data_command(CLI::App& app, const GlobalOptions& global);
void add_eval_command(CLI::App& app, const GlobalOptions& global);
void add_model_command(CLI::App& app, const GlobalOptions& global);  // model set-recipe
#ifdef FERVID_WITH_OPENCV
void add_predict_command(CLI::App& app, const GlobalOptions& global);
void add_video_command(CLI::App& app, const GlobalOptions& global);
#ifdef FERVID_WITH_SERVER
void add_serve_command(CLI::App& app, const GlobalOptions& global);
#endif
#endif
// `command_line` is recorded with every run (the exact command that made a model).
void add_train_command(CLI::App& app, const GlobalOptions& global, const std::string& command_line);
void add_cv_command(CLI::App& app, const GlobalOptions& global, const std::string& command_line);
void add_ablate_command(CLI::App& app, const GlobalOptions& global, const std::string& command_line);

// "14.71 M", "15.29 G": the units people read parameter and MAC counts in.
std::string human_count(double n);

}  // namespace fervid::cli
