// The HTTP client: JSON in and out, the session cookie with its CSRF header, an optional pasted
// API key (kept in sessionStorage only), one silent token refresh on 401, and the server's
// `{"error": {code, message, field}}` turned into an ApiError the form can place by field.

export const API = "/api/v1";
const KEY_STORAGE = "sdrest.apiKey";

export class ApiError extends Error {
  constructor(status, code, message, field = null, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

function cookie(name) {
  const match = document.cookie.split("; ").find((part) => part.startsWith(`${name}=`));
  return match ? decodeURIComponent(match.slice(name.length + 1)) : null;
}

export class Api {
  /**
   * @param {{onUnauthorized?: () => void, onNetworkDown?: () => void, onNetworkUp?: () => void}} hooks
   */
  constructor(hooks = {}) {
    this.hooks = hooks;
    this.refreshing = null;
  }

  get apiKey() { return sessionStorage.getItem(KEY_STORAGE); }
  set apiKey(value) {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  }

  /** Headers every request carries: the API key, or the CSRF token of the cookie session. */
  headers(method = "GET") {
    const headers = { "X-Requested-With": "sdrest" };
    const key = this.apiKey;
    if (key) headers["X-API-Key"] = key;
    if (method !== "GET" && method !== "HEAD") {
      const csrf = cookie("csrf_access_token");
      if (csrf) headers["X-CSRF-TOKEN"] = csrf;
    }
    return headers;
  }

  async request(method, path, { json, body, query, raw = false, retry = true, quiet401 = false } = {}) {
    let url = path.startsWith("/") ? path : `${API}/${path}`;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.set(k, v);
      const text = params.toString();
      if (text) url += (url.includes("?") ? "&" : "?") + text;
    }
    const headers = this.headers(method);
    let payload = body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(json);
    }
    let response;
    try {
      response = await fetch(url, { method, headers, body: payload, credentials: "same-origin", cache: "no-store" });
    } catch (error) {
      this.hooks.onNetworkDown?.();
      throw new ApiError(0, "network", "the server cannot be reached");
    }
    if (response.status >= 502 && response.status <= 504) {
      this.hooks.onNetworkDown?.();
      throw new ApiError(response.status, "unavailable", "the server is restarting or unreachable");
    }
    this.hooks.onNetworkUp?.();
    if (response.status === 401 && retry && !this.apiKey && cookie("csrf_refresh_token")) {
      if (await this.refresh()) return this.request(method, path, { json, body, query, raw, retry: false, quiet401 });
    }
    if (!response.ok) {
      let error = { code: "http_" + response.status, message: response.statusText || `HTTP ${response.status}` };
      try {
        const data = await response.json();
        if (data && data.error) error = { ...error, ...data.error };
      } catch { /* not JSON */ }
      const retryAfter = Number(response.headers.get("Retry-After")) || null;
      if (response.status === 401 && !quiet401) this.hooks.onUnauthorized?.();
      throw new ApiError(response.status, error.code, error.message, error.field || null, retryAfter);
    }
    if (raw) return response;
    if (response.status === 204) return null;
    const type = response.headers.get("Content-Type") || "";
    return type.includes("json") ? response.json() : response.text();
  }

  /** Renew the access cookie with the refresh cookie; one refresh at a time. */
  refresh() {
    if (!this.refreshing) {
      const csrf = cookie("csrf_refresh_token");
      this.refreshing = fetch(`${API}/auth/refresh`, {
        method: "POST", credentials: "same-origin",
        headers: { "X-Requested-With": "sdrest", ...(csrf ? { "X-CSRF-TOKEN": csrf } : {}) },
      }).then((r) => r.ok, () => false).finally(() => { this.refreshing = null; });
    }
    return this.refreshing;
  }

  get(path, query, options = {}) { return this.request("GET", path, { query, ...options }); }
  post(path, json, options = {}) { return this.request("POST", path, { json: json ?? {}, ...options }); }
  del(path, options = {}) { return this.request("DELETE", path, options); }
}
