// A TF.js graph on oneDNN (tfjs_dnnl.h).
#include "tfjs_dnnl.h"

#include <ATen/Parallel.h>
#include <omp.h>

#include <dnnl.hpp>

#include <cstring>
#include <stdexcept>
#include <unordered_map>

namespace fervid::tfjs_internal {

namespace {

using Shape = std::array<int64_t, 4>;  // N, H, W, C

const dnnl::engine& cpu_engine() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::memory::desc nhwc_desc(const Shape& s) {
  return dnnl::memory::desc({s[0], s[3], s[1], s[2]}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::nhwc);
}

torch::Tensor empty_nhwc(const Shape& s) { return torch::empty({s[0], s[1], s[2], s[3]}); }

bool is_activation(Op op) { return op == Op::kRelu || op == Op::kRelu6; }

}  // namespace

struct DnnlExecutor::Plan {
  enum class Kind : uint8_t { kConv, kMaxPool, kPad, kAdd, kRelu, kRelu6, kView };
  struct Step {
    Kind kind = Kind::kView;
    int value = -1;                 // the node whose value this step makes
    std::vector<int> in;            // values read; a convolution with a residual: {x, residual}
    Shape out{};                    // NHWC (rank-4 steps)
    std::vector<int64_t> view;      // kView: the TF shape
    std::vector<int64_t> pad;       // kPad: constant_pad_nd's order (last dim first)
    bool residual = false;          // sum post-op: the output starts as in[1]
    bool in_place = false;          // kConv with residual: write over in[1]; kAdd / kRelu: over in[0]
    dnnl::primitive primitive;
    dnnl::memory::desc src_md, dst_md, scratch_md;
    dnnl::memory weights, bias;
    std::vector<int> release;       // values nobody reads after this step
  };
  std::vector<Step> steps;
  size_t scratchpad_bytes = 0;
};

DnnlExecutor::DnnlExecutor(const std::vector<Node>& nodes, const std::vector<int>& order, int input,
                           const std::vector<int>& outputs, int64_t batch_declared)
    : nodes_(nodes), order_(order), input_(input), outputs_(outputs), batch_declared_(batch_declared) {}

DnnlExecutor::~DnnlExecutor() = default;

std::unique_ptr<DnnlExecutor> DnnlExecutor::create(const std::vector<Node>& nodes, const std::vector<int>& order,
                                                   int input, const std::vector<int>& outputs, int64_t batch_declared) {
  if (nodes[static_cast<size_t>(input)].declared_shape.size() != 4) return nullptr;
  // What each value is: a rank-4 NHWC buffer, or a view of one (Reshape, Identity). Refused: a
  // node reading a constant or a non-rank-4 value, a computation on a view, a constant output.
  std::vector<int> kind(nodes.size(), 0);  // 0 unknown / constant, 1 rank 4, 2 view
  kind[static_cast<size_t>(input)] = 1;
  for (int v : order) {
    const Node& n = nodes[static_cast<size_t>(v)];
    if (n.op == Op::kConst || n.op == Op::kPlaceholder) continue;
    const bool views = n.op == Op::kReshape || n.op == Op::kIdentity;
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      // Convolutions and Pad take their filter / paddings from constants read at load.
      if (k > 0 && (n.op == Op::kConv || n.op == Op::kDepthwise || n.op == Op::kPad || n.op == Op::kReshape)) continue;
      const int in_kind = kind[static_cast<size_t>(n.inputs[k])];
      if (in_kind == 0 || (in_kind == 2 && !views)) return nullptr;
    }
    kind[static_cast<size_t>(v)] = views ? 2 : 1;
  }
  for (int o : outputs)
    if (kind[static_cast<size_t>(o)] == 0) return nullptr;
  std::unique_ptr<DnnlExecutor> e(new DnnlExecutor(nodes, order, input, outputs, batch_declared));

  // Convolution -> AddV2 (-> Relu) chains, each run as one convolution at its last node.
  std::vector<std::vector<int>> readers(nodes.size());
  std::vector<bool> is_output(nodes.size(), false);
  for (int o : outputs) is_output[static_cast<size_t>(o)] = true;
  for (int v : order)
    for (int u : nodes[static_cast<size_t>(v)].inputs) readers[static_cast<size_t>(u)].push_back(v);
  auto only_reader = [&](int v) {
    const auto& r = readers[static_cast<size_t>(v)];
    return r.size() == 1 && !is_output[static_cast<size_t>(v)] ? r[0] : -1;
  };
  e->fused_.assign(nodes.size(), Fused{});
  e->inside_.assign(nodes.size(), false);
  for (int v : order) {
    const Node& n = nodes[static_cast<size_t>(v)];
    if ((n.op != Op::kConv && n.op != Op::kDepthwise) || n.relu || n.relu6) continue;
    const int add = only_reader(v);
    if (add < 0 || nodes[static_cast<size_t>(add)].op != Op::kAdd) continue;
    const Node& a = nodes[static_cast<size_t>(add)];
    // An AddV2 of two convolutions fuses with one of them.
    if (e->inside_[static_cast<size_t>(add)] || e->fused_[static_cast<size_t>(add)].conv >= 0 || a.inputs.size() != 2 ||
        a.inputs[0] == a.inputs[1])
      continue;
    int end = add;
    const int act = only_reader(add);
    if (act >= 0 && is_activation(nodes[static_cast<size_t>(act)].op)) end = act;
    e->fused_[static_cast<size_t>(end)] = {v, add, a.inputs[0] == v ? a.inputs[1] : a.inputs[0]};
    e->inside_[static_cast<size_t>(v)] = true;
    if (end != add) e->inside_[static_cast<size_t>(add)] = true;
  }
  return e;
}

std::shared_ptr<const DnnlExecutor::Plan> DnnlExecutor::plan_for(const Shape& input_shape) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (const auto it = plans_.find(input_shape); it != plans_.end()) return it->second;

  auto plan = std::make_shared<Plan>();
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  std::vector<Shape> shape(nodes_.size());
  shape[static_cast<size_t>(input_)] = input_shape;

  bool ok = true;
  auto build_conv = [&](Plan::Step& st, const Node& n, const Shape& in, bool relu, bool relu6) {
    const auto [top, bottom, left, right] = spatial_padding(n, in[1], in[2]);
    const int64_t out_c = n.weight.size(0);
    const int64_t groups = n.op == Op::kDepthwise ? in[3] : 1;
    if (n.op == Op::kDepthwise ? out_c % in[3] != 0 : n.weight.size(1) != in[3]) return false;
    const int64_t eff_h = (n.k_h - 1) * n.dil_h + 1, eff_w = (n.k_w - 1) * n.dil_w + 1;
    const int64_t oh = (in[1] + top + bottom - eff_h) / n.stride_h + 1, ow = (in[2] + left + right - eff_w) / n.stride_w + 1;
    if (oh < 1 || ow < 1) return false;
    st.out = {in[0], oh, ow, out_c};
    st.src_md = nhwc_desc(in);
    st.dst_md = nhwc_desc(st.out);
    using dims = dnnl::memory::dims;
    const dims wdims = groups > 1 ? dims{groups, out_c / groups, 1, n.k_h, n.k_w} : dims{out_c, in[3], n.k_h, n.k_w};
    const auto wtag = groups > 1 ? dnnl::memory::format_tag::goihw : dnnl::memory::format_tag::oihw;
    const dnnl::memory::desc w_any(wdims, dnnl::memory::data_type::f32, dnnl::memory::format_tag::any);
    const dnnl::memory::desc b_md({out_c}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::x);
    const dims strides = {n.stride_h, n.stride_w}, dil = {n.dil_h - 1, n.dil_w - 1};
    const dims pad_l = {top, left}, pad_r = {bottom, right};
    const auto desc = n.bias.defined()
                          ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                            dnnl::algorithm::convolution_direct, st.src_md, w_any, b_md,
                                                            st.dst_md, strides, dil, pad_l, pad_r)
                          : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                            dnnl::algorithm::convolution_direct, st.src_md, w_any,
                                                            st.dst_md, strides, dil, pad_l, pad_r);
    dnnl::post_ops ops;
    if (st.residual) ops.append_sum(1.0f);
    if (relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    if (relu6) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip, 0.0f, 6.0f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const dnnl::convolution_forward::primitive_desc pd(desc, attr, engine);
    // The filter once into the layout this convolution wants.
    torch::Tensor oihw = n.weight.contiguous();
    dnnl::memory user({wdims, dnnl::memory::data_type::f32, wtag}, engine, oihw.data_ptr());
    st.weights = dnnl::memory(pd.weights_desc(), engine);
    dnnl::reorder(user, st.weights).execute(stream, user, st.weights);
    if (n.bias.defined()) {
      st.bias = dnnl::memory(pd.bias_desc(), engine);
      std::memcpy(st.bias.get_data_handle(), n.bias.contiguous().data_ptr(), static_cast<size_t>(out_c) * sizeof(float));
    }
    st.scratch_md = pd.scratchpad_desc();
    st.primitive = dnnl::convolution_forward(pd);
    return true;
  };

  try {
    for (int v : order_) {
      const Node& n = nodes_[static_cast<size_t>(v)];
      if (n.op == Op::kConst || n.op == Op::kPlaceholder) continue;
      if (inside_[static_cast<size_t>(v)]) continue;  // runs at its group's end
      Plan::Step st;
      st.value = v;
      if (const Fused& f = fused_[static_cast<size_t>(v)]; f.conv >= 0) {
        const Node& c = nodes_[static_cast<size_t>(f.conv)];
        const int residual = f.residual, add = f.add;
        st.kind = Plan::Kind::kConv;
        st.in = {c.inputs[0], residual};
        st.residual = true;
        const bool relu = v != add && n.op == Op::kRelu, relu6 = v != add && n.op == Op::kRelu6;
        if (!build_conv(st, c, shape[static_cast<size_t>(c.inputs[0])], relu, relu6) ||
            st.out != shape[static_cast<size_t>(residual)]) {
          ok = false;
          break;
        }
        shape[static_cast<size_t>(add)] = st.out;
        shape[static_cast<size_t>(v)] = st.out;
        plan->steps.push_back(std::move(st));
        continue;
      }
      const Shape in = shape[static_cast<size_t>(n.inputs.at(0))];
      switch (n.op) {
        case Op::kConv:
        case Op::kDepthwise:
          st.kind = Plan::Kind::kConv;
          st.in = {n.inputs[0]};
          ok = build_conv(st, n, in, n.relu, n.relu6);
          break;
        case Op::kMaxPool: {
          const auto [top, bottom, left, right] = spatial_padding(n, in[1], in[2]);
          const int64_t oh = (in[1] + top + bottom - n.k_h) / n.stride_h + 1;
          const int64_t ow = (in[2] + left + right - n.k_w) / n.stride_w + 1;
          if (oh < 1 || ow < 1) {
            ok = false;
            break;
          }
          st.kind = Plan::Kind::kMaxPool;
          st.in = {n.inputs[0]};
          st.out = {in[0], oh, ow, in[3]};
          st.src_md = nhwc_desc(in);
          st.dst_md = nhwc_desc(st.out);
          // oneDNN's max pooling leaves padding out of the maximum, as TF's SAME does.
          const dnnl::pooling_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::pooling_max,
                                                 st.src_md, st.dst_md, {n.stride_h, n.stride_w}, {n.k_h, n.k_w},
                                                 {top, left}, {bottom, right});
          dnnl::primitive_attr attr;
          attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
          const dnnl::pooling_forward::primitive_desc pd(desc, attr, engine);
          st.scratch_md = pd.scratchpad_desc();
          st.primitive = dnnl::pooling_forward(pd);
          break;
        }
        case Op::kPad: {
          if (n.pads.size() != 8) {
            ok = false;
            break;
          }
          st.kind = Plan::Kind::kPad;
          st.in = {n.inputs[0]};
          for (int d = 3; d >= 0; --d) {
            st.pad.push_back(n.pads[static_cast<size_t>(2 * d)]);
            st.pad.push_back(n.pads[static_cast<size_t>(2 * d + 1)]);
          }
          for (size_t d = 0; d < 4; ++d) st.out[d] = in[d] + n.pads[2 * d] + n.pads[2 * d + 1];
          break;
        }
        case Op::kAdd:
          st.kind = Plan::Kind::kAdd;
          st.in = n.inputs;
          st.out = in;
          ok = n.inputs.size() == 2 && shape[static_cast<size_t>(n.inputs[1])] == in;  // no broadcasting here
          break;
        case Op::kRelu:
        case Op::kRelu6:
          st.kind = n.op == Op::kRelu ? Plan::Kind::kRelu : Plan::Kind::kRelu6;
          st.in = {n.inputs[0]};
          st.out = in;
          break;
        case Op::kReshape:
        case Op::kIdentity: {
          st.kind = Plan::Kind::kView;
          st.in = {n.inputs[0]};
          st.out = in;
          if (n.op == Op::kReshape) {
            st.view = n.shape;
            if (!st.view.empty() && st.view[0] == batch_declared_ && in[0] != batch_declared_) st.view[0] = in[0];
          }
          break;
        }
        default:
          ok = false;
      }
      if (!ok) break;
      shape[static_cast<size_t>(v)] = st.out;
      plan->steps.push_back(std::move(st));
    }
  } catch (const dnnl::error&) {
    ok = false;  // a shape oneDNN has no implementation for: libtorch runs it
  }
  stream.wait();
  if (!ok) {
    plans_[input_shape] = nullptr;
    return nullptr;
  }

  // Liveness over the steps, and which values may be written over by their last reader: not the
  // caller's input, not an output, not a value a view shares memory with.
  std::vector<int> last_read(nodes_.size(), -1);
  std::vector<bool> keep(nodes_.size(), false);
  keep[static_cast<size_t>(input_)] = true;
  for (int o : outputs_) keep[static_cast<size_t>(o)] = true;
  for (size_t i = 0; i < plan->steps.size(); ++i) {
    const auto& st = plan->steps[i];
    for (int u : st.in) last_read[static_cast<size_t>(u)] = static_cast<int>(i);
    if (st.kind == Plan::Kind::kView) keep[static_cast<size_t>(st.in[0])] = true;
  }
  for (size_t i = 0; i < plan->steps.size(); ++i) {
    auto& st = plan->steps[i];
    const size_t target = st.residual ? 1 : 0;
    if (st.kind == Plan::Kind::kAdd || st.kind == Plan::Kind::kRelu || st.kind == Plan::Kind::kRelu6 || st.residual) {
      const int u = st.in[target];
      st.in_place = !keep[static_cast<size_t>(u)] && last_read[static_cast<size_t>(u)] == static_cast<int>(i) &&
                    std::count(st.in.begin(), st.in.end(), u) == 1;
    }
    for (int u : st.in)
      if (last_read[static_cast<size_t>(u)] == static_cast<int>(i) && u != input_ && !keep[static_cast<size_t>(u)])
        st.release.push_back(u);
    if (st.primitive) plan->scratchpad_bytes = std::max(plan->scratchpad_bytes, st.scratch_md.get_size());
  }
  plans_[input_shape] = plan;
  return plan;
}

bool DnnlExecutor::run(const torch::Tensor& input, std::vector<torch::Tensor>& outputs) const {
  TORCH_CHECK(input.dim() == 4 && input.is_contiguous() && input.scalar_type() == torch::kFloat32,
              "DnnlExecutor: expected a contiguous float32 NHWC input, got ", input.sizes());
  const auto plan = plan_for({input.size(0), input.size(1), input.size(2), input.size(3)});
  if (!plan) return false;
  // oneDNN runs on OpenMP like libtorch; a thread that is not the one configure_runtime() ran on
  // (a server's worker) has OpenMP's default team size until told.
  if (omp_get_max_threads() != at::get_num_threads()) omp_set_num_threads(at::get_num_threads());
  const dnnl::engine& engine = cpu_engine();
  dnnl::stream stream(engine);
  const torch::Tensor scratch = torch::empty({static_cast<int64_t>(plan->scratchpad_bytes) + 1}, torch::kUInt8);
  std::vector<torch::Tensor> values(nodes_.size());
  values[static_cast<size_t>(input_)] = input;
  try {
    for (const auto& st : plan->steps) {
      torch::Tensor& x = values[static_cast<size_t>(st.in[0])];
      torch::Tensor out;
      switch (st.kind) {
        case Plan::Kind::kConv:
        case Plan::Kind::kMaxPool: {
          if (st.residual) {
            torch::Tensor& r = values[static_cast<size_t>(st.in[1])];
            out = st.in_place ? r : r.clone();
          } else {
            out = empty_nhwc(st.out);
          }
          std::unordered_map<int, dnnl::memory> args = {
              {DNNL_ARG_SRC, dnnl::memory(st.src_md, engine, x.data_ptr())},
              {DNNL_ARG_DST, dnnl::memory(st.dst_md, engine, out.data_ptr())},
              {DNNL_ARG_SCRATCHPAD, dnnl::memory(st.scratch_md, engine, scratch.data_ptr())}};
          if (st.kind == Plan::Kind::kConv) {
            args.insert({DNNL_ARG_WEIGHTS, st.weights});
            if (st.bias) args.insert({DNNL_ARG_BIAS, st.bias});
          }
          st.primitive.execute(stream, args);
          break;
        }
        case Plan::Kind::kPad:
          out = torch::constant_pad_nd(x, st.pad, 0.0);
          break;
        case Plan::Kind::kAdd: {
          const torch::Tensor& b = values[static_cast<size_t>(st.in[1])];
          out = st.in_place ? x.add_(b) : x + b;
          break;
        }
        case Plan::Kind::kRelu:
          out = st.in_place ? x.clamp_min_(0.0) : x.clamp_min(0.0);
          break;
        case Plan::Kind::kRelu6:
          out = st.in_place ? x.clamp_(0.0, 6.0) : x.clamp(0.0, 6.0);
          break;
        case Plan::Kind::kView:
          out = st.view.empty() ? x : x.reshape(st.view);
          break;
      }
      values[static_cast<size_t>(st.value)] = std::move(out);
      for (int u : st.release) values[static_cast<size_t>(u)] = torch::Tensor();
    }
    stream.wait();
  } catch (const dnnl::error& e) {
    throw std::runtime_error(std::string("oneDNN: ") + e.what());
  }
  outputs.clear();
  for (int o : outputs_) outputs.push_back(values[static_cast<size_t>(o)].contiguous());
  return true;
}

}  // namespace fervid::tfjs_internal
