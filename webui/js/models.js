// The model library: a tab per type, server-side search, details with hashes on demand, and for
// admins load / unload (queued jobs) and rescan; beside it the "Get models" pane (getmodels.js).
import { html, cx, useState, useEffect, useContext, formatBytes, useModal } from "./lib.js";
import { AppContext } from "./context.js";
import { useSelect } from "./store.js";
import { fetchModels, bumpModels } from "./modelsdata.js";
import { CheckField, SelectField } from "./form.js";
import { GetModelsView } from "./getmodels.js";

const TYPES = [
  ["checkpoint", "Checkpoints"], ["lora", "LoRA"], ["vae", "VAE"], ["taesd", "TAESD"], ["esrgan", "ESRGAN"],
  ["upscaler", "Upscalers"], ["controlnet", "ControlNet"], ["embedding", "Embeddings"],
  ["diffusion_model", "Diffusion models"], ["text_encoder", "Text encoders"], ["presets", "Presets"],
  ["prompts", "Prompts"], ["neg_prompts", "Negative prompts"],
];

function Details({ model, onClose }) {
  const app = useContext(AppContext);
  const ref = useModal();
  const [details, setDetails] = useState(null);
  const [hashing, setHashing] = useState(false);
  const [error, setError] = useState(null);
  const [options, setOptions] = useState({ vae: "", weight_type: "", flash_attn: false, offload_to_cpu: false });
  const isAdmin = app.can.admin();
  useEffect(() => {
    app.api.get(`models/${model.id}`).then(setDetails, (e) => setError(e.message));
  }, [model.id]);

  async function hashes() {
    setHashing(true);
    try { setDetails(await app.api.get(`models/${model.id}`, { hashes: "true" })); } catch (e) { setError(e.message); }
    setHashing(false);
  }

  async function loadModel() {
    const body = { model: model.name };
    if (options.vae) body.vae = options.vae;
    if (options.weight_type) body.weight_type = options.weight_type;
    if (options.flash_attn) body.flash_attn = true;
    if (options.offload_to_cpu) body.offload_to_cpu = true;
    try {
      const job = await app.api.post("models/load", body);
      app.putJob(job);
      app.toast(`Loading ${model.name} (queued)`);
      onClose();
    } catch (e) {
      setError(e.field ? `${e.field}: ${e.message}` : e.message);
    }
  }

  const d = details || model;
  return html`<dialog class="model-details" ref=${ref} onClose=${onClose} aria-label=${`Model ${model.name}`}>
    <h2>${model.name}</h2>
    <dl class="params">
      <dt>type</dt><dd>${d.type}</dd>
      <dt>file</dt><dd class="mono">${d.relative_path}</dd>
      <dt>size</dt><dd>${formatBytes(d.size)}</dd>
      <dt>architecture</dt><dd>${d.architecture || "unknown"}${d.variant ? ` (${d.variant})` : ""}</dd>
      ${d.detection?.reason && html`<dt>detection</dt><dd>${d.detection.reason}</dd>`}
      <dt>sha256</dt><dd class="mono wrap">${d.sha256 || "not computed"}</dd>
      <dt>short hash</dt><dd class="mono">${d.short_hash || "–"}</dd>
      <dt>loaded</dt><dd>${d.loaded ? "yes" : "no"}</dd>
    </dl>
    ${error && html`<div class="field-error" role="alert">${error}</div>`}
    ${isAdmin && !d.sha256 && html`<button type="button" class="small" onClick=${hashes} disabled=${hashing}>${hashing ? "Hashing…" : "Compute hashes"}</button>`}
    ${isAdmin && model.type === "checkpoint" && html`<fieldset class="load-options"><legend>Load options</legend>
      <div class="grid2">
        <div class="field"><label for="load-vae">VAE file</label><input id="load-vae" placeholder="built-in" value=${options.vae}
          onInput=${(e) => setOptions({ ...options, vae: e.currentTarget.value })} /></div>
        <${SelectField} name="weight_type" label="Weight type" value=${options.weight_type} blank="as stored"
          options=${["f32", "f16", "q8_0", "q5_0", "q4_0"]} onInput=${(v) => setOptions({ ...options, weight_type: v })} />
      </div>
      <${CheckField} name="flash_attn" label="Flash attention" checked=${options.flash_attn} onInput=${(v) => setOptions({ ...options, flash_attn: v })} />
      <${CheckField} name="offload_to_cpu" label="Offload to CPU" checked=${options.offload_to_cpu} onInput=${(v) => setOptions({ ...options, offload_to_cpu: v })} />
      <button type="button" class="primary" onClick=${loadModel}>Load</button>
    </fieldset>`}
    <div class="row"><button type="button" onClick=${onClose}>Close</button></div>
  </dialog>`;
}

const PANES = [["library", "Library"], ["get", "Get models"]];

export function ModelsView() {
  const app = useContext(AppContext);
  const pane = useSelect(app.store, (s) => s.modelsPane);
  return html`<div class="models-panes">
    <div class="pane-tabs" role="tablist" aria-label="Models">
      ${PANES.map(([p, label]) => html`<button type="button" role="tab" aria-selected=${p === pane}
        class=${cx("tab", { active: p === pane })} onClick=${() => app.store.set({ modelsPane: p })}>${label}</button>`)}
    </div>
    ${pane === "get" ? html`<${GetModelsView} />` : html`<${LibraryPane} />`}
  </div>`;
}

function LibraryPane() {
  const app = useContext(AppContext);
  const status = useSelect(app.store, (s) => s.status);
  const version = useSelect(app.store, (s) => s.modelsVersion || 0);
  const [type, setType] = useState("checkpoint");
  const [search, setSearch] = useState("");
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  const [open, setOpen] = useState(null);
  const isAdmin = app.can.admin();

  useEffect(() => {
    let cancelled = false;
    const timer = setTimeout(() => {
      fetchModels(app, type, search).then((list) => { if (!cancelled) { setItems(list); setError(null); } },
        (e) => { if (!cancelled) setError(e.message); });
    }, search ? 200 : 0);
    return () => { cancelled = true; clearTimeout(timer); };
  }, [type, search, version, status?.loaded_model]);

  async function rescan() {
    try {
      const result = await app.api.post("models/scan", {});
      app.toast(`Rescanned: ${result.models} models`);
      bumpModels(app);
    } catch (e) { app.toast(`Rescan failed: ${e.message}`, { kind: "error" }); }
  }

  async function unload() {
    try {
      const job = await app.api.post("models/unload", {});
      app.putJob(job);
      app.toast("Unloading (queued)");
    } catch (e) { app.toast(`Unload failed: ${e.message}`, { kind: "error" }); }
  }

  return html`<div class="models-view">
    <div class="section-head">
      <h2>Models</h2>
      <span class="muted">${status?.loaded_model ? `loaded: ${status.loaded_model}` : "no model loaded"}</span>
      ${isAdmin && html`<button type="button" class="small" onClick=${rescan}>Rescan</button>`}
      ${isAdmin && status?.loaded_model && html`<button type="button" class="small" onClick=${unload}>Unload</button>`}
    </div>
    <div class="type-tabs" role="tablist" aria-label="Model type">
      ${TYPES.map(([t, label]) => html`<button type="button" role="tab" aria-selected=${t === type}
        class=${cx("tab", { active: t === type })} onClick=${() => { setType(t); setItems(null); }}>${label}</button>`)}
    </div>
    <input type="search" class="search" placeholder="Search by name or folder" aria-label="Search models" value=${search}
      onInput=${(e) => setSearch(e.currentTarget.value)} />
    ${error && html`<div class="field-error" role="alert">${error}</div>`}
    ${items && !items.length && html`<p class="muted">No ${type} files${search ? " match" : " in this folder"}.</p>`}
    <ul class="model-list">
      ${(items || []).map((m) => html`<li class=${cx("model-row", { loaded: m.loaded })} data-model=${m.id}>
        <button type="button" class="model-open" onClick=${() => setOpen(m)}>
          <span class="model-name">${m.name}</span>
          ${m.category && html`<span class="muted">${m.category}</span>`}
          ${m.architecture && html`<span class="badge">${m.architecture}${m.variant ? ` ${m.variant}` : ""}</span>`}
          ${m.loaded && html`<span class="badge ok">loaded</span>`}
          <span class="muted size">${formatBytes(m.size)}</span>
        </button>
        ${isAdmin && type === "checkpoint" && !m.loaded && html`<button type="button" class="small" aria-label=${`Load ${m.name}`}
          onClick=${async () => {
            try { app.putJob(await app.api.post("models/load", { model: m.name })); app.toast(`Loading ${m.name} (queued)`); }
            catch (e) { app.toast(`Load failed: ${e.message}`, { kind: "error" }); }
          }}>Load</button>`}
      </li>`)}
    </ul>
    ${open && html`<${Details} model=${open} onClose=${() => setOpen(null)} />`}
  </div>`;
}
