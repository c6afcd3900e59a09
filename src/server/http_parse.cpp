// fervid::http (http.h): request parsing, query and multipart decoding, answer serialisation.
#include <algorithm>
#include <cctype>
#include <cstring>

#include "http.h"

namespace fervid::http {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

// RFC 9110's tchar: the characters of a method or a header name.
bool is_tchar(unsigned char c) {
  return std::isalnum(c) || std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Printable ASCII of outside text for a message (at most 80 characters).
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 80)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 80) out += "...";
  return out;
}

// The value of parameter `key` in a header value such as `form-data; name="image"`; quoted
// strings unquoted (backslash escapes honoured). "" when absent.
std::string header_parameter(std::string_view value, std::string_view key, bool* found = nullptr) {
  if (found) *found = false;
  size_t at = value.find(';');
  while (at != std::string_view::npos) {
    ++at;
    while (at < value.size() && (value[at] == ' ' || value[at] == '\t')) ++at;
    const size_t eq = value.find('=', at);
    const size_t semi = value.find(';', at);
    if (eq == std::string_view::npos || (semi != std::string_view::npos && semi < eq)) {
      at = semi;
      continue;
    }
    const std::string_view name = trim(value.substr(at, eq - at));
    size_t v = eq + 1;
    std::string text;
    if (v < value.size() && value[v] == '"') {
      ++v;
      while (v < value.size() && value[v] != '"') {
        if (value[v] == '\\' && v + 1 < value.size()) ++v;
        text += value[v++];
      }
      at = value.find(';', v);
    } else {
      const size_t end = value.find(';', v);
      text = std::string(trim(value.substr(v, end == std::string_view::npos ? std::string_view::npos : end - v)));
      at = end;
    }
    if (iequals(name, key)) {
      if (found) *found = true;
      return text;
    }
  }
  return "";
}

}  // namespace

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// ---- Request / Response -------------------------------------------------------------------

std::string Request::header(std::string_view name) const {
  for (const auto& h : headers)
    if (iequals(h.name, name)) return h.value;
  return "";
}

bool Request::has_header(std::string_view name) const { return header_count(name) > 0; }

size_t Request::header_count(std::string_view name) const {
  return static_cast<size_t>(
      std::count_if(headers.begin(), headers.end(), [&](const Header& h) { return iequals(h.name, name); }));
}

std::vector<std::string> Request::header_values(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& h : headers)
    if (iequals(h.name, name)) out.push_back(h.value);
  return out;
}

bool Request::has_param(std::string_view key) const {
  return std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.first == key; });
}

std::string Request::param(std::string_view key) const {
  for (const auto& [k, v] : params)
    if (k == key) return v;
  return "";
}

std::string Request::media_type() const {
  const std::string t = header("Content-Type");
  return lower(trim(std::string_view(t).substr(0, t.find(';'))));
}

bool Request::wants_keep_alive() const {
  const std::string c = lower(header("Connection"));
  auto has = [&](const char* word) {
    // "Connection: keep-alive, Upgrade": a comma-separated list of tokens.
    size_t at = 0;
    while (at <= c.size()) {
      size_t end = c.find(',', at);
      if (end == std::string::npos) end = c.size();
      if (trim(std::string_view(c).substr(at, end - at)) == word) return true;
      at = end + 1;
    }
    return false;
  };
  if (version == "HTTP/1.0") return has("keep-alive");
  return !has("close");
}

void Response::set_header(const std::string& name, const std::string& value) {
  for (auto& h : headers) {
    if (iequals(h.name, name)) {
      h.value = value;
      return;
    }
  }
  headers.push_back({name, value});
}

std::string Response::header(std::string_view name) const {
  for (const auto& h : headers)
    if (iequals(h.name, name)) return h.value;
  return "";
}

const char* reason_phrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 421: return "Misdirected Request";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string serialize(const Response& res, bool head_request, bool keep_alive) {
  std::string out = "HTTP/1.1 " + std::to_string(res.status) + " " + reason_phrase(res.status) + "\r\n";
  for (const auto& h : res.headers) {
    if (iequals(h.name, "Content-Length") || iequals(h.name, "Connection") || iequals(h.name, "Content-Type"))
      continue;  // written below, once
    out += h.name + ": " + h.value + "\r\n";
  }
  if (!res.content_type.empty()) out += "Content-Type: " + res.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(res.body.size()) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  out += "\r\n";
  if (!head_request) out += res.body;
  return out;
}

// ---- query, percent-encoding, multipart --------------------------------------------------

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      const int hi = i + 1 < s.size() ? hex_value(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0)
        throw ParseError("malformed percent-encoding at '" + shown(s.substr(i, 3)) + "' (a % must be followed by two hex digits)");
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t at = 0;
  while (at <= query.size()) {
    size_t end = query.find('&', at);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view pair = query.substr(at, end - at);
    if (!pair.empty()) {
      const size_t eq = pair.find('=');
      out.emplace_back(percent_decode(pair.substr(0, eq), true),
                       eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1), true));
    }
    at = end + 1;
  }
  return out;
}

std::vector<MultipartPart> parse_multipart(std::string_view content_type, std::string_view body, size_t max_parts) {
  bool found = false;
  const std::string boundary = header_parameter(content_type, "boundary", &found);
  if (!found || boundary.empty() || boundary.size() > 70)
    throw ParseError("multipart/form-data without a boundary parameter of 1 to 70 characters");
  const std::string delimiter = "--" + boundary;
  // The first delimiter opens the body (anything before it is preamble); every later one
  // follows a CRLF that belongs to it, not to the part before.
  size_t at = body.find(delimiter);
  if (at == std::string_view::npos) throw ParseError("multipart body without its boundary");
  std::vector<MultipartPart> parts;
  const std::string next = "\r\n" + delimiter;
  while (true) {
    at += delimiter.size();
    if (body.substr(at, 2) == "--") return parts;  // the closing delimiter
    // Transport padding, then the CRLF that ends the delimiter line.
    while (at < body.size() && (body[at] == ' ' || body[at] == '\t')) ++at;
    if (body.substr(at, 2) != "\r\n") throw ParseError("multipart delimiter line not ended by CRLF");
    at += 2;
    const size_t head_end = body.find("\r\n\r\n", at);
    const size_t part_end = body.find(next, at);
    if (part_end == std::string_view::npos) throw ParseError("multipart body ends without its closing boundary");
    if (parts.size() >= max_parts) throw ParseError("multipart body of more than " + std::to_string(max_parts) + " parts");
    MultipartPart part;
    size_t content_at = 0;
    if (body.substr(at, 2) == "\r\n") {
      content_at = at + 2;  // a part without headers
    } else {
      if (head_end == std::string_view::npos || head_end > part_end)
        throw ParseError("multipart part without the blank line that ends its headers");
      std::string_view head = body.substr(at, head_end - at);
      while (!head.empty()) {
        const size_t eol = head.find("\r\n");
        const std::string_view line = head.substr(0, eol);
        head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos || !is_token(line.substr(0, colon)))
          throw ParseError("malformed multipart part header '" + shown(line) + "'");
        const std::string_view name = line.substr(0, colon);
        const std::string_view value = trim(line.substr(colon + 1));
        if (iequals(name, "Content-Disposition")) {
          part.name = header_parameter(value, "name");
          part.filename = header_parameter(value, "filename");
        } else if (iequals(name, "Content-Type")) {
          part.content_type = std::string(value);
        }
      }
      content_at = head_end + 4;
    }
    if (content_at > part_end) throw ParseError("malformed multipart part");
    part.content = std::string(body.substr(content_at, part_end - content_at));
    parts.push_back(std::move(part));
    at = part_end + 2;  // at the delimiter
  }
}

// ---- RequestParser ------------------------------------------------------------------------

RequestParser::RequestParser(ParseLimits limits) : limits_(limits) {}

void RequestParser::reset() {
  state_ = State::kHeader;
  started_ = false;
  head_.clear();
  request_ = Request{};
  content_length_ = 0;
  expect_continue_ = false;
  error_status_ = 0;
  error_message_.clear();
}

void RequestParser::fail(int status, std::string message) {
  state_ = State::kError;
  error_status_ = status;
  error_message_ = std::move(message);
}

size_t RequestParser::feed(const char* data, size_t n) {
  size_t used = 0;
  if (state_ == State::kHeader) {
    // Empty lines before a request line are skipped (RFC 9112 section 2.2).
    while (head_.empty() && used < n && (data[used] == '\r' || data[used] == '\n')) ++used;
    if (used == n) return used;
    started_ = true;
    // Look for the blank line from a little before the new bytes (it may straddle two reads).
    const size_t from = head_.size() >= 3 ? head_.size() - 3 : 0;
    const size_t room = limits_.max_header_bytes + 4 - head_.size();
    const size_t take = std::min(n - used, room);
    head_.append(data + used, take);
    size_t end = std::string::npos, end_len = 0;
    for (size_t i = from; i < head_.size(); ++i) {
      if (head_[i] != '\n') continue;
      if (i >= 1 && head_[i - 1] == '\n') {
        end = i - 1, end_len = 2;
        break;
      }
      if (i >= 3 && head_[i - 1] == '\r' && head_[i - 2] == '\n' && head_[i - 3] == '\r') {
        end = i - 3, end_len = 4;
        break;
      }
      if (i >= 2 && head_[i - 1] == '\r' && head_[i - 2] == '\n') {
        end = i - 2, end_len = 3;
        break;
      }
    }
    if (end == std::string::npos) {
      used += take;
      if (head_.size() > limits_.max_header_bytes)
        fail(431, "request header larger than " + std::to_string(limits_.max_header_bytes) + " bytes");
      return used;
    }
    // Give back what follows the blank line: it is the body's (or the next request's).
    const size_t head_bytes = end + end_len;
    used += take - (head_.size() - head_bytes);
    head_.resize(end);
    if (head_.size() > limits_.max_header_bytes) {
      fail(431, "request header larger than " + std::to_string(limits_.max_header_bytes) + " bytes");
      return used;
    }
    parse_head();
    if (state_ == State::kError) return used;
    state_ = content_length_ > 0 ? State::kBody : State::kDone;
  }
  if (state_ == State::kBody) {
    const size_t want = static_cast<size_t>(content_length_) - request_.body.size();
    const size_t take = std::min(want, n - used);
    request_.body.append(data + used, take);
    used += take;
    if (request_.body.size() == static_cast<size_t>(content_length_)) state_ = State::kDone;
  }
  return used;
}

void RequestParser::parse_head() {
  std::string_view head(head_);
  std::vector<std::string_view> lines;
  while (true) {
    const size_t eol = head.find('\n');
    std::string_view line = head.substr(0, eol);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    if (eol == std::string_view::npos) break;
    head.remove_prefix(eol + 1);
  }
  // Request line: METHOD SP target SP HTTP/1.x
  const std::string_view first = lines[0];
  const size_t sp1 = first.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : first.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || first.find(' ', sp2 + 1) != std::string_view::npos)
    return fail(400, "malformed request line '" + shown(first) + "' (expected METHOD /path HTTP/1.1)");
  const std::string_view method = first.substr(0, sp1), target = first.substr(sp1 + 1, sp2 - sp1 - 1),
                         version = first.substr(sp2 + 1);
  if (!is_token(method)) return fail(400, "malformed method '" + shown(method) + "'");
  if (version != "HTTP/1.1" && version != "HTTP/1.0") {
    if (version.rfind("HTTP/", 0) == 0) return fail(505, "HTTP version " + shown(version.substr(5)) + " is not served (HTTP/1.1 is)");
    return fail(400, "malformed request line '" + shown(first) + "' (expected METHOD /path HTTP/1.1)");
  }
  if (target.empty() || target.front() != '/')
    return fail(400, "request target '" + shown(target) + "' is not a path (it must start with /)");
  for (char c : target) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return fail(400, "request target with a control character or space");
  }
  request_.method = std::string(method);
  request_.target = std::string(target);
  request_.version = std::string(version);
  const size_t q = target.find('?');
  try {
    request_.path = percent_decode(target.substr(0, q), false);
    if (q != std::string_view::npos) request_.params = parse_query(target.substr(q + 1));
  } catch (const ParseError& e) {
    return fail(400, std::string("request target: ") + e.what());
  }
  if (request_.path.find('\0') != std::string::npos) return fail(400, "request path with a NUL byte");

  if (lines.size() - 1 > limits_.max_headers)
    return fail(431, "more than " + std::to_string(limits_.max_headers) + " header lines");
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
      return fail(400, "a header line continued on the next (obsolete line folding) is not accepted");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon)))
      return fail(400, "malformed header line '" + shown(line) + "'");
    const std::string_view value = trim(line.substr(colon + 1));
    for (char c : value) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && u != '\t') || u == 0x7f)
        return fail(400, "header " + shown(line.substr(0, colon)) + " has a control character in its value");
    }
    request_.headers.push_back({std::string(line.substr(0, colon)), std::string(value)});
  }
  if (request_.header_count("Host") > 1) return fail(400, "more than one Host header");
  // Framing: one length, stated once, in decimal; no transfer codings (a body read by one
  // rule and not the other is request smuggling behind a proxy).
  const auto lengths = request_.header_values("Content-Length");
  for (const auto& v : lengths) {
    if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
      return fail(400, "Content-Length '" + shown(v) + "' is not a number of bytes");
  }
  if (lengths.size() > 1) return fail(400, "more than one Content-Length header: a request has one length");
  if (request_.has_header("Transfer-Encoding")) {
    if (!lengths.empty()) return fail(400, "both Transfer-Encoding and Content-Length: a request has one length");
    return fail(411, "chunked request bodies are not accepted: send the body with a Content-Length");
  }
  content_length_ = lengths.empty() ? 0 : std::stoll(lengths[0]);
  if (content_length_ > limits_.max_body_bytes) {
    return fail(413, "request body of " + std::to_string(content_length_) + " bytes, larger than the limit of " +
                         std::to_string(limits_.max_body_bytes) + " bytes");
  }
  expect_continue_ = iequals(request_.header("Expect"), "100-continue") && content_length_ > 0;
}

}  // namespace fervid::http
