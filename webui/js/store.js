// A tiny observable store: one state object, replaced on each change; components subscribe
// through useSelect and re-render only when what they selected changes.
import { useEffect, useReducer, useRef } from "./lib.js";

export function createStore(initial) {
  let state = initial;
  const listeners = new Set();
  return {
    get: () => state,
    /** Merge a patch (or the patch a function returns for the current state). */
    set(patch) {
      const next = typeof patch === "function" ? patch(state) : patch;
      if (!next) return;
      state = { ...state, ...next };
      for (const listener of [...listeners]) listener(state);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

function shallowEqual(a, b) {
  if (Object.is(a, b)) return true;
  if (typeof a !== "object" || typeof b !== "object" || !a || !b) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.is(a[k], b[k]));
}

/** The part of the state that `selector` picks, kept current. */
export function useSelect(store, selector) {
  const [, force] = useReducer((n) => n + 1, 0);
  const ref = useRef({ selector, value: selector(store.get()) });
  ref.current.selector = selector;
  ref.current.value = selector(store.get());
  useEffect(() => store.subscribe((state) => {
    const next = ref.current.selector(state);
    if (!shallowEqual(next, ref.current.value)) force();
  }), [store]);
  return ref.current.value;
}
