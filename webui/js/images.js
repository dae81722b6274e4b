// Image helpers: files, URLs and canvases as data URLs; the PNG text chunks that carry
// generation parameters (A1111's `parameters`, sdrest's `sdrest` JSON).

export function fileToDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

export function loadImageElement(src) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error("not an image the browser can read"));
    image.src = src;
  });
}

/** Fetch an image by URL (same origin, or a server that allows CORS) into a data URL. */
export async function urlToDataUrl(url) {
  const response = await fetch(url, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const blob = await response.blob();
  if (!blob.type.startsWith("image/")) throw new Error("the URL is not an image");
  return fileToDataUrl(blob);
}

/** Redraw an image at exactly width x height (stretch, or cover when `crop`). */
export async function resizeDataUrl(dataUrl, width, height, crop = false) {
  const image = await loadImageElement(dataUrl);
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  if (crop) {
    const scale = Math.max(width / image.naturalWidth, height / image.naturalHeight);
    const w = image.naturalWidth * scale;
    const h = image.naturalHeight * scale;
    ctx.drawImage(image, (width - w) / 2, (height - h) / 2, w, h);
  } else {
    ctx.drawImage(image, 0, 0, width, height);
  }
  return canvas.toDataURL("image/png");
}

/** The first image among a DataTransfer's / clipboard's items, as a File. */
export function imageFromTransfer(transfer) {
  if (!transfer) return null;
  for (const file of transfer.files || []) if (file.type.startsWith("image/")) return file;
  for (const item of transfer.items || []) {
    if (item.kind === "file" && item.type.startsWith("image/")) return item.getAsFile();
  }
  return null;
}

/** Text chunks (tEXt, iTXt uncompressed) of a PNG file, as {keyword: text}. */
export async function pngTextChunks(blob) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  const signature = [137, 80, 78, 71, 13, 10, 26, 10];
  if (bytes.length < 8 || signature.some((b, i) => bytes[i] !== b)) return {};
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder("latin1");
  const utf8 = new TextDecoder("utf-8");
  const chunks = {};
  let offset = 8;
  while (offset + 8 <= bytes.length) {
    const length = view.getUint32(offset);
    const type = latin1.decode(bytes.subarray(offset + 4, offset + 8));
    const data = bytes.subarray(offset + 8, offset + 8 + length);
    if (type === "tEXt") {
      const zero = data.indexOf(0);
      if (zero > 0) chunks[latin1.decode(data.subarray(0, zero))] = latin1.decode(data.subarray(zero + 1));
    } else if (type === "iTXt") {
      const zero = data.indexOf(0);
      const compressed = data[zero + 1];
      let cursor = zero + 3;
      cursor = data.indexOf(0, cursor) + 1; // language tag
      cursor = data.indexOf(0, cursor) + 1; // translated keyword
      if (zero > 0 && !compressed) chunks[latin1.decode(data.subarray(0, zero))] = utf8.decode(data.subarray(cursor));
    } else if (type === "IEND") {
      break;
    }
    offset += 12 + length;
  }
  return chunks;
}

const INFOTEXT_KEYS = {
  "Steps": ["steps", Number],
  "Sampler": ["sampler", String],
  "Schedule type": ["scheduler", String],
  "CFG scale": ["cfg_scale", Number],
  "Seed": ["seed", Number],
  "Clip skip": ["clip_skip", Number],
  "Denoising strength": ["strength", Number],
  "Model": ["model", String],
};

/** Parameters from an A1111 infotext (prompt, negative prompt, then `Key: value, ...`). */
export function parseInfotext(text) {
  const lines = text.trim().split("\n");
  const params = {};
  let last = lines.length - 1;
  const settings = /(?:^|, )Steps: /.test(lines[last]) ? lines[last] : null;
  if (!settings) last += 1;
  const promptLines = [];
  const negativeLines = [];
  let negative = false;
  for (const line of lines.slice(0, last)) {
    if (line.startsWith("Negative prompt:")) { negative = true; negativeLines.push(line.slice(16).trim()); continue; }
    (negative ? negativeLines : promptLines).push(line);
  }
  params.prompt = promptLines.join("\n");
  if (negativeLines.length) params.negative_prompt = negativeLines.join("\n");
  if (settings) {
    const re = /\s*([\w ]+):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)/g;
    let match;
    while ((match = re.exec(settings)) !== null) {
      const [key, rawValue] = [match[1].trim(), match[2].trim()];
      if (key === "Size") {
        const [w, h] = rawValue.split("x").map(Number);
        if (w && h) { params.width = w; params.height = h; }
        continue;
      }
      const spec = INFOTEXT_KEYS[key];
      if (!spec) continue;
      const value = rawValue.startsWith('"') ? JSON.parse(rawValue) : rawValue;
      params[spec[0]] = spec[1](value);
    }
  }
  return params;
}

/** Generation parameters embedded in an image file, or null. */
export async function parametersFromFile(file) {
  const chunks = await pngTextChunks(file);
  if (chunks.sdrest) {
    try {
      const meta = JSON.parse(chunks.sdrest);
      const params = meta.parameters || meta.params || meta;
      if (params && typeof params === "object" && params.prompt !== undefined) {
        return { ...params, ...(meta.seed !== undefined ? { seed: meta.seed } : {}) };
      }
    } catch { /* fall back to the infotext */ }
  }
  if (chunks.parameters) return parseInfotext(chunks.parameters);
  return null;
}
