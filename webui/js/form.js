// Small labelled form controls. Every control has a visible label tied to its input, and shows
// the server's error for its field (the API names the field in every 4xx answer).
import { html, cx, useState } from "./lib.js";
import { load, save } from "./persist.js";

let counter = 0;
const nextId = (name) => `f-${name}-${++counter}`;

export function FieldError({ error }) {
  return error ? html`<div class="field-error" role="alert">${error}</div>` : null;
}

export function NumberField({ name, label, value, onInput, min, max, step = 1, placeholder, error, hint }) {
  const [id] = useState(() => nextId(name));
  const set = (v) => onInput(v === "" ? "" : Number(v));
  const bump = (dir) => {
    const current = value === "" || value == null ? Number(placeholder) || 0 : Number(value);
    let next = +(current + dir * step).toFixed(4);
    if (min != null) next = Math.max(min, next);
    if (max != null) next = Math.min(max, next);
    onInput(next);
  };
  return html`
    <div class=${cx("field", "number", { invalid: error })} data-field=${name}>
      <label for=${id}>${label}</label>
      <div class="stepper">
        <button type="button" class="step" tabindex="-1" aria-label=${`decrease ${label}`} onClick=${() => bump(-1)}>−</button>
        <input id=${id} name=${name} type="number" inputmode="decimal" value=${value ?? ""} min=${min} max=${max}
          step=${step} placeholder=${placeholder} aria-invalid=${error ? "true" : "false"}
          onInput=${(e) => set(e.currentTarget.value)} />
        <button type="button" class="step" tabindex="-1" aria-label=${`increase ${label}`} onClick=${() => bump(1)}>+</button>
      </div>
      ${hint && html`<div class="hint">${hint}</div>`}
      <${FieldError} error=${error} />
    </div>`;
}

export function SelectField({ name, label, value, onInput, options, error, blank }) {
  const [id] = useState(() => nextId(name));
  return html`
    <div class=${cx("field", { invalid: error })} data-field=${name}>
      <label for=${id}>${label}</label>
      <select id=${id} name=${name} value=${value ?? ""} aria-invalid=${error ? "true" : "false"}
        onChange=${(e) => onInput(e.currentTarget.value)}>
        ${blank !== undefined && html`<option value="">${blank}</option>`}
        ${options.map((o) => {
          const [v, text] = Array.isArray(o) ? o : [o, o];
          return html`<option value=${v} selected=${v === value}>${text}</option>`;
        })}
      </select>
      <${FieldError} error=${error} />
    </div>`;
}

export function TextField({ name, label, value, onInput, type = "text", error, placeholder, autocomplete, inputRef }) {
  const [id] = useState(() => nextId(name));
  return html`
    <div class=${cx("field", { invalid: error })} data-field=${name}>
      <label for=${id}>${label}</label>
      <input id=${id} name=${name} type=${type} value=${value ?? ""} placeholder=${placeholder}
        autocomplete=${autocomplete} aria-invalid=${error ? "true" : "false"} ref=${inputRef}
        onInput=${(e) => onInput(e.currentTarget.value)} />
      <${FieldError} error=${error} />
    </div>`;
}

export function CheckField({ name, label, checked, onInput }) {
  const [id] = useState(() => nextId(name));
  return html`
    <div class="field check" data-field=${name}>
      <input id=${id} name=${name} type="checkbox" checked=${!!checked}
        onChange=${(e) => onInput(e.currentTarget.checked)} />
      <label for=${id}>${label}</label>
    </div>`;
}

/** A foldable group whose header shows a one-line summary; open state persists. */
export function Group({ id, title, summary, children, defaultOpen = false }) {
  const [open, setOpen] = useState(() => load(`group.${id}`, defaultOpen));
  const toggle = (e) => {
    const value = e.currentTarget.open;
    setOpen(value);
    save(`group.${id}`, value);
  };
  return html`
    <details class="group" open=${open} onToggle=${toggle} data-group=${id}>
      <summary><span class="group-title">${title}</span><span class="group-summary">${summary}</span></summary>
      <div class="group-body">${children}</div>
    </details>`;
}
