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

class PageError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status; // the HTTP status behind it, where there is one
  }
}

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
    throw new PageError(`${path.split("?")[0]} is missing from this folder (HTTP ${response.status}): ${what}. ` +
      "Write the folder again with `avb-zoo export-web`.", response.status);
  }
  return new Uint8Array(await response.arrayBuffer());
}

// HTTP status of a file of this folder, without downloading it (0: no answer)
async function statusOf(path) {
  try {
    return (await fetch(path, { method: "HEAD", cache: "no-store" })).status;
  } catch (err) {
    return 0;
  }
}

async function loadManifest() {
  let bytes;
  try {
    bytes = await fetchBytes("model/page.json", "the page's description of the model");
  } catch (err) {
    if (err.status === 404 && (await statusOf("model/config.json")) === 404) {
      throw new PageError("This folder has no model: model/page.json and model/config.json are missing " +
        "(HTTP 404). The page needs the folder `avb-zoo export-web` writes; write it again.");
    }
    throw err;
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new PageError(`model/page.json is not valid JSON (${err.message}).`);
  }
}

// onnxruntime-web's WebAssembly files, asked for before onnxruntime-web needs them: a missing one is named here
// (onnxruntime-web itself would only say that no backend is available, after several console errors)
async function checkRuntime() {
  const runtime = state.manifest.runtime;
  const statuses = await Promise.all([runtime.wasm, runtime.mjs].map(statusOf));
  for (const [i, path] of [runtime.wasm, runtime.mjs].entries()) {
    const status = statuses[i];
    if (status !== 200) {
      throw new PageError(`${path.split("?")[0]} is missing from this folder (HTTP ${status || "no answer"}): ` +
        "onnxruntime-web cannot start without its WebAssembly files, so nothing can be sampled or encoded. " +
        "Write the folder again with `avb-zoo export-web`.");
    }
  }
}

// a graph, checked against page.json: input and output names, and the fixed width of every input
async function openGraph(name, inputs, outputs, widths) {
  const url = state.manifest.graphs[name];
  const path = url.split("?")[0];
  const bytes = await fetchBytes(url, `the model's ${name} graph`);
  await state.runtimeChecked; // asked for while the graph downloads; a missing file is named, not tried
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  } catch (err) {
    if (/no available backend/i.test(err.message)) {
      throw new PageError(`onnxruntime-web's WebAssembly did not start, so nothing can be sampled or encoded: ` +
        `${err.message}`);
    }
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
  canvas.style.width = `${width * scale}px`; // at most the column's width (style.css); the height follows
  canvas.hidden = false;
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
  const [c, h, w] = m.image_shape;
  const title = m.title || m.id;
  document.title = `${title} (${m.id}) · avb-zoo`;
  document.getElementById("title").textContent = m.id;
  document.getElementById("subtitle").textContent = `${title}: a ${m.latent_dim}-dimensional latent code, ` +
    `${w}x${h} ${c === 1 ? "grey" : "colour"} images.`;
  const metrics = document.getElementById("metrics");
  metrics.textContent = "";
  const lines = m.metric_lines && m.metric_lines.length ? m.metric_lines
    : ["no metrics.json: this model has not been evaluated"];
  for (const line of lines) {
    const item = document.createElement("li");
    item.textContent = line;
    metrics.appendChild(item);
  }
}

// ---- samples and walks ---------------------------------------------------------------------------------

function readSeed() {
  const text = document.getElementById("seed").value.trim();
  if (!text) throw new PageError("The seed box is empty; type a whole number, such as 0 or 42.");
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
  drawTiles(document.getElementById("grid"), probs, GRID, COLUMNS, 500);
  document.getElementById("seed-shown").textContent = `grid of seed ${state.seed}`;
}

function cellAt(event) {
  const [, h, w] = state.manifest.image_shape;
  const rect = event.target.getBoundingClientRect();
  const scale = rect.width / event.target.width; // the grid as shown, however wide the window lets it be
  const x = (event.clientX - rect.left) / scale;
  const y = (event.clientY - rect.top) / scale;
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

// an image file as model input [C*H*W] in [0, 1], as `avb-zoo encode` reads a PNG (png.js: 16-bit grey kept,
// colour as Pillow's luma, a transparent sheet by its opacity); its size is checked from the header first
async function imageInput(file) {
  const m = state.manifest;
  const [c, h, w] = m.image_shape;
  const limit = m.max_image_pixels;
  let image;
  try {
    image = await AvbPng.decode(file, (header) => {
      const pixels = header.width * header.height;
      if (pixels > limit) {
        throw new PageError(`${file.name} declares ${header.width.toLocaleString("en")}x` +
          `${header.height.toLocaleString("en")} = ${pixels.toLocaleString("en")} pixels; input images are at ` +
          `most ${limit.toLocaleString("en")} pixels.`);
      }
      if (header.width !== w || header.height !== h) {
        throw new PageError(`${file.name} is ${header.width}x${header.height} pixels; the model takes ${w}x${h}.`);
      }
    });
  } catch (err) {
    if (err instanceof AvbPng.PngError) {
      throw new PageError(err.kind === "not-png" ? `${file.name} is not a PNG image; drop a ${w}x${h} PNG.`
        : `${file.name} is not a readable PNG image: ${err.message}.`);
    }
    throw err;
  }
  return AvbPng.modelInput(image, c);
}

function clearResults() {
  document.getElementById("results").hidden = true;
  avb.encoded = null;
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
  document.getElementById("results").hidden = false;
}

// one encoding at a time: the old result and message go first, a status line says what is under way
async function guarded(what, task) {
  show("encode-message", "");
  clearResults();
  avb.encodeError = null;
  show("encode-status", what);
  avb.busy = true;
  try {
    if (!state.encoder) throw new PageError("The encoder graph is not loaded, so images cannot be encoded.");
    await task();
  } catch (err) {
    const text = err instanceof PageError ? err.message : `Encoding failed: ${err.message || err}`;
    clearResults();
    avb.encodeError = text;
    show("encode-message", text);
  } finally {
    show("encode-status", "");
    avb.busy = false;
  }
}

function setupDrop() {
  const drop = document.getElementById("drop");
  const onFile = (file) => guarded(`reading ${file.name}...`, async () => encode(await imageInput(file)));
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
    const cx = Math.floor(((e.clientX - rect.left) * w) / rect.width);
    const cy = Math.floor(((e.clientY - rect.top) * h) / rect.height);
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
  const encodeDrawing = async () => {
    const x = new Float32Array(c * h * w);
    for (let k = 0; k < c; k++) x.set(state.pad, k * h * w);
    await encode(x);
  };
  document.getElementById("encode-drawing").addEventListener("click", () => guarded("encoding...", encodeDrawing));
  paint();
}

// ---- start ---------------------------------------------------------------------------------------------

async function main() {
  if (typeof WebAssembly !== "object" || typeof WebAssembly.instantiate !== "function") {
    throw new PageError("This browser has no WebAssembly, which onnxruntime-web needs to run the model. " +
      "Open the page in a browser with WebAssembly enabled.");
  }
  if (typeof AvbStream === "undefined" || typeof AvbPng === "undefined") {
    throw new PageError("The page's scripts (stream.js, png.js) did not load; write the folder again with " +
      "`avb-zoo export-web`.");
  }
  if (typeof ort === "undefined") {
    throw new PageError("onnxruntime-web (ort/ort.wasm.min.js) did not load; write the folder again with " +
      "`avb-zoo export-web`.");
  }
  state.manifest = await loadManifest();
  const m = state.manifest;
  renderHeader();
  const here = window.location.href;
  ort.env.wasm.wasmPaths = { wasm: new URL(m.runtime.wasm, here).href, mjs: new URL(m.runtime.mjs, here).href };
  state.runtimeChecked = checkRuntime();
  state.runtimeChecked.catch(() => {}); // reported where it is awaited (openGraph)
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
  document.getElementById("seed-form").addEventListener("submit", (e) => {
    e.preventDefault(); // the Sample button and Enter in the seed box
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

// until the page is ready, Enter in the seed box must not submit the form (which would reload the page)
document.getElementById("seed-form").addEventListener("submit", (e) => e.preventDefault());
main().catch(fail).finally(() => (avb.done = true));
