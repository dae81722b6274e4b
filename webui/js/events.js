// The one event stream of the app (GET /api/v1/events), read with fetch so it carries the same
// credentials as every other request (cookie or pasted API key). It reconnects by itself with
// Last-Event-ID, so no persisted state change is missed; onOpen lets the app re-read the queue
// after every (re)connect, because progress and previews are not replayed.
import { API } from "./api.js";
import { sleep } from "./lib.js";

/** Split a text/event-stream buffer into complete events; returns [events, rest]. */
export function parseEvents(buffer) {
  const events = [];
  const blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
  const rest = blocks.pop();
  for (const block of blocks) {
    const event = { type: "message", data: "", id: null, retry: null };
    const data = [];
    for (const line of block.split(/\r\n|\n|\r/)) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event.type = value;
      else if (field === "data") data.push(value);
      else if (field === "id") event.id = value;
      else if (field === "retry") event.retry = Number(value);
    }
    if (!data.length && event.id === null && event.retry === null) continue;
    event.data = data.join("\n");
    events.push(event);
  }
  return [events, rest];
}

export class EventStream {
  /**
   * @param {import("./api.js").Api} api
   * @param {{onEvent: (type: string, data: any) => void, onOpen: () => void,
   *          onDown: () => void, onUnauthorized: () => void}} handlers
   */
  constructor(api, handlers) {
    this.api = api;
    this.handlers = handlers;
    this.lastId = null;
    this.controller = null;
    this.stopped = true;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.loop();
  }

  stop() {
    this.stopped = true;
    this.controller?.abort();
  }

  /** Reconnect now (after a sign-in: the new credentials may see more). */
  restart() {
    this.controller?.abort();
  }

  async loop() {
    let delay = 1000;
    while (!this.stopped) {
      this.controller = new AbortController();
      let opened = false;
      try {
        const headers = { ...this.api.headers("GET"), Accept: "text/event-stream" };
        if (this.lastId !== null) headers["Last-Event-ID"] = this.lastId;
        const response = await fetch(`${API}/events`, {
          headers, credentials: "same-origin", cache: "no-store", signal: this.controller.signal,
        });
        if (response.status === 401) {
          this.handlers.onUnauthorized();
          // Wait for a sign-in (restart() aborts this sleep's successor early enough).
          await sleep(3000);
          continue;
        }
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        opened = true;
        delay = 1000;
        this.handlers.onOpen();
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          const [events, rest] = parseEvents(buffer);
          buffer = rest;
          for (const event of events) {
            if (event.id !== null) this.lastId = event.id;
            if (event.retry) delay = event.retry;
            if (!event.data) continue;
            let data;
            try { data = JSON.parse(event.data); } catch { continue; }
            this.handlers.onEvent(event.type, data);
          }
        }
      } catch (error) {
        if (this.stopped) return;
      }
      if (this.stopped) return;
      this.handlers.onDown(opened);
      await sleep(delay);
      delay = Math.min(delay * 2, 10000);
    }
  }
}
