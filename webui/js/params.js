// The generation form's values: defaults, size presets per model family, and the request body
// each mode sends (only the fields that mode accepts; blank means the server's default).

export const DEFAULT_FORM = {
  prompt: "", negative_prompt: "", model: "", vae: "", taesd: "",
  width: 512, height: 512, steps: 20, cfg_scale: 7, sampler: "", scheduler: "", seed: -1,
  batch_count: 1, clip_skip: "", guidance: "", eta: "", strength: 0.75,
  preset: "", prompt_template: "", negative_prompt_template: "",
  hires: false, hires_upscaler: "", hires_scale: 2, hires_steps: "", hires_denoising: 0.5,
  vae_tiling: false, tile_size: 32, tile_overlap: 0.5,
  control_strength: 0.9, controlnet: "",
  output_format: "png",
  upscaler: "", factor: "",
};

export const SIZE_PRESETS = {
  sd1: [[512, 512], [512, 768], [768, 512], [640, 448], [448, 640]],
  sd2: [[768, 768], [512, 512], [768, 576], [576, 768]],
  large: [[1024, 1024], [1152, 896], [896, 1152], [1216, 832], [832, 1216], [1344, 768], [768, 1344], [1536, 640], [640, 1536]],
};

export function familyOf(architecture) {
  const a = (architecture || "").toLowerCase();
  if (!a) return "sd1";
  if (a.startsWith("sd1") || a === "sd1.x") return "sd1";
  if (a.startsWith("sd2")) return "sd2";
  return "large";
}

export const MODE_ROUTES = { txt2img: "text2img", img2img: "img2img", inpaint: "inpainting", upscale: "upscale" };

const blank = (v) => v === "" || v === null || v === undefined;
const snap8 = (v) => Math.max(8, Math.round(Number(v) / 8) * 8);

/** The JSON body of a request in `mode` from the form and its images. */
export function requestBody(mode, form, images) {
  if (mode === "upscale") {
    const body = { image: images.upscale, upscaler: form.upscaler };
    if (!blank(form.factor)) body.factor = Number(form.factor);
    return body;
  }
  const body = {
    prompt: form.prompt,
    width: Number(form.width), height: Number(form.height),
    steps: Number(form.steps), cfg_scale: Number(form.cfg_scale), seed: Number(form.seed),
    batch_count: Number(form.batch_count),
  };
  for (const key of ["negative_prompt", "model", "vae", "taesd", "sampler", "scheduler", "preset",
    "prompt_template", "negative_prompt_template", "controlnet"]) {
    if (!blank(form[key])) body[key] = form[key];
  }
  for (const key of ["clip_skip", "guidance", "eta"]) if (!blank(form[key])) body[key] = Number(form[key]);
  if (form.output_format && form.output_format !== "png") body.output_format = form.output_format;
  if (form.vae_tiling) body.vae_tiling = { tile_size: Number(form.tile_size), overlap: Number(form.tile_overlap) };
  if (images.control) {
    body.control_image = images.control;
    body.control_strength = Number(form.control_strength);
  }
  if (mode === "txt2img" && form.hires) {
    const hires = { scale: Number(form.hires_scale), denoising_strength: Number(form.hires_denoising) };
    if (!blank(form.hires_upscaler)) hires.upscaler = form.hires_upscaler;
    if (!blank(form.hires_steps)) hires.steps = Number(form.hires_steps);
    body.hires = hires;
  }
  if (mode === "img2img" || mode === "inpaint") {
    body.init_image = images.init;
    body.strength = Number(form.strength);
  }
  if (mode === "inpaint") body.mask_image = images.mask;
  return body;
}

/** Form values from a job's (or an image's) parameters: what "Reuse" applies. */
export function formFromParameters(params, part = "all") {
  const out = {};
  if (!params) return out;
  if (part === "all" || part === "prompt") {
    for (const key of ["prompt", "negative_prompt"]) if (params[key] !== undefined) out[key] = params[key];
  }
  if (part === "all" || part === "settings") {
    for (const key of ["width", "height", "steps", "cfg_scale", "sampler", "scheduler", "clip_skip", "guidance",
      "eta", "strength", "batch_count", "vae", "taesd", "preset", "prompt_template", "negative_prompt_template"]) {
      if (params[key] !== undefined && params[key] !== null) out[key] = params[key];
    }
    if (params.model) out.model = params.model;
    if (params.seed !== undefined) out.seed = params.seed;
    if (params.hires && typeof params.hires === "object") {
      out.hires = true;
      if (params.hires.scale) out.hires_scale = params.hires.scale;
      if (params.hires.upscaler) out.hires_upscaler = params.hires.upscaler;
      if (params.hires.steps) out.hires_steps = params.hires.steps;
      if (params.hires.denoising_strength !== undefined) out.hires_denoising = params.hires.denoising_strength;
    }
  }
  if (out.width) out.width = snap8(out.width);
  if (out.height) out.height = snap8(out.height);
  return out;
}

export function summary(form) {
  const parts = [`${form.width}×${form.height}`, `${form.steps} steps`, `CFG ${form.cfg_scale}`];
  parts.push(form.sampler || "default sampler");
  if (Number(form.seed) >= 0) parts.push(`seed ${form.seed}`);
  if (Number(form.batch_count) > 1) parts.push(`×${form.batch_count}`);
  return parts.join(" · ");
}

export { snap8 };
