// LoRA tags in prompts: A1111's <lora:name:weight>. A searchable picker inserts a tag at the
// cursor of the last focused prompt (a second click removes it); chips adjust each weight;
// names the server does not know are flagged before submitting.
import { html, cx, useState, useMemo } from "./lib.js";

const TAG = /<lora:([^:>]+)(?::([^>]*))?>/g;

export function loraTags(text) {
  const tags = [];
  for (const match of (text || "").matchAll(TAG)) {
    tags.push({ name: match[1], weight: match[2] === undefined || match[2] === "" ? 1 : Number(match[2]), raw: match[0] });
  }
  return tags;
}

export function removeTag(text, name) {
  return text.replace(TAG, (raw, n) => (n === name ? "" : raw)).replace(/  +/g, " ").trim();
}

export function setTagWeight(text, name, weight) {
  return text.replace(TAG, (raw, n) => (n === name ? `<lora:${n}:${weight}>` : raw));
}

export function insertAt(text, position, insertion) {
  const before = text.slice(0, position);
  const after = text.slice(position);
  const pad = before && !/\s$/.test(before) ? " " : "";
  return before + pad + insertion + (after && !/^\s/.test(after) ? " " : "") + after;
}

export function LoraChips({ text, known, onChange }) {
  const tags = loraTags(text);
  if (!tags.length) return null;
  const names = new Set((known || []).map((m) => m.name));
  return html`<div class="chips" aria-label="LoRAs in the prompt">
    ${tags.map((tag) => html`
      <span class=${cx("chip", { unknown: known && !names.has(tag.name) })} title=${known && !names.has(tag.name) ? "no such LoRA on the server" : tag.raw}>
        ${tag.name}
        <input type="number" step="0.05" min="-4" max="4" value=${tag.weight} aria-label=${`weight of ${tag.name}`}
          onInput=${(e) => { const w = e.currentTarget.value; if (w !== "" && !isNaN(Number(w))) onChange(setTagWeight(text, tag.name, Number(w))); }} />
        <button type="button" class="chip-x" aria-label=${`remove ${tag.name}`} onClick=${() => onChange(removeTag(text, tag.name))}>×</button>
      </span>`)}
  </div>`;
}

export function LoraPicker({ loras, prompt, onToggle }) {
  const [query, setQuery] = useState("");
  const active = new Set(loraTags(prompt).map((t) => t.name));
  const shown = useMemo(() => {
    const q = query.toLowerCase();
    return (loras || []).filter((m) => !q || m.name.toLowerCase().includes(q) || (m.category || "").toLowerCase().includes(q));
  }, [loras, query]);
  return html`<div class="lora-picker">
    <input type="search" placeholder="Search LoRAs" aria-label="Search LoRAs" value=${query}
      onInput=${(e) => setQuery(e.currentTarget.value)} />
    ${!loras?.length && html`<p class="muted">No LoRAs in the lora folder.</p>`}
    <ul class="pick-list">
      ${shown.slice(0, 200).map((m) => html`<li>
        <button type="button" class=${cx("pick", { active: active.has(m.name) })} aria-pressed=${active.has(m.name)}
          onClick=${() => onToggle(m.name)}>
          <span>${m.name}</span><span class="badge">${m.architecture || ""}</span>
        </button></li>`)}
    </ul>
  </div>`;
}
