// The Create view: the four modes (text to image, image to image, inpainting, upscale), the
// prompt-first form with its folding groups, and the result panel beside (or above) it.
import { html, cx, useState, useEffect, useRef, useCallback, useContext } from "./lib.js";
import { AppContext } from "./context.js";
import { useSelect } from "./store.js";
import { load, save, loadImage, saveImage } from "./persist.js";
import { NumberField, SelectField, CheckField, Group, FieldError } from "./form.js";
import { ImageInput } from "./imageinput.js";
import { MaskEditor } from "./maskeditor.js";
import { LoraChips, LoraPicker, loraTags, insertAt, removeTag } from "./loras.js";
import { DEFAULT_FORM, SIZE_PRESETS, familyOf, requestBody, formFromParameters, summary, snap8 } from "./params.js";
import { resizeDataUrl, loadImageElement } from "./images.js";
import { ResultPanel } from "./result.js";
import { useModels } from "./modelsdata.js";
import { NoModelSuggestions, useRecipes } from "./getmodels.js";

const MODES = [["txt2img", "Text to image"], ["img2img", "Image to image"], ["inpaint", "Inpaint"], ["upscale", "Upscale"]];
const IMAGE_KEYS = ["init", "mask", "control", "upscale"];
const ICON_DICE = html`<svg viewBox="0 0 16 16" width="16" height="16" aria-hidden="true"><rect x="1.5" y="1.5" width="13" height="13" rx="3" fill="none" stroke="currentColor" stroke-width="1.4"/><circle cx="5" cy="5" r="1.2" fill="currentColor"/><circle cx="11" cy="11" r="1.2" fill="currentColor"/><circle cx="8" cy="8" r="1.2" fill="currentColor"/></svg>`;
const ICON_REUSE = html`<svg viewBox="0 0 16 16" width="16" height="16" aria-hidden="true"><path d="M13 8a5 5 0 1 1-1.5-3.6M13 2.5v3h-3" fill="none" stroke="currentColor" stroke-width="1.5" stroke-linecap="round"/></svg>`;

export function CreateView() {
  const app = useContext(AppContext);
  const mode = useSelect(app.store, (s) => s.mode);
  const status = useSelect(app.store, (s) => s.status);
  const profile = useSelect(app.store, (s) => s.profile);
  const handoff = useSelect(app.store, (s) => s.handoff);
  const current = useSelect(app.store, (s) => s.current);
  const currentJob = useSelect(app.store, (s) => (s.current ? s.jobs[s.current] : null));
  const [form, setForm] = useState(() => ({ ...DEFAULT_FORM, ...load("form", {}) }));
  const [images, setImages] = useState({});
  const [errors, setErrors] = useState({});
  const [general, setGeneral] = useState(null);
  const [busy, setBusy] = useState(false);
  const lastPrompt = useRef("prompt");
  const promptRefs = { prompt: useRef(null), negative_prompt: useRef(null) };
  const checkpoints = useModels(app, "checkpoint");
  const diffusionModels = useModels(app, "diffusion_model");
  const recipes = useRecipes(app);
  // An installed model recipe is one model name (its preset binds the components).
  const installedRecipes = (recipes.items || []).filter((r) => r.selectable && r.installed);
  const loras = useModels(app, "lora");
  const vaes = useModels(app, "vae");
  const taesds = useModels(app, "taesd");
  const controlnets = useModels(app, "controlnet");
  const upscalers = useModels(app, "esrgan,upscaler");
  const presets = useModels(app, "presets");
  const prompts = useModels(app, "prompts");
  const negPrompts = useModels(app, "neg_prompts");

  // Images come back from IndexedDB after a reload.
  useEffect(() => {
    Promise.all(IMAGE_KEYS.map((k) => loadImage(k))).then((values) => {
      const restored = {};
      IMAGE_KEYS.forEach((k, i) => { if (values[i]) restored[k] = values[i]; });
      setImages((prev) => ({ ...restored, ...prev }));
    });
  }, []);

  // An image sent here from a result ("to img2img", "to inpaint", "upscale").
  useEffect(() => {
    if (!handoff) return;
    const key = handoff.mode === "upscale" ? "upscale" : "init";
    setImage(key, handoff.image);
    if (handoff.mode === "inpaint") setImage("mask", null);
    if (handoff.params) update(formFromParameters(handoff.params, "all"));
    app.store.set({ handoff: null });
  }, [handoff]);

  const update = useCallback((patch) => {
    setForm((prev) => {
      const next = { ...prev, ...patch };
      save("form", next);
      return next;
    });
    setErrors((prev) => {
      const copy = { ...prev };
      for (const key of Object.keys(patch)) delete copy[key];
      return copy;
    });
  }, []);

  function setImage(key, value) {
    setImages((prev) => ({ ...prev, [key]: value || undefined }));
    saveImage(key, value || null);
    setErrors((prev) => ({ ...prev, [`${key}_image`]: undefined, image: undefined }));
  }

  // Reuse from the result panel, the queue or an image dropped on the page.
  useEffect(() => {
    const onReuse = (e) => update(formFromParameters(e.detail.params, e.detail.part || "all"));
    window.addEventListener("sdrest:reuse", onReuse);
    return () => window.removeEventListener("sdrest:reuse", onReuse);
  }, [update]);

  const selectedModel = checkpoints.items?.find((m) => m.name === form.model || m.id === form.model);
  const loadedName = status?.loaded_model || null;
  const loadedEntry = checkpoints.items?.find((m) => loadedName && (m.name === loadedName || loadedName.endsWith(m.relative_path || "\u0000")));
  const family = familyOf((selectedModel || loadedEntry)?.architecture);
  const samplers = status?.capabilities?.samplers || [];
  const schedulers = status?.capabilities?.schedulers || [];
  const hiresUpscalers = status?.capabilities?.hires_upscalers || [];
  const canGenerate = app.can.generate();
  const myRunning = currentJob && ["queued", "running"].includes(currentJob.status) ? currentJob : null;

  // Nothing to choose: no checkpoint, no diffusion model, no installed recipe, nothing loaded.
  const noModelInstalled = checkpoints.items?.length === 0 && diffusionModels.items?.length === 0
    && recipes.items !== null && installedRecipes.length === 0 && !status?.loaded_model && !status?.default_model;

  function whyDisabled() {
    if (!profile) return "Sign in to generate";
    if (mode === "upscale") {
      if (!images.upscale) return "Add an image to upscale";
      if (!form.upscaler) return "Choose an upscaler";
      return null;
    }
    if (noModelInstalled) return "No model is installed yet";
    if (!form.model && !status?.loaded_model && !status?.default_model) return "No model loaded: choose a checkpoint";
    if ((mode === "img2img" || mode === "inpaint") && !images.init) return "Add an init image";
    if (mode === "inpaint" && !images.mask) return "Paint a mask over the area to repaint";
    if (!form.prompt.trim() && mode !== "upscale") return "Write a prompt";
    return null;
  }
  const reason = whyDisabled();

  async function generate(priority = 0) {
    if (reason || busy) return;
    setBusy(true);
    setErrors({});
    setGeneral(null);
    try {
      await app.submit(mode, requestBody(mode, form, images), { priority });
    } catch (error) {
      if (error.field) {
        const field = error.field.split(".")[0];
        setErrors({ [field]: error.message });
        const target = document.querySelector(`[data-field="${field}"]`) || document.querySelector(`[data-field="${error.field}"]`);
        if (target) {
          target.closest("details")?.setAttribute("open", "");
          target.scrollIntoView({ block: "center", behavior: "smooth" });
        } else setGeneral(`${error.field}: ${error.message}`);
      } else if (error.status !== 401) {
        setGeneral(error.retryAfter ? `${error.message} (retry in ${error.retryAfter} s)` : error.message);
      }
    } finally {
      setBusy(false);
    }
  }

  // Ctrl/⌘+Enter generates from any field; with Shift it goes to the front of the queue.
  useEffect(() => {
    const onKey = (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        generate(e.shiftKey && app.can.admin() ? 50 : 0);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  });

  function toggleLora(name) {
    const key = lastPrompt.current;
    const text = form[key] || "";
    if (loraTags(text).some((t) => t.name === name)) { update({ [key]: removeTag(text, name) }); return; }
    const el = promptRefs[key].current;
    const position = el && document.activeElement !== el && el.selectionStart != null ? el.selectionStart : text.length;
    update({ [key]: insertAt(text, position, `<lora:${name}:1>`) });
  }

  async function matchInitSize() {
    if (!images.init) return;
    const el = await loadImageElement(images.init);
    update({ width: snap8(el.naturalWidth), height: snap8(el.naturalHeight) });
  }

  async function resizeInit() {
    if (!images.init) return;
    setImage("init", await resizeDataUrl(images.init, Number(form.width), Number(form.height)));
    setImage("mask", null);
  }

  const sizePresets = SIZE_PRESETS[family];
  const generation = mode !== "upscale";
  const seedsNote = Number(form.seed) >= 0 && Number(form.batch_count) > 1
    ? `seeds ${form.seed}…${Number(form.seed) + Number(form.batch_count) - 1}` : "";
  const lastSeed = currentJob?.seeds?.[0];

  return html`
    <div class="create">
      <section class="form-col" aria-label="Generation settings">
        <div class="mode-tabs" role="tablist" aria-label="Mode">
          ${MODES.map(([m, label]) => html`<button type="button" role="tab" aria-selected=${mode === m}
            class=${cx("tab", { active: mode === m })} data-mode=${m} onClick=${() => app.setMode(m)}>${label}</button>`)}
        </div>

        ${generation && html`
          <div class="prompt-box">
            <div class=${cx("field", "prompt", { invalid: errors.prompt })} data-field="prompt">
              <label for="prompt">Prompt</label>
              <textarea id="prompt" name="prompt" rows="4" ref=${promptRefs.prompt} autofocus
                placeholder="a lighthouse at dusk, <lora:name:0.8> (drop a PNG to load its parameters)"
                value=${form.prompt} onFocus=${() => { lastPrompt.current = "prompt"; }}
                onInput=${(e) => update({ prompt: e.currentTarget.value })}></textarea>
              <${FieldError} error=${errors.prompt} />
            </div>
            <${LoraChips} text=${form.prompt} known=${loras.items} onChange=${(v) => update({ prompt: v })} />
            <div class=${cx("field", { invalid: errors.negative_prompt })} data-field="negative_prompt">
              <label for="negative_prompt">Negative prompt</label>
              <textarea id="negative_prompt" name="negative_prompt" rows="2" ref=${promptRefs.negative_prompt}
                value=${form.negative_prompt} onFocus=${() => { lastPrompt.current = "negative_prompt"; }}
                onInput=${(e) => update({ negative_prompt: e.currentTarget.value })}></textarea>
              <${FieldError} error=${errors.negative_prompt} />
            </div>
          </div>`}

        ${(mode === "img2img" || mode === "inpaint") && html`
          <div class="init-box">
            <${ImageInput} name="init_image" label="Init image" value=${images.init}
              onChange=${(v) => { setImage("init", v); if (mode === "inpaint") setImage("mask", null); }} error=${errors.init_image} />
            ${images.init && html`<div class="row">
              <button type="button" class="small" onClick=${matchInitSize}>Use the image's size</button>
              <button type="button" class="small" onClick=${resizeInit}>Resize image to ${form.width}×${form.height}</button>
            </div>`}
            ${mode === "inpaint" && images.init && html`<${MaskEditor} key=${images.init.length + images.init.slice(-32)}
              image=${images.init} mask=${images.mask} onMask=${(v) => setImage("mask", v)} error=${errors.mask_image} />`}
            <${NumberField} name="strength" label="Strength (denoising)" value=${form.strength} min=${0} max=${1} step=${0.05}
              onInput=${(v) => update({ strength: v })} error=${errors.strength} />
          </div>`}

        ${mode === "upscale" && html`
          <div class="upscale-box">
            <${ImageInput} name="image" label="Image to upscale" value=${images.upscale}
              onChange=${(v) => setImage("upscale", v)} error=${errors.image} />
            <${SelectField} name="upscaler" label="Upscaler" value=${form.upscaler} blank="choose…"
              options=${(upscalers.items || []).map((m) => [m.name, `${m.name}${m.detection?.scale ? ` (x${m.detection.scale})` : ""}`])}
              onInput=${(v) => update({ upscaler: v })} error=${errors.upscaler} />
            <${NumberField} name="factor" label="Factor" value=${form.factor} min=${1} max=${8} placeholder="model's"
              onInput=${(v) => update({ factor: v })} error=${errors.factor} />
          </div>`}

        ${generation && noModelInstalled && html`<${NoModelSuggestions} />`}

        ${canGenerate ? html`
          <div class="generate-bar">
            <button type="button" class="primary generate" onClick=${() => generate(0)} disabled=${!!reason || busy}
              title=${reason || "Generate (Ctrl+Enter)"} aria-describedby="generate-why">
              ${busy ? "Queueing…" : mode === "upscale" ? "Upscale" : "Generate"} <kbd>Ctrl+Enter</kbd>
            </button>
            ${generation && html`<label class="inline batch">× <input type="number" min="1" max="16" value=${form.batch_count}
              aria-label="Batch count" name="batch_count" onInput=${(e) => update({ batch_count: Number(e.currentTarget.value) || 1 })} /></label>`}
            ${myRunning && html`<button type="button" class="danger" onClick=${() => app.cancel(myRunning.job_id)}>Cancel</button>`}
            <div id="generate-why" class=${cx("why", { hidden: !reason })}>${reason}</div>
            ${general && html`<div class="field-error general" role="alert">${general}</div>`}
            ${errors.batch_count && html`<div class="field-error" role="alert">${errors.batch_count}</div>`}
          </div>` : html`<p class="notice">${profile?.role === "guest" ? "Guests can browse but not generate. Sign in to generate." : "Sign in to generate."}</p>`}

        ${generation && html`
          <${Group} id="basics" title="Basics" summary=${summary(form)} defaultOpen=${true}>
            <div class="size-row">
              <${SelectField} name="size_preset" label=${`Size (${family === "large" ? "SDXL/SD3/Flux" : family.toUpperCase()})`}
                value=${sizePresets.some(([w, h]) => w === Number(form.width) && h === Number(form.height)) ? `${form.width}x${form.height}` : ""} blank="custom"
                options=${sizePresets.map(([w, h]) => [`${w}x${h}`, `${w}×${h}`])}
                onInput=${(v) => { if (v) { const [w, h] = v.split("x").map(Number); update({ width: w, height: h }); } }} />
              <${NumberField} name="width" label="Width" value=${form.width} min=${64} max=${4096} step=${8}
                onInput=${(v) => update({ width: v })} error=${errors.width} />
              <button type="button" class="icon swap" aria-label="Swap width and height" title="Swap width and height"
                onClick=${() => update({ width: form.height, height: form.width })}>⇄</button>
              <${NumberField} name="height" label="Height" value=${form.height} min=${64} max=${4096} step=${8}
                onInput=${(v) => update({ height: v })} error=${errors.height} />
            </div>
            ${(Number(form.width) % 8 || Number(form.height) % 8) ? html`<div class="hint warn">Sizes must be multiples of 8:
              <button type="button" class="link" onClick=${() => update({ width: snap8(form.width), height: snap8(form.height) })}>snap to ${snap8(form.width)}×${snap8(form.height)}</button></div>` : null}
            <div class="grid3">
              <${NumberField} name="steps" label="Steps" value=${form.steps} min=${1} max=${150}
                onInput=${(v) => update({ steps: v })} error=${errors.steps} />
              <${NumberField} name="cfg_scale" label="CFG scale" value=${form.cfg_scale} min=${0} max=${30} step=${0.5}
                onInput=${(v) => update({ cfg_scale: v })} error=${errors.cfg_scale} />
              <${SelectField} name="sampler" label="Sampler" value=${form.sampler} blank="default"
                options=${samplers} onInput=${(v) => update({ sampler: v })} error=${errors.sampler} />
              <${SelectField} name="scheduler" label="Scheduler" value=${form.scheduler} blank="default"
                options=${schedulers} onInput=${(v) => update({ scheduler: v })} error=${errors.scheduler} />
              <div class=${cx("field", "seed", { invalid: errors.seed })} data-field="seed">
                <label for="seed">Seed</label>
                <div class="row tight">
                  <input id="seed" name="seed" type="number" value=${form.seed} onInput=${(e) => update({ seed: e.currentTarget.value === "" ? -1 : Number(e.currentTarget.value) })} />
                  <button type="button" class="icon" title="Random seed (-1)" aria-label="Random seed" onClick=${() => update({ seed: -1 })}>${ICON_DICE}</button>
                  <button type="button" class="icon" title="Reuse the last seed" aria-label="Reuse the last seed" disabled=${lastSeed == null}
                    onClick=${() => update({ seed: lastSeed })}>${ICON_REUSE}</button>
                </div>
                ${seedsNote && html`<div class="hint">${seedsNote}</div>`}
                <${FieldError} error=${errors.seed} />
              </div>
              <${NumberField} name="batch_count" label="Batch" value=${form.batch_count} min=${1} max=${16}
                onInput=${(v) => update({ batch_count: v })} />
            </div>
          </${Group}>

          <${Group} id="model" title="Model" summary=${form.model || (status?.loaded_model ? `loaded: ${status.loaded_model}` : "none loaded")}>
            <${SelectField} name="model" label="Checkpoint" value=${form.model}
              blank=${status?.loaded_model ? `loaded (${status.loaded_model})` : status?.default_model ? "server default" : "choose…"}
              options=${[...installedRecipes.map((r) => [r.name, `${r.title} · recipe`]),
                ...(checkpoints.items || []).map((m) => [m.name, `${m.name}${m.architecture ? ` · ${m.architecture}` : ""}`])]}
              onInput=${(v) => update({ model: v })} error=${errors.model} />
            ${form.model && form.model !== status?.loaded_model && html`<div class="hint">Switching the checkpoint reloads the model before this job runs.</div>`}
            <div class="grid2">
              <${SelectField} name="vae" label="VAE" value=${form.vae} blank="built-in" options=${(vaes.items || []).map((m) => m.name)}
                onInput=${(v) => update({ vae: v })} error=${errors.vae} />
              <${SelectField} name="taesd" label="TAESD (fast decoder)" value=${form.taesd} blank="none" options=${(taesds.items || []).map((m) => m.name)}
                onInput=${(v) => update({ taesd: v })} error=${errors.taesd} />
              <${SelectField} name="preset" label="Preset" value=${form.preset} blank="none" options=${(presets.items || []).map((m) => m.name)}
                onInput=${(v) => update({ preset: v })} error=${errors.preset} />
              <${SelectField} name="prompt_template" label="Prompt template" value=${form.prompt_template} blank="none"
                options=${(prompts.items || []).map((m) => m.name)} onInput=${(v) => update({ prompt_template: v })} error=${errors.prompt_template} />
              <${SelectField} name="negative_prompt_template" label="Negative template" value=${form.negative_prompt_template} blank="none"
                options=${(negPrompts.items || []).map((m) => m.name)} onInput=${(v) => update({ negative_prompt_template: v })} error=${errors.negative_prompt_template} />
            </div>
          </${Group}>

          <${Group} id="loras" title="LoRA & embeddings" summary=${`${loraTags(form.prompt).length + loraTags(form.negative_prompt).length} active`}>
            <${LoraPicker} loras=${loras.items} prompt=${form.prompt + " " + form.negative_prompt} onToggle=${toggleLora} />
            <div class="hint">Embeddings in the embeddings folder are used by writing their name in a prompt.</div>
          </${Group}>

          ${mode === "txt2img" && html`
          <${Group} id="hires" title="Hires fix" summary=${form.hires ? `×${form.hires_scale} · ${form.hires_upscaler || "default"}` : "off"}>
            <${CheckField} name="hires" label="Enable hires fix" checked=${form.hires} onInput=${(v) => update({ hires: v })} />
            ${form.hires && html`<div class="grid2" data-field="hires">
              <${SelectField} name="hires_upscaler" label="Upscaler" value=${form.hires_upscaler} blank="default" options=${hiresUpscalers}
                onInput=${(v) => update({ hires_upscaler: v })} />
              <${NumberField} name="hires_scale" label="Scale" value=${form.hires_scale} min=${1} max=${4} step=${0.25}
                onInput=${(v) => update({ hires_scale: v })} />
              <${NumberField} name="hires_steps" label="Second pass steps" value=${form.hires_steps} min=${1} max=${150} placeholder="same"
                onInput=${(v) => update({ hires_steps: v })} />
              <${NumberField} name="hires_denoising" label="Denoising" value=${form.hires_denoising} min=${0} max=${1} step=${0.05}
                onInput=${(v) => update({ hires_denoising: v })} />
            </div>`}
            <${FieldError} error=${errors.hires} />
          </${Group}>`}

          <${Group} id="advanced" title="Advanced" summary=${[form.clip_skip !== "" && `clip skip ${form.clip_skip}`, form.vae_tiling && "VAE tiling", images.control && "control image", form.output_format !== "png" && form.output_format].filter(Boolean).join(" · ") || "defaults"}>
            <div class="grid3">
              <${NumberField} name="clip_skip" label="Clip skip" value=${form.clip_skip} min=${-1} max=${12} placeholder="default"
                onInput=${(v) => update({ clip_skip: v })} error=${errors.clip_skip} />
              <${NumberField} name="guidance" label="Guidance (Flux)" value=${form.guidance} min=${0} max=${30} step=${0.5} placeholder="default"
                onInput=${(v) => update({ guidance: v })} error=${errors.guidance} />
              <${NumberField} name="eta" label="Eta" value=${form.eta} min=${0} max=${1} step=${0.05} placeholder="default"
                onInput=${(v) => update({ eta: v })} error=${errors.eta} />
              <${SelectField} name="output_format" label="Format" value=${form.output_format} options=${[["png", "PNG"], ["jpeg", "JPEG"], ["webp", "WebP"]]}
                onInput=${(v) => update({ output_format: v })} error=${errors.output_format} />
            </div>
            <${CheckField} name="vae_tiling" label="VAE tiling (less memory for large images)" checked=${form.vae_tiling} onInput=${(v) => update({ vae_tiling: v })} />
            ${form.vae_tiling && html`<div class="grid2" data-field="vae_tiling">
              <${NumberField} name="tile_size" label="Tile size" value=${form.tile_size} min=${8} max=${512} step=${8} onInput=${(v) => update({ tile_size: v })} />
              <${NumberField} name="tile_overlap" label="Overlap" value=${form.tile_overlap} min=${0} max=${0.9} step=${0.05} onInput=${(v) => update({ tile_overlap: v })} />
            </div>`}
            <${FieldError} error=${errors.vae_tiling} />
            <${ImageInput} name="control_image" label="Control image (ControlNet)" compact=${true} value=${images.control}
              onChange=${(v) => setImage("control", v)} error=${errors.control_image} />
            ${images.control && html`<div class="grid2">
              <${SelectField} name="controlnet" label="ControlNet" value=${form.controlnet} blank="loaded"
                options=${(controlnets.items || []).map((m) => m.name)} onInput=${(v) => update({ controlnet: v })} error=${errors.controlnet} />
              <${NumberField} name="control_strength" label="Control strength" value=${form.control_strength} min=${0} max=${2} step=${0.05}
                onInput=${(v) => update({ control_strength: v })} error=${errors.control_strength} />
            </div>`}
          </${Group}>`}
      </section>
      <section class="result-col" aria-label="Result">
        <${ResultPanel} jobId=${current} />
      </section>
    </div>`;
}
