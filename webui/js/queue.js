// Queue and history: the live jobs from the store (kept current by the event stream), and the
// finished ones read page by page from /api/v1/queue, with a lightbox for each.
import { html, cx, useState, useEffect, useContext, formatTime, useModal } from "./lib.js";
import { AppContext } from "./context.js";
import { useSelect } from "./store.js";
import { JobProgress, ImageActions, ErrorDetails, imageUrl } from "./result.js";
import { ROUTES } from "./routes.js";

const PAGE = 48;
const FILTERS = [["completed,failed,cancelled", "All"], ["completed", "Completed"], ["failed", "Failed"], ["cancelled", "Cancelled"]];

function excerpt(job) {
  const p = job.parameters || {};
  if (job.mode === "upscale") return `upscale with ${p.upscaler || "?"}`;
  return (p.prompt || "").slice(0, 120) || "(no prompt)";
}

function sizeLine(job) {
  const p = job.parameters || {};
  return [p.width && p.height ? `${p.width}×${p.height}` : null, p.steps ? `${p.steps} steps` : null, job.mode].filter(Boolean).join(" · ");
}

function LiveJob({ job }) {
  const app = useContext(AppContext);
  const live = useSelect(app.store, (s) => s.live[job.job_id]);
  const hidden = job.owner_hidden || job.busy;
  return html`<li class=${cx("job-row", job.status)} data-job=${job.job_id} data-status=${job.status}>
    <div class="job-thumb">${live?.preview ? html`<img src=${live.preview} alt="preview" />` : html`<span class="badge">${job.status}</span>`}</div>
    <div class="job-main">
      <div class="job-title">${hidden ? "another user's job" : excerpt(job)}</div>
      <div class="muted">${hidden ? "" : sizeLine(job)}</div>
      <${JobProgress} job=${job} live=${live} />
    </div>
    ${!hidden && html`<button type="button" class="danger small" aria-label="Cancel job" onClick=${() => app.cancel(job.job_id)}>Cancel</button>`}
  </li>`;
}

async function retry(app, job) {
  const route = ROUTES[job.mode];
  const params = { ...(job.parameters || {}) };
  for (const [key, value] of Object.entries(params)) if (value === "given") delete params[key];
  if (!route || params.init_image === undefined && ["img2img", "inpaint"].includes(job.mode)) {
    // The server keeps no copy of input images for re-runs: load the settings instead.
    window.dispatchEvent(new CustomEvent("sdrest:reuse", { detail: { params: job.parameters, part: "all" } }));
    app.setMode(job.mode);
    app.setTab("create");
    app.toast("Settings loaded: add the input image again to re-run");
    return;
  }
  try {
    await app.submit(job.mode, params);
    app.toast("Queued again");
  } catch (error) {
    app.toast(`Re-run failed: ${error.message}`, { kind: "error" });
  }
}

function Lightbox({ job, index, onClose, onMove }) {
  const app = useContext(AppContext);
  const ref = useModal();
  useEffect(() => {
    const onKey = (e) => {
      if (e.key === "ArrowRight") onMove(1);
      else if (e.key === "ArrowLeft") onMove(-1);
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);
  const params = job.images?.[index]?.parameters || job.parameters || {};
  return html`<dialog class="lightbox" ref=${ref} onClose=${onClose} aria-label="Job details">
    <div class="lightbox-body">
      <div class="lightbox-image">
        ${job.images?.length ? html`<img src=${imageUrl(job, index)} alt=${params.prompt || "image"} />` : html`<div class="placeholder">${job.status}</div>`}
      </div>
      <aside class="lightbox-side">
        <h2>${job.mode} · ${job.status}</h2>
        <div class="muted">${formatTime(job.finished_at || job.created_at)}</div>
        <${ErrorDetails} error=${job.error} />
        <dl class="params">
          ${Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) => html`
            <dt>${k}</dt><dd>${typeof v === "object" ? JSON.stringify(v) : String(v)}</dd>`)}
        </dl>
        ${job.status === "completed" && html`<${ImageActions} job=${job} index=${index} onDone=${onClose} />`}
        <div class="row">
          ${app.can.generate() && job.mode !== "upscale" && html`<button type="button" class="small" onClick=${() => { retry(app, job); onClose(); }}>Re-run</button>`}
          ${app.can.generate() && html`<button type="button" class="small danger" onClick=${() => { app.deleteJob(job.job_id); onClose(); }}>Delete</button>`}
          <button type="button" class="small" onClick=${onClose}>Close</button>
        </div>
      </aside>
    </div>
  </dialog>`;
}

function History() {
  const app = useContext(AppContext);
  const version = useSelect(app.store, (s) => s.historyVersion);
  const pending = useSelect(app.store, (s) => s.pendingDelete);
  const [filter, setFilter] = useState(FILTERS[0][0]);
  const [jobs, setJobs] = useState([]);
  const [total, setTotal] = useState(0);
  const [limit, setLimit] = useState(PAGE);
  const [open, setOpen] = useState(null); // [jobIndex, imageIndex]
  const [error, setError] = useState(null);

  useEffect(() => {
    let cancelled = false;
    app.api.get("queue", { status: filter, limit, offset: 0 }).then((data) => {
      if (cancelled) return;
      setJobs(data.jobs);
      setTotal(data.total);
      setError(null);
    }, (e) => { if (!cancelled) setError(e.message); });
    return () => { cancelled = true; };
  }, [filter, limit, version]);

  const visible = jobs.filter((j) => !pending[j.job_id]);
  const moveOpen = (dir) => setOpen((o) => {
    if (!o) return o;
    const [j, i] = o;
    const job = visible[j];
    const ni = i + dir;
    if (job && ni >= 0 && ni < (job.images?.length || 0)) return [j, ni];
    const nj = Math.min(visible.length - 1, Math.max(0, j + dir));
    return [nj, dir > 0 ? 0 : Math.max(0, (visible[nj]?.images?.length || 1) - 1)];
  });
  return html`<section class="history" aria-label="History">
    <div class="section-head">
      <h2>History</h2>
      <div class="chips" role="group" aria-label="Filter by state">
        ${FILTERS.map(([value, label]) => html`<button type="button" class=${cx("chip", { active: filter === value })}
          aria-pressed=${filter === value} onClick=${() => setFilter(value)}>${label}</button>`)}
      </div>
    </div>
    ${error && html`<div class="field-error">${error}</div>`}
    ${!visible.length && !error && html`<p class="muted">Nothing finished yet.</p>`}
    <ul class="gallery">
      ${visible.map((job, j) => html`<li class=${cx("card", job.status)} data-job=${job.job_id} data-status=${job.status}>
        <button type="button" class="card-open" onClick=${() => setOpen([j, 0])} aria-label=${`open ${job.mode} job: ${excerpt(job)}`}>
          ${job.images?.length ? html`<img src=${imageUrl(job, 0, 256)} alt="" loading="lazy" />` : html`<span class="badge ${job.status}">${job.status}</span>`}
        </button>
        <div class="card-text"><span class="clip">${excerpt(job)}</span>
          <span class="muted">${job.images?.length > 1 ? `${job.images.length} images · ` : ""}${sizeLine(job)}</span></div>
      </li>`)}
    </ul>
    ${total > jobs.length && html`<button type="button" onClick=${() => setLimit((l) => Math.min(200, l + PAGE))} disabled=${limit >= 200}>Show more</button>`}
    ${open && visible[open[0]] && html`<${Lightbox} key=${visible[open[0]].job_id + open[1]} job=${visible[open[0]]} index=${open[1]}
      onClose=${() => setOpen(null)} onMove=${moveOpen} />`}
  </section>`;
}

export function QueueView() {
  const app = useContext(AppContext);
  const jobs = useSelect(app.store, (s) => s.jobs);
  const live = Object.values(jobs)
    .filter((j) => j.status === "queued" || j.status === "running")
    .sort((a, b) => (a.status === "running" ? -1 : b.status === "running" ? 1 : (a.queue_position ?? 0) - (b.queue_position ?? 0)));
  return html`<div class="queue-view">
    <section aria-label="Queue">
      <div class="section-head"><h2>Queue</h2><span class="muted">${live.length ? `${live.length} active` : "idle"}</span></div>
      ${live.length ? html`<ul class="job-list">${live.map((job) => html`<${LiveJob} key=${job.job_id} job=${job} />`)}</ul>`
        : html`<p class="muted">No job is queued or running.</p>`}
    </section>
    <${History} />
  </div>`;
}
