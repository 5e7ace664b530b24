// The drawing tools both pages share (`pix2pix serve`'s app.js and the web export's
// web.js): a swatch per colour of the model's drawing (label colours, or pen and eraser),
// pixel-aligned brushes and pointer strokes on the input canvas.
"use strict";

// Sets the tools up on `canvas` for `drawing` (info.drawing: width, height, mode, colours,
// names) with the page's #swatches and #brush; `onStroke()` runs when a stroke ends.
// Returns { clear }: fill the canvas with the background colour (colours[0]).
function drawingTools(canvas, drawing, onStroke) {
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const swatches = document.getElementById("swatches");
  const brush = document.getElementById("brush");
  const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
  let colour = 1; // index into drawing.colours; 0 is the background
  let stroke = null; // last point of the stroke being drawn, in canvas pixels

  function select(index) {
    colour = index;
    for (const b of swatches.children) {
      b.setAttribute("aria-checked", String(Number(b.dataset.index) === index));
    }
  }

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
      swatches.prepend(b); // pen, then eraser
    } else {
      b.style.background = rgb(c);
      swatches.append(b);
    }
    b.addEventListener("click", () => select(i));
  });
  select(1);

  // Brushes are pixel-aligned discs drawn as 1-pixel-high rectangles: no anti-aliasing,
  // so a label map keeps exactly the palette's colours.
  function stamp(x, y) {
    const r = Math.max(0, (Number(brush.value) - 1) / 2);
    ctx.fillStyle = rgb(drawing.colours[colour]);
    for (let dy = -Math.floor(r); dy <= Math.floor(r); dy++) {
      const half = Math.floor(Math.sqrt(r * r - dy * dy));
      ctx.fillRect(Math.round(x) - half, Math.round(y) + dy, 2 * half + 1, 1);
    }
  }

  function line(a, b) {
    const n = Math.max(1, Math.ceil(Math.max(Math.abs(b.x - a.x), Math.abs(b.y - a.y))));
    for (let i = 1; i <= n; i++) stamp(a.x + ((b.x - a.x) * i) / n, a.y + ((b.y - a.y) * i) / n);
  }

  // Pointer position in canvas pixels (the canvas is scaled and letterboxed by CSS).
  function position(event) {
    const box = canvas.getBoundingClientRect();
    const scale = Math.min(box.width / canvas.width, box.height / canvas.height);
    const left = box.left + (box.width - canvas.width * scale) / 2;
    const top = box.top + (box.height - canvas.height * scale) / 2;
    return { x: (event.clientX - left) / scale, y: (event.clientY - top) / scale };
  }

  function clear() {
    ctx.fillStyle = rgb(drawing.colours[0]);
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }

  canvas.width = drawing.width;
  canvas.height = drawing.height;
  const side = drawing.width;
  brush.value = String(
    drawing.mode === "palette" ? Math.max(3, Math.round(side / 12)) : Math.max(1, Math.round(side / 100)),
  );
  clear();
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
    onStroke();
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  return { clear };
}
