// Records TensorFlow.js reference outputs of the committed BlazeFace graph model
// (models/third_party/blazeface/) for fervid's TF.js graph-model reader tests.
//
//   cd tests/reference/tfjs && npm ci && node record_blazeface.mjs
//
// Writes tests/fixtures/blazeface_reference.json. No network: the model is read from the
// committed files through a custom tf.io IOHandler, and the backend is TF.js's pure-JS 'cpu'.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { PNG } from 'pngjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const modelJson = path.join(root, 'models/third_party/blazeface/blazeface.json');
const astronautPng = path.join(root, 'examples/astronaut.png');
const outFile = path.join(root, 'tests/fixtures/blazeface_reference.json');
const require = createRequire(import.meta.url);
const tfjsVersion = require('@tensorflow/tfjs/package.json').version;
const pngjsVersion = require('pngjs/package.json').version;

// An IOHandler that reads model.json and its weight files (paths relative to model.json's folder),
// concatenated in manifest order, exactly as tf.io.http would fetch them.
export function fileHandler(jsonPath) {
  return {
    load: async () => {
      const m = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
      const dir = path.dirname(jsonPath);
      const weightSpecs = [];
      const buffers = [];
      for (const group of m.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
      }
      const all = Buffer.concat(buffers);
      const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
      return {
        modelTopology: m.modelTopology, weightSpecs, weightData, format: m.format,
        generatedBy: m.generatedBy, convertedBy: m.convertedBy,
        userDefinedMetadata: m.userDefinedMetadata, signature: m.signature,
      };
    },
  };
}

const H = 256, W = 256, C = 3;
const OUTPUTS = ['Identity:0', 'Identity_1:0', 'Identity_2:0', 'Identity_3:0'];

// (a) synthetic input.
function syntheticInput() {
  const v = new Float32Array(H * W * C);
  for (let y = 0; y < H; ++y)
    for (let x = 0; x < W; ++x)
      for (let c = 0; c < C; ++c) v[(y * W + x) * C + c] = Math.sin(0.05 * x + 0.07 * y + c);
  return v;
}

// (b) astronaut.png, RGB, 2x2 box mean, x/127.5-1.
function astronautInput() {
  const png = PNG.sync.read(fs.readFileSync(astronautPng));  // .data is RGBA, 8 bits per channel
  if (png.width !== 512 || png.height !== 512) throw new Error(`astronaut.png is ${png.width}x${png.height}`);
  const v = new Float32Array(H * W * C);
  const px = (yy, xx, c) => png.data[(yy * png.width + xx) * 4 + c];
  for (let y = 0; y < H; ++y)
    for (let x = 0; x < W; ++x)
      for (let c = 0; c < C; ++c) {
        const m = (px(2 * y, 2 * x, c) + px(2 * y, 2 * x + 1, c) + px(2 * y + 1, 2 * x, c) +
                   px(2 * y + 1, 2 * x + 1, c)) / 4;
        v[(y * W + x) * C + c] = m / 127.5 - 1;  // double arithmetic, rounded once to float32
      }
  return v;
}

// Anchors of the 256x256 "back camera" BlazeFace: 16x16 grid (stride 16) x 2 anchors, then
// 8x8 grid (stride 32) x 6 anchors; centres ((x+0.5)/grid, (y+0.5)/grid), row-major y then x.
function anchors() {
  const a = [];
  for (const [grid, per] of [[16, 2], [8, 6]])
    for (let y = 0; y < grid; ++y)
      for (let x = 0; x < grid; ++x)
        for (let k = 0; k < per; ++k) a.push([(x + 0.5) / grid, (y + 0.5) / grid]);
  return a;
}

const sig6 = (x) => Number(x.toPrecision(6));
const sigmoid = (x) => 1 / (1 + Math.exp(-x));

function summary(out) {
  const scores = [...out['Identity:0'], ...out['Identity_1:0']];
  const reg = (i) => (i < 512 ? out['Identity_2:0'].slice(i * 16, i * 16 + 16)
                              : out['Identity_3:0'].slice((i - 512) * 16, (i - 512) * 16 + 16));
  const anc = anchors();
  const order = scores.map((s, i) => [s, i]).sort((p, q) => q[0] - p[0]).slice(0, 5);
  return order.map(([s, i]) => {
    const r = reg(i);
    const cx = anc[i][0] * 256 + r[0], cy = anc[i][1] * 256 + r[1], w = r[2], h = r[3];
    const kp = [];
    for (let k = 0; k < 6; ++k)
      kp.push([sig6(anc[i][0] * 256 + r[4 + 2 * k]), sig6(anc[i][1] * 256 + r[5 + 2 * k])]);
    return {
      anchor: i, layer: i < 512 ? '16x16x2' : '8x8x6', anchor_centre: anc[i].map(sig6),
      logit: sig6(s), sigmoid: sig6(sigmoid(s)),
      box_256_xywh: [cx - w / 2, cy - h / 2, w, h].map(sig6),
      box_512_x0y0x1y1: [2 * (cx - w / 2), 2 * (cy - h / 2), 2 * (cx + w / 2), 2 * (cy + h / 2)].map((z) => Number(z.toFixed(1))),
      keypoints_256: kp,
    };
  });
}

function stats(v) {
  let sum = 0, sumAbs = 0;
  for (const x of v) { sum += x; sumAbs += Math.abs(x); }
  const idx = [0, 1, 2, 3 * (W * 100 + 120), 3 * (W * 100 + 120) + 1, 3 * (W * 100 + 120) + 2, v.length - 1];
  return {
    sum: sig6(sum), abs_sum: sig6(sumAbs),
    samples: idx.map((i) => ({ flat: i, y: Math.floor(i / (W * C)), x: Math.floor(i / C) % W, c: i % C, value: v[i] })),
  };
}

async function main() {
  await tf.setBackend('cpu');
  await tf.ready();
  if (tf.getBackend() !== 'cpu') throw new Error('backend is not cpu');
  const model = await tf.loadGraphModel(fileHandler(modelJson));

  const inputs = [
    {
      id: 'synthetic_sin',
      definition: 'NHWC [1,256,256,3] float32; value(y,x,c) = sin(0.05*x + 0.07*y + c) for y,x in 0..255 ' +
        '(row y, column x), c in 0..2, computed in double precision and rounded once to float32 ' +
        '(C++: static_cast<float>(std::sin(0.05*x + 0.07*y + c)) with x,y,c as double). Flat index ' +
        '(y*256 + x)*3 + c. Values lie in [-1,1]; used as-is (no further normalisation).',
      values: syntheticInput(),
    },
    {
      id: 'astronaut_box2x2',
      definition: 'examples/astronaut.png (512x512, 8-bit RGB, no gamma/ICC chunks) decoded to R,G,B ' +
        'in that order (OpenCV imread gives B,G,R: channel c here = OpenCV channel 2-c). ' +
        'Downsampled to 256x256 by exact 2x2 box mean: m(y,x,c) = (P(2y,2x,c) + P(2y,2x+1,c) + ' +
        'P(2y+1,2x,c) + P(2y+1,2x+1,c)) / 4 with P(row,col,c) the 0..255 integer, no rounding ' +
        '(m is a multiple of 0.25). Input value(y,x,c) = m/127.5 - 1 computed in double precision ' +
        'and rounded once to float32 (C++: static_cast<float>(m / 127.5 - 1.0)). NHWC ' +
        '[1,256,256,3], flat index (y*256 + x)*3 + c, c = 0 R, 1 G, 2 B.',
      values: astronautInput(),
    },
  ];

  const records = [];
  for (const inp of inputs) {
    const x = tf.tensor4d(inp.values, [1, H, W, C], 'float32');
    const ys = model.execute({ 'input:0': x }, OUTPUTS);
    const out = {};
    const shapes = {};
    for (let k = 0; k < OUTPUTS.length; ++k) {
      out[OUTPUTS[k]] = Array.from(ys[k].dataSync());
      shapes[OUTPUTS[k]] = ys[k].shape;
    }
    tf.dispose([x, ...ys]);
    const rec = {
      id: inp.id, definition: inp.definition, input_check: stats(inp.values),
      output_shapes: shapes, top5_anchors: summary(out), outputs: {},
    };
    for (const k of OUTPUTS) rec.outputs[k] = out[k].map(sig6);
    records.push(rec);
    const t = rec.top5_anchors[0];
    console.log(`${inp.id}: best anchor ${t.anchor} logit ${t.logit} sigmoid ${t.sigmoid} ` +
                `box(256, x y w h) ${t.box_256_xywh.join(' ')}`);
  }

  const doc = {
    note: 'Reference outputs of models/third_party/blazeface/blazeface.json (+ blazeface.bin) computed ' +
      'by TensorFlow.js itself (graph model executed by @tensorflow/tfjs-converter on the pure-JS CPU ' +
      'backend, float32). Regenerate: cd tests/reference/tfjs && npm ci && node record_blazeface.mjs. ' +
      'Outputs are the FULL raw tensors flattened row-major, each value rounded to 6 significant ' +
      'digits: Identity:0 [1,512,1] and Identity_1:0 [1,384,1] are score logits of the 512 16x16x2 and ' +
      '384 8x8x6 anchors; Identity_2:0 [1,512,16] and Identity_3:0 [1,384,16] are their regressors ' +
      '(dx, dy, w, h, then 6 keypoints x,y; pixels of the 256 input). Anchor index in top5_anchors ' +
      'is into the 896 = 512 then 384 concatenation; anchor centre ((x+0.5)/grid, (y+0.5)/grid); box ' +
      'centre = centre*256 + raw[0..1], size raw[2..3]. input_check: sum and sum of |value| of the float32 input values (accumulated in double, 6 digits) and a ' +
      'few exact input values, to check a reimplementation of the input.',
    model: 'models/third_party/blazeface/blazeface.json',
    input_name: 'input:0',
    tfjs_version: tfjsVersion,
    tfjs_backend: tf.getBackend(),
    png_decoder: `pngjs ${pngjsVersion}`,
    node_version: process.version,
    inputs: records,
  };
  fs.writeFileSync(outFile, serialize(doc) + '\n');
  console.log(`wrote ${outFile} (${fs.statSync(outFile).size} bytes)`);
}

// JSON with indentation, but arrays of numbers (and arrays of such arrays) kept on one line.
export function serialize(v, ind = '') {
  const flat = (a) => Array.isArray(a) && a.every((e) => typeof e === 'number' || flat(e));
  if (flat(v)) return JSON.stringify(v);
  const ind2 = ind + '  ';
  if (Array.isArray(v)) return '[\n' + v.map((e) => ind2 + serialize(e, ind2)).join(',\n') + '\n' + ind + ']';
  if (v !== null && typeof v === 'object')
    return '{\n' + Object.entries(v).map(([k, e]) => ind2 + JSON.stringify(k) + ': ' + serialize(e, ind2)).join(',\n') + '\n' + ind + '}';
  return JSON.stringify(v);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
