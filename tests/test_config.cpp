#include <gtest/gtest.h>

#include <stdexcept>

#include "fervid/config.h"
#include "fervid/config_json.h"
#include "fervid/json_text.h"
#include "fervid/hash.h"
#include "fervid/labels.h"

using namespace fervid;

TEST(Labels, FerOrderAndAliases) {
  EXPECT_EQ(kExpressionNames[0], "angry");
  EXPECT_EQ(kExpressionNames[6], "neutral");
  EXPECT_EQ(expression_index("happy"), 3);
  EXPECT_EQ(expression_index("Anger"), 0);       // CK+
  EXPECT_EQ(expression_index("sadness"), 4);     // CK+
  EXPECT_EQ(expression_index("SURPRISE"), 5);
  EXPECT_FALSE(expression_index("contempt"));    // dropped, as the paper does
  EXPECT_FALSE(expression_index("bored"));
}

TEST(Config, VariantsRoundTripAndFlags) {
  for (auto v : {Variant::kVgg16, Variant::kM, Variant::kMca, Variant::kMsa, Variant::kMcsa}) {
    EXPECT_EQ(parse_variant(to_string(v)), v);
  }
  EXPECT_THROW(parse_variant("resnet"), std::invalid_argument);
  EXPECT_FALSE(has_fusion(Variant::kVgg16));
  EXPECT_TRUE(has_fusion(Variant::kM));
  EXPECT_TRUE(has_channel_attention(Variant::kMca) && !has_spatial_attention(Variant::kMca));
  EXPECT_TRUE(has_spatial_attention(Variant::kMsa) && !has_channel_attention(Variant::kMsa));
  EXPECT_TRUE(has_channel_attention(Variant::kMcsa) && has_spatial_attention(Variant::kMcsa));
}

TEST(Config, WidthScaling) {
  EXPECT_EQ(scaled_channels(64, 1.0), 64);
  EXPECT_EQ(scaled_channels(512, 0.25), 128);
  EXPECT_EQ(scaled_channels(64, 0.25), 16);
  EXPECT_EQ(scaled_channels(64, 0.01), 8);  // never below 8
  EXPECT_EQ(scaled_channels(64, 0.3), 16);  // 19.2 -> nearest multiple of 8
  ModelConfig c;
  c.width = 0.5;
  EXPECT_EQ(c.block_channels(), (std::vector<int>{32, 64, 128, 256, 256}));
  EXPECT_EQ(c.embedding_dim(), 256);
}

TEST(Config, ValidateNamesTheField) {
  ModelConfig c;
  c.input_size = 50;
  try {
    c.validate();
    FAIL() << "input 50 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("input_size"), std::string::npos) << e.what();
  }
  c.input_size = 16;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c.input_size = 64;
  EXPECT_NO_THROW(c.validate());
  c.width = 0;
  EXPECT_THROW(c.validate(), std::invalid_argument);
  c.width = 1;
  c.spatial_kernel = 4;
  EXPECT_THROW(c.validate(), std::invalid_argument);
}

TEST(Config, JsonRoundTripAndMismatch) {
  ModelConfig c;
  c.variant = Variant::kMsa;
  c.width = 0.25;
  c.input_size = 64;
  const auto back = config_from_json(config_to_json(c));
  EXPECT_EQ(architecture_mismatch(c, back), "");
  EXPECT_EQ(back.classes().size(), 7u);
  auto other = back;
  other.variant = Variant::kMcsa;
  EXPECT_NE(architecture_mismatch(c, other).find("variant"), std::string::npos);
  other = back;
  other.input_size = 48;
  EXPECT_NE(architecture_mismatch(c, other).find("input_size"), std::string::npos);
  auto j = config_to_json(c);
  j.erase("width");
  try {
    config_from_json(j);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'width'"), std::string::npos) << e.what();
  }
}

TEST(Hash, Sha256KnownVectors) {
  EXPECT_EQ(fervid::sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(fervid::sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(fervid::sha256_hex(two_blocks.data(), two_blocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_THROW(fervid::sha256_file("/no/such/file"), std::runtime_error);
}

// Text that is not UTF-8 is escaped byte by byte (overlongs, surrogates, truncated and stray
// continuation bytes included), and so are control characters; valid UTF-8 passes unchanged;
// dump_json never throws on it.
TEST(JsonText, InvalidUtf8IsEscapedValidPassesUnchanged) {
  using fervid::printable_utf8;
  EXPECT_EQ(printable_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"), "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(printable_utf8("caf\xE9.png"), "caf\\xE9.png");
  EXPECT_EQ(printable_utf8("\xC0\xAF"), "\\xC0\\xAF") << "overlong '/'";
  EXPECT_EQ(printable_utf8("\xED\xA0\x80"), "\\xED\\xA0\\x80") << "a UTF-16 surrogate";
  EXPECT_EQ(printable_utf8("\xF4\x90\x80\x80"), "\\xF4\\x90\\x80\\x80") << "above U+10FFFF";
  EXPECT_EQ(printable_utf8("ab\xE2\x82"), "ab\\xE2\\x82") << "cut short";
  EXPECT_EQ(printable_utf8("\x80x"), "\\x80x");
  EXPECT_EQ(printable_utf8(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(printable_utf8("bell\a, escape\x1b[2J, tab\tkept"), "bell\\x07, escape\\x1B[2J, tab\tkept");
  const nlohmann::json j = {{"name", "caf\xE9"}};
  EXPECT_THROW(j.dump(), nlohmann::json::exception) << "why dump_json exists";
  EXPECT_EQ(fervid::dump_json(j), "{\"name\":\"caf\xEF\xBF\xBD\"}");
}

// JSON errors are told without the library's tag, keeping where and what.
TEST(JsonText, ErrorsLoseTheLibrarysTagButKeepTheLocation) {
  try {
    const auto j = nlohmann::json::parse("{\"a\": tru}");
    FAIL() << "parsed: " << j.dump();
  } catch (const nlohmann::json::exception& e) {
    const std::string m = fervid::json_error_text(e);
    EXPECT_EQ(m.find("json.exception"), std::string::npos) << m;
    EXPECT_NE(m.find("line 1, column"), std::string::npos) << m;
  }
}
