// Light and dark themes that follow the system, with an override that persists.
import { load, save } from "./persist.js";

export const THEMES = ["system", "light", "dark"];

export function applyTheme(theme) {
  const root = document.documentElement;
  if (theme === "light" || theme === "dark") root.dataset.theme = theme;
  else delete root.dataset.theme;
}

export function currentTheme() { return load("theme", "system"); }

export function setTheme(theme) {
  save("theme", theme);
  applyTheme(theme);
}
