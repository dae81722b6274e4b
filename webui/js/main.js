// Entry point: build the app, mount the views, global shortcuts, drop-a-PNG-anywhere.
import { html, render, useState, useEffect, useContext, cx, useModal } from "./lib.js";
import { createApp } from "./app.js";
import { AppContext } from "./context.js";
import { useSelect } from "./store.js";
import { Header, TabBar, TABS } from "./header.js";
import { CreateView } from "./create.js";
import { QueueView } from "./queue.js";
import { ModelsView } from "./models.js";
import { LoginScreen, LoginDialog } from "./login.js";
import { parametersFromFile, imageFromTransfer } from "./images.js";
import { applyTheme, currentTheme } from "./theme.js";

const SHORTCUTS = [
  ["Ctrl/⌘ + Enter", "Generate"],
  ["Ctrl/⌘ + Shift + Enter", "Generate at the front of the queue (admins)"],
  ["Esc", "Close the dialog; with none open, cancel the current job (asks first)"],
  ["1 / 2 / 3", "Create / Queue / Models"],
  ["B / E", "Brush / eraser (inpaint)"],
  ["[ / ]", "Brush size"],
  ["Ctrl/⌘ + Z, Ctrl/⌘ + Shift + Z", "Undo / redo the mask"],
  ["Space + drag, wheel", "Pan and zoom the mask canvas"],
  ["?", "This list"],
];

function Toasts() {
  const app = useContext(AppContext);
  const toasts = useSelect(app.store, (s) => s.toasts);
  return html`<div class="toasts" role="status" aria-live="polite">
    ${toasts.map((t) => html`<div class=${cx("toast", t.kind)} key=${t.id}>
      <span>${t.message}</span>
      ${t.action && html`<button type="button" class="small" onClick=${t.action.run}>${t.action.label}</button>`}
      <button type="button" class="chip-x" aria-label="Dismiss" onClick=${() => app.dismissToast(t.id)}>×</button>
    </div>`)}
  </div>`;
}

function Shortcuts({ onClose }) {
  const ref = useModal();
  return html`<dialog class="shortcuts" ref=${ref} onClose=${onClose} aria-label="Keyboard shortcuts">
    <h2>Keyboard shortcuts</h2>
    <dl class="params">${SHORTCUTS.map(([k, v]) => html`<dt><kbd>${k}</kbd></dt><dd>${v}</dd>`)}</dl>
    <button type="button" onClick=${() => ref.current.close()}>Close</button>
  </dialog>`;
}

/** A dropped image with parameters: show what it holds, then apply all or the prompt only. */
function DroppedParams({ params, onClose }) {
  const app = useContext(AppContext);
  const ref = useModal();
  const apply = (part) => {
    window.dispatchEvent(new CustomEvent("sdrest:reuse", { detail: { params, part } }));
    app.setTab("create");
    ref.current.close();
  };
  return html`<dialog class="dropped" ref=${ref} onClose=${onClose} aria-label="Parameters from the image">
    <h2>Parameters in this image</h2>
    <dl class="params">${Object.entries(params).map(([k, v]) => html`<dt>${k}</dt><dd>${typeof v === "object" ? JSON.stringify(v) : String(v)}</dd>`)}</dl>
    <div class="row">
      <button type="button" class="primary" onClick=${() => apply("all")}>Apply all</button>
      <button type="button" onClick=${() => apply("prompt")}>Prompt only</button>
      <button type="button" onClick=${() => ref.current.close()}>Cancel</button>
    </div>
  </dialog>`;
}

function Banner() {
  const app = useContext(AppContext);
  const connection = useSelect(app.store, (s) => s.connection);
  const profile = useSelect(app.store, (s) => s.profile);
  return html`
    ${connection === "down" && html`<div class="banner error" role="alert">The server cannot be reached. Retrying… (your form is kept)</div>`}
    ${profile?.method === "guest" && html`<div class="banner info">Browsing as a guest.
      <button type="button" class="link" onClick=${() => app.store.set({ loginOpen: true })}>Sign in</button></div>`}`;
}

function App({ app }) {
  const booted = useSelect(app.store, (s) => s.booted);
  const needLogin = useSelect(app.store, (s) => s.needLogin);
  const loginOpen = useSelect(app.store, (s) => s.loginOpen);
  const tab = useSelect(app.store, (s) => s.tab);
  const profile = useSelect(app.store, (s) => s.profile);
  const [help, setHelp] = useState(false);
  const [dropped, setDropped] = useState(null);

  useEffect(() => {
    const onKey = (e) => {
      const t = e.target;
      const typing = t && (t.tagName === "TEXTAREA" || t.tagName === "INPUT" || t.tagName === "SELECT" || t.isContentEditable);
      if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === "?") { setHelp(true); e.preventDefault(); }
      if (e.key === "Escape" && !document.querySelector("dialog[open]")) {
        // Esc with no dialog open cancels my running job, after a confirm.
        const { current, jobs } = app.store.get();
        const job = current && jobs[current];
        if (job && ["queued", "running"].includes(job.status) && window.confirm("Cancel the current job?")) app.cancel(job.job_id);
      }
      const index = ["1", "2", "3"].indexOf(e.key);
      if (index >= 0 && !document.querySelector("dialog[open]")) app.setTab(TABS[index][0]);
    };
    // Drop a PNG anywhere (outside an image field) to read its generation parameters.
    const onDragOver = (e) => { if (e.dataTransfer?.types?.includes("Files")) e.preventDefault(); };
    const onDrop = async (e) => {
      const file = imageFromTransfer(e.dataTransfer);
      if (!file) return;
      e.preventDefault();
      const params = await parametersFromFile(file);
      if (params) setDropped(params);
      else app.toast("That image carries no generation parameters", { kind: "info" });
    };
    window.addEventListener("keydown", onKey);
    window.addEventListener("dragover", onDragOver);
    window.addEventListener("drop", onDrop);
    return () => {
      window.removeEventListener("keydown", onKey);
      window.removeEventListener("dragover", onDragOver);
      window.removeEventListener("drop", onDrop);
    };
  }, []);

  if (!booted) return html`<main class="splash"><div class="brand big">sdrest</div><p class="muted">Connecting…</p></main>`;
  if (needLogin && !profile) return html`<${LoginScreen} />`;
  return html`<div class=${cx("layout", `tab-${tab}`)}>
    <${Header} />
    <${Banner} />
    <main id="main" tabindex="-1">
      ${tab === "create" && html`<${CreateView} />`}
      ${tab === "queue" && html`<${QueueView} />`}
      ${tab === "models" && html`<${ModelsView} />`}
    </main>
    <${TabBar} />
    <${Toasts} />
    ${loginOpen && html`<${LoginDialog} />`}
    ${help && html`<${Shortcuts} onClose=${() => setHelp(false)} />`}
    ${dropped && html`<${DroppedParams} params=${dropped} onClose=${() => setDropped(null)} />`}
  </div>`;
}

applyTheme(currentTheme());
const app = createApp();
render(html`<${AppContext.Provider} value=${app}><${App} app=${app} /></${AppContext.Provider}>`, document.getElementById("app"));
app.boot();
