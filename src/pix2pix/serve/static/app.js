// The pix2pix demo page: draw or upload on the left, the translation appears on the right.
// Talks to GET /info (the model and its drawing tools) and POST /translate (image -> PNG).
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("input");
const ctx = canvas.getContext("2d");
const output = $("output");

let info = null; // GET /info
let colour = 1; // index into info.drawing.colours; 0 is the background
let stroke = null; // last point of the stroke being drawn, in canvas pixels
let busy = false; // a canvas translation is in flight
let again = false; // the canvas changed while it was
let issued = 0; // requests sent
let shown = 0; // the newest request whose answer is on screen
let outputUrl = null;
let zSeed = 0; // a model with a latent code: the code on screen (translate --z-seed)

const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function select(index) {
  colour = index;
  for (const b of $("swatches").children) {
    b.setAttribute("aria-checked", String(Number(b.dataset.index) === index));
  }
}

function buildSwatches(drawing) {
  const box = $("swatches");
  drawing.colours.forEach((c, i) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "swatch";
    b.dataset.index = String(i);
    b.setAttribute("role", "radio");
    b.title = `${drawing.names[i]} (${c.join(", ")})`;
    if (drawing.mode === "pen") {
      b.classList.add("tool");
      b.textContent = drawing.names[i];
      box.prepend(b); // pen, then eraser
    } else {
      b.style.background = rgb(c);
      box.append(b);
    }
    b.addEventListener("click", () => select(i));
  });
  select(1);
}

// Brushes are pixel-aligned discs drawn as 1-pixel-high rectangles: no anti-aliasing, so
// a label map keeps exactly the palette's colours.
function stamp(x, y) {
  const r = Math.max(0, (Number($("brush").value) - 1) / 2);
  const cx = Math.round(x);
  const cy = Math.round(y);
  ctx.fillStyle = rgb(info.drawing.colours[colour]);
  for (let dy = -Math.floor(r); dy <= Math.floor(r); dy++) {
    const half = Math.floor(Math.sqrt(r * r - dy * dy));
    ctx.fillRect(cx - half, cy + dy, 2 * half + 1, 1);
  }
}

function line(a, b) {
  const n = Math.max(1, Math.ceil(Math.max(Math.abs(b.x - a.x), Math.abs(b.y - a.y))));
  for (let i = 1; i <= n; i++) {
    stamp(a.x + ((b.x - a.x) * i) / n, a.y + ((b.y - a.y) * i) / n);
  }
}

// Pointer position in canvas pixels (the canvas is scaled and letterboxed by CSS).
function position(event) {
  const box = canvas.getBoundingClientRect();
  const scale = Math.min(box.width / canvas.width, box.height / canvas.height);
  const left = box.left + (box.width - canvas.width * scale) / 2;
  const top = box.top + (box.height - canvas.height * scale) / 2;
  return { x: (event.clientX - left) / scale, y: (event.clientY - top) / scale };
}

function clearCanvas() {
  ctx.fillStyle = rgb(info.drawing.colours[0]);
  ctx.fillRect(0, 0, canvas.width, canvas.height);
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
  canvas.width = drawing.width;
  canvas.height = drawing.height;
  buildSwatches(drawing);
  const side = drawing.width;
  $("brush").value = String(
    drawing.mode === "palette" ? Math.max(3, Math.round(side / 12)) : Math.max(1, Math.round(side / 100)),
  );
  clearCanvas();

  canvas.addEventListener("pointerdown", (e) => {
    canvas.setPointerCapture(e.pointerId);
    stroke = position(e);
    stamp(stroke.x, stroke.y);
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!stroke) return;
    const p = position(e);
    line(stroke, p);
    stroke = p;
  });
  const end = () => {
    if (!stroke) return;
    stroke = null;
    translateCanvas();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  $("clear").addEventListener("click", () => {
    clearCanvas();
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
