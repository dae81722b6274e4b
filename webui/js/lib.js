// The UI's only framework: Preact with hooks, written as htm tagged templates (no build step).
import { h, render, createContext, Fragment } from "../vendor/preact.mjs";
import { useEffect, useRef } from "../vendor/hooks.mjs";
import htm from "../vendor/htm.mjs";

export { h, render, createContext, Fragment };
export {
  useState, useEffect, useRef, useMemo, useCallback, useContext, useReducer, useLayoutEffect,
} from "../vendor/hooks.mjs";

export const html = htm.bind(h);

/** Class names from strings and {name: condition} objects. */
export function cx(...parts) {
  const out = [];
  for (const part of parts) {
    if (!part) continue;
    if (typeof part === "string") out.push(part);
    else for (const [name, on] of Object.entries(part)) if (on) out.push(name);
  }
  return out.join(" ");
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function formatBytes(bytes) {
  if (bytes == null) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(value >= 100 || unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function formatSeconds(seconds) {
  if (seconds == null || !isFinite(seconds)) return "";
  const s = Math.max(0, Math.round(seconds));
  const m = Math.floor(s / 60);
  return m ? `${m}:${String(s % 60).padStart(2, "0")}` : `${s}s`;
}

export function formatTime(unix) {
  if (!unix) return "";
  return new Date(unix * 1000).toLocaleString();
}

/** A ref for a <dialog> that opens as a modal when it mounts (Esc and the backdrop close it). */
export function useModal() {
  const ref = useRef(null);
  useEffect(() => { ref.current?.showModal?.(); }, []);
  return ref;
}
