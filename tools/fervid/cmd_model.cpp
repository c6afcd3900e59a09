// fervid model: edits a model file's header without retraining. `set-recipe` rewrites how the
// model's faces are found and cropped (its face recipe): the file's recipe (a version-1 file's:
// the version-1 rule), or FaceRecipe{} with --reset, then the flags given; weights unchanged.
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "commands.h"
#include "fervid/json_text.h"
#include "fervid/model_io.h"
#include "fervid/trained_data.h"
#include "recipe_flags.h"

namespace fervid::cli {

void add_model_command(CLI::App& app, const GlobalOptions& /*global*/) {
  auto* model = app.add_subcommand("model", "Edit a model file's header: its face recipe, its calibration");
  model->require_subcommand(1);

  struct SetRecipe {
    std::string in, out;
    bool reset = false, json = false;
    RecipeFlags recipe;
  };
  auto f = std::make_shared<SetRecipe>();
  auto* cmd = model->add_subcommand(
      "set-recipe", "Write a model file with another face recipe (how its faces are found and cropped), same weights");
  cmd->add_option("model", f->in, "Model file (.fervid)")->required();
  cmd->add_option("--out", f->out, "The file to write (may be the model itself: written to a temporary name, renamed)")
      ->required();
  cmd->add_flag("--reset", f->reset, "Start from the defaults instead of the file's recipe");
  cmd->add_flag("--json", f->json, "Print the new recipe as JSON");
  f->recipe.add_to(cmd, "Face recipe", [](const RecipeOption&) { return std::string("the file's"); });
  cmd->callback([f] {
    const auto header = read_model_header(f->in);
    const FaceRecipe base = f->reset ? FaceRecipe{} : header.face_recipe;
    const FaceRecipe recipe = f->recipe.given().apply(base);
    rewrite_face_recipe(f->in, recipe, f->out);
    if (f->json) {
      std::cout << dump_json(to_json(recipe), 2) << "\n";
      return;
    }
    std::cout << fmt::format("wrote {} (format version {}): {}\n", f->out, kModelFormatVersion, describe(recipe));
  });

  struct Calibrate {
    std::string in, out, data;
  };
  auto g = std::make_shared<Calibrate>();
  auto* cal = model->add_subcommand(
      "calibrate", "Fit the softmax temperature on the validation samples the model's run chose checkpoints on; same weights");
  cal->add_option("model", g->in, "Model file (.fervid)")->required();
  cal->add_option("--data", g->data, "The data the model was trained on (its validation split is read as the run read it)")
      ->required();
  cal->add_option("--out", g->out, "The file to write (may be the model itself: written to a temporary name, renamed)")
      ->required();
  cal->callback([g] {
    const auto c = calibrate_model_file(g->in, g->data, g->out);
    std::cout << fmt::format("wrote {}: temperature {:.4f}, fitted on {} ({} samples): NLL {:.4f} -> {:.4f}, ECE {:.4f} -> {:.4f}\n",
                             g->out, c.temperature, c.fit.value("split", ""), c.fit.value("samples", 0),
                             c.fit.value("nll_before", 0.0), c.fit.value("nll_after", 0.0), c.fit.value("ece_before", 0.0),
                             c.fit.value("ece_after", 0.0));
  });
}

}  // namespace fervid::cli
