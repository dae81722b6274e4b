// The app's state and everything that changes it: profile, server status, jobs (from the queue
// and the event stream), toasts. Views read the store and call these actions; they never talk
// to the network themselves except through `app.api`.
import { Api, ApiError } from "./api.js";
import { EventStream } from "./events.js";
import { createStore } from "./store.js";
import { load, save } from "./persist.js";
import { ROUTES } from "./routes.js";

const TERMINAL = ["completed", "failed", "cancelled"];
const DELETE_DELAY_MS = 5000;
const STATUS_POLL_MS = 4000;  // the header's worker state and the down banner, besides the stream

export function createApp() {
  const store = createStore({
    booted: false,
    profile: null,          // {username, role, method} once known
    needLogin: false,       // credentials required and none valid
    loginOpen: false,       // the sign-in dialog over an intact page
    connection: "connecting", // connecting | ok | reconnecting | down
    status: null,           // GET /status
    jobs: {},               // job_id -> job view
    live: {},               // job_id -> {step, steps, stage, preview, at}
    current: load("current", null), // the job shown in the result panel
    tab: load("tab", "create"),
    mode: load("mode", "txt2img"),
    toasts: [],
    pendingDelete: {},      // job_id -> true while its undo toast runs
    historyVersion: 0,      // bumped when finished jobs change, so the history re-reads
    handoff: null,          // {mode, image} sent from a result to img2img/inpaint/upscale
    downloads: {},          // download id -> download view (admins: GET /models/downloads, download.* events)
    recipesVersion: 0,      // bumped when a download ends, so the recipes' installed state is re-read
    modelsPane: "library",  // the Models view's pane: library | get
  });

  const api = new Api({
    onUnauthorized: () => {
      const { profile } = store.get();
      if (profile) store.set({ loginOpen: true });
      else store.set({ needLogin: true });
    },
    onNetworkDown: () => markDown(),
    onNetworkUp: () => { if (store.get().connection === "down") store.set({ connection: "reconnecting" }); },
  });

  let statusTimer = null;
  let downSince = null;

  function markDown() {
    if (store.get().connection !== "down") {
      downSince = Date.now();
      store.set({ connection: "down" });
    }
  }

  const stream = new EventStream(api, {
    onOpen: () => {
      store.set({ connection: "ok" });
      downSince = null;
      // Progress and previews are not replayed: re-read what is live now.
      refreshQueue();
      refreshStatus();
      // Download progress is not replayed either: re-read the downloads this page follows.
      if (Object.values(store.get().downloads).some((d) => !TERMINAL.includes(d.status))) refreshDownloads();
    },
    onDown: (wasOpen) => {
      if (wasOpen) store.set({ connection: "reconnecting" });
      else markDown();
    },
    onUnauthorized: () => api.hooks.onUnauthorized(),
    onEvent: (type, data) => handleEvent(type, data),
  });

  function toast(message, { kind = "info", action = null, timeout = 5000 } = {}) {
    const id = Math.random().toString(36).slice(2);
    store.set((s) => ({ toasts: [...s.toasts, { id, message, kind, action }] }));
    if (timeout) setTimeout(() => dismissToast(id), timeout);
    return id;
  }

  function dismissToast(id) {
    store.set((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) }));
  }

  function putJob(job) {
    if (!job || !job.job_id) return;
    store.set((s) => {
      const jobs = { ...s.jobs, [job.job_id]: job };
      const patch = { jobs };
      if (TERMINAL.includes(job.status)) {
        const live = { ...s.live };
        delete live[job.job_id];
        patch.live = live;
        patch.historyVersion = s.historyVersion + 1;
      }
      return patch;
    });
  }

  /** A download's view from a POST, a list or a download.* event; an end re-reads the models. */
  function putDownload(download) {
    if (!download || !download.id) return;
    const before = store.get().downloads[download.id];
    store.set((s) => ({ downloads: { ...s.downloads, [download.id]: download } }));
    if (before && !TERMINAL.includes(before.status) && TERMINAL.includes(download.status)) {
      store.set((s) => ({ recipesVersion: s.recipesVersion + 1, modelsVersion: (s.modelsVersion || 0) + 1 }));
    }
  }

  async function refreshDownloads() {
    try {
      const data = await api.get("models/downloads", { limit: 50 }, { quiet401: true });
      for (const download of data.downloads) putDownload(download);
    } catch { /* admins only; the view shows the events it gets */ }
  }

  function handleEvent(type, data) {
    if (type.startsWith("download.")) { putDownload(data); return; }
    const id = data.job_id;
    if (type === "progress" && id) {
      store.set((s) => ({ live: { ...s.live, [id]: { ...(s.live[id] || {}), step: data.step, steps: data.steps, stage: data.stage, at: Date.now() } } }));
      const job = store.get().jobs[id];
      if (job && job.status !== "running") putJob({ ...job, status: "running" });
    } else if (type === "preview" && id) {
      store.set((s) => ({ live: { ...s.live, [id]: { ...(s.live[id] || {}), preview: data.image, at: Date.now() } } }));
    } else if (TERMINAL.includes(type) && data.job) {
      putJob(data.job);
      refreshStatus();
      refreshQueue();
      if (type === "completed" && data.job.job_id === store.get().current) notifyDone(data.job);
    } else if ((type === "queued" || type === "started") && id) {
      // The event carries no job view: read it (it also gives the queue position).
      api.get(`generate/${id}`).then(putJob, () => null);
      if (type === "started") {
        store.set((s) => ({ live: { ...s.live, [id]: { ...(s.live[id] || {}), startedAt: Date.now() } } }));
        refreshQueue();
      }
      refreshStatus();
    } else if (type === "queue") {
      refreshStatus();
    }
  }

  function notifyDone(job) {
    if (load("notify", false) && document.hidden && "Notification" in window && Notification.permission === "granted") {
      new Notification("sdrest: image ready", { body: (job.parameters?.prompt || "").slice(0, 100) });
    }
  }

  async function refreshStatus() {
    try {
      const status = await api.get("status", null, { quiet401: true });
      store.set({ status });
      if (store.get().connection === "down") store.set({ connection: "reconnecting" });
    } catch (error) {
      if (error.status === 0 || error.status >= 502) markDown();
    }
  }

  async function refreshQueue() {
    try {
      const data = await api.get("queue", { status: "queued,running", limit: 200 }, { quiet401: true });
      const liveIds = new Set(data.jobs.map((j) => j.job_id));
      // A job we thought live that is no longer in the queue has finished: read its end.
      const ended = Object.values(store.get().jobs)
        .filter((job) => !TERMINAL.includes(job.status) && !liveIds.has(job.job_id));
      store.set((s) => {
        const jobs = { ...s.jobs };
        for (const job of data.jobs) jobs[job.job_id] = job;
        return { jobs };
      });
      for (const job of ended) {
        api.get(`generate/${job.job_id}`).then(putJob, (e) => { if (e.status === 404) forget(job.job_id); });
      }
    } catch { /* the banner already says why */ }
  }

  function forget(id) {
    store.set((s) => {
      const jobs = { ...s.jobs };
      delete jobs[id];
      return { jobs, current: s.current === id ? null : s.current, historyVersion: s.historyVersion + 1 };
    });
  }

  async function boot() {
    try {
      const profile = await api.get("auth/profile", null, { quiet401: true });
      store.set({ profile, needLogin: false, booted: true });
      start();
    } catch (error) {
      if (error.status === 401) store.set({ needLogin: true, booted: true });
      else {
        store.set({ booted: true });
        markDown();
        setTimeout(boot, 2000);
      }
    }
  }

  function start() {
    stream.start();
    refreshStatus();
    refreshQueue();
    const current = store.get().current;
    if (current) api.get(`generate/${current}`).then(putJob, () => store.set({ current: null }));
    clearInterval(statusTimer);
    statusTimer = setInterval(() => {
      const { connection } = store.get();
      if (connection === "down" && downSince && Date.now() - downSince > 1000) refreshQueue();
      refreshStatus();
    }, STATUS_POLL_MS);
  }

  async function login(username, password, keep) {
    await api.post("auth/login", { username, password, cookie: true });
    save("keepSignedIn", !!keep);
    await afterSignIn();
  }

  async function useApiKey(key) {
    api.apiKey = key;
    try {
      await afterSignIn();
    } catch (error) {
      api.apiKey = null;
      throw error;
    }
  }

  async function afterSignIn() {
    const profile = await api.get("auth/profile", null, { quiet401: true });
    store.set({ profile, needLogin: false, loginOpen: false, jobs: {}, live: {} });
    stream.stop();
    start();
  }

  async function logout() {
    try { await api.post("auth/logout", {}); } catch { /* signed out locally anyway */ }
    api.apiKey = null;
    stream.stop();
    clearInterval(statusTimer);
    store.set({ profile: null, needLogin: true, jobs: {}, live: {}, status: null, current: null });
    save("current", undefined);
    // With optional auth, the server still answers as a guest: show that.
    boot();
  }

  /** Queue a job; returns the job view. Throws ApiError (with .field) for bad input. */
  async function submit(mode, params, { priority } = {}) {
    const path = ROUTES[mode];
    const body = { ...params, wait: false };
    if (priority) body.priority = priority;
    const job = await api.post(path, body);
    putJob(job);
    setCurrent(job.job_id);
    return job;
  }

  function setCurrent(id) {
    store.set({ current: id });
    save("current", id);
  }

  async function cancel(id) {
    try {
      const job = await api.del(`generate/${id}`);
      if (job && job.job_id) putJob(job);
      toast("Job cancelled");
    } catch (error) {
      toast(`Cancel failed: ${error.message}`, { kind: "error" });
    }
  }

  /** Delete after an undo window (the server deletes files at once, so wait first). */
  function deleteJob(id) {
    store.set((s) => ({ pendingDelete: { ...s.pendingDelete, [id]: true }, historyVersion: s.historyVersion + 1 }));
    let undone = false;
    const clear = () => store.set((s) => {
      const pendingDelete = { ...s.pendingDelete };
      delete pendingDelete[id];
      return { pendingDelete, historyVersion: s.historyVersion + 1 };
    });
    const toastId = toast("Job deleted", {
      action: { label: "Undo", run: () => { undone = true; clear(); dismissToast(toastId); } },
      timeout: DELETE_DELAY_MS,
    });
    setTimeout(async () => {
      if (undone) return;
      try {
        await api.del(`jobs/${id}`);
        forget(id);
      } catch (error) {
        toast(`Delete failed: ${error.message}`, { kind: "error" });
      }
      clear();
    }, DELETE_DELAY_MS);
  }

  function setTab(tab) { store.set({ tab }); save("tab", tab); }
  function setMode(mode) { store.set({ mode }); save("mode", mode); }

  /** Send an image (and parameters) from a result to another mode. */
  function handoff(mode, image, params = null) {
    store.set({ handoff: { mode, image, params, at: Date.now() } });
    setMode(mode);
    setTab("create");
  }

  const role = () => store.get().profile?.role || "guest";
  const can = {
    generate: () => !!store.get().profile?.can_generate,
    admin: () => role() === "admin",
  };

  return {
    store, api, stream, boot, login, logout, useApiKey, submit, cancel, deleteJob, setTab, setMode,
    setCurrent, handoff, toast, dismissToast, refreshStatus, refreshQueue, putJob, can, ApiError,
    putDownload, refreshDownloads,
  };
}
