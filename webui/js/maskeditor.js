// The inpainting canvas: the image with a mask layer painted over it. Brush and eraser with an
// adjustable size, undo/redo (50 steps), clear, invert, mask opacity, zoom and pan (wheel,
// Space+drag, two-finger pinch). Pointer Events, so mouse, pen and touch all paint. The mask is
// kept at the image's own resolution and exported as white (repaint) on black.
import { html, cx, useState, useRef, useEffect, useCallback } from "./lib.js";
import { loadImageElement } from "./images.js";

const PAINT = [255, 59, 92];   // how the mask shows on screen; exported as white
const UNDO_LIMIT = 50;

/** The mask canvas as a white-on-black PNG data URL at the canvas size. */
export function exportMask(canvas) {
  const { width, height } = canvas;
  const source = canvas.getContext("2d").getImageData(0, 0, width, height);
  const out = new ImageData(width, height);
  for (let i = 0; i < source.data.length; i += 4) {
    const v = source.data[i + 3] >= 128 ? 255 : 0;
    out.data[i] = out.data[i + 1] = out.data[i + 2] = v;
    out.data[i + 3] = 255;
  }
  const target = document.createElement("canvas");
  target.width = width;
  target.height = height;
  target.getContext("2d").putImageData(out, 0, 0);
  return target.toDataURL("image/png");
}

function maskIsEmpty(canvas) {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 3; i < data.length; i += 4) if (data[i] >= 128) return false;
  return true;
}

/** Paint a stored white-on-black mask into the (red, transparent) editing canvas. */
async function importMask(canvas, dataUrl) {
  const image = await loadImageElement(dataUrl);
  const scratch = document.createElement("canvas");
  scratch.width = canvas.width;
  scratch.height = canvas.height;
  const sctx = scratch.getContext("2d");
  sctx.drawImage(image, 0, 0, canvas.width, canvas.height);
  const data = sctx.getImageData(0, 0, canvas.width, canvas.height);
  for (let i = 0; i < data.data.length; i += 4) {
    const on = data.data[i] >= 128;
    data.data[i] = PAINT[0]; data.data[i + 1] = PAINT[1]; data.data[i + 2] = PAINT[2];
    data.data[i + 3] = on ? 255 : 0;
  }
  canvas.getContext("2d").putImageData(data, 0, 0);
}

export function MaskEditor({ image, mask, onMask, error }) {
  const canvasRef = useRef(null);
  const stageRef = useRef(null);
  const [size, setSize] = useState(null);          // the image's natural size
  const [tool, setTool] = useState("brush");
  const [brush, setBrush] = useState(32);
  const [opacity, setOpacity] = useState(0.6);
  const [view, setView] = useState({ scale: 1, x: 0, y: 0 });
  const [history, setHistory] = useState({ undo: 0, redo: 0 });
  const [empty, setEmpty] = useState(true);
  const state = useRef({ undo: [], redo: [], drawing: null, pointers: new Map(), pinch: null, space: false, pan: null });
  const toolRef = useRef({ tool, brush });
  toolRef.current = { tool, brush };

  // (Re)load when the image changes; keep the mask if it matches the image.
  useEffect(() => {
    let cancelled = false;
    if (!image) { setSize(null); return; }
    loadImageElement(image).then(async (element) => {
      if (cancelled) return;
      const canvas = canvasRef.current;
      canvas.width = element.naturalWidth;
      canvas.height = element.naturalHeight;
      state.current.undo = [];
      state.current.redo = [];
      setHistory({ undo: 0, redo: 0 });
      setSize({ width: element.naturalWidth, height: element.naturalHeight });
      setView({ scale: 1, x: 0, y: 0 });
      if (mask) await importMask(canvas, mask).catch(() => null);
      setEmpty(maskIsEmpty(canvas));
    });
    return () => { cancelled = true; };
  }, [image]);

  const emit = useCallback(() => {
    const canvas = canvasRef.current;
    const isEmpty = maskIsEmpty(canvas);
    setEmpty(isEmpty);
    onMask(isEmpty ? null : exportMask(canvas));
  }, [onMask]);

  function snapshot() {
    const canvas = canvasRef.current;
    const s = state.current;
    s.undo.push(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height));
    if (s.undo.length > UNDO_LIMIT) s.undo.shift();
    s.redo = [];
    setHistory({ undo: s.undo.length, redo: 0 });
  }

  function restore(from, to) {
    const canvas = canvasRef.current;
    const s = state.current;
    if (!s[from].length) return;
    const ctx = canvas.getContext("2d");
    s[to].push(ctx.getImageData(0, 0, canvas.width, canvas.height));
    ctx.putImageData(s[from].pop(), 0, 0);
    setHistory({ undo: s.undo.length, redo: s.redo.length });
    emit();
  }
  const undo = () => restore("undo", "redo");
  const redo = () => restore("redo", "undo");

  function clear() {
    snapshot();
    const canvas = canvasRef.current;
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
    emit();
  }

  function invert() {
    snapshot();
    const canvas = canvasRef.current;
    const ctx = canvas.getContext("2d");
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
    for (let i = 0; i < data.data.length; i += 4) {
      const on = data.data[i + 3] >= 128;
      data.data[i] = PAINT[0]; data.data[i + 1] = PAINT[1]; data.data[i + 2] = PAINT[2];
      data.data[i + 3] = on ? 0 : 255;
    }
    ctx.putImageData(data, 0, 0);
    emit();
  }

  /** Client coordinates -> image pixels (works at any zoom, pan and browser zoom). */
  function toImage(event) {
    const canvas = canvasRef.current;
    const rect = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - rect.left) * canvas.width) / rect.width,
      y: ((event.clientY - rect.top) * canvas.height) / rect.height,
    };
  }

  function stroke(from, to) {
    const ctx = canvasRef.current.getContext("2d");
    const { tool: t, brush: b } = toolRef.current;
    ctx.save();
    ctx.globalCompositeOperation = t === "eraser" ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = `rgb(${PAINT.join(",")})`;
    ctx.lineWidth = b;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    if (from.x === to.x && from.y === to.y) {
      ctx.arc(to.x, to.y, b / 2, 0, Math.PI * 2);
      ctx.fill();
    } else {
      ctx.moveTo(from.x, from.y);
      ctx.lineTo(to.x, to.y);
      ctx.stroke();
    }
    ctx.restore();
  }

  function onPointerDown(e) {
    const s = state.current;
    e.currentTarget.setPointerCapture?.(e.pointerId);
    s.pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (s.pointers.size === 2) {
      // A second finger: this is a pinch or a pan, not a stroke.
      if (s.drawing) { restore("undo", "redo"); state.current.redo.pop(); setHistory({ undo: s.undo.length, redo: s.redo.length }); }
      s.drawing = null;
      const [a, b] = [...s.pointers.values()];
      s.pinch = { distance: Math.hypot(a.x - b.x, a.y - b.y), center: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 }, view };
      return;
    }
    if (s.space || e.button === 1) {
      s.pan = { x: e.clientX, y: e.clientY, view };
      return;
    }
    if (e.button !== 0 && e.pointerType === "mouse") return;
    e.preventDefault();
    snapshot();
    const point = toImage(e);
    s.drawing = point;
    stroke(point, point);
  }

  function onPointerMove(e) {
    const s = state.current;
    if (s.pointers.has(e.pointerId)) s.pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (s.pinch && s.pointers.size === 2) {
      const [a, b] = [...s.pointers.values()];
      const distance = Math.hypot(a.x - b.x, a.y - b.y);
      const center = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
      const scale = Math.min(8, Math.max(0.5, s.pinch.view.scale * (distance / s.pinch.distance)));
      setView({ scale, x: s.pinch.view.x + center.x - s.pinch.center.x, y: s.pinch.view.y + center.y - s.pinch.center.y });
      return;
    }
    if (s.pan) {
      setView({ ...s.pan.view, x: s.pan.view.x + e.clientX - s.pan.x, y: s.pan.view.y + e.clientY - s.pan.y });
      return;
    }
    if (!s.drawing) return;
    // Coalesced events keep fast strokes smooth.
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const event of events.length ? events : [e]) {
      const point = toImage(event);
      stroke(s.drawing, point);
      s.drawing = point;
    }
  }

  function onPointerUp(e) {
    const s = state.current;
    s.pointers.delete(e.pointerId);
    if (s.pointers.size < 2) s.pinch = null;
    if (s.pan && !s.pointers.size) s.pan = null;
    if (s.drawing) {
      s.drawing = null;
      emit();
    }
  }

  function onWheel(e) {
    e.preventDefault();
    if (e.ctrlKey || e.metaKey) {
      setBrush((b) => Math.max(1, Math.min(512, Math.round(b * (e.deltaY < 0 ? 1.15 : 1 / 1.15)))));
      return;
    }
    setView((v) => ({ ...v, scale: Math.min(8, Math.max(0.5, v.scale * (e.deltaY < 0 ? 1.1 : 1 / 1.1))) }));
  }

  // Keyboard: B brush, E eraser, [ ] size, Ctrl+Z / Ctrl+Shift+Z, Space to pan.
  useEffect(() => {
    const typing = (t) => t && (t.tagName === "TEXTAREA" || t.tagName === "INPUT" || t.tagName === "SELECT");
    const down = (e) => {
      if (typing(e.target)) return;
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") {
        e.preventDefault();
        if (e.shiftKey) redo(); else undo();
      } else if (e.ctrlKey || e.metaKey || e.altKey) {
        return;
      } else if (e.key === "b") setTool("brush");
      else if (e.key === "e") setTool("eraser");
      else if (e.key === "[") setBrush((b) => Math.max(1, b - 4));
      else if (e.key === "]") setBrush((b) => Math.min(512, b + 4));
      else if (e.key === " ") { state.current.space = true; e.preventDefault(); }
    };
    const up = (e) => { if (e.key === " ") state.current.space = false; };
    window.addEventListener("keydown", down);
    window.addEventListener("keyup", up);
    return () => { window.removeEventListener("keydown", down); window.removeEventListener("keyup", up); };
  }, []);

  useEffect(() => {
    const stage = stageRef.current;
    if (!stage) return undefined;
    stage.addEventListener("wheel", onWheel, { passive: false });
    return () => stage.removeEventListener("wheel", onWheel);
  }, [size]);

  if (!image) return null;
  const aspect = size ? `${size.width} / ${size.height}` : "1 / 1";
  return html`
    <div class=${cx("mask-editor", { invalid: error })} data-field="mask_image">
      <div class="toolbar" role="toolbar" aria-label="Mask tools">
        <button type="button" class=${cx("small", { active: tool === "brush" })} aria-pressed=${tool === "brush"}
          onClick=${() => setTool("brush")} title="Brush (B)">Brush</button>
        <button type="button" class=${cx("small", { active: tool === "eraser" })} aria-pressed=${tool === "eraser"}
          onClick=${() => setTool("eraser")} title="Eraser (E)">Eraser</button>
        <label class="inline">Size
          <input type="range" min="1" max="256" value=${brush} aria-label="Brush size"
            onInput=${(e) => setBrush(Number(e.currentTarget.value))} /> <span class="mono">${brush}</span></label>
        <label class="inline">Opacity
          <input type="range" min="0.1" max="1" step="0.05" value=${opacity} aria-label="Mask opacity"
            onInput=${(e) => setOpacity(Number(e.currentTarget.value))} /></label>
        <button type="button" class="small" onClick=${undo} disabled=${!history.undo} title="Undo (Ctrl+Z)">Undo</button>
        <button type="button" class="small" onClick=${redo} disabled=${!history.redo} title="Redo (Ctrl+Shift+Z)">Redo</button>
        <button type="button" class="small" onClick=${invert}>Invert</button>
        <button type="button" class="small" onClick=${clear} disabled=${empty}>Clear</button>
        <button type="button" class="small" onClick=${() => setView({ scale: 1, x: 0, y: 0 })} disabled=${view.scale === 1 && !view.x && !view.y}>Fit</button>
      </div>
      <div class="stage" ref=${stageRef}>
        <div class="canvas-wrap" style=${{
          aspectRatio: aspect,
          // Fit the stage: the whole image stays visible (at most 60% of the window's height).
          width: size ? `min(100%, ${((60 * size.width) / size.height).toFixed(3)}vh)` : "100%",
          transform: `translate(${view.x}px, ${view.y}px) scale(${view.scale})`,
        }}>
          <img src=${image} alt="image to inpaint" draggable="false" />
          <canvas ref=${canvasRef} class="mask-canvas" aria-label="Mask: paint the area to repaint"
            style=${{ opacity: String(opacity) }}
            onPointerDown=${onPointerDown} onPointerMove=${onPointerMove}
            onPointerUp=${onPointerUp} onPointerCancel=${onPointerUp} onContextMenu=${(e) => e.preventDefault()} />
        </div>
      </div>
      <div class="hint">${size ? `${size.width}×${size.height} · ` : ""}paint the area to repaint (white in the mask) · B brush · E eraser · [ ] size · wheel zoom · Space+drag pan</div>
      ${error && html`<div class="field-error" role="alert">${error}</div>`}
    </div>`;
}
