// JSON as fervid writes it, for text that is not always UTF-8: file names on Linux are bytes,
// and one such name must not cost the whole report (nlohmann's dump throws on invalid UTF-8).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace fervid {

// `text` unchanged when it is valid UTF-8 without control characters; otherwise each byte that
// is not part of a valid sequence, and each control character but tab, written as the four
// characters \xNN (so a name stays recognisable and distinct, and a terminal safe).
std::string printable_utf8(std::string_view text);

// What a JSON error says, in words a user can act on: nlohmann's message without its
// "[json.exception.parse_error.101] " tag ("parse error at line 1, column 5: syntax error ...").
std::string json_error_text(const nlohmann::json::exception& e);

// j.dump(indent), with any invalid UTF-8 left in a string replaced (U+FFFD) instead of throwing.
std::string dump_json(const nlohmann::json& j, int indent = -1);

}  // namespace fervid
