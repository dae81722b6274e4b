// The header: navigation, what is loaded, the worker's state, running and queued counts, the
// connection badge, the theme switch and the user menu. Always visible.
import { html, cx, useState, useContext } from "./lib.js";
import { AppContext } from "./context.js";
import { useSelect } from "./store.js";
import { THEMES, currentTheme, setTheme } from "./theme.js";

export const TABS = [["create", "Create"], ["queue", "Queue"], ["models", "Models"]];

function workerState(status) {
  const worker = status?.worker;
  if (!worker) return ["unknown", "worker: unknown"];
  if (!worker.alive) return ["bad", worker.crashes ? `worker restarting (${worker.crashes} crashes)` : "worker starting"];
  return ["ok", worker.crashes ? `worker ok · ${worker.crashes} crashes` : "worker ok"];
}

export function Header() {
  const app = useContext(AppContext);
  const tab = useSelect(app.store, (s) => s.tab);
  const status = useSelect(app.store, (s) => s.status);
  const profile = useSelect(app.store, (s) => s.profile);
  const connection = useSelect(app.store, (s) => s.connection);
  const [theme, setThemeState] = useState(currentTheme);
  const [kind, label] = workerState(status);
  const running = status?.queue?.running || 0;
  const queued = status?.queue?.queued || 0;
  const cycleTheme = () => {
    const next = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
    setTheme(next);
    setThemeState(next);
  };
  return html`<header class="app-header">
    <a class="brand" href="#create" onClick=${(e) => { e.preventDefault(); app.setTab("create"); }}>sdrest</a>
    <nav class="main-nav" aria-label="Views">
      ${TABS.map(([t, text]) => html`<a href=${`#${t}`} class=${cx("nav", { active: tab === t })} aria-current=${tab === t ? "page" : undefined}
        onClick=${(e) => { e.preventDefault(); app.setTab(t); }}>${text}</a>`)}
    </nav>
    <div class="status-strip">
      <button type="button" class="model-pill" title="Loaded model (open the models view)" onClick=${() => app.setTab("models")}>
        ${status?.loaded_model ? html`<span class="dot ok"></span>${status.loaded_model}` : html`<span class="dot"></span>no model`}
      </button>
      <span class=${cx("worker", kind)} title=${label}><span class=${cx("dot", kind)}></span><span class="label">${label}</span></span>
      <span class="counts" title="running and queued jobs" aria-label=${`${running} running, ${queued} queued`}>▶${running} +${queued}</span>
      ${connection !== "ok" && html`<span class=${cx("conn", connection)} role="status">${connection === "down" ? "offline" : "reconnecting…"}</span>`}
    </div>
    <button type="button" class="icon theme" onClick=${cycleTheme} aria-label=${`Theme: ${theme}`} title=${`Theme: ${theme} (click to change)`}>
      ${theme === "dark" ? "☾" : theme === "light" ? "☀" : "◐"}</button>
    ${profile && profile.method !== "none" && html`<details class="user-menu">
      <summary aria-label="User menu">${profile.username || "guest"}</summary>
      <div class="menu">
        <div class="muted">${profile.role} · ${profile.method}</div>
        ${profile.method === "guest"
          ? html`<button type="button" class="small" onClick=${() => app.store.set({ loginOpen: true })}>Sign in</button>`
          : html`<button type="button" class="small" onClick=${() => app.logout()}>Sign out</button>`}
      </div>
    </details>`}
  </header>`;
}

export function TabBar() {
  const app = useContext(AppContext);
  const tab = useSelect(app.store, (s) => s.tab);
  return html`<nav class="tab-bar" aria-label="Views (bottom)">
    ${TABS.map(([t, text]) => html`<button type="button" class=${cx({ active: tab === t })} aria-current=${tab === t ? "page" : undefined}
      onClick=${() => app.setTab(t)}>${text}</button>`)}
  </nav>`;
}
