// TensorFlow.js graph models on libtorch (include/fervid/tfjs_graph.h).
#include "fervid/tfjs_graph.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "fervid/json_text.h"
#include "fervid/model_io.h"
#include "tfjs_graph_internal.h"
#ifdef FERVID_HAVE_DNNL
#include "tfjs_dnnl.h"
#endif

namespace fervid {

namespace {

using nlohmann::json;
using namespace tfjs_internal;

// A model.json is a few hundred KB; a shard set of a face detector a few MB. Anything far larger
// is not what this reader is for, and is refused before it is read.
constexpr std::uintmax_t kMaxTopologyBytes = 64u << 20;
constexpr std::uintmax_t kMaxWeightBytes = 512u << 20;

std::string base64_decode(const std::string& in) {
  static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    const auto pos = kAlphabet.find(c);
    if (pos == std::string::npos) throw std::invalid_argument("not base64: '" + in + "'");
    buf = (buf << 6) | static_cast<uint32_t>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buf >> bits) & 0xFF));
    }
  }
  return out;
}

int64_t to_int(const json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    size_t used = 0;
    const long long x = std::stoll(s, &used);
    if (used != s.size()) throw std::invalid_argument("not an integer: '" + s + "'");
    return x;
  }
  throw std::invalid_argument("expected an integer, got " + v.dump());
}

// A value during a run: rank-4 values are kept as NCHW-shaped, channels_last tensors (`nhwc`),
// others as TensorFlow has them.
struct Value {
  torch::Tensor t;
  bool nhwc = false;
};

torch::Tensor tf_layout(const Value& v) { return v.nhwc ? v.t.permute({0, 2, 3, 1}) : v.t; }

torch::Tensor as_nhwc(const Value& v) {
  if (v.nhwc) return v.t;
  TORCH_CHECK(v.t.dim() == 4, "expected a rank-4 NHWC value, got shape ", v.t.sizes());
  return v.t.permute({0, 3, 1, 2}).contiguous(torch::MemoryFormat::ChannelsLast);
}

Value make_nhwc(torch::Tensor t) {
  if (!t.is_contiguous(torch::MemoryFormat::ChannelsLast)) t = t.contiguous(torch::MemoryFormat::ChannelsLast);
  return {std::move(t), true};
}

}  // namespace

struct TfjsGraph::Impl {
  std::string path;
  std::vector<Node> nodes;
  std::vector<int> order;  // topological
  int input = -1;
  std::vector<int> outputs;
  std::vector<std::string> output_names;
  std::vector<int64_t> input_shape;
  int64_t batch_declared = -1;  // the Placeholder's first dimension
  int64_t macs = 0;
  TfjsEngine engine_request = TfjsEngine::kFastest;
#ifdef FERVID_HAVE_DNNL
  std::unique_ptr<tfjs_internal::DnnlExecutor> dnnl;
#endif

  [[noreturn]] void fail(const std::string& what) const { throw ModelFileError(path + ": " + what); }
  [[noreturn]] void fail_node(const Node& n, const std::string& what) const {
    fail("node '" + n.name + "' (" + n.op_name + "): " + what);
  }

  void read(const std::string& model_json_path);
  void read_weights(const json& manifest, std::unordered_map<std::string, torch::Tensor>& weights) const;
  void decode_node(Node& n, const json& j, const std::unordered_map<std::string, torch::Tensor>& weights) const;
  void prepare();
  std::vector<torch::Tensor> run(const torch::Tensor& input, int64_t* macs_out) const;
  Value eval(const Node& n, std::vector<Value>& values, int position, int64_t* macs_out) const;
};

void TfjsGraph::Impl::read(const std::string& model_json_path) {
  path = model_json_path;
  namespace fs = std::filesystem;
  const fs::path file = fs::u8path(model_json_path);
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) fail("TF.js model file not found");
  const auto size = fs::file_size(file, ec);
  if (ec || size > kMaxTopologyBytes) fail("not a TF.js model.json (size " + std::to_string(size) + " bytes)");
  std::ifstream in(file, std::ios::binary);
  json model;
  try {
    model = json::parse(in);
  } catch (const json::exception& e) {
    fail(std::string("not JSON (a TF.js graph model's model.json): ") + json_error_text(e));
  }
  if (!model.is_object() || model.value("format", "") != "graph-model")
    fail("not a TF.js graph model (expected \"format\": \"graph-model\")");
  if (!model.contains("modelTopology") || !model["modelTopology"].is_object() ||
      !model["modelTopology"].contains("node") || !model["modelTopology"]["node"].is_array())
    fail("no modelTopology.node list");
  if (!model.contains("weightsManifest") || !model["weightsManifest"].is_array()) fail("no weightsManifest list");

  std::unordered_map<std::string, torch::Tensor> weights;
  read_weights(model["weightsManifest"], weights);

  const json& jnodes = model["modelTopology"]["node"];
  std::unordered_map<std::string, int> index;
  nodes.resize(jnodes.size());
  for (size_t i = 0; i < jnodes.size(); ++i) {
    const json& j = jnodes[i];
    if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || !j.contains("op") || !j["op"].is_string())
      fail("modelTopology.node[" + std::to_string(i) + "]: needs string fields \"name\" and \"op\"");
    nodes[i].name = j["name"].get<std::string>();
    nodes[i].op_name = j["op"].get<std::string>();
    if (!index.emplace(nodes[i].name, static_cast<int>(i)).second) fail("two nodes named '" + nodes[i].name + "'");
  }
  for (size_t i = 0; i < jnodes.size(); ++i) {
    Node& n = nodes[i];
    if (jnodes[i].contains("input")) {
      if (!jnodes[i]["input"].is_array()) fail_node(n, "\"input\" is not a list");
      for (const auto& in_name : jnodes[i]["input"]) {
        if (!in_name.is_string()) fail_node(n, "an input name is not a string");
        std::string s = in_name.get<std::string>();
        if (!s.empty() && s[0] == '^') continue;  // control dependency: no data
        if (const auto colon = s.rfind(':'); colon != std::string::npos) {
          if (s.substr(colon + 1) != "0") fail_node(n, "input '" + s + "': only a node's first output is supported");
          s = s.substr(0, colon);
        }
        const auto it = index.find(s);
        if (it == index.end()) fail_node(n, "input '" + s + "' names no node of the graph");
        n.inputs.push_back(it->second);
      }
    }
  }
  for (size_t i = 0; i < jnodes.size(); ++i) decode_node(nodes[i], jnodes[i], weights);

  // Outputs: the signature's, else every computed node nobody reads.
  std::vector<std::string> names;
  const json* sig = nullptr;
  if (model.contains("userDefinedMetadata") && model["userDefinedMetadata"].is_object() &&
      model["userDefinedMetadata"].contains("signature"))
    sig = &model["userDefinedMetadata"]["signature"];
  if (sig && sig->is_object() && sig->contains("outputs") && (*sig)["outputs"].is_object()) {
    for (const auto& [key, _] : (*sig)["outputs"].items()) {
      std::string s = key;
      if (const auto colon = s.rfind(':'); colon != std::string::npos) s = s.substr(0, colon);
      names.push_back(s);
    }
    std::sort(names.begin(), names.end());
  } else {
    std::vector<bool> read_by_someone(nodes.size(), false);
    for (const auto& n : nodes)
      for (int in_index : n.inputs) read_by_someone[static_cast<size_t>(in_index)] = true;
    for (size_t i = 0; i < nodes.size(); ++i)
      if (!read_by_someone[i] && nodes[i].op != Op::kConst && nodes[i].op != Op::kPlaceholder) names.push_back(nodes[i].name);
  }
  if (names.empty()) fail("the graph has no outputs");
  for (const auto& s : names) {
    const auto it = index.find(s);
    if (it == index.end()) fail("signature output '" + s + "' names no node of the graph");
    outputs.push_back(it->second);
    output_names.push_back(s);
  }
  prepare();
}

void TfjsGraph::Impl::read_weights(const json& manifest,
                                   std::unordered_map<std::string, torch::Tensor>& weights) const {
  namespace fs = std::filesystem;
  const fs::path dir = fs::u8path(path).parent_path();
  std::uintmax_t total = 0;
  for (size_t g = 0; g < manifest.size(); ++g) {
    const json& group = manifest[g];
    const std::string where = "weightsManifest[" + std::to_string(g) + "]";
    if (!group.is_object() || !group.contains("paths") || !group["paths"].is_array() || !group.contains("weights") ||
        !group["weights"].is_array())
      fail(where + ": needs the lists \"paths\" and \"weights\"");
    // The group's shards, concatenated, hold its weights one after another.
    std::string bytes;
    for (const auto& p : group["paths"]) {
      if (!p.is_string()) fail(where + ": a path is not a string");
      const std::string rel = p.get<std::string>();
      if (rel.empty() || fs::u8path(rel).is_absolute())
        fail(where + ": weight file '" + rel + "' must be a path relative to model.json's folder");
      const fs::path shard = dir / fs::u8path(rel);
      std::error_code ec;
      const auto size = fs::file_size(shard, ec);
      if (ec) fail(where + ": weight file " + shard.string() + " not found");
      total += size;
      if (total > kMaxWeightBytes) fail(where + ": weight files larger than " + std::to_string(kMaxWeightBytes) + " bytes");
      std::ifstream in(shard, std::ios::binary);
      std::string part(size, '\0');
      if (!in.read(part.data(), static_cast<std::streamsize>(size)))
        fail(where + ": could not read weight file " + shard.string());
      bytes += part;
    }
    // The manifest's byte count first: a shape off by one shifts every later weight.
    size_t declared = 0;
    for (const auto& w : group["weights"]) {
      if (!w.is_object() || !w.contains("shape") || !w["shape"].is_array()) continue;
      size_t count = 1;
      for (const auto& d : w["shape"])
        count *= d.is_number_integer() && d.get<int64_t>() >= 0 && d.get<int64_t>() < (int64_t{1} << 31)
                     ? static_cast<size_t>(d.get<int64_t>())
                     : 0;
      declared += 4 * count;
    }
    if (declared != bytes.size())
      fail(where + ": the weights manifest describes " + std::to_string(declared) + " bytes but the weight files hold " +
           std::to_string(bytes.size()));
    size_t offset = 0;
    for (const auto& w : group["weights"]) {
      if (!w.is_object() || !w.contains("name") || !w["name"].is_string() || !w.contains("shape") ||
          !w["shape"].is_array() || !w.contains("dtype") || !w["dtype"].is_string())
        fail(where + ": a weight needs \"name\", \"shape\" and \"dtype\"");
      const std::string name = w["name"].get<std::string>();
      const std::string dtype = w["dtype"].get<std::string>();
      if (w.contains("quantization")) fail("weight '" + name + "': quantized weights are not supported");
      if (dtype != "float32" && dtype != "int32")
        fail("weight '" + name + "': dtype '" + dtype + "' is not supported (float32 or int32)");
      std::vector<int64_t> shape;
      int64_t count = 1;
      for (const auto& d : w["shape"]) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0 || d.get<int64_t>() > (int64_t{1} << 31))
          fail("weight '" + name + "': bad shape " + w["shape"].dump());
        shape.push_back(d.get<int64_t>());
        count *= shape.back();
        if (count > (int64_t{1} << 31)) fail("weight '" + name + "': shape " + w["shape"].dump() + " is too large");
      }
      const size_t nbytes = static_cast<size_t>(count) * 4;
      if (offset + nbytes > bytes.size())
        fail("weight '" + name + "' (" + std::to_string(nbytes) + " bytes at offset " + std::to_string(offset) +
             ") lies past the end of its weight files (" + std::to_string(bytes.size()) + " bytes)");
      auto t = torch::empty(shape, dtype == "float32" ? torch::kFloat32 : torch::kInt32);
      std::memcpy(t.data_ptr(), bytes.data() + offset, nbytes);
      offset += nbytes;
      if (!weights.emplace(name, t).second) fail("weight '" + name + "' listed twice");
    }
    if (offset != bytes.size())
      fail(where + ": the weights take " + std::to_string(offset) + " bytes but the weight files hold " +
           std::to_string(bytes.size()));
  }
}

void TfjsGraph::Impl::decode_node(Node& n, const json& j,
                                  const std::unordered_map<std::string, torch::Tensor>& weights) const {
  static const std::map<std::string, Op> kOps = {
      {"Placeholder", Op::kPlaceholder}, {"Const", Op::kConst},       {"Identity", Op::kIdentity},
      {"_FusedConv2D", Op::kConv},       {"Conv2D", Op::kConv},       {"DepthwiseConv2dNative", Op::kDepthwise},
      {"AddV2", Op::kAdd},               {"Add", Op::kAdd},           {"Relu", Op::kRelu},
      {"Relu6", Op::kRelu6},             {"MaxPool", Op::kMaxPool},   {"Pad", Op::kPad},
      {"Reshape", Op::kReshape}};
  const auto it = kOps.find(n.op_name);
  if (it == kOps.end()) fail_node(n, "operation '" + n.op_name + "' is not supported by fervid's TF.js reader");
  n.op = it->second;
  const json empty = json::object();
  const json& attr = j.contains("attr") && j["attr"].is_object() ? j["attr"] : empty;
  auto attr_string = [&](const char* key, const std::string& dflt) -> std::string {
    if (!attr.contains(key)) return dflt;
    if (!attr[key].is_object() || !attr[key].contains("s") || !attr[key]["s"].is_string())
      fail_node(n, std::string("attribute '") + key + "' is not a string");
    try {
      return base64_decode(attr[key]["s"].get<std::string>());
    } catch (const std::invalid_argument& e) {
      fail_node(n, std::string("attribute '") + key + "': " + e.what());
    }
  };
  auto attr_ints = [&](const char* key) -> std::vector<int64_t> {
    std::vector<int64_t> out;
    if (!attr.contains(key)) return out;
    try {
      const json& list = attr.at(key).at("list");
      if (list.contains("i"))
        for (const auto& v : list.at("i")) out.push_back(to_int(v));
    } catch (const std::exception& e) {
      fail_node(n, std::string("attribute '") + key + "' is not a list of integers");
    }
    return out;
  };
  auto need_inputs = [&](size_t count) {
    if (n.inputs.size() != count)
      fail_node(n, "expects " + std::to_string(count) + " inputs, has " + std::to_string(n.inputs.size()));
  };
  auto constant_input = [&](size_t k) -> const torch::Tensor& {
    const Node& src = nodes.at(static_cast<size_t>(n.inputs.at(k)));
    if (src.op_name != "Const") fail_node(n, "input " + std::to_string(k) + " ('" + src.name + "') must be a Const");
    const auto w = weights.find(src.name);
    if (w == weights.end()) fail_node(n, "constant '" + src.name + "' has no weights in the weights manifest");
    return w->second;
  };
  auto spatial_pairs = [&](const std::vector<int64_t>& v, const char* what, int64_t& h, int64_t& w) {
    if (v.empty()) return;
    if (v.size() != 4 || v[0] != 1 || v[3] != 1)
      fail_node(n, std::string(what) + " must be [1, h, w, 1] (NHWC), got " + json(v).dump());
    h = v[1];
    w = v[2];
    if (h < 1 || w < 1) fail_node(n, std::string(what) + " must be positive, got " + json(v).dump());
  };
  auto read_padding = [&]() {
    const std::string p = attr_string("padding", "VALID");
    if (p == "VALID") n.padding = Padding::kValid;
    else if (p == "SAME") n.padding = Padding::kSame;
    else if (p == "EXPLICIT") {
      n.padding = Padding::kExplicit;
      n.explicit_pad = attr_ints("explicit_paddings");
      if (n.explicit_pad.size() != 8) fail_node(n, "EXPLICIT padding needs 8 explicit_paddings values");
      for (auto v : n.explicit_pad)
        if (v < 0) fail_node(n, "negative explicit padding");
    } else {
      fail_node(n, "padding '" + p + "' is not supported (VALID, SAME, EXPLICIT)");
    }
    const std::string fmt = attr_string("data_format", "NHWC");
    if (fmt != "NHWC") fail_node(n, "data_format '" + fmt + "' is not supported (NHWC)");
    spatial_pairs(attr_ints("strides"), "strides", n.stride_h, n.stride_w);
    spatial_pairs(attr_ints("dilations"), "dilations", n.dil_h, n.dil_w);
  };

  switch (n.op) {
    case Op::kPlaceholder: {
      if (!attr.contains("shape")) fail_node(n, "no shape attribute");
      try {
        for (const auto& d : attr.at("shape").at("shape").at("dim")) n.declared_shape.push_back(to_int(d.at("size")));
      } catch (const std::exception&) {
        fail_node(n, "shape attribute is not a list of dims");
      }
      break;
    }
    case Op::kConst: {
      const auto w = weights.find(n.name);
      if (w == weights.end()) fail_node(n, "no weights for this constant in the weights manifest");
      n.constant = w->second;
      break;
    }
    case Op::kIdentity:
    case Op::kRelu:
    case Op::kRelu6:
      need_inputs(1);
      break;
    case Op::kAdd:
      need_inputs(2);
      break;
    case Op::kConv:
    case Op::kDepthwise: {
      read_padding();
      const torch::Tensor& filter = [&]() -> const torch::Tensor& {
        if (n.inputs.size() < 2) fail_node(n, "needs an input and a filter");
        return constant_input(1);
      }();
      if (filter.dim() != 4 || filter.scalar_type() != torch::kFloat32)
        fail_node(n, "filter must be a float32 [kh, kw, in, out] tensor, got " + json(filter.sizes().vec()).dump());
      n.k_h = filter.size(0);
      n.k_w = filter.size(1);
      if (n.op == Op::kDepthwise) {
        need_inputs(2);
        // TF [kh, kw, in, multiplier] -> torch [in * multiplier, 1, kh, kw]; channel c*m + k.
        n.weight = filter.permute({2, 3, 0, 1}).reshape({filter.size(2) * filter.size(3), 1, n.k_h, n.k_w});
      } else {
        n.weight = filter.permute({3, 2, 0, 1});  // HWIO -> OIHW
        if (n.op_name == "_FusedConv2D") {
          std::vector<std::string> fused;
          if (attr.contains("fused_ops")) {
            try {
              for (const auto& s : attr.at("fused_ops").at("list").at("s")) fused.push_back(base64_decode(s.get<std::string>()));
            } catch (const std::exception&) {
              fail_node(n, "fused_ops is not a list of strings");
            }
          }
          const bool ok = !fused.empty() && fused[0] == "BiasAdd" &&
                          (fused.size() == 1 || (fused.size() == 2 && (fused[1] == "Relu" || fused[1] == "Relu6")));
          if (!ok) {
            std::string list;
            for (const auto& s : fused) list += (list.empty() ? "" : ", ") + s;
            fail_node(n, "fused_ops [" + list + "] not supported ([BiasAdd], [BiasAdd, Relu], [BiasAdd, Relu6])");
          }
          need_inputs(3);
          const torch::Tensor& b = constant_input(2);
          if (b.dim() != 1 || b.size(0) != filter.size(3) || b.scalar_type() != torch::kFloat32)
            fail_node(n, "bias must be float32 [" + std::to_string(filter.size(3)) + "], got " + json(b.sizes().vec()).dump());
          n.bias = b.clone();
          n.relu = fused.size() == 2 && fused[1] == "Relu";
          n.relu6 = fused.size() == 2 && fused[1] == "Relu6";
        } else {
          need_inputs(2);
        }
      }
      n.weight = n.weight.contiguous(torch::MemoryFormat::ChannelsLast);
      break;
    }
    case Op::kMaxPool: {
      need_inputs(1);
      read_padding();
      if (n.padding == Padding::kExplicit) fail_node(n, "EXPLICIT padding is not supported for MaxPool");
      spatial_pairs(attr_ints("ksize"), "ksize", n.k_h, n.k_w);
      break;
    }
    case Op::kPad: {
      need_inputs(2);
      const torch::Tensor& p = constant_input(1);
      if (p.scalar_type() != torch::kInt32 || p.dim() != 2 || p.size(1) != 2)
        fail_node(n, "paddings must be an int32 [rank, 2] constant");
      const auto* v = p.data_ptr<int32_t>();
      for (int64_t k = 0; k < p.numel(); ++k) {
        if (v[k] < 0) fail_node(n, "negative padding");
        n.pads.push_back(v[k]);
      }
      break;
    }
    case Op::kReshape: {
      need_inputs(2);
      const torch::Tensor& s = constant_input(1);
      if (s.scalar_type() != torch::kInt32 || s.dim() != 1) fail_node(n, "shape must be an int32 vector constant");
      const auto* v = s.data_ptr<int32_t>();
      for (int64_t k = 0; k < s.numel(); ++k) n.shape.push_back(v[k]);
      break;
    }
  }
}

void TfjsGraph::Impl::prepare() {
  // Placeholder.
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].op != Op::kPlaceholder) continue;
    if (input >= 0) fail("more than one Placeholder ('" + nodes[static_cast<size_t>(input)].name + "', '" + nodes[i].name + "')");
    input = static_cast<int>(i);
  }
  if (input < 0) fail("no Placeholder (the graph's input)");
  input_shape = nodes[static_cast<size_t>(input)].declared_shape;
  if (!input_shape.empty()) batch_declared = input_shape[0];

  // Topological order of what the outputs need (depth-first; a cycle is an error).
  std::vector<int> state(nodes.size(), 0);  // 0 new, 1 on the stack, 2 done
  std::vector<std::pair<int, size_t>> stack;
  for (int out : outputs) {
    if (state[static_cast<size_t>(out)] == 2) continue;
    stack.push_back({out, 0});
    state[static_cast<size_t>(out)] = 1;
    while (!stack.empty()) {
      auto& [v, k] = stack.back();
      const Node& n = nodes[static_cast<size_t>(v)];
      if (k < n.inputs.size()) {
        const int u = n.inputs[k++];
        if (state[static_cast<size_t>(u)] == 1) fail_node(n, "the graph has a cycle through '" + nodes[static_cast<size_t>(u)].name + "'");
        if (state[static_cast<size_t>(u)] == 0) {
          state[static_cast<size_t>(u)] = 1;
          stack.push_back({u, 0});
        }
      } else {
        state[static_cast<size_t>(v)] = 2;
        order.push_back(v);
        stack.pop_back();
      }
    }
  }
  // Liveness, and which values may be overwritten in place by their last reader: values a node
  // computed into fresh memory (not constants, the caller's input, views made by Reshape or
  // Identity, or outputs), read by no view-making node.
  for (size_t pos = 0; pos < order.size(); ++pos)
    for (int u : nodes[static_cast<size_t>(order[pos])].inputs) nodes[static_cast<size_t>(u)].last_use = static_cast<int>(pos);
  for (int o : outputs) nodes[static_cast<size_t>(o)].is_output = true;
  for (auto& n : nodes) {
    n.inplace_ok = (n.op == Op::kConv || n.op == Op::kDepthwise || n.op == Op::kAdd || n.op == Op::kRelu ||
                    n.op == Op::kRelu6 || n.op == Op::kMaxPool || n.op == Op::kPad) &&
                   !n.is_output;
  }
  for (const auto& n : nodes)
    if (n.op == Op::kReshape || n.op == Op::kIdentity)
      for (int u : n.inputs) nodes[static_cast<size_t>(u)].inplace_ok = false;

  // One run at the declared shape checks every shape and counts the work.
  bool fixed = !input_shape.empty();
  for (size_t k = 1; k < input_shape.size(); ++k) fixed = fixed && input_shape[k] > 0;
  if (fixed) {
    auto shape = input_shape;
    if (shape[0] < 1) shape[0] = 1;
    try {
      run(torch::zeros(shape), &macs);
    } catch (const ModelFileError&) {
      throw;
    } catch (const std::exception& e) {
      // A shape that libtorch refuses (a Reshape to a size the tensor does not have, found by
      // the fuzzer): the file's fault, named as such.
      std::string what = e.what();
      what = what.substr(0, what.find('\n'));  // libtorch appends a backtrace
      fail("the graph does not run on its declared input shape: " + what);
    }
  }
#ifdef FERVID_HAVE_DNNL
  // The graph straight on oneDNN when it is one the executor runs (else libtorch runs it, as here).
  if (engine_request == TfjsEngine::kFastest)
    dnnl = tfjs_internal::DnnlExecutor::create(nodes, order, input, outputs, batch_declared);
#endif
}

Value TfjsGraph::Impl::eval(const Node& n, std::vector<Value>& values, int position, int64_t* macs_out) const {
  auto in = [&](size_t k) -> Value& { return values[static_cast<size_t>(n.inputs[k])]; };
  // May input k be overwritten here? (its last reader, and it owns its memory)
  auto consumable = [&](size_t k) {
    const Node& src = nodes[static_cast<size_t>(n.inputs[k])];
    return src.inplace_ok && src.last_use == position &&
           std::count(n.inputs.begin(), n.inputs.end(), n.inputs[k]) == 1;
  };
  switch (n.op) {
    case Op::kPlaceholder:
    case Op::kConst:
      throw std::logic_error("TfjsGraph: constants and the input are not evaluated");
    case Op::kIdentity:
      return in(0);
    case Op::kConv:
    case Op::kDepthwise: {
      torch::Tensor x = as_nhwc(in(0));
      const int64_t h = x.size(2), w = x.size(3);
      const auto [top, bottom, left, right] = spatial_padding(n, h, w);
      const int64_t groups = n.op == Op::kDepthwise ? x.size(1) : 1;
      const int64_t in_per_group = n.weight.size(1);
      if (x.size(1) != in_per_group * groups)
        throw std::invalid_argument("input has " + std::to_string(x.size(1)) + " channels, the filter expects " +
                                    std::to_string(in_per_group * groups));
      std::vector<int64_t> pad = {0, 0};
      if (top == bottom && left == right) {
        pad = {top, left};
      } else {
        x = torch::constant_pad_nd(x, {left, right, top, bottom}, 0.0).contiguous(torch::MemoryFormat::ChannelsLast);
      }
      torch::Tensor y = torch::conv2d(x, n.weight, n.bias.defined() ? n.bias : torch::Tensor(), {n.stride_h, n.stride_w},
                                      pad, {n.dil_h, n.dil_w}, groups);
      if (n.relu) y.relu_();
      if (n.relu6) y.clamp_(0.0, 6.0);
      if (macs_out) *macs_out += y.numel() * in_per_group * n.k_h * n.k_w;
      return make_nhwc(std::move(y));
    }
    case Op::kAdd: {
      Value& a = in(0);
      Value& b = in(1);
      // Bring both to one layout: a rank-4 NHWC value with a TF-layout operand broadcast over it.
      auto operand = [](const Value& v, bool nhwc) -> torch::Tensor {
        if (v.nhwc == nhwc) return v.t;
        if (nhwc) {  // TF broadcasting aligns trailing dims: pad to rank 4, then NHWC -> NCHW view
          torch::Tensor t = v.t;
          TORCH_CHECK(t.dim() <= 4, "cannot broadcast rank ", t.dim(), " over a rank-4 value");
          while (t.dim() < 4) t = t.unsqueeze(0);
          return t.permute({0, 3, 1, 2});
        }
        return v.t.permute({0, 2, 3, 1});
      };
      const bool nhwc = a.nhwc || b.nhwc;
      torch::Tensor ta = operand(a, nhwc), tb = operand(b, nhwc);
      const auto shape = at::infer_size(ta.sizes(), tb.sizes());
      if (consumable(0) && ta.sizes().vec() == shape) return {ta.add_(tb), nhwc};
      if (consumable(1) && tb.sizes().vec() == shape) return {tb.add_(ta), nhwc};
      torch::Tensor y = ta + tb;
      return nhwc ? make_nhwc(std::move(y)) : Value{std::move(y), false};
    }
    case Op::kRelu:
    case Op::kRelu6: {
      Value& a = in(0);
      torch::Tensor t = consumable(0) ? a.t : a.t.clone();
      if (n.op == Op::kRelu) t.relu_();
      else t.clamp_(0.0, 6.0);
      return {t, a.nhwc};
    }
    case Op::kMaxPool: {
      torch::Tensor x = as_nhwc(in(0));
      const auto [top, bottom, left, right] = spatial_padding(n, x.size(2), x.size(3));
      std::vector<int64_t> pad = {0, 0};
      if (top == bottom && left == right && 2 * top <= n.k_h && 2 * left <= n.k_w) {
        pad = {top, left};  // libtorch pads max pooling with -inf, as TF's SAME does
      } else {
        x = torch::constant_pad_nd(x, {left, right, top, bottom}, -std::numeric_limits<double>::infinity())
                .contiguous(torch::MemoryFormat::ChannelsLast);
      }
      return make_nhwc(torch::max_pool2d(x, {n.k_h, n.k_w}, {n.stride_h, n.stride_w}, pad));
    }
    case Op::kPad: {
      const Value& a = in(0);
      const int64_t rank = a.nhwc ? 4 : a.t.dim();
      if (static_cast<int64_t>(n.pads.size()) != 2 * rank)
        throw std::invalid_argument("paddings are for rank " + std::to_string(n.pads.size() / 2) + ", the value has rank " +
                                    std::to_string(rank));
      std::vector<int64_t> torch_pad;  // last torch dim first
      if (a.nhwc) {
        const int tf_dim_of_torch[4] = {0, 3, 1, 2};  // torch dim d holds TF dim tf_dim_of_torch[d]
        for (int d = 3; d >= 0; --d) {
          torch_pad.push_back(n.pads[static_cast<size_t>(2 * tf_dim_of_torch[d])]);
          torch_pad.push_back(n.pads[static_cast<size_t>(2 * tf_dim_of_torch[d] + 1)]);
        }
        return make_nhwc(torch::constant_pad_nd(a.t, torch_pad, 0.0));
      }
      for (int64_t d = rank - 1; d >= 0; --d) {
        torch_pad.push_back(n.pads[static_cast<size_t>(2 * d)]);
        torch_pad.push_back(n.pads[static_cast<size_t>(2 * d + 1)]);
      }
      return {torch::constant_pad_nd(a.t, torch_pad, 0.0), false};
    }
    case Op::kReshape: {
      // Converted graphs spell the batch into Reshape targets ([1, 512, 1]); a batch of another
      // size keeps its own.
      const torch::Tensor t = tf_layout(in(0));
      auto shape = n.shape;
      if (!shape.empty() && shape[0] == batch_declared && t.dim() > 0 && t.size(0) != batch_declared) shape[0] = t.size(0);
      return {t.reshape(shape), false};
    }
  }
  throw std::logic_error("TfjsGraph: unhandled operation");
}

std::vector<torch::Tensor> TfjsGraph::Impl::run(const torch::Tensor& x, int64_t* macs_out) const {
  if (!x.defined() || x.scalar_type() != torch::kFloat32)
    throw std::invalid_argument(path + ": the input must be a float32 tensor");
  if (x.dim() != static_cast<int64_t>(input_shape.size()))
    throw std::invalid_argument(path + ": the input must have rank " + std::to_string(input_shape.size()) + ", got shape " +
                                json(x.sizes().vec()).dump());
  for (size_t k = 1; k < input_shape.size(); ++k) {
    if (input_shape[k] >= 0 && x.size(static_cast<int64_t>(k)) != input_shape[k])
      throw std::invalid_argument(path + ": the input must have shape " + json(input_shape).dump() +
                                  " (any batch; -1 = any), got " +
                                  json(x.sizes().vec()).dump());
  }
  torch::InferenceMode guard;
#ifdef FERVID_HAVE_DNNL
  if (dnnl && !macs_out) {
    std::vector<torch::Tensor> out;
    if (dnnl->run(x.contiguous(), out)) return out;
  }
#endif
  std::vector<Value> values(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i)
    if (nodes[i].op == Op::kConst) values[i] = {nodes[i].constant, false};
  const torch::Tensor input_cpu = x.contiguous();
  values[static_cast<size_t>(input)] =
      input_cpu.dim() == 4 ? Value{input_cpu.permute({0, 3, 1, 2}), true} : Value{input_cpu, false};
  for (size_t pos = 0; pos < order.size(); ++pos) {
    const int v = order[pos];
    const Node& n = nodes[static_cast<size_t>(v)];
    if (n.op == Op::kConst || n.op == Op::kPlaceholder) continue;
    try {
      values[static_cast<size_t>(v)] = eval(n, values, static_cast<int>(pos), macs_out);
    } catch (const c10::Error& e) {
      fail_node(n, e.what_without_backtrace());
    } catch (const std::invalid_argument& e) {
      fail_node(n, e.what());
    }
    // Free what nobody reads any more.
    for (int u : n.inputs) {
      const Node& src = nodes[static_cast<size_t>(u)];
      if (src.last_use == static_cast<int>(pos) && src.op != Op::kConst && !src.is_output)
        values[static_cast<size_t>(u)].t = torch::Tensor();
    }
  }
  std::vector<torch::Tensor> out;
  out.reserve(outputs.size());
  for (int o : outputs) out.push_back(tf_layout(values[static_cast<size_t>(o)]).contiguous());
  return out;
}

TfjsGraph::TfjsGraph(const std::string& model_json_path, TfjsEngine engine) : impl_(std::make_unique<Impl>()) {
  impl_->engine_request = engine;
  impl_->read(model_json_path);
}
TfjsGraph::~TfjsGraph() = default;
TfjsGraph::TfjsGraph(TfjsGraph&&) noexcept = default;
TfjsGraph& TfjsGraph::operator=(TfjsGraph&&) noexcept = default;

std::vector<torch::Tensor> TfjsGraph::run(const torch::Tensor& input) const { return impl_->run(input, nullptr); }
const std::vector<std::string>& TfjsGraph::output_names() const { return impl_->output_names; }
const std::vector<int64_t>& TfjsGraph::input_shape() const { return impl_->input_shape; }
int64_t TfjsGraph::multiply_accumulates() const { return impl_->macs; }
const std::string& TfjsGraph::path() const { return impl_->path; }
std::string TfjsGraph::engine() const {
#ifdef FERVID_HAVE_DNNL
  if (impl_->dnnl) return "onednn";
#endif
  return "libtorch";
}
int TfjsGraph::compute_nodes() const {
  int count = 0;
  for (int v : impl_->order) {
    const Op op = impl_->nodes[static_cast<size_t>(v)].op;
    count += op != Op::kConst && op != Op::kPlaceholder && op != Op::kIdentity;
  }
  return count;
}

}  // namespace fervid
