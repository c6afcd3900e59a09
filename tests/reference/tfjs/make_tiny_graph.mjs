// Writes a tiny hand-made TF.js graph model, in the format the TF.js converter writes
// (the attribute encodings copied from models/third_party/blazeface/blazeface.json), for the unit
// test of fervid's TF.js graph-model reader, and records what TensorFlow.js computes for it:
//
//   cd tests/reference/tfjs && npm ci && node make_tiny_graph.mjs
//
// Writes tests/fixtures/tfjs_tiny/{model.json, weights.bin, expected.json} and the malformed
// variants tests/fixtures/tfjs_tiny/bad/*.json (see bad/README.md).
//
// All weights and inputs are multiples of 1/8 with small magnitudes, so every product and sum is
// exact in float32: any correct implementation gives bit-identical outputs, whatever its order of
// accumulation. The script also runs its own naive loops implementing TensorFlow's definitions
// (independent of TF.js) over the whole graph and refuses to write anything unless TF.js agrees
// exactly.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { fileHandler, serialize } from './record_blazeface.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const outDir = path.join(root, 'tests/fixtures/tfjs_tiny');
const badDir = path.join(outDir, 'bad');
const require = createRequire(import.meta.url);
const tfjsVersion = require('@tensorflow/tfjs/package.json').version;

// ---- attribute encodings, as in the converter's model.json --------------------------------------
const b64 = (s) => Buffer.from(s, 'utf8').toString('base64');  // attr.s values are base64 bytes
const ints = (a) => ({ list: { i: a.map(String) } });            // int64s are JSON strings
const dims = (shape) => ({ dim: shape.map((d) => ({ size: String(d) })) });
const DT = { float32: 'DT_FLOAT', int32: 'DT_INT32', uint32: 'DT_UINT32' };

function constNode(name, shape, dtype) {
  return {
    name, op: 'Const',
    attr: { value: { tensor: { dtype: DT[dtype], tensorShape: dims(shape) } }, dtype: { type: DT[dtype] } },
  };
}
function fusedConv(name, x, w, b, { strides, padding, fused }) {
  return {
    name, op: '_FusedConv2D', input: [x, w, b], device: '/device:CPU:0',
    attr: {
      dilations: ints([1, 1, 1, 1]), T: { type: 'DT_FLOAT' }, strides: ints([1, strides, strides, 1]),
      data_format: { s: b64('NHWC') }, explicit_paddings: { list: {} }, use_cudnn_on_gpu: { b: true },
      num_args: { i: '1' }, epsilon: { f: 0 }, padding: { s: b64(padding) },
      fused_ops: { list: { s: fused.map(b64) } },
    },
  };
}
function depthwise(name, x, w, { strides, padding }) {
  return {
    name, op: 'DepthwiseConv2dNative', input: [x, w],
    attr: {
      data_format: { s: b64('NHWC') }, strides: ints([1, strides, strides, 1]), explicit_paddings: { list: {} },
      padding: { s: b64(padding) }, dilations: ints([1, 1, 1, 1]), T: { type: 'DT_FLOAT' },
    },
  };
}
function maxPool(name, x, { padding }) {
  return {
    name, op: 'MaxPool', input: [x],
    attr: {
      data_format: { s: b64('NHWC') }, strides: ints([1, 2, 2, 1]), ksize: ints([1, 2, 2, 1]),
      padding: { s: b64(padding) }, T: { type: 'DT_FLOAT' },
    },
  };
}
const binary = (name, op, a, b) => ({ name, op, input: [a, b], attr: { T: { type: 'DT_FLOAT' } } });
const unary = (name, op, a) => ({ name, op, input: [a], attr: { T: { type: 'DT_FLOAT' } } });
const pad = (name, x, p) => ({
  name, op: 'Pad', input: [x, p], attr: { T: { type: 'DT_FLOAT' }, Tpaddings: { type: 'DT_INT32' } },
});
const reshape = (name, x, s) => ({
  name, op: 'Reshape', input: [x, s], attr: { T: { type: 'DT_FLOAT' }, Tshape: { type: 'DT_INT32' } },
});

// ---- values -------------------------------------------------------------------------------------
const IN_SHAPE = [1, 6, 6, 2];
const size = (s) => s.reduce((a, b) => a * b, 1);
// f(i; a, b, d) = ((a*i + b) mod 7 - 3) / d over the flat row-major index i.
const seq = (n, a, b, d) => Array.from({ length: n }, (_, i) => (((a * i + b) % 7) - 3) / d);

const W = {  // name -> [shape, dtype, values, definition]
  'pad/paddings': [[4, 2], 'int32', [0, 0, 1, 2, 2, 1, 0, 2], '[[0,0],[1,2],[2,1],[0,2]]'],
  'conv_valid/filter': [[3, 3, 4, 3], 'float32', seq(108, 5, 3, 4), 'HWIO; ((5i+3) mod 7 - 3)/4'],
  'conv_valid/bias': [[3], 'float32', [0.5, -1, 0.25], '[0.5,-1,0.25]'],
  'conv_s2/filter': [[3, 3, 2, 4], 'float32', seq(72, 3, 1, 4), 'HWIO; ((3i+1) mod 7 - 3)/4'],
  'conv_s2/bias': [[4], 'float32', [0.25, -0.5, 1, 0], '[0.25,-0.5,1,0]'],
  'dw_same/filter': [[3, 3, 2, 1], 'float32', seq(18, 2, 5, 2), 'H,W,C,multiplier; ((2i+5) mod 7 - 3)/2'],
  'dw_s2/filter': [[3, 3, 2, 1], 'float32', seq(18, 4, 2, 2), 'H,W,C,multiplier; ((4i+2) mod 7 - 3)/2'],
  'conv_1x1/filter': [[1, 1, 2, 3], 'float32', seq(6, 1, 1, 2), 'HWIO; ((i+1) mod 7 - 3)/2'],
  'conv_1x1/bias': [[3], 'float32', [-0.5, 0.5, 0.125], '[-0.5,0.5,0.125]'],
  'reshape_a/shape': [[3], 'int32', [1, 9, 4], '[1,9,4]'],
  'reshape_b/shape': [[3], 'int32', [1, -1, 3], '[1,-1,3]'],
};
const INPUT_DEF = 'x[0,y,x,c] = ((7y + 3x + 5c) mod 9 - 4) / 2, y,x in 0..5, c in 0..1 (NHWC, flat index (6y+x)*2+c)';
const inputValues = [];
for (let y = 0; y < 6; ++y) for (let x = 0; x < 6; ++x) for (let c = 0; c < 2; ++c) inputValues.push(((7 * y + 3 * x + 5 * c) % 9 - 4) / 2);

const OPS = [
  { name: 'input', op: 'Placeholder', attr: { dtype: { type: 'DT_FLOAT' }, shape: { shape: dims(IN_SHAPE) } } },
  pad('pad', 'input', 'pad/paddings'),                                                           // [1,9,9,4]
  fusedConv('conv_valid', 'pad', 'conv_valid/filter', 'conv_valid/bias', { strides: 1, padding: 'VALID', fused: ['BiasAdd'] }),   // [1,7,7,3]
  maxPool('pool_valid', 'conv_valid', { padding: 'VALID' }),                                      // [1,3,3,3]
  maxPool('pool_same', 'conv_valid', { padding: 'SAME' }),                                        // [1,4,4,3]
  fusedConv('conv_s2', 'input', 'conv_s2/filter', 'conv_s2/bias', { strides: 2, padding: 'SAME', fused: ['BiasAdd', 'Relu'] }),   // [1,3,3,4]
  depthwise('dw_same', 'input', 'dw_same/filter', { strides: 1, padding: 'SAME' }),               // [1,6,6,2]
  binary('add', 'AddV2', 'dw_same', 'input'),                                                     // [1,6,6,2]
  unary('relu', 'Relu', 'add'),
  depthwise('dw_s2', 'relu', 'dw_s2/filter', { strides: 2, padding: 'SAME' }),                    // [1,3,3,2]
  fusedConv('conv_1x1', 'dw_s2', 'conv_1x1/filter', 'conv_1x1/bias', { strides: 1, padding: 'VALID', fused: ['BiasAdd'] }),       // [1,3,3,3]
  binary('add_1', 'AddV2', 'conv_1x1', 'pool_valid'),                                             // [1,3,3,3]
  reshape('reshape_a', 'conv_s2', 'reshape_a/shape'),                                             // [1,9,4]
  reshape('reshape_b', 'add_1', 'reshape_b/shape'),                                               // [1,9,3]
  unary('Identity', 'Identity', 'reshape_a'),
  unary('Identity_1', 'Identity', 'reshape_b'),
  unary('Identity_2', 'Identity', 'pool_same'),
  unary('Identity_3', 'Identity', 'dw_s2'),
];
const OUT_SHAPES = { 'Identity:0': [1, 9, 4], 'Identity_1:0': [1, 9, 3], 'Identity_2:0': [1, 4, 4, 3], 'Identity_3:0': [1, 3, 3, 2] };

function buildModel() {
  const sig = (name, shape) => ({ name, dtype: 'DT_FLOAT', tensorShape: dims(shape) });
  const outputs = {};
  for (const [k, s] of Object.entries(OUT_SHAPES)) outputs[k] = sig(k, s);
  return {
    format: 'graph-model',
    generatedBy: 'fervid tests/reference/tfjs/make_tiny_graph.mjs',
    convertedBy: 'hand-written in the TensorFlow.js converter format',
    userDefinedMetadata: { signature: { inputs: { 'input:0': sig('input:0', IN_SHAPE) }, outputs } },
    modelTopology: {
      node: [...Object.entries(W).map(([n, [s, d]]) => constNode(n, s, d)), ...OPS],
      library: {}, versions: {},
    },
    weightsManifest: [{ paths: ['weights.bin'], weights: Object.entries(W).map(([name, [shape, dtype]]) => ({ name, shape, dtype })) }],
  };
}

function weightsBin() {
  const parts = Object.values(W).map(([shape, dtype, v]) => {
    if (v.length !== size(shape)) throw new Error('bad weight size');
    const a = dtype === 'int32' ? Int32Array.from(v) : Float32Array.from(v);
    return Buffer.from(a.buffer);  // little-endian on every platform Node runs on
  });
  return Buffer.concat(parts);
}

// ---- independent naive implementation of TensorFlow's definitions (NHWC, HWIO) ------------------
class T { constructor(shape, data) { this.shape = shape; this.data = data ?? new Array(size(shape)).fill(0); } }
const at = (t, n, y, x, c) => t.data[((n * t.shape[1] + y) * t.shape[2] + x) * t.shape[3] + c];
// TF padding: VALID -> 0; SAME -> out = ceil(in/stride), total = max(0,(out-1)*stride + k - in),
// before = floor(total/2), after = total - before (the odd pixel goes to the bottom/right).
function samePad(inSize, k, s) {
  const out = Math.ceil(inSize / s);
  const total = Math.max(0, (out - 1) * s + k - inSize);
  return { out, before: Math.floor(total / 2), after: total - Math.floor(total / 2) };
}
function geometry(t, kh, kw, s, padding) {
  if (padding === 'VALID')
    return { oh: Math.floor((t.shape[1] - kh) / s) + 1, ow: Math.floor((t.shape[2] - kw) / s) + 1, pt: 0, pl: 0 };
  const h = samePad(t.shape[1], kh, s), w = samePad(t.shape[2], kw, s);
  return { oh: h.out, ow: w.out, pt: h.before, pl: w.before };
}
function refConv(x, w, b, s, padding, relu, trace) {
  const [kh, kw, ci, co] = w.shape;
  const g = geometry(x, kh, kw, s, padding);
  const y = new T([1, g.oh, g.ow, co]);
  for (let oy = 0; oy < g.oh; ++oy) for (let ox = 0; ox < g.ow; ++ox) for (let o = 0; o < co; ++o) {
    let acc = 0; const terms = [];
    for (let i = 0; i < kh; ++i) for (let j = 0; j < kw; ++j) {
      const iy = oy * s + i - g.pt, ix = ox * s + j - g.pl;
      if (iy < 0 || ix < 0 || iy >= x.shape[1] || ix >= x.shape[2]) continue;  // zero padding
      for (let c = 0; c < ci; ++c) {
        const xv = at(x, 0, iy, ix, c), wv = w.data[((i * kw + j) * ci + c) * co + o];
        acc += xv * wv;
        if (trace && xv !== 0 && wv !== 0) terms.push(`x[${iy},${ix},${c}]*w[${i},${j},${c},${o}] = ${xv}*${wv}`);
      }
    }
    acc += b ? b.data[o] : 0;
    y.data[((oy * g.ow) + ox) * co + o] = relu ? Math.max(0, acc) : acc;
    if (trace && trace.at[0] === oy && trace.at[1] === ox && trace.at[2] === o) trace.terms = terms;
  }
  return y;
}
function refDepthwise(x, w, s, padding, trace) {
  const [kh, kw, ci, mult] = w.shape;
  const g = geometry(x, kh, kw, s, padding);
  const y = new T([1, g.oh, g.ow, ci * mult]);
  for (let oy = 0; oy < g.oh; ++oy) for (let ox = 0; ox < g.ow; ++ox) for (let c = 0; c < ci; ++c) for (let m = 0; m < mult; ++m) {
    let acc = 0; const terms = [];
    for (let i = 0; i < kh; ++i) for (let j = 0; j < kw; ++j) {
      const iy = oy * s + i - g.pt, ix = ox * s + j - g.pl;
      if (iy < 0 || ix < 0 || iy >= x.shape[1] || ix >= x.shape[2]) continue;
      const xv = at(x, 0, iy, ix, c), wv = w.data[((i * kw + j) * ci + c) * mult + m];
      acc += xv * wv;
      if (trace && xv !== 0 && wv !== 0) terms.push(`x[${iy},${ix},${c}]*w[${i},${j},${c},${m}] = ${xv}*${wv}`);
    }
    y.data[((oy * g.ow) + ox) * ci * mult + c * mult + m] = acc;
    if (trace && trace.at[0] === oy && trace.at[1] === ox && trace.at[2] === c * mult + m) trace.terms = terms;
  }
  return y;
}
function refMaxPool(x, padding) {
  const g = geometry(x, 2, 2, 2, padding);
  const C = x.shape[3];
  const y = new T([1, g.oh, g.ow, C]);
  for (let oy = 0; oy < g.oh; ++oy) for (let ox = 0; ox < g.ow; ++ox) for (let c = 0; c < C; ++c) {
    let m = -Infinity;  // padded positions never win (TF pads MaxPool with -inf)
    for (let i = 0; i < 2; ++i) for (let j = 0; j < 2; ++j) {
      const iy = oy * 2 + i - g.pt, ix = ox * 2 + j - g.pl;
      if (iy < 0 || ix < 0 || iy >= x.shape[1] || ix >= x.shape[2]) continue;
      m = Math.max(m, at(x, 0, iy, ix, c));
    }
    y.data[((oy * g.ow) + ox) * C + c] = m;
  }
  return y;
}
function refPad(x, p) {
  const s = x.shape.map((d, k) => d + p[2 * k] + p[2 * k + 1]);
  const y = new T(s);
  for (let n = 0; n < x.shape[0]; ++n) for (let i = 0; i < x.shape[1]; ++i) for (let j = 0; j < x.shape[2]; ++j) for (let c = 0; c < x.shape[3]; ++c)
    y.data[(((n + p[0]) * s[1] + i + p[2]) * s[2] + j + p[4]) * s[3] + c + p[6]] = at(x, n, i, j, c);
  return y;
}
const refAdd = (a, b) => new T(a.shape, a.data.map((v, i) => v + b.data[i]));
const refRelu = (a) => new T(a.shape, a.data.map((v) => Math.max(0, v)));

function reference(traces) {
  const w = (n) => new T(W[n][0], W[n][2]);
  const r = {};
  r.input = new T(IN_SHAPE, inputValues);
  r.pad = refPad(r.input, W['pad/paddings'][2]);
  r.conv_valid = refConv(r.pad, w('conv_valid/filter'), w('conv_valid/bias'), 1, 'VALID', false);
  r.pool_valid = refMaxPool(r.conv_valid, 'VALID');
  r.pool_same = refMaxPool(r.conv_valid, 'SAME');
  r.conv_s2 = refConv(r.input, w('conv_s2/filter'), w('conv_s2/bias'), 2, 'SAME', true, traces.conv_s2);
  r.dw_same = refDepthwise(r.input, w('dw_same/filter'), 1, 'SAME');
  r.add = refAdd(r.dw_same, r.input);
  r.relu = refRelu(r.add);
  r.dw_s2 = refDepthwise(r.relu, w('dw_s2/filter'), 2, 'SAME', traces.dw_s2);
  r.conv_1x1 = refConv(r.dw_s2, w('conv_1x1/filter'), w('conv_1x1/bias'), 1, 'VALID', false);
  r.add_1 = refAdd(r.conv_1x1, r.pool_valid);
  r.reshape_a = new T([1, 9, 4], r.conv_s2.data);
  r.reshape_b = new T([1, 9, 3], r.add_1.data);
  return r;
}

// ---- malformed variants -------------------------------------------------------------------------
function badVariants(good) {
  const clone = () => JSON.parse(JSON.stringify(good));
  const node = (m, n) => m.modelTopology.node.find((x) => x.name === n);
  const entry = (m, n) => m.weightsManifest[0].weights.find((x) => x.name === n);
  const rel = (m) => { m.weightsManifest[0].paths = ['../weights.bin']; return m; };
  const v = {};
  { const m = rel(clone()); node(m, 'relu').op = 'Sigmoid'; v.unsupported_op = m; }
  {
    const m = rel(clone());  // conv_1x1/bias declared [4] instead of [3], in the manifest and its Const
    entry(m, 'conv_1x1/bias').shape = [4];
    node(m, 'conv_1x1/bias').attr.value.tensor.tensorShape = dims([4]);
    v.weights_size_mismatch = m;
  }
  { const m = rel(clone()); node(m, 'add').input = ['dw_same', 'no_such_node']; v.dangling_input = m; }
  {
    const m = rel(clone());  // same 4 bytes per element, so the byte total still matches
    entry(m, 'conv_s2/bias').dtype = 'uint32';
    node(m, 'conv_s2/bias').attr.value.tensor.dtype = 'DT_UINT32';
    node(m, 'conv_s2/bias').attr.dtype.type = 'DT_UINT32';
    v.bad_dtype = m;
  }
  return v;
}

async function tryTfjs(jsonPath) {
  try {
    const m = await tf.loadGraphModel(fileHandler(jsonPath));
    const x = tf.tensor4d(inputValues, IN_SHAPE);
    const ys = m.execute({ 'input:0': x }, Object.keys(OUT_SHAPES));
    return 'TF.js loads and runs it: ' + ys.map((t) => JSON.stringify(t.shape)).join(' ');
  } catch (e) {
    return 'TF.js refuses it: ' + String(e.message).split('\n')[0];
  }
}

async function main() {
  await tf.setBackend('cpu');
  await tf.ready();
  fs.mkdirSync(badDir, { recursive: true });
  const model = buildModel();
  const bin = weightsBin();
  fs.writeFileSync(path.join(outDir, 'model.json'), JSON.stringify(model, null, 1) + '\n');
  fs.writeFileSync(path.join(outDir, 'weights.bin'), bin);

  // TF.js on the files just written.
  const gm = await tf.loadGraphModel(fileHandler(path.join(outDir, 'model.json')));
  const x = tf.tensor4d(inputValues, IN_SHAPE, 'float32');
  const inter = OPS.filter((n) => n.op !== 'Placeholder' && n.op !== 'Identity').map((n) => n.name);
  const outNames = [...Object.keys(OUT_SHAPES), ...inter];
  const ys = gm.execute({ 'input:0': x }, outNames);
  const got = {};
  outNames.forEach((n, k) => { got[n] = { shape: ys[k].shape, values: Array.from(ys[k].dataSync()) }; });

  // The independent reference must agree exactly (all values are exact in float32).
  const traces = { conv_s2: { at: [1, 1, 2] }, dw_s2: { at: [1, 2, 1] } };
  const ref = reference(traces);
  const identityOf = { 'Identity:0': 'reshape_a', 'Identity_1:0': 'reshape_b', 'Identity_2:0': 'pool_same', 'Identity_3:0': 'dw_s2' };
  for (const n of outNames) {
    const r = ref[identityOf[n] ?? n];
    const g = got[n];
    if (JSON.stringify(r.shape) !== JSON.stringify(g.shape)) throw new Error(`${n}: shape ${g.shape} vs reference ${r.shape}`);
    r.data.forEach((v, i) => { if (Math.fround(v) !== g.values[i]) throw new Error(`${n}[${i}]: tfjs ${g.values[i]} vs reference ${v}`); });
  }

  // Worked by hand (see the note): conv_s2 at (1,1) channel 2, and dw_s2 at (1,2) channel 1.
  const convVal = got['conv_s2'].values[(1 * 3 + 1) * 4 + 2];
  const dwVal = got['dw_s2'].values[(1 * 3 + 2) * 2 + 1];
  const HAND_CONV = 6.5, HAND_DW = 8.375;  // computed by hand, see hand_checked
  if (convVal !== HAND_CONV || dwVal !== HAND_DW) throw new Error(`hand check: conv ${convVal} dw ${dwVal}`);

  const outputs = {};
  for (const n of Object.keys(OUT_SHAPES)) outputs[n] = got[n];
  const intermediates = {};
  for (const n of inter) intermediates[n] = got[n];
  const expected = {
    note: 'TensorFlow.js outputs of tests/fixtures/tfjs_tiny/model.json (+ weights.bin) for the input ' +
      'below, from tests/reference/tfjs/make_tiny_graph.mjs (cd tests/reference/tfjs && npm ci && node ' +
      'make_tiny_graph.mjs). Every weight and input is a multiple of 1/8 with small magnitude, so all ' +
      'values are exact in float32 and a correct reader must match them EXACTLY (tolerance 0 is safe; ' +
      '1e-6 is generous). Values are row-major (NHWC for 4-D). The script also checks every tensor ' +
      'against its own naive implementation of TensorFlow\'s definitions, independent of TF.js. ' +
      '"intermediates" holds every op\'s output (node name -> value; TF.js can fetch any node), for ' +
      'debugging; the graph\'s outputs are Identity:0..Identity_3:0.',
    tfjs_version: tfjsVersion,
    tfjs_backend: tf.getBackend(),
    structure: [
      'input Placeholder [1,6,6,2]',
      'pad = Pad(input, [[0,0],[1,2],[2,1],[0,2]]) -> [1,9,9,4] (zeros; top 1, bottom 2, left 2, right 1, 2 extra channels after)',
      'conv_valid = _FusedConv2D[BiasAdd](pad, 3x3x4x3, stride 1, VALID) -> [1,7,7,3]',
      'pool_valid = MaxPool 2x2 stride 2 VALID (conv_valid) -> [1,3,3,3] (last row/column dropped)',
      'pool_same = MaxPool 2x2 stride 2 SAME (conv_valid) -> [1,4,4,3] (7 -> 4, pad 0 top/left, 1 bottom/right)',
      'conv_s2 = _FusedConv2D[BiasAdd,Relu](input, 3x3x2x4, stride 2, SAME) -> [1,3,3,4] (6 -> 3: total pad 1, 0 top/left, 1 bottom/right)',
      'dw_same = DepthwiseConv2dNative(input, 3x3x2x1, stride 1, SAME) -> [1,6,6,2] (pad 1 each side)',
      'add = AddV2(dw_same, input); relu = Relu(add) -> [1,6,6,2]',
      'dw_s2 = DepthwiseConv2dNative(relu, 3x3x2x1, stride 2, SAME) -> [1,3,3,2] (pad 0 top/left, 1 bottom/right)',
      'conv_1x1 = _FusedConv2D[BiasAdd](dw_s2, 1x1x2x3, stride 1, VALID) -> [1,3,3,3]',
      'add_1 = AddV2(conv_1x1, pool_valid) -> [1,3,3,3]',
      'reshape_a = Reshape(conv_s2, [1,9,4]); reshape_b = Reshape(add_1, [1,-1,3]) -> [1,9,3]',
      'Identity:0 = reshape_a [1,9,4]; Identity_1:0 = reshape_b [1,9,3]; Identity_2:0 = pool_same [1,4,4,3]; Identity_3:0 = dw_s2 [1,3,3,2]',
    ],
    weights: Object.fromEntries(Object.entries(W).map(([n, [s, d, , def]]) => [n, { shape: s, dtype: d, definition: def }])),
    input: { name: 'input:0', shape: IN_SHAPE, definition: INPUT_DEF, values: inputValues },
    outputs,
    intermediates,
    hand_checked: {
      note: 'Worked out by hand from TensorFlow\'s definitions (NHWC input x[y,x,c] without the batch ' +
        'index, HWIO filter w[kh,kw,in,out]; depthwise filter w[kh,kw,c,multiplier]; SAME: ' +
        'out = ceil(in/stride), total pad = max(0,(out-1)*stride + k - in), top/left = floor(total/2), ' +
        'the rest bottom/right). Only nonzero terms are listed; positions in the padding contribute 0.',
      conv_s2_at_y1_x1_c2: {
        where: 'conv_s2 (= Identity:0 [0, 1*3+1, 2], flat index 18), stride 2 SAME on 6x6: total pad 1, ' +
          'so top/left pad 0 (bottom/right 1) and the window of output (1,1) is input rows 2..4, ' +
          'columns 2..4 (a symmetric pad of 1, as in PyTorch padding=1, would use rows 1..3 and give a ' +
          'different value). Input x[y,x,c] from the formula; filter w[kh,kw,ci,2] = ((3i+1) mod 7 - 3)/4 ' +
          'with i = ((3kh+kw)*2+ci)*4+2; bias[2] = 1',
        terms: traces.conv_s2.terms,
        arithmetic: null,  // filled below
        value: convVal,
      },
      dw_s2_at_y1_x2_c1: {
        where: 'dw_s2 (= Identity_3:0 [0,1,2,1], flat index 11), stride 2 SAME on 6x6: the window of ' +
          'output (1,2) is relu rows 2..4, columns 4..6, column 6 being the right padding (a symmetric ' +
          'pad would use columns 3..5). x here is relu (intermediates.relu), channel 1; filter ' +
          'w[kh,kw,1,0] = ((4i+2) mod 7 - 3)/2 with i = (3kh+kw)*2+1',
        relu_window_c1_rows2to4_cols4to5: [2, 3, 4].map((yy) => [4, 5].map((xx) => got.relu.values[(yy * 6 + xx) * 2 + 1])),
        filter_c1: [0, 1, 2].map((i) => [0, 1, 2].map((j) => W['dw_s2/filter'][2][(i * 3 + j) * 2 + 1])),
        terms: traces.dw_s2.terms,
        arithmetic: null,
        value: dwVal,
      },
    },
  };
  const arith = (terms, extra) => {
    const prods = terms.map((t) => t.split(' = ')[1]);
    return prods.join(' + ') + extra;
  };
  expected.hand_checked.conv_s2_at_y1_x1_c2.arithmetic =
    arith(traces.conv_s2.terms, ' + bias 1, then Relu') + ` = ${convVal}`;
  expected.hand_checked.dw_s2_at_y1_x2_c1.arithmetic = arith(traces.dw_s2.terms, '') + ` = ${dwVal}`;
  fs.writeFileSync(path.join(outDir, 'expected.json'), serialize(expected) + '\n');

  // Malformed variants, and what TF.js itself makes of them.
  const bad = badVariants(model);
  for (const [n, m] of Object.entries(bad)) {
    const p = path.join(badDir, `${n}.json`);
    fs.writeFileSync(p, JSON.stringify(m) + '\n');
    console.log(`bad/${n}.json: ${await tryTfjs(p)}`);
  }
  for (const f of ['model.json', 'weights.bin', 'expected.json'])
    console.log(`${f}: ${fs.statSync(path.join(outDir, f)).size} bytes`);
  console.log('conv_s2 check:', expected.hand_checked.conv_s2_at_y1_x1_c2.arithmetic);
  console.log('dw_s2 check:', expected.hand_checked.dw_s2_at_y1_x2_c1.arithmetic);
}

await main();
