// The options of a training run (TrainConfig, trainer.h), each declared ONCE in one table: its
// path in config.json ("loss.lambda_c"), its flag ("--lambda-c"; none: config file only), its
// help text and help group, and the rule its value must meet. The table drives
//  - the flags of `fervid train | cv | ablate` (tools/fervid/train_flags.h binds it to CLI11),
//  - config.json: to_json(TrainConfig) and train_config_from_json (trainer.h),
//  - validation, whose errors name where the value came from, in one wording:
//      "--lr must be > 0, got -1"      "train config: field 'lr' must be > 0, got -1"
//  - a run's identity (run_identity): what makes two runs the same run.
// A value given nowhere is TrainConfig{}'s: defaults live in trainer.h and nowhere else.
// "source" is one entry: its JSON is DataSourceOptions' own (data_source.h) and its flags are
// DataSourceFlags' (tools/fervid/data_source_flags.h, over the face-recipe table).
// Torch-free.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "fervid/trainer.h"

namespace fervid {

class TrainOption {
 public:
  enum class Kind {
    kText,     // any string
    kChoice,   // one of `choices`
    kInteger,  // a whole number (seeds and sample counts: 64-bit, read exactly)
    kReal,
    kSwitch,   // true or false; the flag alone means true
    kList,     // a JSON array of strings (config file only)
    kObject,   // a JSON object read by its own reader ("source")
  };
  std::string key;    // path in config.json: "lr", "loss.lambda_c"; empty: a flag only (--no-augment)
  std::string flag;   // "--lr"; empty: config file only
  std::string help;
  std::string group;  // help section of the flag: "Data", "Model", "Loss", "Optimisation"
  Kind kind = Kind::kText;
  std::vector<std::string> choices;  // kChoice
  // Non-null: the value must not be empty when a run starts (data, run_dir); what to give.
  const char* required = nullptr;

  // The value in `c` as config.json holds it.
  nlohmann::json get(const TrainConfig& c) const;
  // What a value of this kind must be: "an integer", "sgd or adamw".
  std::string allowed() const;
  // Stores `value` into c. A value of the wrong type or outside its choices throws
  // std::invalid_argument "<where> must be <allowed>, got <value>". The rule is not checked
  // here (it may read other fields, given later): check() does.
  void set(TrainConfig& c, const nlohmann::json& value, const std::string& where) const;
  // The same from a flag's text; the error shows the text as given.
  void set_text(TrainConfig& c, const std::string& text, const std::string& where) const;
  // std::invalid_argument "<where> must be <rule>, got <value>" when c's value breaks the rule
  // (<value>: `got` when given, the text a flag had; else c's value).
  void check(const TrainConfig& c, const std::string& where, const std::string& got = "") const;
  // Whether c's value of this option makes the run what it is (false: where and how it runs,
  // run_dir, threads, device; or a value without effect, loss.form when gamma is 0).
  bool in_identity(const TrainConfig& c) const;


 private:
  friend class TrainOptionBuilder;  // the table's entries are made in one place (trainer.cpp)
  void store(TrainConfig& c, const nlohmann::json& value, const std::string& where, const std::string& got) const;
  std::function<nlohmann::json(const TrainConfig&)> read_;
  std::function<void(TrainConfig&, const nlohmann::json&)> write_;  // throws std::invalid_argument(allowed)
  std::function<std::string(const TrainConfig&)> rule_;            // "" or the rule broken: "> 0"
  std::function<bool(const TrainConfig&)> identity_;               // null: always part of the identity
};

// Every option, in help order.
const std::vector<TrainOption>& train_options();
// The option of this config.json path ("loss.lambda_c") or flag ("--lambda-c"), or null.
const TrainOption* find_train_option(std::string_view key_or_flag);

// How errors name an option read from a configuration: "train config: field 'loss.lambda_c'".
std::string train_field_where(const TrainOption& o);

// Every option's rule, and the required ones set; errors name the field as
// train_field_where does. Runs before any work in train().
void validate_train_config(const TrainConfig& c);

// Reads a JSON training configuration file (a run's config.json works); errors name the file,
// then the field: "<path>: train config: field 'lr' must be > 0, got -1".
TrainConfig read_train_config_file(const std::string& path);

// to_json(c) without what does not change the run (TrainOption::in_identity): two runs with
// the same identity train the same network on the same samples the same way.
nlohmann::json run_identity(const TrainConfig& c);
// The first leaf on which two JSON objects differ, as "loss.lambda_c (0.01 vs 0.1)"; "" when equal.
std::string first_json_difference(const nlohmann::json& a, const nlohmann::json& b);

}  // namespace fervid
