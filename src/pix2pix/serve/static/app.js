// The pix2pix demo page: draw or upload on the left, the translation appears on the right.
// Talks to GET /info (the model and its drawing tools) and POST /translate (image -> PNG).
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("input");
const ctx = canvas.getContext("2d");
const output = $("output");

let info = null; // GET /info
let tools = null; // drawingTools (canvas.js)
let busy = false; // a canvas translation is in flight
let again = false; // the canvas changed while it was
let issued = 0; // requests sent
let shown = 0; // the newest request whose answer is on screen
let outputUrl = null;
let zSeed = 0; // a model with a latent code: the code on screen (translate --z-seed)

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

async function errorText(res) {
  try {
    const body = await res.json();
    return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  } catch {
    return `HTTP ${res.status}`;
  }
}

// POST one image; show the answer unless a newer one is already on screen.
async function send(blob, name) {
  const id = ++issued;
  const form = new FormData();
  form.append("image", blob, name);
  const query = new URLSearchParams({ mode: $("mode").value, seed: $("seed").value || "0" });
  if (info.nz > 0) {
    query.set("z_seed", String(zSeed));
    query.set("z_seed2", String(zSeed + 1));
    query.set("z_mix", String(Number($("walk").value) / 100));
  }
  const start = performance.now();
  setStatus("translating…");
  let res;
  try {
    res = await fetch(`/translate?${query}`, { method: "POST", body: form });
  } catch (err) {
    setStatus(`request failed: ${err}`, true);
    return false;
  }
  if (!res.ok) {
    setStatus(await errorText(res), true);
    return false;
  }
  const png = await res.blob();
  if (id < shown) return true;
  shown = id;
  if (outputUrl) URL.revokeObjectURL(outputUrl);
  outputUrl = URL.createObjectURL(png);
  const model = res.headers.get("X-Inference-Ms");
  output.onload = () => {
    output.dataset.generation = String(id);
    const total = Math.round(performance.now() - start);
    setStatus(
      `${output.naturalWidth}×${output.naturalHeight}: ${Math.round(Number(model))} ms in the ` +
        `model, ${total} ms in all`,
    );
  };
  output.src = outputUrl;
  $("download").href = outputUrl;
  return true;
}

function translateCanvas() {
  if (busy) {
    again = true;
    return;
  }
  busy = true;
  canvas.toBlob(async (blob) => {
    await send(blob, "canvas.png");
    busy = false;
    if (again) {
      again = false;
      translateCanvas();
    }
  }, "image/png");
}

async function upload(file) {
  if (file.size > info.max_bytes) {
    const mb = (n) => (n / 2 ** 20).toFixed(1);
    setStatus(`${file.name} is ${mb(file.size)} MB; the limit is ${mb(info.max_bytes)} MB`, true);
    return;
  }
  let bitmap = null;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
  } catch {
    // The server decides; its message says what is wrong.
  }
  if ((await send(file, file.name)) && bitmap) {
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    ctx.drawImage(bitmap, 0, 0);
  }
}

async function start() {
  const res = await fetch("/info");
  info = await res.json();
  const drawing = info.drawing;
  $("model").textContent =
    `${info.generator}, ${info.direction}, ${info.in_channels} → ${info.out_channels} ` +
    `channel(s); images up to ${info.max_pixels} pixels`;
  $("hint").textContent =
    drawing.mode === "palette" ? "label colours (the first is the background)" : "pen and eraser";
  tools = drawingTools(canvas, drawing, translateCanvas);
  $("clear").addEventListener("click", () => {
    tools.clear();
    translateCanvas();
  });
  $("upload").addEventListener("change", () => {
    const file = $("upload").files[0];
    $("upload").value = "";
    if (file) upload(file);
  });
  $("mode").addEventListener("change", translateCanvas);
  $("seed").addEventListener("change", translateCanvas);
  if (info.nz > 0) {
    $("sampling").hidden = false;
    $("another").addEventListener("click", () => {
      zSeed += 1;
      $("walk").value = "0";
      translateCanvas();
    });
    $("walk").addEventListener("input", translateCanvas);
  }
  document.body.dataset.ready = "true";
  translateCanvas();
}

start().catch((err) => setStatus(`cannot load the model description: ${err}`, true));
