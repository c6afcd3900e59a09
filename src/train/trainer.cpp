#include "fervid/trainer.h"

#include <ATen/Context.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <torch/optim.h>
#include <torch/serialize.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <type_traits>

#include "fervid/atomic_file.h"
#include "fervid/augment.h"
#include "fervid/evaluate.h"
#include "fervid/hash.h"
#include "fervid/json_text.h"
#include "fervid/loader.h"
#include "fervid/model.h"
#include "fervid/model_io.h"
#include "fervid/runtime.h"
#include "fervid/splits.h"
#include "fervid/train_options.h"
#include "fervid/train_step.h"
#include "fervid/trained_data.h"
#include "train/device_batch.h"
#ifdef FERVID_WITH_OPENCV
#include "fervid/plot.h"
#endif

namespace fervid {

namespace fs = std::filesystem;
using nlohmann::json;

// ---- the option table (train_options.h) --------------------------------------------------------

// Makes the table's entries: a typed accessor to one field of TrainConfig (or of its model, loss
// or augment part) and the rule its value must meet.
class TrainOptionBuilder {
 public:
  using Kind = TrainOption::Kind;
  using Rule = std::function<std::string(const TrainConfig&)>;
  template <typename T>
  using Ref = std::function<T&(TrainConfig&)>;

  explicit TrainOptionBuilder(std::vector<TrainOption>& table) : table_(table) {}
  void group(const char* g) { group_ = g; }

  TrainOption& text(const char* key, const char* flag, const char* help, Ref<std::string> ref) {
    auto& o = add(key, flag, help, Kind::kText);
    o.read_ = [ref](const TrainConfig& c) { return json(ref(mutable_config(c))); };
    o.write_ = [ref](TrainConfig& c, const json& v) {
      if (!v.is_string()) throw std::invalid_argument("text");
      ref(c) = v.get<std::string>();
    };
    return o;
  }
  TrainOption& choice(const char* key, const char* flag, const char* help, Ref<std::string> ref,
                      std::vector<std::string> choices) {
    auto& o = text(key, flag, help, ref);
    o.kind = Kind::kChoice;
    o.choices = std::move(choices);
    o.rule_ = [ref, choices = o.choices](const TrainConfig& c) {
      const auto& v = ref(mutable_config(c));
      return std::find(choices.begin(), choices.end(), v) == choices.end() ? choices_text(choices) : "";
    };
    return o;
  }
  // An enumeration stored as its name.
  template <typename E>
  TrainOption& named(const char* key, const char* flag, const char* help, Ref<E> ref, const std::vector<E>& values) {
    std::vector<std::string> names;
    for (E v : values) names.emplace_back(to_string(v));
    auto& o = add(key, flag, help, Kind::kChoice);
    o.choices = names;
    o.read_ = [ref](const TrainConfig& c) { return json(std::string(to_string(ref(mutable_config(c))))); };
    o.write_ = [ref, values, names](TrainConfig& c, const json& v) {
      for (size_t i = 0; v.is_string() && i < names.size(); ++i) {
        if (names[i] == v.get<std::string>()) {
          ref(c) = values[i];
          return;
        }
      }
      throw std::invalid_argument(choices_text(names));
    };
    return o;
  }
  TrainOption& boolean(const char* key, const char* flag, const char* help, Ref<bool> ref) {
    auto& o = add(key, flag, help, Kind::kSwitch);
    o.read_ = [ref](const TrainConfig& c) { return json(ref(mutable_config(c))); };
    o.write_ = [ref](TrainConfig& c, const json& v) {
      if (!v.is_boolean()) throw std::invalid_argument("true or false");
      ref(c) = v.get<bool>();
    };
    return o;
  }
  // A number in `range`, or meeting a rule of its own.
  template <typename T>
  TrainOption& number(const char* key, const char* flag, const char* help, Ref<T> ref, RecipeRange range) {
    auto& o = number<T>(key, flag, help, ref, Rule());
    o.rule_ = [ref, range](const TrainConfig& c) {
      return range.contains(static_cast<double>(ref(mutable_config(c)))) ? "" : range.text(std::is_integral_v<T>);
    };
    return o;
  }
  template <typename T>
  TrainOption& number(const char* key, const char* flag, const char* help, Ref<T> ref, Rule rule) {
    auto& o = add(key, flag, help, std::is_integral_v<T> ? Kind::kInteger : Kind::kReal);
    o.read_ = [ref](const TrainConfig& c) { return json(ref(mutable_config(c))); };
    o.write_ = [ref](TrainConfig& c, const json& v) { ref(c) = number_from<T>(v); };
    o.rule_ = std::move(rule);
    return o;
  }
  // Anything else: its own JSON reader and writer (read throws std::invalid_argument(allowed)).
  TrainOption& custom(const char* key, const char* flag, const char* help, Kind kind,
                      std::function<json(const TrainConfig&)> read, std::function<void(TrainConfig&, const json&)> write) {
    auto& o = add(key, flag, help, kind);
    o.read_ = std::move(read);
    o.write_ = std::move(write);
    return o;
  }
  static TrainOption& in_identity_when(TrainOption& o, std::function<bool(const TrainConfig&)> when) {
    o.identity_ = std::move(when);
    return o;
  }
  static TrainOption& with_rule(TrainOption& o, Rule rule) {
    o.rule_ = std::move(rule);
    return o;
  }

 private:
  // The accessors hand out references for writing; reading through them changes nothing.
  static TrainConfig& mutable_config(const TrainConfig& c) { return const_cast<TrainConfig&>(c); }

  template <typename T>
  static T number_from(const json& v) {
    if constexpr (std::is_integral_v<T>) {
      const char* allowed = std::is_unsigned_v<T> ? "an integer >= 0" : "an integer";
      // A whole float (30.0) is accepted: configs edited by other tools write them.
      if (v.is_number_float() && v.get<double>() == std::floor(v.get<double>()) && std::fabs(v.get<double>()) < 9e15) {
        return number_from<T>(json(static_cast<int64_t>(v.get<double>())));
      }
      if (!v.is_number_integer()) throw std::invalid_argument(allowed);
      if (v.is_number_unsigned()) {
        const auto u = v.get<uint64_t>();
        if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) throw std::invalid_argument(allowed);
        return static_cast<T>(u);
      }
      const auto s = v.get<int64_t>();
      if ((std::is_unsigned_v<T> && s < 0) || (!std::is_unsigned_v<T> && (s < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
                                                                          s > static_cast<int64_t>(std::numeric_limits<T>::max())))) {
        throw std::invalid_argument(allowed);
      }
      return static_cast<T>(s);
    } else {
      if (!v.is_number()) throw std::invalid_argument("a number");
      return v.get<T>();
    }
  }

  TrainOption& add(const char* key, const char* flag, const char* help, Kind kind) {
    TrainOption o;
    o.key = key;
    o.flag = flag;
    o.help = help;
    o.group = group_;
    o.kind = kind;
    table_.push_back(std::move(o));
    return table_.back();
  }

  std::vector<TrainOption>& table_;
  std::string group_;
};

namespace {

constexpr double kNoLimit = std::numeric_limits<double>::infinity();
RecipeRange in_range(double lo, double hi, bool lo_open = false, bool hi_open = false) { return {lo, hi, lo_open, hi_open}; }
RecipeRange at_least(double lo) { return {lo, kNoLimit, false, false}; }
RecipeRange above(double lo) { return {lo, kNoLimit, true, false}; }

template <typename T>
TrainOptionBuilder::Ref<T> field(T TrainConfig::*m) {
  return [m](TrainConfig& c) -> T& { return c.*m; };
}
template <typename Part, typename T>
TrainOptionBuilder::Ref<T> field(Part TrainConfig::*part, T Part::*m) {
  return [part, m](TrainConfig& c) -> T& { return (c.*part).*m; };
}

// A model field checked by ModelConfig's own rule (config.h), so the ranges live there once.
TrainOptionBuilder::Rule model_rule(const char* name) {
  return [name](const TrainConfig& c) { return c.model.unmet_rule(name); };
}

std::vector<TrainOption> make_table() {
  using T = TrainConfig;
  using Kind = TrainOption::Kind;
  using Rule = TrainOptionBuilder::Rule;
  std::vector<TrainOption> t;
  TrainOptionBuilder b(t);
  auto never = [](const TrainConfig&) { return false; };

  // Where the run lives is not what it is.
  b.in_identity_when(b.text("run_dir", "--out", "Run folder to create", field(&T::run_dir)), never).required = "";

  b.group("Data");
  b.text("data", "--data", "FER2013 CSV, image folder, CK+48, CK+ or photo folder", field(&T::data)).required =
      "give a dataset (FER2013 CSV, image folder, CK+)";
  // DataSourceOptions has a JSON reader of its own (data_source.h); the CLI adds its flags here.
  b.custom("source", "", "How the data is read (format, FER+ labels, faces)", Kind::kObject,
           [](const TrainConfig& c) { return to_json(c.source); },
           [](TrainConfig& c, const json& v) { c.source = data_source_options_from_json(v, "train config"); });
  b.text("train_split", "--train-split", "Training | PublicTest | PrivateTest | all", field(&T::train_split));
  b.text("val_split", "--val-split", "Validation split (checkpoint choice)", field(&T::val_split));
  b.number("val_fraction", "--val-fraction", "Seeded random validation fraction instead of a split",
           field(&T::val_fraction), in_range(0, 1, false, true));
  RecipeRange folds = at_least(2);
  folds.zero = "off";
  b.number("folds", "--folds", "Subject-independent folds (CK+); with --fold", field(&T::folds), folds);
  b.number<int>("fold", "--fold", "Which fold validates", field(&T::fold), [](const TrainConfig& c) -> std::string {
    if (c.folds > 0 && (c.fold < 0 || c.fold >= c.folds)) return "an integer in [0, folds) = [0, " + std::to_string(c.folds) + ")";
    return c.fold < 0 ? "an integer >= 0" : "";
  });
  b.number("max_train_samples", "--max-train-samples", "Seeded subset of the training samples",
           field(&T::max_train_samples), at_least(0));
  b.boolean("expand_15x", "--expand-15x",
            "Train on the paper's offline 15x expansion of the training samples (each image, its mirror "
            "and a 1.1x zoom, at -10, -5, 0, +5, +10 degrees)",
            field(&T::expand_15x));
  // Off, it is no part of a run's identity, so runs recorded before it existed stay the same.
  b.in_identity_when(
      b.with_rule(b.text("extra_train_data", "--extra-train-data",
                         "A second dataset whose every sample only trains (e.g. CK+48 beside FER2013)",
                         field(&T::extra_train_data)),
                  [](const TrainConfig& c) -> std::string {
                    return c.extra_train_data.empty() || (c.folds == 0 && c.val_fraction == 0)
                               ? ""
                               : "empty when validating on folds or a fraction (an extra sample is never validated on)";
                  }),
      [](const TrainConfig& c) { return !c.extra_train_data.empty(); });

  b.group("Model");
  using M = ModelConfig;
  b.named("model.variant", "--variant", "vgg16 | m | mca | msa | mcsa", field(&T::model, &M::variant),
          std::vector<Variant>{Variant::kVgg16, Variant::kM, Variant::kMca, Variant::kMsa, Variant::kMcsa});
  b.number("model.width", "--width", "Width multiplier", field(&T::model, &M::width), model_rule("width"));
  b.number("model.input_size", "--input", "Input side", field(&T::model, &M::input_size), model_rule("input_size"));
  // The file records the resolved choice (true or false), as model files do.
  b.custom("model.multiscale", "--multiscale", "auto | on | off", Kind::kChoice,
           [](const TrainConfig& c) { return json(c.model.uses_multiscale()); },
           [](TrainConfig& c, const json& v) {
             if (v.is_boolean()) {
               c.model.multiscale = v.get<bool>() ? 1 : 0;
             } else if (v == "auto" || v == "on" || v == "off") {
               c.model.multiscale = v == "auto" ? -1 : v == "on" ? 1 : 0;
             } else {
               throw std::invalid_argument("auto, on or off (true or false)");
             }
           })
      .choices = {"auto", "on", "off"};
  b.number("model.se_reduction", "--reduction", "SE reduction r", field(&T::model, &M::se_reduction),
           model_rule("se_reduction"));
  b.number("model.dropout", "--dropout", "Dropout before FC-7", field(&T::model, &M::dropout), model_rule("dropout"));
  b.number("model.in_channels", "", "Input channels (1: gray)", field(&T::model, &M::in_channels),
           model_rule("in_channels"));
  b.number("model.spatial_kernel", "", "Spatial attention kernel", field(&T::model, &M::spatial_kernel),
           model_rule("spatial_kernel"));
  b.with_rule(b.custom("model.class_names", "", "Class names (the 7 FER2013 expressions by default)", Kind::kList,
                       [](const TrainConfig& c) { return json(c.model.classes()); },
                       [](TrainConfig& c, const json& v) {
                         if (!v.is_array() ||
                             std::any_of(v.begin(), v.end(), [](const json& x) { return !x.is_string(); })) {
                           throw std::invalid_argument("a list of names");
                         }
                         c.model.class_names = v.get<std::vector<std::string>>();
                       }),
              model_rule("class_names"));
  b.number("model.norm_mean", "", "Input normalisation mean", field(&T::model, &M::norm_mean), Rule());
  b.number("model.norm_std", "", "Input normalisation standard deviation", field(&T::model, &M::norm_std),
           model_rule("norm_std"));
  b.text("init_from", "--init-from", "Model file to fine-tune from", field(&T::init_from));
  b.in_identity_when(
      b.with_rule(b.text("teacher", "--teacher", "Model file to distil from (with --distill-weight)", field(&T::teacher)),
                  [](const TrainConfig& c) -> std::string {
                    return c.teacher.empty() == (c.loss.distill_weight == 0) ? "" : "given exactly when loss.distill_weight > 0";
                  }),
      [](const TrainConfig& c) { return c.loss.distill_weight > 0; });

  b.group("Loss");
  using L = LossConfig;
  b.number("loss.lambda_c", "--lambda-c", "Center-loss weight", field(&T::loss, &L::lambda_c), at_least(0));
  b.number("loss.gamma", "--gamma", "Separation-loss weight", field(&T::loss, &L::gamma), at_least(0));
  // Without a separation term its form changes nothing.
  b.in_identity_when(b.named("loss.form", "--separation", "island | dda", field(&T::loss, &L::form),
                             std::vector<SeparationForm>{SeparationForm::kIsland, SeparationForm::kDda}),
                     [](const TrainConfig& c) { return c.loss.gamma != 0; });
  b.number("loss.label_smoothing", "--label-smoothing", "Label smoothing", field(&T::loss, &L::label_smoothing),
           in_range(0, 1, false, true));
  b.number("loss.center_alpha", "--center-alpha", "Center update rate", field(&T::loss, &L::center_alpha), in_range(0, 1));
  // Off, these are no part of a run's identity, so runs recorded before them stay the same.
  auto distilling = [](const TrainConfig& c) { return c.loss.distill_weight > 0; };
  b.in_identity_when(b.number("loss.distill_weight", "--distill-weight",
                              "Weight of distillation from --teacher (the cross-entropy weighs 1 minus it; 0: off)",
                              field(&T::loss, &L::distill_weight), in_range(0, 1)),
                     distilling);
  b.in_identity_when(b.number("loss.distill_temperature", "--distill-temperature", "Softmax temperature of distillation",
                              field(&T::loss, &L::distill_temperature), above(0)),
                     distilling);
  b.in_identity_when(b.number("loss.logit_adjust", "--logit-adjust",
                              "Logit adjustment tau: train on logits + tau log(class frequency), so rare classes "
                              "(disgust, fear) are called as readily as common ones (0: off)",
                              field(&T::loss, &L::logit_adjust), at_least(0)),
                     [](const TrainConfig& c) { return c.loss.logit_adjust != 0; });

  b.group("Optimisation");
  b.choice("optimizer", "--optimizer", "sgd | adamw", field(&T::optimizer), {"sgd", "adamw"});
  b.number("lr", "--lr", "Initial learning rate", field(&T::lr), above(0));
  b.number("momentum", "--momentum", "SGD momentum", field(&T::momentum), in_range(0, 1, false, true));
  b.number("weight_decay", "--weight-decay", "Weight decay", field(&T::weight_decay), at_least(0));
  b.choice("schedule", "--schedule", "exp | cosine | step", field(&T::schedule), {"exp", "cosine", "step"});
  b.number("lr_decay", "--lr-decay", "exp: factor per epoch", field(&T::lr_decay), above(0));
  b.number("step_every", "--step-every", "step: epochs per step", field(&T::step_every), at_least(1));
  b.number("step_gamma", "--step-gamma", "step: factor", field(&T::step_gamma), above(0));
  b.number("warmup_epochs", "--warmup", "Warm-up epochs", field(&T::warmup_epochs), at_least(0));
  b.number("batch_size", "--batch", "Batch size", field(&T::batch_size), at_least(1));
  b.number("epochs", "--epochs", "Epochs", field(&T::epochs), at_least(1));
  b.number("minutes", "--minutes", "Stop after the epoch that passes this many minutes", field(&T::minutes),
           at_least(0));
  // A flag only, before --erase and --rotation: `--no-augment --erase 0.3` erases and nothing else.
  b.custom("", "--no-augment", "Train without augmentation", Kind::kSwitch, nullptr, [](TrainConfig& c, const json& v) {
    if (!v.is_boolean()) throw std::invalid_argument("true or false");
    if (v.get<bool>()) c.augment = AugmentOptions::none();
  });
  using A = AugmentOptions;
  b.number("augment.erase_prob", "--erase", "Random-erasing probability", field(&T::augment, &A::erase_prob),
           in_range(0, 1));
  b.number("augment.max_rotation_deg", "--rotation", "Max rotation in degrees", field(&T::augment, &A::max_rotation_deg),
           in_range(0, 180));
  b.number("augment.flip_prob", "", "Horizontal mirror probability", field(&T::augment, &A::flip_prob), in_range(0, 1));
  // Framing jitter: how far the detector's box moves and grows on the same kind of face
  // (experiments/detector/README.md measures it on FER2013's own faces).
  b.number("augment.min_scale", "--min-scale", "Smallest zoom (< 1 shows more around the face)", field(&T::augment, &A::min_scale), [](const TrainConfig& c) {
    return c.augment.min_scale > 0 && c.augment.min_scale <= c.augment.max_scale ? "" : "in (0, augment.max_scale]";
  });
  b.number("augment.max_scale", "--max-scale", "Largest zoom (> 1 magnifies)", field(&T::augment, &A::max_scale), above(0));
  b.number("augment.max_shift", "--max-shift", "Largest shift, a fraction of the side, each axis", field(&T::augment, &A::max_shift),
           in_range(0, 1));
  b.number("augment.brightness", "", "Brightness change", field(&T::augment, &A::brightness), in_range(0, 1));
  b.number("augment.contrast", "", "Contrast change", field(&T::augment, &A::contrast), in_range(0, 1));
  b.number("augment.erase_min_area", "", "Smallest erased area fraction", field(&T::augment, &A::erase_min_area),
           [](const TrainConfig& c) {
             const auto& a = c.augment;
             return a.erase_min_area > 0 && a.erase_min_area <= a.erase_max_area ? "" : "in (0, augment.erase_max_area]";
           });
  b.number("augment.erase_max_area", "", "Largest erased area fraction", field(&T::augment, &A::erase_max_area),
           in_range(0, 1, true, false));
  b.number("augment.erase_value", "", "Erased gray level (< 0: the image's mean)", field(&T::augment, &A::erase_value),
           in_range(-kNoLimit, 1));
  b.number("seed", "--seed", "Seed: one seed, one run", field(&T::seed), at_least(0));
  // How fast and where it runs: not what the run is (--resume may choose another device).
  b.in_identity_when(b.number("threads", "", "Intra-op threads (0: every core)", field(&T::threads), at_least(0)), never);
  b.in_identity_when(b.text("device", "--device", "auto | cpu | cuda | cuda:N (auto: cuda when available)",
                            field(&T::device)),
                     never);
  return t;
}

json::json_pointer pointer_of(const std::string& key) {
  std::string p = "/" + key;
  std::replace(p.begin(), p.end(), '.', '/');
  return json::json_pointer(p);
}

// A key of `j` (below `prefix`) that is no option, e.g. a misspelt "loss.lamda_c", is refused
// rather than ignored: the run would silently not be the one the file describes.
void refuse_unknown_keys(const json& j, const std::string& prefix) {
  for (const auto& [key, value] : j.items()) {
    const std::string path = prefix + key;
    const auto& table = train_options();
    if (std::any_of(table.begin(), table.end(), [&](const TrainOption& o) { return o.key == path; })) continue;
    const bool section =
        std::any_of(table.begin(), table.end(), [&](const TrainOption& o) { return o.key.rfind(path + ".", 0) == 0; });
    if (!section) throw std::invalid_argument("train config: field '" + path + "' is not a training option");
    if (!value.is_object()) throw std::invalid_argument("train config: field '" + path + "' is not a JSON object");
    refuse_unknown_keys(value, path + ".");
  }
}

}  // namespace

json TrainOption::get(const TrainConfig& c) const { return read_ ? read_(c) : json(); }

std::string TrainOption::allowed() const {
  switch (kind) {
    case Kind::kText: return "text";
    case Kind::kChoice: return choices_text(choices);
    case Kind::kInteger: return "an integer";
    case Kind::kReal: return "a number";
    case Kind::kSwitch: return "true or false";
    case Kind::kList: return "a list of names";
    case Kind::kObject: return "a JSON object";
  }
  return "";
}

void TrainOption::store(TrainConfig& c, const json& value, const std::string& where, const std::string& got) const {
  if (kind == Kind::kObject) {
    write_(c, value);  // its reader names its own fields
    return;
  }
  try {
    write_(c, value);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(where + " must be " + e.what() + ", got " + got);
  }
}

void TrainOption::set(TrainConfig& c, const json& value, const std::string& where) const {
  store(c, value, where, dump_json(value));
}

void TrainOption::set_text(TrainConfig& c, const std::string& text, const std::string& where) const {
  const auto as = kind == Kind::kInteger ? OptionText::kInteger
                  : kind == Kind::kReal  ? OptionText::kNumber
                  : kind == Kind::kSwitch ? OptionText::kBoolean
                                          : OptionText::kText;
  if (kind == Kind::kList || kind == Kind::kObject) {
    throw std::invalid_argument(where + " is set in a config file, not from text");
  }
  const auto value = parse_option_text(text, as);
  if (!value) throw std::invalid_argument(where + " must be " + allowed() + ", got " + text);
  store(c, *value, where, text);
}

void TrainOption::check(const TrainConfig& c, const std::string& where, const std::string& got) const {
  const std::string broken = rule_ ? rule_(c) : "";
  if (broken.empty()) return;
  throw std::invalid_argument(where + " must be " + broken + ", got " +
                              (got.empty() ? dump_json(get(c)) : got));
}

bool TrainOption::in_identity(const TrainConfig& c) const { return !identity_ || identity_(c); }

const std::vector<TrainOption>& train_options() {
  static const std::vector<TrainOption> table = make_table();
  return table;
}

const TrainOption* find_train_option(std::string_view key_or_flag) {
  if (key_or_flag.empty()) return nullptr;
  for (const auto& o : train_options()) {
    if (o.key == key_or_flag || o.flag == key_or_flag) return &o;
  }
  return nullptr;
}

std::string train_field_where(const TrainOption& o) { return "train config: field '" + o.key + "'"; }

void validate_train_config(const TrainConfig& c) {
  for (const auto& o : train_options()) {
    if (o.key.empty()) continue;
    if (o.required && o.get(c) == json("")) {
      throw std::invalid_argument(train_field_where(o) + " is empty" + (*o.required ? std::string(": ") + o.required : ""));
    }
    o.check(c, train_field_where(o));
  }
}

json to_json(const TrainConfig& c) {
  json j = json::object();
  for (const auto& o : train_options()) {
    if (!o.key.empty()) j[pointer_of(o.key)] = o.get(c);
  }
  return j;
}

TrainConfig train_config_from_json(const json& j) {
  if (!j.is_object()) throw std::invalid_argument("train config: not a JSON object (" + j.dump() + ")");
  refuse_unknown_keys(j, "");
  TrainConfig c;
  for (const auto& o : train_options()) {
    if (!o.key.empty() && j.contains(pointer_of(o.key))) o.set(c, j.at(pointer_of(o.key)), train_field_where(o));
  }
  // The rules once every value is in: some read other fields (fold and folds).
  for (const auto& o : train_options()) {
    if (o.key.empty()) continue;
    const auto p = pointer_of(o.key);
    o.check(c, train_field_where(o), j.contains(p) ? j.at(p).dump() : "");  // the value as the file has it
  }
  return c;
}

TrainConfig read_train_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read config file " + path);
  try {
    return train_config_from_json(json::parse(in));
  } catch (const json::exception& e) {
    throw std::invalid_argument(path + ": " + json_error_text(e));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
}

json run_identity(const TrainConfig& c) {
  json j = json::object();
  for (const auto& o : train_options()) {
    if (!o.key.empty() && o.in_identity(c)) j[pointer_of(o.key)] = o.get(c);
  }
  return j;
}

std::string first_json_difference(const json& a, const json& b) {
  const auto fa = a.flatten(), fb = b.flatten();
  std::set<std::string> keys;
  for (const auto& [k, v] : fa.items()) keys.insert(k);
  for (const auto& [k, v] : fb.items()) keys.insert(k);
  for (const auto& k : keys) {
    if (fa.contains(k) && fb.contains(k) && fa.at(k) == fb.at(k)) continue;
    std::string name = k.substr(1);
    std::replace(name.begin(), name.end(), '/', '.');
    return name + " (" + (fa.contains(k) ? fa.at(k).dump() : "absent") + " vs " +
           (fb.contains(k) ? fb.at(k).dump() : "absent") + ")";
  }
  return "";
}

bool validates_on_test_split(const TrainConfig& c) {
  return c.folds == 0 && c.val_fraction == 0 && c.val_split == "PrivateTest";
}

json to_json(const EpochMetrics& m) {
  return {{"epoch", m.epoch},
          {"lr", m.lr},
          {"train_loss", m.train_loss},
          {"train_ce", m.train_ce},
          {"train_center", m.train_center},
          {"train_separation", m.train_separation},
          {"train_accuracy", m.train_accuracy},
          {"train_samples", m.train_samples},
          {"val_loss", m.val_loss},
          {"val_accuracy", m.val_accuracy},
          {"seconds", m.seconds},
          {"images_per_second", m.images_per_second},
          {"best", m.best}};
}

// ---- the run -----------------------------------------------------------------------------------
namespace {

EpochMetrics metrics_from(const json& j) {
  EpochMetrics m;
  m.epoch = j.at("epoch");
  m.lr = j.at("lr");
  m.train_loss = j.at("train_loss");
  m.train_ce = j.at("train_ce");
  m.train_center = j.at("train_center");
  m.train_separation = j.at("train_separation");
  m.train_accuracy = j.at("train_accuracy");
  m.train_samples = j.value("train_samples", int64_t{0});  // absent in runs of older builds
  m.val_loss = j.at("val_loss");
  m.val_accuracy = j.at("val_accuracy");
  m.seconds = j.at("seconds");
  m.images_per_second = j.at("images_per_second");
  m.best = j.at("best");
  return m;
}

double lr_at(const TrainConfig& c, int epoch) {
  double factor = 1.0;
  if (c.schedule == "exp") {
    factor = std::pow(c.lr_decay, epoch);
  } else if (c.schedule == "step") {
    factor = std::pow(c.step_gamma, epoch / std::max(1, c.step_every));
  } else {  // cosine over the epochs after warm-up
    const double span = std::max(1, c.epochs - c.warmup_epochs);
    const double t = std::max(0, epoch - c.warmup_epochs);
    factor = 0.5 * (1.0 + std::cos(3.14159265358979323846 * t / span));
  }
  if (c.warmup_epochs > 0 && epoch < c.warmup_epochs) factor *= static_cast<double>(epoch + 1) / (c.warmup_epochs + 1);
  return c.lr * factor;
}

}  // namespace

RunSplits run_splits(const TrainConfig& c, const Dataset& ds) {
  RunSplits s;
  auto of_split = [&](const std::string& name) {
    try {
      return split_indices(ds, name);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("train config: ") + e.what());
    }
  };
  if (c.folds > 0) {
    const auto folds = subject_kfold(ds, c.folds, c.seed);
    for (int f = 0; f < c.folds; ++f) {
      auto& dst = f == c.fold ? s.val : s.train;
      dst.insert(dst.end(), folds[static_cast<size_t>(f)].begin(), folds[static_cast<size_t>(f)].end());
    }
    s.val_description = "subject-independent fold " + std::to_string(c.fold) + " of " + std::to_string(c.folds) +
                        " (seed " + std::to_string(c.seed) + ")";
  } else if (c.val_fraction > 0) {
    const auto pool = of_split(c.train_split);
    const auto sub = ds.subset(pool);
    auto [tr, va] = random_split(sub, c.val_fraction, c.seed);
    for (auto i : tr) s.train.push_back(pool[i]);
    for (auto i : va) s.val.push_back(pool[i]);
    s.val_description = "seeded validation fraction " + json(c.val_fraction).dump() + " of " + c.train_split +
                        " (seed " + std::to_string(c.seed) + ")";
  } else {
    s.train = of_split(c.train_split);
    s.val = of_split(c.val_split);
    s.val_description = "split " + c.val_split;
  }
  std::sort(s.train.begin(), s.train.end());
  std::sort(s.val.begin(), s.val.end());
  if (c.max_train_samples > 0 && s.train.size() > c.max_train_samples) {
    seeded_shuffle(s.train, c.seed ^ 0x5eedu);
    s.train.resize(c.max_train_samples);
    std::sort(s.train.begin(), s.train.end());
  }
  if (s.train.empty()) throw std::invalid_argument("train: no training samples in split '" + c.train_split + "'");
  return s;
}

OpenedSource open_run_data(const TrainConfig& c) {
  auto opts = c.source;
  if (!detects_faces(resolve_source_format(c.data, opts.format))) opts.face.clear();
  opts.use_cache = true;
  if (opts.size != c.model.input_size && opts.format != SourceFormat::kFer2013) opts.size = c.model.input_size;
  auto opened = open_data_source(c.data, opts);
  if (c.extra_train_data.empty()) return opened;
  // Its own format and defaults, at the main data's size; faces cropped with the run's recipe.
  DataSourceOptions xo;
  xo.use_cache = true;
  xo.size = opened.data.height;
  if (detects_faces(resolve_source_format(c.extra_train_data, xo.format))) xo.face = c.source.face;
  const auto extra = open_data_source(c.extra_train_data, xo);
  auto& d = opened.data;
  const auto& e = extra.data;
  if (e.height != d.height || e.width != d.width || e.num_classes != d.num_classes) {
    throw DataError("extra training data " + c.extra_train_data + ": " + std::to_string(e.width) + " x " +
                    std::to_string(e.height) + " images of " + std::to_string(e.num_classes) + " classes, but " + c.data +
                    " has " + std::to_string(d.width) + " x " + std::to_string(d.height) + " of " +
                    std::to_string(d.num_classes));
  }
  const auto k = static_cast<size_t>(d.num_classes);
  size_t added = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    if (e.labels[i] < 0) continue;
    d.add(e.image(i), e.labels[i], Split::kTraining, e.origins[i], e.subjects[i]);
    if (d.has_soft_targets()) {  // a hard label among vote distributions: one-hot
      std::vector<float> q(k, 0.0f);
      q[static_cast<size_t>(e.labels[i])] = 1.0f;
      d.soft_targets.insert(d.soft_targets.end(), q.begin(), q.end());
    }
    ++added;
  }
  if (added == 0) throw DataError("extra training data " + c.extra_train_data + ": no labelled sample");
  d.check_consistent();
  opened.cache_key += "+" + extra.cache_key;
  return opened;
}

namespace {

// Validation loss and accuracy through the same predict() that `fervid eval` uses.
std::pair<double, double> evaluate_split(MCSANet& net, const Dataset& ds, const std::vector<size_t>& idx) {
  if (idx.empty()) return {0.0, 0.0};
  const auto p = predict(net, ds, idx);
  const auto picked = p.probs.gather(1, p.labels.unsqueeze(1)).squeeze(1);
  const double loss = -picked.clamp_min(1e-12).log().mean().item<double>();
  const double accuracy = p.probs.argmax(1).eq(p.labels).to(torch::kDouble).mean().item<double>();
  return {loss, accuracy};
}

void write_json_atomically(const std::string& path, const json& j) { write_file_atomically(path, dump_json(j, 2) + "\n"); }

// An exclusive lock on a run folder (flock on its run.lock), held while a run trains: two
// processes resuming one run would overwrite each other's checkpoints. The kernel releases it
// when the process ends, however it ends.
class RunLock {
 public:
  RunLock() = default;
  explicit RunLock(const std::string& run_dir) {
    const std::string path = run_dir + "/run.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("train: cannot create " + path + " (" + std::strerror(errno) + ")");
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd_);
      fd_ = -1;
      throw std::invalid_argument("train: " + run_dir +
                                  " is in use by another fervid (training or resuming it): wait for it to end, "
                                  "or use another --out");
    }
  }
  ~RunLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  RunLock(RunLock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  RunLock& operator=(RunLock&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }

 private:
  int fd_ = -1;
};

// The files of a checkpoint folder, each with its sha256 in checkpoint.json.
constexpr const char* kCheckpointFiles[] = {"model.fervid", "optimizer.pt", "loss.pt"};

// One training run: the state that a checkpoint holds.
class Run {
 public:
  Run(TrainConfig config, std::string command) : c_(std::move(config)), command_(std::move(command)) {
    validate_train_config(c_);
    // The optimizer takes the learning rate as a float: a schedule that grows it past float's
    // range (--step-gamma, --lr-decay above 1) is refused before any work, not met mid-run.
    for (int e = 0; e < c_.epochs; ++e) {
      const double lr = lr_at(c_, e);
      if (!(lr <= std::numeric_limits<float>::max())) {
        throw std::invalid_argument("train: the schedule takes the learning rate to " + fmt_number(lr) + " at epoch " +
                                    std::to_string(e + 1) + " (--lr, --schedule, --step-gamma, --lr-decay): beyond "
                                    "what the optimizer can apply");
      }
    }
    device_ = resolve_device(c_.device);  // before any work: a missing GPU fails here
    configure_runtime(c_.threads);
    // The model's face recipe: the source's recipe flags over FaceRecipe{}. Photos and CK+ are
    // cropped with it; other sources hold cropped faces, and the flags only state how the model
    // is to be served.
    recipe_ = source_face_recipe(c_.source);
    auto opened = open_run_data(c_);
    data_ = std::move(opened.data);
    data_key_ = opened.cache_key;
    splits_ = run_splits(c_, data_);
    if (c_.expand_15x) {
      expanded_ = expand_dataset_15x(data_, splits_.train);
      train_indices_.resize(expanded_.size());
      for (size_t i = 0; i < train_indices_.size(); ++i) train_indices_[i] = i;
    } else {
      train_indices_ = splits_.train;
    }
    torch::manual_seed(c_.seed);
    net_ = MCSANet(c_.model);  // initialised on the CPU, so every device starts from the same weights
    if (!c_.init_from.empty()) load_weights(c_.init_from, net_);
    if (c_.loss.distill_weight > 0) load_teacher();
    loss_ = FerLoss(c_.loss, c_.model.num_classes(), c_.model.embedding_dim());
    if (c_.loss.logit_adjust > 0) {
      const auto prior = (c_.expand_15x ? expanded_ : data_).class_frequencies(train_indices_);
      loss_->set_class_prior(torch::tensor(prior, torch::kDouble));
    }
    if (!device_.is_cpu()) {
      net_->to(device_);
      loss_->to(device_);
      at::globalContext().setBenchmarkCuDNN(true);  // fixed input shapes: let cuDNN pick its fastest kernels
    }
    if (c_.optimizer == "sgd") {
      opt_ = std::make_unique<torch::optim::SGD>(
          net_->parameters(), torch::optim::SGDOptions(c_.lr).momentum(c_.momentum).weight_decay(c_.weight_decay));
    } else {
      opt_ = std::make_unique<torch::optim::AdamW>(net_->parameters(),
                                                   torch::optim::AdamWOptions(c_.lr).weight_decay(c_.weight_decay));
    }
  }

  // The teacher sees the student's batches: it must take the same input the same way.
  void load_teacher() {
    auto t = load_model(c_.teacher);
    const auto& tc = t.net->config();
    const auto& sc = c_.model;
    auto refuse = [&](const std::string& what) {
      throw std::invalid_argument("train: the teacher " + c_.teacher + " " + what);
    };
    if (tc.input_size != sc.input_size) {
      refuse("takes " + std::to_string(tc.input_size) + " px input, the student " + std::to_string(sc.input_size));
    }
    if (tc.norm_mean != sc.norm_mean || tc.norm_std != sc.norm_std) refuse("normalises its input differently");
    if (tc.classes() != sc.classes()) refuse("has other classes than the student");
    teacher_ = t.net;
    teacher_->eval();
    teacher_->to(device_);
  }

  void start_fresh() {
    std::error_code ec;
    const fs::path dir(c_.run_dir);
    if (fs::exists(dir / "checkpoint.json", ec)) {
      throw std::invalid_argument("train: " + c_.run_dir + " already holds a run; use --resume " + c_.run_dir +
                                  " or another --out");
    }
    if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
      throw std::invalid_argument("train: --out " + c_.run_dir + " is a file, not a folder");
    }
    // A folder of other files is not written into (a typo must not mix a run into a photo
    // folder); a run that never reached its first checkpoint (config.json, no checkpoint) is.
    if (fs::is_directory(dir, ec) && !fs::is_empty(dir, ec) && !fs::exists(dir / "config.json", ec)) {
      std::string example;
      for (const auto& e : fs::directory_iterator(dir, ec)) {
        example = e.path().filename().string();
        break;
      }
      throw std::invalid_argument("train: --out " + c_.run_dir + " is a folder of other files (e.g. '" + example +
                                  "'), not a run: give a new or empty folder");
    }
    fs::create_directories(c_.run_dir);
    lock_ = RunLock(c_.run_dir);
    write_json_atomically(c_.run_dir + "/config.json", to_json(c_));
    write_file_atomically(c_.run_dir + "/command.txt", command_ + "\n");
  }

  // Before anything of a resumed run is read or written.
  void lock() { lock_ = RunLock(c_.run_dir); }

  void restore() {
    const std::string pointer_path = c_.run_dir + "/checkpoint.json";
    const auto pointer = read_json(pointer_path);
    const std::string dir = c_.run_dir + "/" + pointer.at("dir").get<std::string>();
    // Every file against the sha256 the checkpoint was written with: a flipped bit in the
    // optimizer state would resume silently with another loss.
    if (!pointer.contains("sha256")) {
      throw std::runtime_error("resume: " + pointer_path +
                               " lists no checksums (a checkpoint of a build before 2026-12-04): it cannot be verified");
    }
    for (const char* f : kCheckpointFiles) {
      const std::string path = dir + "/" + f;
      std::error_code ec;
      if (!fs::exists(path, ec)) throw std::runtime_error("resume: checkpoint file " + path + " is missing");
      const auto want = pointer.at("sha256").value(f, std::string());
      if (sha256_file(path) != want) {
        throw std::runtime_error("resume: checkpoint file " + path +
                                 " is not the file the checkpoint wrote (sha256 differs: corrupted or replaced)");
      }
    }
    load_weights(dir + "/model.fervid", net_);  // copies into the network, wherever it lives
    // Checkpoints hold CPU tensors; map them onto this run's device.
    auto load_state = [&](const char* f, auto&& target) {
      try {
        torch::load(target, dir + "/" + f, device_);
      } catch (const c10::Error&) {
        throw std::runtime_error("resume: checkpoint file " + dir + "/" + f +
                                 " cannot be read back (its checksum matches: written by another libtorch or "
                                 "for another optimizer?)");
      }
    };
    load_state("optimizer.pt", *opt_);
    load_state("loss.pt", loss_);
    next_epoch_ = pointer.at("epoch").get<int>() + 1;
    elapsed_ = pointer.at("elapsed_seconds").get<double>();
    best_ = pointer.at("best_val_accuracy").get<double>();
    best_epoch_ = pointer.at("best_epoch").get<int>();
    for (const auto& m : pointer.at("history")) history_.push_back(metrics_from(m));
  }

  TrainResult run(const TrainCallbacks& cb) {
    const Dataset& train_data = c_.expand_15x ? expanded_ : data_;
    const bool on_device = !device_.is_cpu();
    LoaderOptions lo;
    lo.batch_size = c_.batch_size;
    lo.shuffle = true;
    lo.drop_last = c_.batch_size > 1 && train_indices_.size() > static_cast<size_t>(c_.batch_size);
    lo.seed = c_.seed;
    lo.augment = c_.augment;
    lo.input_size = c_.model.input_size;
    lo.norm_mean = c_.model.norm_mean;
    lo.norm_std = c_.model.norm_std;
    if (on_device) detail::defer_to_device(lo, train_data);
    BatchLoader loader(train_data, train_indices_, lo);
    TrainResult result;
    for (int epoch = next_epoch_; epoch < c_.epochs; ++epoch) {
      if (c_.minutes > 0 && elapsed_ >= c_.minutes * 60) {
        result.stopped_early = true;
        break;
      }
      const auto t0 = std::chrono::steady_clock::now();
      const double lr = lr_at(c_, epoch);
      for (auto& group : opt_->param_groups()) group.options().set_lr(lr);
      torch::manual_seed(c_.seed * 1000003u + static_cast<uint64_t>(epoch));  // dropout draws
      net_->train();
      loader.start_epoch(epoch);
      double sum_loss = 0, sum_ce = 0, sum_center = 0, sum_sep = 0;
      int64_t correct = 0, seen = 0;
      const int64_t batches = loader.batches_per_epoch();
      while (auto b = loader.next()) {
        torch::Tensor images = b->images, labels = b->labels, soft = b->soft_targets;
        if (on_device) {
          auto gen = batch_augment_generator(c_.seed, epoch, b->index);
          images = detail::finish_on_device(images, device_, c_.model.input_size, &c_.augment, &gen, c_.model.norm_mean,
                                            c_.model.norm_std);
          labels = labels.to(device_);
          if (soft.defined()) soft = soft.to(device_);
        }
        const auto step = train_step(net_, loss_, *opt_, images, labels, soft, teacher_ ? &teacher_ : nullptr);
        const auto& parts = step.loss;
        const auto n = labels.size(0);
        seen += n;
        const double total = parts.total.item<double>();
        if (!std::isfinite(total)) diverged("the loss is " + number_word(total), epoch, b->index + 1, lr);
        sum_loss += total * static_cast<double>(n);
        sum_ce += parts.ce.item<double>() * static_cast<double>(n);
        sum_center += parts.center.item<double>() * static_cast<double>(n);
        sum_sep += parts.separation.item<double>() * static_cast<double>(n);
        correct += step.logits.argmax(1).eq(labels).sum().item<int64_t>();
        if (cb.progress) {
          const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          const double rate = static_cast<double>(seen) / std::max(secs, 1e-9);
          const double epoch_left = static_cast<double>((batches - b->index - 1) * c_.batch_size) / rate;
          const double per_epoch = static_cast<double>(batches * c_.batch_size) / rate;
          double left = epoch_left + per_epoch * (c_.epochs - epoch - 1);
          if (c_.minutes > 0) left = std::min(left, std::max(0.0, c_.minutes * 60 - elapsed_ - secs));
          cb.progress(epoch, b->index + 1, batches, sum_loss / static_cast<double>(seen),
                      static_cast<double>(correct) / static_cast<double>(seen), rate, left);
        }
      }
      const double train_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      EpochMetrics m;
      m.epoch = epoch;
      m.lr = lr;
      m.train_loss = sum_loss / static_cast<double>(seen);
      m.train_ce = sum_ce / static_cast<double>(seen);
      m.train_center = sum_center / static_cast<double>(seen);
      m.train_separation = sum_sep / static_cast<double>(seen);
      m.train_accuracy = static_cast<double>(correct) / static_cast<double>(seen);
      m.train_samples = seen;
      std::tie(m.val_loss, m.val_accuracy) = evaluate_split(net_, data_, splits_.val);
      if (!std::isfinite(m.val_loss)) diverged("the validation loss is " + number_word(m.val_loss), epoch, batches, lr);
      m.images_per_second = static_cast<double>(seen) / std::max(train_secs, 1e-9);
      m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      elapsed_ += m.seconds;
      if (!splits_.val.empty() && (best_epoch_ < 0 || m.val_accuracy > best_)) {
        best_ = m.val_accuracy;
        best_epoch_ = epoch;
        m.best = true;
        save_model(c_.run_dir + "/best.fervid", net_, metadata(epoch, m), recipe_);  // save_model writes CPU tensors
      }
      history_.push_back(m);
      checkpoint(epoch, m);
#ifdef FERVID_WITH_OPENCV
      write_training_curves(c_.run_dir + "/curves.png", history_);  // every caller of train() gets them
#endif
      if (cb.epoch_end) cb.epoch_end(c_.run_dir, history_);
    }
    result.epochs = history_;
    result.best_epoch = best_epoch_;
    result.best_val_accuracy = best_;
    calibrate(result);
    return result;
  }

 private:
  static json read_json(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    try {
      return json::parse(in);
    } catch (const json::exception& e) {
      throw std::runtime_error(path + ": " + json_error_text(e));
    }
  }

  static std::string number_word(double v) { return std::isnan(v) ? "NaN" : "infinite"; }

  // The run stops before anything of this epoch is written: what is on disk is its last good epoch.
  [[noreturn]] void diverged(const std::string& what, int epoch, int64_t batch, double lr) const {
    std::string kept = "no checkpoint was written yet";
    if (!history_.empty()) {
      kept = "its last good state is kept: checkpoint-" + std::to_string(history_.back().epoch) + " and last.fervid (epoch " +
             std::to_string(history_.back().epoch + 1) + ")";
      if (best_epoch_ >= 0) kept += ", best.fervid (epoch " + std::to_string(best_epoch_ + 1) + ")";
    }
    throw TrainingDiverged("train: the run diverged: " + what + " at epoch " + std::to_string(epoch + 1) + ", batch " +
                           std::to_string(batch) + " (learning rate " + fmt_number(lr) + "); " + kept +
                           ". Train again with a lower --lr (or smaller loss weights).");
  }

  static std::string fmt_number(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
  }

  // Once the run is over best.fervid no longer changes: fit its softmax temperature on the
  // samples it was chosen on (never on a test split) and write it into the file. A run resumed
  // after it ended fits again: the fit reads the network at temperature 1, so it is the same.
  void calibrate(TrainResult& result) {
    const std::string best = c_.run_dir + "/best.fervid";
    std::error_code ec;
    if (splits_.val.empty() || validates_on_test_split(c_) || !fs::exists(best, ec)) return;
    const auto calibration = calibrate_on_validation(
        best, data_, splits_, {{"data", c_.data}, {"data_key", data_key_}, {"epoch", best_epoch_}}, best, device_.str());
    json record = calibration.to_json();
    record["model"] = "best.fervid";
    write_json_atomically(c_.run_dir + "/calibration.json", record);
    result.calibrated = true;
    result.calibration = calibration;
  }

  json metadata(int epoch, const EpochMetrics& m) const {
    return {{"trained_by", "fervid train"}, {"command", command_}, {"epoch", epoch},
            {"val_split", c_.folds > 0 ? "fold " + std::to_string(c_.fold) : c_.val_fraction > 0 ? "random fraction" : c_.val_split},
            {"val_accuracy", m.val_accuracy}, {"data", c_.data}, {"data_key", data_key_}, {"seed", c_.seed},
            {"device", device_.str()}, {"train_config", to_json(c_)}};
  }

  // Model, centers and optimizer state on `device` (the parameters keep their identity, so the
  // optimizer's references and state keys stay valid).
  void move_state(torch::Device device) {
    net_->to(device);
    loss_->to(device);
    move_optimizer_state(*opt_, device);
  }

  // A checkpoint is a folder written completely, then published by renaming checkpoint.json.
  // Its tensors are CPU tensors whatever the run's device.
  void checkpoint(int epoch, const EpochMetrics& m) {
    if (!device_.is_cpu()) move_state(torch::kCPU);
    const std::string name = "checkpoint-" + std::to_string(epoch);
    const std::string dir = c_.run_dir + "/" + name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    save_model(dir + "/model.fervid", net_, metadata(epoch, m), recipe_);
    torch::save(*opt_, dir + "/optimizer.pt");
    torch::save(loss_, dir + "/loss.pt");
    json sums;
    for (const char* f : kCheckpointFiles) sums[f] = sha256_file(dir + "/" + f);
    json history = json::array();
    std::string lines;
    for (const auto& h : history_) {
      history.push_back(to_json(h));
      lines += to_json(h).dump() + "\n";
    }
    write_json_atomically(c_.run_dir + "/checkpoint.json",
                          {{"dir", name}, {"epoch", epoch}, {"elapsed_seconds", elapsed_}, {"best_val_accuracy", best_},
                           {"best_epoch", best_epoch_}, {"device", device_.str()}, {"sha256", sums},
                           {"history", history}});
    write_file_atomically(c_.run_dir + "/metrics.jsonl", lines);
    save_model(c_.run_dir + "/last.fervid", net_, metadata(epoch, m), recipe_);
    if (!device_.is_cpu()) move_state(device_);
    // The previous checkpoint is no longer referenced.
    for (const auto& e : fs::directory_iterator(c_.run_dir)) {
      const auto f = e.path().filename().string();
      if (f.rfind("checkpoint-", 0) == 0 && f != name) fs::remove_all(e.path());
    }
  }

  TrainConfig c_;
  std::string command_;
  torch::Device device_{torch::kCPU};
  Dataset data_;
  Dataset expanded_;                   // the 15x training set (expand_15x), else empty
  std::string data_key_;
  FaceRecipe recipe_;                  // written into every model file of the run
  RunSplits splits_;
  std::vector<size_t> train_indices_;  // into data_, or into expanded_
  MCSANet net_{nullptr};
  MCSANet teacher_{nullptr};  // distillation only: eval mode, on device_
  FerLoss loss_{nullptr};
  std::unique_ptr<torch::optim::Optimizer> opt_;
  int next_epoch_ = 0;
  double elapsed_ = 0, best_ = 0;
  int best_epoch_ = -1;
  std::vector<EpochMetrics> history_;
  RunLock lock_;
};

}  // namespace

Dataset expand_dataset_15x(const Dataset& data, const std::vector<size_t>& indices) {
  data.check_consistent();
  if (data.height != data.width) {
    throw std::invalid_argument("expand_15x: needs square images, the data's are " + std::to_string(data.width) + "x" +
                                std::to_string(data.height));
  }
  constexpr int64_t kVariants = 15;
  Dataset out;
  out.height = data.height;
  out.width = data.width;
  out.num_classes = data.num_classes;
  const size_t bytes = data.image_bytes();
  const size_t k = static_cast<size_t>(data.num_classes);
  out.pixels.resize(indices.size() * static_cast<size_t>(kVariants) * bytes);
  out.labels.reserve(indices.size() * kVariants);
  out.splits.reserve(indices.size() * kVariants);
  out.subjects.reserve(indices.size() * kVariants);
  out.origins.reserve(indices.size() * kVariants);
  if (data.has_soft_targets()) out.soft_targets.reserve(indices.size() * kVariants * k);
  constexpr size_t kChunk = 256;  // bounds the float copies (256 * 15 images at a time)
  for (size_t first = 0; first < indices.size(); first += kChunk) {
    const size_t n = std::min(kChunk, indices.size() - first);
    auto raw = torch::empty({static_cast<int64_t>(n), 1, data.height, data.width}, torch::kByte);
    for (size_t i = 0; i < n; ++i) {
      const size_t s = indices[first + i];
      if (s >= data.size()) throw std::out_of_range("expand_dataset_15x: sample index " + std::to_string(s) + " out of range");
      std::memcpy(raw.data_ptr<uint8_t>() + i * bytes, data.image(s), bytes);
    }
    // At the data's own size, then stored as gray levels, as the paper's offline copies were.
    auto expanded = expand_15x(to_unit_float(raw, data.height))
                        .mul(255.0)
                        .round()
                        .clamp(0, 255)
                        .to(torch::kByte)
                        .contiguous();
    std::memcpy(out.pixels.data() + first * static_cast<size_t>(kVariants) * bytes, expanded.data_ptr<uint8_t>(),
                n * static_cast<size_t>(kVariants) * bytes);
    for (size_t i = 0; i < n; ++i) {
      const size_t s = indices[first + i];
      for (int64_t v = 0; v < kVariants; ++v) {
        out.labels.push_back(data.labels[s]);
        out.splits.push_back(data.splits[s]);
        out.subjects.push_back(data.subjects[s]);
        out.origins.push_back(data.origins[s] + "#x15-" + std::to_string(v));
        if (data.has_soft_targets()) {
          out.soft_targets.insert(out.soft_targets.end(), data.soft_targets.begin() + static_cast<long>(s * k),
                                  data.soft_targets.begin() + static_cast<long>((s + 1) * k));
        }
      }
    }
  }
  out.check_consistent();
  return out;
}

TrainResult train(const TrainConfig& config, const std::string& command_line, const TrainCallbacks& callbacks) {
  Run run(config, command_line);
  run.start_fresh();
  return run.run(callbacks);
}

TrainResult resume_training(const std::string& run_dir, const TrainCallbacks& callbacks, const std::string& device) {
  std::error_code ec;
  if (!fs::exists(run_dir + "/config.json", ec)) {
    throw std::invalid_argument("resume: " + run_dir + " holds no run (config.json missing)");
  }
  auto config = read_train_config_file(run_dir + "/config.json");
  config.run_dir = run_dir;
  if (!device.empty()) config.device = device;
  std::ifstream cmd(run_dir + "/command.txt");
  std::string command;
  std::getline(cmd, command);
  Run run(config, command);
  run.lock();
  if (fs::exists(run_dir + "/checkpoint.json", ec)) run.restore();
  return run.run(callbacks);
}

}  // namespace fervid
