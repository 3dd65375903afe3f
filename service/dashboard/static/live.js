// Live updates from the API's SSE streams, and a coalescing scheduler for the reloads they cause.
import * as api from "./api.js";

export const EVENT_TYPES = ["created", "started", "progress", "log", "succeeded", "failed",
  "retry_scheduled", "cancel_requested", "cancelled", "updated", "deleted"];

// Follows `path` (an events route) from event `after`. EventSource resumes by itself after a
// dropped connection, sending Last-Event-ID; when the server refuses it instead (too many
// streams, a restart) this opens a new one from the last event seen, once the session cookie
// still signs in (else the page shows the sign-in form), so that no event is missed or
// repeated either way. `reopen` (async) may say no: a finished job's stream
// answers a reconnect with 204 when nothing is left, which EventSource takes as the end.
export function follow(path, { after = 0, types = null, params = {}, onEvent, onEnd, onState, onOpen, reopen }) {
  let last = after;
  let source = null;
  let stopped = false;
  let delay = 1000;
  let timer = null;

  function open() {
    const query = new URLSearchParams({ ...params, stream: "true", after: String(last) });
    if (types) query.set("type", types.join(","));
    source = new EventSource(`${path}?${query}`);
    source.addEventListener("open", () => {
      delay = 1000;
      onState?.("live");
      onOpen?.();
    });
    source.addEventListener("error", () => {
      if (stopped) return;
      if (source.readyState === EventSource.CONNECTING) {
        onState?.("reconnecting");
        return;
      }
      source.close();
      onState?.("reconnecting");
      timer = setTimeout(renew, delay);
      delay = Math.min(delay * 2, 30000);
    });
    for (const type of types || EVENT_TYPES) {
      source.addEventListener(type, (message) => {
        const event = JSON.parse(message.data);
        last = event.id;
        onEvent(event);
      });
    }
    source.addEventListener("end", (message) => {
      stopped = true;
      source.close();
      onState?.("ended");
      onEnd?.(JSON.parse(message.data));
    });
  }

  async function renew() {
    try {
      await api.call("GET", "/api/v1/session"); // still signed in? (a 401 tells the page)
    } catch (error) {
      if (error.status === 401) {
        onState?.("closed");
        return; // the page shows the sign-in form
      }
    }
    if (stopped) return;
    if (reopen && !(await reopen().catch(() => true))) {
      stopped = true;
      onState?.("ended");
      return;
    }
    open();
  }

  open();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      source?.close();
    },
  };
}

// `run` again after `ms`, at most one run at a time; calls during a run cause one more run.
export function coalesce(run, ms = 250) {
  let timer = null;
  let running = false;
  let again = false;
  async function fire() {
    timer = null;
    running = true;
    try {
      await run();
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  }
  function schedule() {
    if (running) again = true;
    else if (timer === null) timer = setTimeout(fire, ms);
  }
  return schedule;
}
