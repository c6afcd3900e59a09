// The training flags of `fervid train`, `cv` and `ablate`, bound to CLI11 from the one option
// table (fervid/train_options.h): every option that has a flag, the data-source flags
// (data_source_flags.h) where the table has "source", and --config. Values are taken as text and
// parsed and checked by the table, so an error reads as everywhere else: "--lr must be > 0,
// got -1". A run's configuration is TrainConfig{}, then the --config file, then the flags given.
#pragma once

#include <CLI/CLI.hpp>

#include <deque>
#include <string>

#include "commands.h"
#include "data_source_flags.h"
#include "fervid/train_options.h"

namespace fervid::cli {

class TrainFlags {
 public:
  void add_to(CLI::App* cmd) {
    cmd_ = cmd;
    cmd->add_option("--config", config_file_, "JSON training config (a run's config.json works); flags override it");
    const auto& table = train_options();
    const TrainConfig defaults;
    text_.assign(table.size(), std::string());
    on_.assign(table.size(), false);
    for (size_t i = 0; i < table.size(); ++i) {
      const auto& o = table[i];
      if (o.key == "source") {
        source_.add_to(cmd, DataSourceFlags::Use::kTrain, o.group);
        continue;
      }
      if (o.flag.empty()) continue;
      CLI::Option* flag = nullptr;
      if (o.kind == TrainOption::Kind::kSwitch) {
        flag = cmd->add_flag(o.flag, on_[i], o.help);
      } else {
        flag = cmd->add_option(o.flag, text_[i], o.help)->type_name(type_name(o));
        // TrainConfig{}'s value, where it reads as a value of the flag.
        const auto value = o.get(defaults);
        if (value.is_string() && !value.get<std::string>().empty()) flag->default_str(value.get<std::string>());
        if (value.is_number()) flag->default_str(value.dump());
      }
      if (!o.group.empty()) flag->group(o.group);  // an empty group would hide the flag
    }
  }

  bool given(const std::string& flag) const { return cmd_ != nullptr && cmd_->count(flag) > 0; }
  bool has_config_file() const { return !config_file_.empty(); }

  // Writes every flag given onto `c`, in the table's order (--no-augment before --erase), then
  // checks each one's rule, naming the flag: std::invalid_argument.
  void apply(TrainConfig& c) const {
    const auto& table = train_options();
    for (size_t i = 0; i < table.size(); ++i) {
      const auto& o = table[i];
      if (o.key == "source") source_.apply(cmd_, c.source);
      if (o.flag.empty() || !given(o.flag)) continue;
      if (o.kind == TrainOption::Kind::kSwitch) {
        o.set(c, on_[i], o.flag);
      } else {
        o.set_text(c, text_[i], o.flag);
      }
    }
    for (size_t i = 0; i < table.size(); ++i) {
      const auto& o = table[i];
      if (!o.flag.empty() && given(o.flag)) o.check(c, o.flag, o.kind == TrainOption::Kind::kSwitch ? "" : text_[i]);
    }
  }

  // The run's configuration: TrainConfig{}, the --config file over it, the flags over that;
  // threads not set anywhere are the global --threads.
  TrainConfig resolve(const GlobalOptions& global) const {
    TrainConfig c = config_file_.empty() ? TrainConfig{} : read_train_config_file(config_file_);
    apply(c);
    if (c.threads == 0) c.threads = global.threads;
    return c;
  }

 private:
  static const char* type_name(const TrainOption& o) {
    switch (o.kind) {
      case TrainOption::Kind::kInteger: return "INT";
      case TrainOption::Kind::kReal: return "NUMBER";
      case TrainOption::Kind::kChoice: return "NAME";
      default: return "TEXT";
    }
  }

  CLI::App* cmd_ = nullptr;
  std::string config_file_;
  DataSourceFlags source_;
  std::deque<std::string> text_;  // deque: add_option keeps references to the elements
  std::deque<bool> on_;
};

}  // namespace fervid::cli
