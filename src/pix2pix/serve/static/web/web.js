// pix2pix in the browser: draw or open an image on the left; ONNX Runtime Web translates
// it on the right. Reads model.json (written by `pix2pix export --format web`), runs
// model.onnx with the runtime in ort/ (WebGPU where the browser has it, else WASM).
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("input");
const ctx = canvas.getContext("2d", { willReadFrequently: true });
const out = $("output");
const outCtx = out.getContext("2d");

let info = null; // model.json
let session = null; // ort.InferenceSession
let backend = "wasm";
let tools = null; // drawingTools (canvas.js)
let busy = false;
let again = false;
let zSeed = 0; // a model with a latent code: the code on screen
let generation = 0; // translations shown

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.append(s);
  });
}

// A seeded standard-normal code (mulberry32 + Box-Muller): the same seed, the same code.
function normalCode(n, seed) {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const z = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(uniform()));
    const phi = 2 * Math.PI * uniform();
    z[i] = r * Math.cos(phi);
    if (i + 1 < n) z[i + 1] = r * Math.sin(phi);
  }
  return z;
}

// The canvas as the model's input (1, C, H, W) in [-1, 1]: RGB, or ITU-R 601 luma for a
// 1-channel model (as Pillow's "L", which `pix2pix translate` uses).
function canvasInput() {
  const { width: w, height: h } = canvas;
  const px = ctx.getImageData(0, 0, w, h).data;
  const c = info.in_channels;
  const x = new Float32Array(c * w * h);
  for (let i = 0; i < w * h; i++) {
    const r = px[4 * i];
    const g = px[4 * i + 1];
    const b = px[4 * i + 2];
    if (c === 1) {
      const y = Math.round((r * 19595 + g * 38470 + b * 7471 + 0x8000) / 65536);
      x[i] = y / 127.5 - 1;
    } else {
      x[i] = r / 127.5 - 1;
      x[w * h + i] = g / 127.5 - 1;
      x[2 * w * h + i] = b / 127.5 - 1;
    }
  }
  return new ort.Tensor("float32", x, [1, c, h, w]);
}

function showOutput(y, h, w) {
  const c = info.out_channels;
  const img = outCtx.createImageData(w, h);
  const level = (v) => Math.round((Math.min(1, Math.max(-1, v)) + 1) * 127.5);
  for (let i = 0; i < w * h; i++) {
    const r = level(y[i]);
    img.data[4 * i] = r;
    img.data[4 * i + 1] = c === 1 ? r : level(y[w * h + i]);
    img.data[4 * i + 2] = c === 1 ? r : level(y[2 * w * h + i]);
    img.data[4 * i + 3] = 255;
  }
  out.width = w;
  out.height = h;
  outCtx.putImageData(img, 0, 0);
}

// Translate the canvas once; `code` (Float32Array of nz) overrides the page's own.
async function run(code = null) {
  const feeds = { input: canvasInput() };
  if (info.nz > 0) {
    feeds.z = new ort.Tensor("float32", code || normalCode(info.nz, zSeed), [1, info.nz]);
  }
  const start = performance.now();
  const result = await session.run(feeds);
  const ms = performance.now() - start;
  showOutput(result.output.data, canvas.height, canvas.width);
  generation += 1;
  out.dataset.generation = String(generation);
  $("download").href = out.toDataURL("image/png");
  setStatus(`${canvas.width}×${canvas.height}: ${Math.round(ms)} ms (${backend})`);
  return ms;
}

async function translateCanvas() {
  if (busy) {
    again = true;
    return;
  }
  busy = true;
  try {
    await run();
  } catch (err) {
    setStatus(`translation failed: ${err}`, true);
  }
  busy = false;
  if (again) {
    again = false;
    translateCanvas();
  }
}

async function open(file) {
  try {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height); // the model's size
    translateCanvas();
  } catch (err) {
    setStatus(`${file.name}: cannot be read as an image (${err})`, true);
  }
}

async function start() {
  info = await (await fetch("model.json")).json();
  const wanted = new URLSearchParams(location.search).get("backend");
  const gpu = info.runtimes.includes("webgpu") && "gpu" in navigator && wanted !== "wasm";
  await loadScript(gpu ? "ort/ort.webgpu.min.js" : "ort/ort.wasm.min.js");
  ort.env.logLevel = "error"; // ONNX Runtime's warnings (an unknown CPU vendor) are noise here
  ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
  ort.env.wasm.numThreads = self.crossOriginIsolated
    ? Math.min(4, navigator.hardwareConcurrency || 1)
    : 1; // threads need a cross-origin isolated page
  try {
    session = await ort.InferenceSession.create("model.onnx", {
      executionProviders: gpu ? ["webgpu", "wasm"] : ["wasm"],
    });
    backend = gpu ? "webgpu" : "wasm";
  } catch (err) {
    if (!gpu) throw err;
    session = await ort.InferenceSession.create("model.onnx", { executionProviders: ["wasm"] });
  }
  const d = info.drawing;
  $("model").textContent =
    `${info.generator}, ${info.direction}, ${info.in_channels} → ${info.out_channels} ` +
    `channel(s), ${d.width}×${d.height}, batch norm: ${info.batch_norm}; ${backend}`;
  $("hint").textContent =
    d.mode === "palette" ? "label colours (the first is the background)" : "pen and eraser";
  tools = drawingTools(canvas, d, translateCanvas);
  $("clear").addEventListener("click", () => {
    tools.clear();
    translateCanvas();
  });
  $("upload").addEventListener("change", () => {
    const file = $("upload").files[0];
    $("upload").value = "";
    if (file) open(file);
  });
  if (info.nz > 0) {
    $("sampling").hidden = false;
    $("another").addEventListener("click", () => {
      zSeed += 1;
      translateCanvas();
    });
  }
  // for scripts and tests: translate now, with an optional code
  window.pix2pix = { run, backend, info };
  await translateCanvas();
  document.body.dataset.ready = "true";
}

start().catch((err) => setStatus(`cannot start: ${err}`, true));
