// An image source: file picker, drag and drop, paste (Ctrl+V), or a URL. Gives a data URL.
import { html, cx, useState, useRef, useEffect } from "./lib.js";
import { fileToDataUrl, imageFromTransfer, urlToDataUrl } from "./images.js";

export function ImageInput({ name, label, value, onChange, error, compact = false }) {
  const [over, setOver] = useState(false);
  const [url, setUrl] = useState("");
  const [problem, setProblem] = useState(null);
  const fileRef = useRef(null);
  const zoneRef = useRef(null);

  async function take(file) {
    if (!file) return;
    if (!file.type.startsWith("image/")) { setProblem("that file is not an image"); return; }
    setProblem(null);
    onChange(await fileToDataUrl(file));
  }

  useEffect(() => {
    // Paste anywhere on the page while this input is shown (unless a text field has focus).
    const onPaste = (e) => {
      const target = e.target;
      if (target && (target.tagName === "TEXTAREA" || (target.tagName === "INPUT" && target.type === "text"))) return;
      const file = imageFromTransfer(e.clipboardData);
      if (file) { e.preventDefault(); take(file); }
    };
    document.addEventListener("paste", onPaste);
    return () => document.removeEventListener("paste", onPaste);
  }, [onChange]);

  async function fromUrl(e) {
    e?.preventDefault();
    if (!url.trim()) return;
    try {
      setProblem(null);
      onChange(await urlToDataUrl(url.trim()));
      setUrl("");
    } catch (err) {
      setProblem(`could not load the URL: ${err.message}`);
    }
  }

  return html`
    <div class=${cx("image-input", { over, compact, invalid: error || problem })} data-field=${name} ref=${zoneRef}
      onDragOver=${(e) => { e.preventDefault(); e.stopPropagation(); setOver(true); }}
      onDragLeave=${() => setOver(false)}
      onDrop=${(e) => { e.preventDefault(); e.stopPropagation(); setOver(false); take(imageFromTransfer(e.dataTransfer)); }}>
      <div class="image-input-label">${label}</div>
      ${value
        ? html`<div class="image-preview"><img src=${value} alt=${label} />
            <button type="button" class="ghost small" onClick=${() => onChange(null)}>Remove</button></div>`
        : html`<p class="drop-hint">Drop an image here, paste it, or</p>`}
      <div class="row">
        <button type="button" class="small" onClick=${() => fileRef.current.click()}>Choose file…</button>
        <input ref=${fileRef} type="file" accept="image/*" hidden aria-label=${`${label} file`} name=${`${name}-file`}
          onChange=${(e) => { take(e.currentTarget.files[0]); e.currentTarget.value = ""; }} />
        <div class="url-form">
          <input type="url" placeholder="or an image URL" aria-label=${`${label} URL`} value=${url}
            onInput=${(e) => setUrl(e.currentTarget.value)}
            onKeyDown=${(e) => { if (e.key === "Enter" && !e.ctrlKey && !e.metaKey) fromUrl(e); }} />
          <button type="button" class="small" onClick=${fromUrl}>Load</button>
        </div>
      </div>
      ${(error || problem) && html`<div class="field-error" role="alert">${error || problem}</div>`}
    </div>`;
}
