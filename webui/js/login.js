// Sign in: user name and password (jwt, unix, pam, optional), or a pasted API key. Always the
// cookie mode: the session lives in HttpOnly cookies, never in localStorage.
import { html, useState, useEffect, useContext, useModal } from "./lib.js";
import { AppContext } from "./context.js";
import { TextField, CheckField } from "./form.js";
import { load } from "./persist.js";

export function LoginForm({ onDone }) {
  const app = useContext(AppContext);
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [keep, setKeep] = useState(() => load("keepSignedIn", true));
  const [apiKey, setApiKey] = useState("");
  const [errors, setErrors] = useState({});
  const [message, setMessage] = useState(null);
  const [wait, setWait] = useState(0);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!wait) return undefined;
    const timer = setTimeout(() => setWait((w) => Math.max(0, w - 1)), 1000);
    return () => clearTimeout(timer);
  }, [wait]);

  async function submit(e) {
    e.preventDefault();
    setErrors({});
    setMessage(null);
    setBusy(true);
    try {
      if (apiKey.trim()) await app.useApiKey(apiKey.trim());
      else await app.login(username, password, keep);
      onDone?.();
    } catch (error) {
      if (error.status === 429 && error.retryAfter) setWait(error.retryAfter);
      if (error.field) setErrors({ [error.field]: error.message });
      else if (error.code === "login_not_used") setMessage("This server takes API keys, not passwords: paste a key.");
      else setMessage(error.message);
    } finally {
      setBusy(false);
    }
  }

  return html`<form class="login-form" onSubmit=${submit} aria-label="Sign in">
    <h2>Sign in</h2>
    <${TextField} name="username" label="User name" value=${username} onInput=${setUsername} autocomplete="username" error=${errors.username} />
    <${TextField} name="password" label="Password" type="password" value=${password} onInput=${setPassword}
      autocomplete="current-password" error=${errors.password} />
    <${CheckField} name="keep" label="Keep me signed in" checked=${keep} onInput=${setKeep} />
    <details class="api-key"><summary>Use an API key instead</summary>
      <${TextField} name="api_key" label="API key" type="password" value=${apiKey} onInput=${setApiKey} autocomplete="off" />
      <p class="hint">Kept for this tab only.</p>
    </details>
    ${message && html`<div class="field-error" role="alert">${message}</div>`}
    ${wait > 0 && html`<div class="field-error" role="alert">Too many attempts: try again in ${wait} s.</div>`}
    <button type="submit" class="primary" disabled=${busy || wait > 0 || (!apiKey.trim() && (!username || !password))}>Sign in</button>
  </form>`;
}

export function LoginScreen() {
  return html`<main class="login-screen"><div class="brand big">sdrest</div><${LoginForm} /></main>`;
}

/** A mid-session 401: sign in again over the intact page. */
export function LoginDialog() {
  const app = useContext(AppContext);
  const ref = useModal();
  return html`<dialog class="login-dialog" ref=${ref} onClose=${() => app.store.set({ loginOpen: false })}>
    <p class="notice">Your session ended. Sign in again; the form is kept.</p>
    <${LoginForm} onDone=${() => ref.current?.close()} />
  </dialog>`;
}
