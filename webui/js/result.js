// A job as people follow it: live preview and progress while it runs, the images and what can
// be done with them once it is finished.
import { html, cx, useState, useEffect, useContext, formatSeconds } from "./lib.js";
import { AppContext } from "./context.js";
import { useSelect } from "./store.js";
import { urlToDataUrl } from "./images.js";
import { load, save } from "./persist.js";

const STAGES = { loading: "Loading model", encoding: "Encoding", sampling: "Sampling", decoding: "Decoding", writing: "Writing" };

export function imageUrl(job, index, size = null) {
  const image = job.images?.[index];
  if (!image) return null;
  return size ? `${image.url}?size=${size}` : image.url;
}

/** Progress of a running or queued job: bar, stage, step, elapsed, ETA, queue position. */
export function JobProgress({ job, live }) {
  const [, tick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => tick((n) => n + 1), 1000);
    return () => clearInterval(timer);
  }, []);
  if (job.status === "queued") {
    // queue_position counts the jobs ahead (0: next); people count from 1.
    const position = job.queue_position;
    return html`<div class="progress-line" aria-live="polite">Queued${position != null ? ` · position ${position + 1}${position === 0 ? " (next)" : ""}` : ""}</div>`;
  }
  const step = live?.step ?? job.progress?.step ?? 0;
  const steps = live?.steps ?? job.progress?.steps ?? 0;
  const stage = live?.stage ?? job.progress?.stage;
  const fraction = steps ? Math.min(1, step / steps) : 0;
  const started = job.started_at ? job.started_at * 1000 : live?.startedAt;
  const elapsed = started ? (Date.now() - started) / 1000 : null;
  const eta = elapsed && fraction > 0.05 && stage === "sampling" ? elapsed / fraction - elapsed : null;
  return html`<div class="progress" aria-live="polite">
    <div class="progress-line">
      <span class="stage-label">${STAGES[stage] || "Starting"}</span>
      ${steps ? html`<span class="mono">${step}/${steps}</span>` : null}
      ${elapsed != null && html`<span class="mono">${formatSeconds(elapsed)}</span>`}
      ${eta != null && html`<span class="muted">~${formatSeconds(eta)} left</span>`}
    </div>
    <div class="bar" role="progressbar" aria-label="Progress" aria-valuemin="0" aria-valuemax="100" aria-valuenow=${Math.round(fraction * 100)}>
      <div class="bar-fill" style=${{ width: `${(fraction * 100).toFixed(1)}%` }}></div>
    </div>
  </div>`;
}

export function ErrorDetails({ error }) {
  if (!error) return null;
  return html`<div class="job-error" role="alert">
    <strong>${error.code}</strong>: ${error.message}${error.signal ? ` (${error.signal})` : ""}
    ${error.log?.length ? html`<details><summary>log</summary><pre>${error.log.join("\n")}</pre></details>` : null}
  </div>`;
}

/** What can be done with a finished job's image. */
export function ImageActions({ job, index = 0, onDone }) {
  const app = useContext(AppContext);
  const image = job.images?.[index];
  const params = image?.parameters || job.parameters;
  const reuse = (part) => {
    window.dispatchEvent(new CustomEvent("sdrest:reuse", { detail: { params, part } }));
    app.setMode(job.mode === "upscale" ? "upscale" : ["txt2img", "img2img", "inpaint"].includes(job.mode) ? job.mode : "txt2img");
    app.setTab("create");
    onDone?.();
  };
  const send = async (mode) => {
    try {
      app.handoff(mode, await urlToDataUrl(image.url));
      onDone?.();
    } catch (error) {
      app.toast(`Could not load the image: ${error.message}`, { kind: "error" });
    }
  };
  const copyInfo = async () => {
    try {
      const sidecar = await app.api.get(`jobs/${job.job_id}`);
      const text = sidecar?.images?.[index]?.infotext || JSON.stringify(params, null, 2);
      await navigator.clipboard.writeText(text);
      app.toast("Parameters copied");
    } catch {
      app.toast("Copy failed", { kind: "error" });
    }
  };
  const canGenerate = app.can.generate();
  return html`<div class="actions" role="group" aria-label="Image actions">
    ${job.mode !== "upscale" && html`
      <button type="button" class="small" onClick=${() => reuse("all")} title="Load all parameters into the form">Reuse</button>
      <button type="button" class="small" onClick=${() => reuse("prompt")}>Prompt</button>
      <button type="button" class="small" onClick=${() => window.dispatchEvent(new CustomEvent("sdrest:reuse", { detail: { params: { seed: image?.seed }, part: "settings" } }))}
        title="Use this image's seed">Seed ${image?.seed ?? ""}</button>`}
    ${canGenerate && image && html`
      <button type="button" class="small" onClick=${() => send("img2img")}>→ img2img</button>
      <button type="button" class="small" onClick=${() => send("inpaint")}>→ inpaint</button>
      <button type="button" class="small" onClick=${() => send("upscale")}>Upscale</button>`}
    ${image && html`<a class="button small" href=${`${image.url}?download=1`} download>Download</a>`}
    ${job.mode !== "upscale" && html`<button type="button" class="small" onClick=${copyInfo}>Copy parameters</button>`}
  </div>`;
}

/** Opt-in desktop notification when a job finishes while the tab is hidden. */
function NotifyToggle() {
  const [on, setOn] = useState(() => load("notify", false));
  if (!("Notification" in window)) return null;
  const toggle = async (e) => {
    let wanted = e.currentTarget.checked;
    if (wanted && Notification.permission !== "granted") wanted = (await Notification.requestPermission()) === "granted";
    save("notify", wanted);
    setOn(wanted);
  };
  return html`<label class="inline notify muted"><input type="checkbox" checked=${on} onChange=${toggle} />
    Notify me when a job finishes in a background tab</label>`;
}

export function ResultPanel({ jobId }) {
  const app = useContext(AppContext);
  const job = useSelect(app.store, (s) => (jobId ? s.jobs[jobId] : null));
  const live = useSelect(app.store, (s) => (jobId ? s.live[jobId] : null));
  const [selected, setSelected] = useState(0);
  useEffect(() => setSelected(0), [jobId]);

  // Progress in the tab title: "[40%] sdrest".
  useEffect(() => {
    const steps = live?.steps || job?.progress?.steps;
    if (job?.status === "running" && steps) {
      document.title = `[${Math.round(((live?.step ?? job.progress?.step ?? 0) / steps) * 100)}%] sdrest`;
    } else if (job?.status === "queued") document.title = "[queued] sdrest";
    else document.title = "sdrest";
  }, [job?.status, live?.step, live?.steps]);

  if (!job) {
    return html`<div class="result empty"><div class="placeholder">Your images appear here.</div></div>`;
  }
  const active = job.status === "queued" || job.status === "running";
  const images = job.images || [];
  const shown = Math.min(selected, Math.max(0, images.length - 1));
  return html`<div class=${cx("result", job.status)} data-job=${job.job_id} data-status=${job.status}>
    <div class="result-image">
      ${active && (live?.preview
        ? html`<img class="preview" src=${live.preview} alt="live preview" />`
        : html`<div class="placeholder pulse">${job.status === "queued" ? "Waiting in the queue…" : "Working…"}</div>`)}
      ${job.status === "completed" && images.length > 0 && html`<a href=${imageUrl(job, shown)} target="_blank" rel="noopener">
        <img class="final" src=${imageUrl(job, shown)} alt=${job.parameters?.prompt || "result"} /></a>`}
      ${job.status === "failed" && html`<${ErrorDetails} error=${job.error} />`}
      ${job.status === "cancelled" && html`<div class="placeholder">Cancelled.</div>`}
    </div>
    ${active && html`<${JobProgress} job=${job} live=${live} />`}
    ${active && html`<div class="row">
      <button type="button" class="danger small" onClick=${() => app.cancel(job.job_id)}>Cancel</button>
      ${job.status === "running" && html`<span class="hint">Cancelling a running job restarts the worker: the next job reloads the model.</span>`}
    </div>`}
    ${images.length > 1 && html`<div class="thumbs" role="list">
      ${images.map((image, i) => html`<button type="button" role="listitem" class=${cx("thumb", { active: i === shown })}
        aria-label=${`image ${i + 1}, seed ${image.seed}`} onClick=${() => setSelected(i)}>
        <img src=${imageUrl(job, i, 256)} alt="" loading="lazy" /></button>`)}
    </div>`}
    ${job.status === "completed" && html`<${ImageActions} job=${job} index=${shown} />`}
    <${NotifyToggle} />
    <div class="meta muted">
      ${job.mode} · ${job.status}${images[shown]?.seed != null ? ` · seed ${images[shown].seed}` : ""}${job.generation_time ? ` · ${job.generation_time.toFixed(1)} s` : ""}
      ${(job.warnings || []).map((w) => html`<div class="warn">${typeof w === "string" ? w : w.message || JSON.stringify(w)}</div>`)}
    </div>
  </div>`;
}
