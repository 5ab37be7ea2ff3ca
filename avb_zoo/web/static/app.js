// The avb-zoo page: samples a grid from a seed, walks between two latent codes, encodes a dropped or drawn
// image. Everything runs here with onnxruntime-web on the model's own graphs; noise comes from stream.js, the
// stream `avb-zoo sample` and `avb-zoo encode` draw from, so a seed means the same numbers in both.
"use strict";

const GRID = 64; // samples in the grid (8 x 8), as `avb-zoo sample -n 64`
const COLUMNS = 8;
const PAD = 2; // pixels between tiles, as avb_zoo.runtime.images.grid
const WALK_STEPS = 10;
const POSTERIOR_SAMPLES = 8; // besides the reconstruction
const state = { manifest: null, sampler: null, encoder: null, z: null, seed: 0, pad: null };

// what a test (or a curious user) can read back: the numbers behind every picture, and the page's timings
const avb = (window.avbZoo = { ready: false, error: null, encodeError: null, grid: null, walk: null });

class PageError extends Error {}

function show(id, text) {
  const el = document.getElementById(id);
  el.textContent = text;
  el.hidden = !text;
}

function fail(err) {
  const text = err instanceof PageError ? err.message : `The page stopped: ${err && err.message ? err.message : err}`;
  avb.error = text;
  show("message", text);
}

window.addEventListener("error", (e) => fail(e.error || e.message));
window.addEventListener("unhandledrejection", (e) => fail(e.reason));

function scaleFor(w, h, target) {
  return Math.max(1, Math.floor(target / Math.max(w, h)));
}

// ---- loading -------------------------------------------------------------------------------------------

async function fetchBytes(path, what) {
  let response;
  try {
    response = await fetch(path);
  } catch (err) {
    throw new PageError(`${path} could not be loaded (${err.message}); serve this folder over HTTP (avb-zoo serve).`);
  }
  if (!response.ok) {
    throw new PageError(`${path} is missing from this folder (HTTP ${response.status}): ${what}. ` +
      "Write the folder again with `avb-zoo export-web`.");
  }
  return new Uint8Array(await response.arrayBuffer());
}

async function loadManifest() {
  const bytes = await fetchBytes("model/page.json", "the page's description of the model");
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new PageError(`model/page.json is not valid JSON (${err.message}).`);
  }
}

// a graph, checked against page.json: input and output names, and the fixed width of every input
async function openGraph(name, inputs, outputs, widths) {
  const path = state.manifest.graphs[name];
  const bytes = await fetchBytes(path, `the model's ${name} graph`);
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  } catch (err) {
    throw new PageError(`${path} is not a usable ONNX graph: ${err.message}`);
  }
  const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
  if (!same(session.inputNames, inputs) || !same(session.outputNames, outputs)) {
    throw new PageError(`${path} has inputs [${session.inputNames}] and outputs [${session.outputNames}]; ` +
      `the ${name} graph has [${inputs}] and [${outputs}].`);
  }
  (session.inputMetadata || []).forEach((meta, i) => {
    const width = meta && meta.shape ? meta.shape[1] : undefined;
    if (typeof width === "number" && width !== widths[i]) {
      throw new PageError(`${path} takes ${inputs[i]} of width ${width}, but model/page.json gives ` +
        `${widths[i]}: the graph and the config do not belong together.`);
    }
  });
  return session;
}

async function run(session, feeds, output) {
  const tensors = {};
  for (const [name, [data, width]] of Object.entries(feeds)) {
    tensors[name] = new ort.Tensor("float32", data, [data.length / width, width]);
  }
  const result = await session.run(tensors);
  return result[output].data;
}

// ---- pictures ------------------------------------------------------------------------------------------

// tiles of [n, C*H*W] values in [0, 1] onto a canvas, row by row with PAD pixels between (as the CLI's grid)
function drawTiles(canvas, images, n, columns, displaySize) {
  const [c, h, w] = state.manifest.image_shape;
  const size = c * h * w;
  const rows = Math.ceil(n / columns);
  const width = columns * (w + PAD) + PAD;
  const height = rows * (h + PAD) + PAD;
  canvas.width = width;
  canvas.height = height;
  const scale = scaleFor(width, height, displaySize);
  canvas.style.width = `${width * scale}px`;
  canvas.style.height = `${height * scale}px`;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(width, height);
  img.data.fill(255);
  for (let i = 0; i < n; i++) {
    const top = PAD + Math.floor(i / columns) * (h + PAD);
    const left = PAD + (i % columns) * (w + PAD);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const at = 4 * ((top + y) * width + left + x);
        for (let k = 0; k < 3; k++) {
          const channel = c === 1 ? 0 : k;
          const v = images[i * size + channel * h * w + y * w + x];
          img.data[at + k] = Math.round(255 * Math.min(1, Math.max(0, v)));
        }
      }
    }
  }
  ctx.putImageData(img, 0, 0);
  return scale;
}

function renderHeader() {
  const m = state.manifest;
  document.title = `${m.id} · avb-zoo`;
  document.getElementById("title").textContent = m.id;
  const metrics = document.getElementById("metrics");
  metrics.textContent = "";
  const facts = { latent_dim: m.latent_dim, image: m.image_shape.join("x"), ...m.metrics };
  for (const [key, value] of Object.entries(facts)) {
    const span = document.createElement("span");
    span.textContent = `${key}: ${typeof value === "number" && !Number.isInteger(value) ? value.toPrecision(5) : value}`;
    metrics.appendChild(span);
  }
  if (!Object.keys(m.metrics).length) {
    const span = document.createElement("span");
    span.textContent = "no metrics.json: this model has not been evaluated";
    metrics.appendChild(span);
  }
}

// ---- samples and walks ---------------------------------------------------------------------------------

function readSeed() {
  const text = document.getElementById("seed").value.trim();
  if (!/^-?\d+$/.test(text)) throw new PageError(`The seed must be a whole number, got "${text}".`);
  return BigInt(text);
}

async function drawGrid() {
  const d = state.manifest.latent_dim;
  state.seed = readSeed();
  state.z = AvbStream.normal(state.seed, state.manifest.streams.prior, GRID * d);
  const probs = await run(state.sampler, { z: [state.z, d] }, "probs");
  avb.grid = Array.from(probs);
  avb.seed = state.seed.toString();
  state.gridScale = drawTiles(document.getElementById("grid"), probs, GRID, COLUMNS, 500);
  document.getElementById("seed-shown").textContent = `grid of seed ${state.seed}`;
}

function cellAt(event) {
  const [, h, w] = state.manifest.image_shape;
  const rect = event.target.getBoundingClientRect();
  const x = (event.clientX - rect.left) / state.gridScale;
  const y = (event.clientY - rect.top) / state.gridScale;
  const col = Math.min(COLUMNS - 1, Math.max(0, Math.floor((x - PAD / 2) / (w + PAD))));
  const row = Math.min(GRID / COLUMNS - 1, Math.max(0, Math.floor((y - PAD / 2) / (h + PAD))));
  return row * COLUMNS + col;
}

async function walk(from, to) {
  const d = state.manifest.latent_dim;
  const z = new Float32Array(WALK_STEPS * d);
  for (let s = 0; s < WALK_STEPS; s++) {
    const t = s / (WALK_STEPS - 1);
    for (let k = 0; k < d; k++) {
      const a = state.z[from * d + k];
      const b = state.z[to * d + k];
      z[s * d + k] = a + (b - a) * t;
    }
  }
  const probs = await run(state.sampler, { z: [z, d] }, "probs");
  avb.walk = { from, to, probs: Array.from(probs) };
  const strip = document.getElementById("walk");
  strip.hidden = false;
  drawTiles(strip, probs, WALK_STEPS, WALK_STEPS, 620);
  document.getElementById("walk-caption").textContent =
    `from cell ${from} to cell ${to} (row-major from 0): z = (1 - t) z_a + t z_b, ${WALK_STEPS} steps`;
}

// ---- encoding ------------------------------------------------------------------------------------------

const PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

// an image file as model input [C*H*W] in [0, 1], as `avb-zoo encode` reads a PNG (Pillow's luma for colour)
async function imageInput(file) {
  const [c, h, w] = state.manifest.image_shape;
  const bytes = new Uint8Array(await file.arrayBuffer());
  if (bytes.length < 8 || PNG_SIGNATURE.some((v, i) => bytes[i] !== v)) {
    throw new PageError(`${file.name} is not a PNG image; drop a ${w}x${h} PNG.`);
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }),
      { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch (err) {
    throw new PageError(`${file.name} is not a readable PNG image.`);
  }
  if (bitmap.width !== w || bitmap.height !== h) {
    throw new PageError(`${file.name} is ${bitmap.width}x${bitmap.height} pixels; the model takes ${w}x${h}.`);
  }
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const x = new Float32Array(c * h * w);
  for (let p = 0; p < h * w; p++) {
    const [r, g, b, a] = [rgba[4 * p], rgba[4 * p + 1], rgba[4 * p + 2], rgba[4 * p + 3]];
    if (a !== 255) {
      throw new PageError(`${file.name} has transparent pixels; the model reads opaque images (grey or RGB).`);
    }
    if (c === 1) {
      x[p] = Math.fround(((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) / 255);
    } else {
      [r, g, b].forEach((v, k) => (x[k * h * w + p] = Math.fround(v / 255)));
    }
  }
  return x;
}

async function encode(x) {
  const m = state.manifest;
  const n = 1 + POSTERIOR_SAMPLES;
  state.seed = readSeed();
  const xs = new Float32Array(n * m.x_dim);
  for (let i = 0; i < n; i++) xs.set(x, i * m.x_dim);
  const eps = AvbStream.normal(state.seed, m.streams.encoder_noise, n * m.noise_dim);
  const z = await run(state.encoder, { x: [xs, m.x_dim], eps: [eps, m.noise_dim] }, "z");
  const probs = await run(state.sampler, { z: [z, m.latent_dim] }, "probs");
  avb.encoded = { seed: state.seed.toString(), x: Array.from(x), z: Array.from(z), probs: Array.from(probs) };
  const pair = new Float32Array(2 * m.x_dim);
  pair.set(x, 0);
  pair.set(probs.subarray(0, m.x_dim), m.x_dim);
  drawTiles(document.getElementById("recon"), pair, 2, 2, 200);
  drawTiles(document.getElementById("posterior"), probs.subarray(m.x_dim), POSTERIOR_SAMPLES, 4, 300);
}

async function guarded(task) {
  show("encode-message", "");
  avb.encodeError = null;
  try {
    if (!state.encoder) throw new PageError("The encoder graph is not loaded, so images cannot be encoded.");
    await task();
  } catch (err) {
    const text = err instanceof PageError ? err.message : `Encoding failed: ${err.message || err}`;
    avb.encodeError = text;
    show("encode-message", text);
  }
}

function setupDrop() {
  const drop = document.getElementById("drop");
  const onFile = (file) => guarded(async () => encode(await imageInput(file)));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) onFile(e.dataTransfer.files[0]);
  });
  document.getElementById("file").addEventListener("change", (e) => {
    if (e.target.files.length) onFile(e.target.files[0]);
  });
}

function setupPad() {
  const [c, h, w] = state.manifest.image_shape;
  const canvas = document.getElementById("pad");
  canvas.width = w;
  canvas.height = h;
  const scale = scaleFor(w, h, 196);
  canvas.style.width = `${w * scale}px`;
  canvas.style.height = `${h * scale}px`;
  state.pad = new Float32Array(h * w);
  const paint = () => {
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    state.pad.forEach((v, p) => {
      img.data.fill(Math.round(255 * v), 4 * p, 4 * p + 3);
      img.data[4 * p + 3] = 255;
    });
    ctx.putImageData(img, 0, 0);
  };
  let down = false;
  const stroke = (e) => {
    const rect = canvas.getBoundingClientRect();
    const cx = Math.floor((e.clientX - rect.left) / scale);
    const cy = Math.floor((e.clientY - rect.top) / scale);
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const x = cx + dx;
        const y = cy + dy;
        if (x < 0 || y < 0 || x >= w || y >= h) continue;
        const v = dx === 0 && dy === 0 ? 1 : 0.5;
        state.pad[y * w + x] = Math.max(state.pad[y * w + x], v);
      }
    }
    paint();
  };
  canvas.addEventListener("pointerdown", (e) => { down = true; stroke(e); });
  canvas.addEventListener("pointermove", (e) => { if (down) stroke(e); });
  window.addEventListener("pointerup", () => (down = false));
  document.getElementById("clear").addEventListener("click", () => { state.pad.fill(0); paint(); });
  document.getElementById("encode-drawing").addEventListener("click", () => guarded(async () => {
    const x = new Float32Array(c * h * w);
    for (let k = 0; k < c; k++) x.set(state.pad, k * h * w);
    await encode(x);
  }));
  paint();
}

// ---- start ---------------------------------------------------------------------------------------------

async function main() {
  if (typeof WebAssembly !== "object" || typeof WebAssembly.instantiate !== "function") {
    throw new PageError("This browser has no WebAssembly, which onnxruntime-web needs to run the model. " +
      "Open the page in a browser with WebAssembly enabled.");
  }
  if (typeof ort === "undefined") {
    throw new PageError("onnxruntime-web (ort/ort.wasm.min.js) did not load; write the folder again with " +
      "`avb-zoo export-web`.");
  }
  state.manifest = await loadManifest();
  const m = state.manifest;
  renderHeader();
  ort.env.wasm.wasmPaths = new URL("ort/", window.location.href).href;
  const threads = self.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
  ort.env.wasm.numThreads = threads;
  avb.threads = threads;
  document.getElementById("footer").textContent = `onnxruntime-web ${m.onnxruntime_web} on WebAssembly, ` +
    `${threads} thread(s)${self.crossOriginIsolated ? " (cross-origin isolated)" : ""}. ` +
    "Nothing leaves this page: the graphs run here.";
  const scriptStart = performance.now();
  state.sampler = await openGraph("sampler", ["z"], ["probs"], [m.latent_dim]);
  const samplerReady = performance.now();
  await drawGrid();
  avb.firstGridMs = performance.now();
  // where the time to the first grid goes: the page and its scripts, onnxruntime-web's start and the sampler
  // graph's session, then z, the sampler run at batch 64 and painting
  avb.timings = { scriptsMs: scriptStart, sessionMs: samplerReady - scriptStart, gridMs: avb.firstGridMs - samplerReady };
  document.getElementById("sample").addEventListener("click", () => {
    show("message", ""); // a bad seed's message goes once a good one draws
    avb.error = null;
    drawGrid().catch(fail);
  });
  const grid = document.getElementById("grid");
  grid.addEventListener("pointerdown", (e) => (state.dragFrom = cellAt(e)));
  grid.addEventListener("pointerup", (e) => {
    const to = cellAt(e);
    if (state.dragFrom !== undefined && to !== state.dragFrom) walk(state.dragFrom, to).catch(fail);
    state.dragFrom = undefined;
  });
  avb.walkTo = (from, to) => walk(from, to); // the same walk, for scripts
  setupPad();
  setupDrop();
  try {
    state.encoder = await openGraph("encoder", ["x", "eps"], ["z"], [m.x_dim, m.noise_dim]);
  } catch (err) {
    show("encode-message", err.message);
    avb.encodeError = err.message;
    throw err;
  }
  avb.ready = true;
}

main().catch(fail).finally(() => (avb.done = true));
