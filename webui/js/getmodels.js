// "Get models": the shipped recipes (GET /models/recipes) as cards with what is installed and
// whether each fits this machine, a box for any source, and the downloads with live progress
// (download.* events on the app's one stream; app.js keeps them in the store) and Cancel.
// Installing is for admins (the download routes are admin only); others see a hint.
import { html, cx, useState, useEffect, useContext, formatBytes, formatSeconds } from "./lib.js";
import { AppContext } from "./context.js";
import { useSelect } from "./store.js";

const ACTIVE = ["queued", "downloading", "verifying"];
// The weight types a file can be downloaded as (the API's `type`; default: the hub's, else the header).
const DOWNLOAD_TYPES = [
  "checkpoint", "diffusion_model", "vae", "text_encoder", "lora", "taesd", "esrgan", "upscaler", "controlnet", "embedding",
];

/** The recipes from the server, re-read when a download finishes or a rescan runs. */
export function useRecipes(app) {
  const version = useSelect(app.store, (s) => `${s.recipesVersion || 0}/${s.modelsVersion || 0}`);
  const signedIn = useSelect(app.store, (s) => !!s.profile && s.profile.role !== "guest");
  const [state, setState] = useState({ items: null, error: null });
  useEffect(() => {
    if (!signedIn) return undefined;
    let cancelled = false;
    app.api.get("models/recipes").then(
      (data) => { if (!cancelled) setState({ items: data.recipes, error: null }); },
      (e) => { if (!cancelled) setState({ items: [], error: e.message }); },
    );
    return () => { cancelled = true; };
  }, [version, signedIn]);
  return state;
}

/** Bytes of memory models run in here: the largest GPU's, else the machine's RAM (GET /system,
 * admins only; null when not known, and then nothing is marked as fitting or not). */
export function useMachineMemory(app) {
  const isAdmin = useSelect(app.store, (s) => s.profile?.role === "admin");
  const memory = useSelect(app.store, (s) => s.machineMemory);
  useEffect(() => {
    if (!isAdmin || memory !== undefined) return;
    app.api.get("system").then((system) => {
      const gpus = system.gpu?.present ? system.gpu.devices.map((d) => d.memory.total) : [];
      const bytes = gpus.length ? Math.max(...gpus) : system.memory?.total ?? null;
      app.store.set({ machineMemory: bytes ? { bytes, on: gpus.length ? "GPU" : "RAM" } : null });
    }, () => app.store.set({ machineMemory: null }));
  }, [isAdmin]);
  return memory || null;
}

/** true / false when the machine's memory is known, else null. */
export function fits(recipe, memory) {
  if (!memory) return null;
  return recipe.memory_mb * 1024 * 1024 <= memory.bytes;
}

/** The selectable recipes not yet installed that fit (catalogue order, at most `count`). */
export function suggestedRecipes(recipes, memory, count = 3) {
  return (recipes || []).filter((r) => r.selectable && !r.installed && fits(r, memory) !== false).slice(0, count);
}

/** Start a download; returns the download view (throws ApiError naming the field). */
export async function startDownload(app, body) {
  const download = await app.api.post("models/downloads", body);
  app.putDownload(download);
  return download;
}

/** The download of a recipe that is still running, if any. */
export function activeDownloadOf(downloads, recipeName) {
  return Object.values(downloads).find((d) => d.recipe === recipeName && ACTIVE.includes(d.status)) || null;
}

function percent(download) {
  if (!download.bytes_total) return null;
  return Math.min(100, Math.floor((download.bytes_done / download.bytes_total) * 100));
}

export function DownloadRow({ download }) {
  const app = useContext(AppContext);
  const active = ACTIVE.includes(download.status);
  const pct = percent(download);
  const left = download.bytes_total && download.bytes_per_second > 0
    ? (download.bytes_total - download.bytes_done) / download.bytes_per_second : null;
  async function cancel() {
    try { app.putDownload(await app.api.del(`models/downloads/${download.id}`)); app.toast("Download cancelled; its partial files are removed"); }
    catch (e) { app.toast(`Cancel failed: ${e.message}`, { kind: "error" }); }
  }
  return html`<li class=${cx("download", download.status)} data-download=${download.id} data-status=${download.status}>
    <div class="row">
      <span class="download-name">${download.recipe || download.source}</span>
      <span class=${cx("badge", { ok: download.status === "completed", bad: download.status === "failed" })}>${download.status}</span>
      ${active && html`<button type="button" class="small danger" onClick=${cancel}
        aria-label=${`Cancel the download of ${download.recipe || download.source}`}>Cancel</button>`}
    </div>
    ${active && html`<div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=${pct ?? undefined}
      aria-label=${`Downloaded ${pct ?? 0}%`}><div class="bar-fill" style=${{ width: `${pct ?? 0}%` }}></div></div>`}
    <div class="muted small-text">
      ${formatBytes(download.bytes_done)}${download.bytes_total ? ` of ${formatBytes(download.bytes_total)}` : ""}
      ${active && download.bytes_per_second > 0 ? ` · ${formatBytes(download.bytes_per_second)}/s` : ""}
      ${active && left != null ? ` · ${formatSeconds(left)} left` : ""}
      ${download.files.length ? ` · ${download.files.map((f) => f.skipped_existing ? `${f.name} (already there)` : f.name).join(", ")}` : ""}
    </div>
    ${download.error && html`<div class="field-error" role="alert">${download.error.message}</div>`}
  </li>`;
}

function RecipeCard({ recipe, memory, downloads, isAdmin }) {
  const app = useContext(AppContext);
  const [error, setError] = useState(null);
  const running = activeDownloadOf(downloads, recipe.name);
  const fit = fits(recipe, memory);
  const installedFiles = recipe.files.filter((f) => f.installed).length;
  async function install() {
    setError(null);
    try { await startDownload(app, { recipe: recipe.name }); }
    catch (e) { setError(e.message); }
  }
  return html`<li class=${cx("recipe-card", { installed: recipe.installed, "no-fit": fit === false })} data-recipe=${recipe.name}>
    <div class="row">
      <strong class="recipe-title">${recipe.title}</strong>
      <span class="badge">${recipe.family}</span>
      ${recipe.installed && html`<span class="badge ok">installed</span>`}
      ${fit === true && html`<span class="badge ok" title=${`needs ${recipe.memory_mb} MiB; this machine's ${memory.on} has ${formatBytes(memory.bytes)}`}>fits</span>`}
      ${fit === false && html`<span class="badge warn" title=${`needs ${recipe.memory_mb} MiB; this machine's ${memory.on} has ${formatBytes(memory.bytes)}`}>too large here</span>`}
    </div>
    <dl class="recipe-facts">
      <dt>name</dt><dd class="mono">${recipe.name}</dd>
      <dt>download</dt><dd>${recipe.size == null ? "size unknown" : formatBytes(recipe.size)}</dd>
      <dt>memory</dt><dd>${formatBytes(recipe.memory_mb * 1024 * 1024)}</dd>
      <dt>license</dt><dd>${recipe.license}</dd>
      <dt>files</dt><dd>${installedFiles} of ${recipe.files.length} installed${recipe.selectable ? "" : " (a helper, not a model of its own)"}</dd>
    </dl>
    ${isAdmin && !recipe.installed && !running && html`<button type="button" class="small primary" onClick=${install}
      aria-label=${`Install ${recipe.title}`}>Install${recipe.missing_bytes ? ` (${formatBytes(recipe.missing_bytes)})` : ""}</button>`}
    ${running && html`<ul class="downloads"><${DownloadRow} download=${running} /></ul>`}
    ${recipe.installed && recipe.selectable && html`<div class="hint">Selectable on Create as <span class="mono">${recipe.name}</span>.</div>`}
    ${error && html`<div class="field-error" role="alert">${error}</div>`}
  </li>`;
}

function SourceBox() {
  const app = useContext(AppContext);
  const [source, setSource] = useState("");
  const [type, setType] = useState("");
  const [sha256, setSha256] = useState("");
  const [errors, setErrors] = useState({});
  const [busy, setBusy] = useState(false);
  async function submit(e) {
    e.preventDefault();
    setErrors({});
    const body = { source: source.trim() };
    if (type) body.type = type;
    if (sha256.trim()) body.sha256 = sha256.trim();
    setBusy(true);
    try {
      await startDownload(app, body);
      setSource("");
      setSha256("");
    } catch (error) {
      const field = (error.field || "source").split(".")[0];
      // The API's message names its field; it shows under that field (else under the source).
      setErrors({ [["source", "type", "sha256"].includes(field) ? field : "source"]: error.message });
    }
    setBusy(false);
  }
  return html`<form class="source-box" onSubmit=${submit} aria-label="Download a model file">
    <div class=${cx("field", { invalid: errors.source })} data-field="source">
      <label for="download-source">Source</label>
      <input id="download-source" name="source" type="text" value=${source} required
        placeholder="hf:OWNER/REPO/FILE[@REV], civitai:VERSION, or an https:// URL"
        onInput=${(e) => setSource(e.currentTarget.value)} />
      ${errors.source && html`<div class="field-error" role="alert">${errors.source}</div>`}
    </div>
    <div class="grid2">
      <div class=${cx("field", { invalid: errors.type })} data-field="type">
        <label for="download-type">Type</label>
        <select id="download-type" name="type" value=${type} onInput=${(e) => setType(e.currentTarget.value)}>
          <option value="">from the hub, else the file's header</option>
          ${DOWNLOAD_TYPES.map((t) => html`<option value=${t}>${t}</option>`)}
        </select>
        ${errors.type && html`<div class="field-error" role="alert">${errors.type}</div>`}
      </div>
      <div class=${cx("field", { invalid: errors.sha256 })} data-field="sha256">
        <label for="download-sha256">SHA-256 (optional)</label>
        <input id="download-sha256" name="sha256" type="text" value=${sha256} placeholder="64 hex digits: checked after the download"
          onInput=${(e) => setSha256(e.currentTarget.value)} />
        ${errors.sha256 && html`<div class="field-error" role="alert">${errors.sha256}</div>`}
      </div>
    </div>
    <button type="submit" class="primary" disabled=${busy || !source.trim()}>${busy ? "Starting…" : "Download"}</button>
  </form>`;
}

export function GetModelsView() {
  const app = useContext(AppContext);
  const isAdmin = useSelect(app.store, (s) => s.profile?.role === "admin");
  const downloads = useSelect(app.store, (s) => s.downloads);
  const recipes = useRecipes(app);
  const memory = useMachineMemory(app);
  useEffect(() => { if (isAdmin) app.refreshDownloads(); }, [isAdmin]);
  const list = Object.values(downloads).sort((a, b) => b.created_at - a.created_at);
  const models = (recipes.items || []).filter((r) => r.selectable);
  const helpers = (recipes.items || []).filter((r) => !r.selectable);
  const cards = (items) => html`<ul class="recipe-cards">${items.map((r) => html`<${RecipeCard} key=${r.name}
    recipe=${r} memory=${memory} downloads=${downloads} isAdmin=${isAdmin} />`)}</ul>`;
  return html`<div class="get-models">
    ${!isAdmin && html`<p class="notice">An admin installs models; this list shows what they can set up and what is installed.</p>`}
    ${memory && html`<p class="muted">This machine: ${formatBytes(memory.bytes)} of ${memory.on}. A recipe "fits" when the memory its settings need is no more.</p>`}
    ${isAdmin && html`<section aria-label="Download any file">
      <h3>Any file</h3>
      <${SourceBox} />
    </section>`}
    ${isAdmin && list.length > 0 && html`<section aria-label="Downloads">
      <h3>Downloads</h3>
      <ul class="downloads">${list.map((d) => html`<${DownloadRow} key=${d.id} download=${d} />`)}</ul>
    </section>`}
    ${recipes.error && html`<div class="field-error" role="alert">${recipes.error}</div>`}
    <section aria-label="Recipes">
      <h3>Recipes</h3>
      <p class="muted">Ready model setups: every file a model needs, with the settings that bind them, installed as one model name.</p>
      ${recipes.items === null ? html`<p class="muted">Loading…</p>` : cards(models)}
      ${helpers.length > 0 && html`<h3>Helpers</h3>${cards(helpers)}`}
    </section>
  </div>`;
}

/** Create's empty state (no model installed): the recipes that fit, each with Install. */
export function NoModelSuggestions() {
  const app = useContext(AppContext);
  const isAdmin = useSelect(app.store, (s) => s.profile?.role === "admin");
  const downloads = useSelect(app.store, (s) => s.downloads);
  const recipes = useRecipes(app);
  const memory = useMachineMemory(app);
  const [error, setError] = useState(null);
  const picks = suggestedRecipes(recipes.items, memory);
  const openGetModels = () => { app.store.set({ modelsPane: "get" }); app.setTab("models"); };
  async function install(recipe) {
    setError(null);
    try { await startDownload(app, { recipe: recipe.name }); }
    catch (e) { setError(e.message); }
  }
  return html`<div class="empty-models" aria-label="No model installed">
    <p><strong>No model is installed yet.</strong> ${isAdmin
      ? (memory ? "These recipes fit this machine; each installs every file a model needs:" : "Each of these recipes installs every file a model needs:")
      : "An admin installs models (Models → Get models)."}</p>
    ${picks.length > 0 && html`<ul class="recipe-picks">${picks.map((r) => {
      const running = activeDownloadOf(downloads, r.name);
      return html`<li data-recipe=${r.name}>
        <span><strong>${r.title}</strong> <span class="muted">${r.size == null ? "" : formatBytes(r.size)} · needs ${formatBytes(r.memory_mb * 1024 * 1024)}</span></span>
        ${isAdmin && !running && html`<button type="button" class="small primary" onClick=${() => install(r)} aria-label=${`Install ${r.title}`}>Install</button>`}
        ${running && html`<ul class="downloads"><${DownloadRow} download=${running} /></ul>`}
      </li>`;
    })}</ul>`}
    ${error && html`<div class="field-error" role="alert">${error}</div>`}
    <button type="button" class="link" onClick=${openGetModels}>All recipes and any file (Models → Get models)</button>
  </div>`;
}
