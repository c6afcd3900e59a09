// The fervid binary, run as a user would: `info` totals and its errors.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "cli_runner.h"

using fervid::test::run;

TEST(Cli, InfoPaperVgg16Totals) {
  auto r = run("info --variant vgg16 --width 1 --input 224 --json");
  ASSERT_EQ(r.status, 0) << r.out;
  auto j = nlohmann::json::parse(r.out);
  const double params = j["totals"]["backbone_conv_params"].get<double>();
  const double macs = j["totals"]["backbone_conv_macs"].get<double>();
  EXPECT_NEAR(params / 14.71e6, 1.0, 0.01);
  EXPECT_NEAR(macs / 15.29e9, 1.0, 0.01);
  EXPECT_NEAR(j["totals"]["params"].get<double>() / 14.71e6, 1.0, 0.01);
  EXPECT_EQ(j["config"]["variant"], "vgg16");
  EXPECT_GE(j["layers"].size(), 13u * 2);
}

TEST(Cli, InfoEveryVariantAsTable) {
  for (const char* v : {"vgg16", "m", "mca", "msa", "mcsa"}) {
    auto r = run(std::string("info --variant ") + v + " --width 0.25 --input 64");
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("whole network"), std::string::npos) << r.out;
  }
}

TEST(Cli, BadArgumentsExitNonZeroWithAReason) {
  auto r = run("info --variant resnet");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("resnet"), std::string::npos) << r.out;
  r = run("info --input 50");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("input_size"), std::string::npos) << r.out;
  r = run("no-such-command");
  EXPECT_NE(r.status, 0);
}
