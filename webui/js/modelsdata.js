// Model lists from /api/v1/models, cached in the store per type filter and re-read after a rescan.
import { useEffect } from "./lib.js";
import { useSelect } from "./store.js";

export async function fetchModels(app, type, search = "") {
  const data = await app.api.get("models", { type, search, limit: 200 });
  return data.models;
}

/** {items, error} for a type filter such as "checkpoint" or "esrgan,upscaler". */
export function useModels(app, type) {
  const version = useSelect(app.store, (s) => s.modelsVersion || 0);
  const entry = useSelect(app.store, (s) => (s.models || {})[type]);
  const signedIn = useSelect(app.store, (s) => !!s.profile);
  useEffect(() => {
    if (!signedIn) return;
    if (entry && entry.version === version) return;
    let cancelled = false;
    fetchModels(app, type).then(
      (items) => { if (!cancelled) app.store.set((s) => ({ models: { ...(s.models || {}), [type]: { items, version } } })); },
      (error) => { if (!cancelled) app.store.set((s) => ({ models: { ...(s.models || {}), [type]: { items: [], error: error.message, version } } })); },
    );
    return () => { cancelled = true; };
  }, [type, version, signedIn]);
  return entry || { items: null };
}

export function bumpModels(app) {
  app.store.set((s) => ({ modelsVersion: (s.modelsVersion || 0) + 1 }));
}
