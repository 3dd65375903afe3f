// One job: status, progress and timings; its full timeline, live from its stream; payload,
// result and error; cancel, replay, delete and star; a batch's children; the job as of any event.
import * as api from "./api.js";
import { announce, duration, el, jobHref, json, ProgressBar, progressText, statusBadge, when } from "./dom.js";
import { coalesce, EVENT_TYPES, follow } from "./live.js";

const TERMINAL = ["succeeded", "failed", "cancelled"];
const MAX_CHILDREN = 100; // one page of the list route

function summary(event) {
  const data = event.data || {};
  if (event.type === "log") return event.message;
  if (event.type === "progress") return [progressText(data), data.message].filter(Boolean).join(" — ");
  if (data.error?.message) return data.error.message;
  if (data.reason) return data.reason;
  return "";
}

function timelineItem(event, showAsOf) {
  const asOf = el("button", { type: "button", class: "link as-of",
    "aria-label": `Show the job as it was after event ${event.seq}` }, "as of");
  asOf.addEventListener("click", () => showAsOf(event));
  const hasData = event.data && Object.keys(event.data).length > 0;
  return el("li", { class: `event type-${event.type}${event.level ? ` level-${event.level}` : ""}`,
    "data-event-id": event.id, "data-seq": event.seq, "data-type": event.type },
  el("span", { class: "seq" }, `#${event.seq}`), when(event.timestamp),
  el("span", { class: "etype" }, event.type),
  event.level ? el("span", { class: "level" }, event.level) : null,
  el("span", { class: "msg" }, summary(event)), asOf,
  hasData ? el("details", {}, el("summary", {}, "data"), json(event.data, `event ${event.seq} data`)) : null);
}

function facts(job) {
  const rows = [
    ["Type", job.type], ["Category", job.category || "—"], ["Priority", job.priority],
    ["Owner", job.owner], ["Attempt", `${job.attempt} of ${job.max_attempts}`],
    ["Created", when(job.created_at)], ["Run at", when(job.run_at)],
    ["Started", when(job.started_at)], ["Finished", when(job.finished_at)],
    ["Duration", duration(job.started_at, job.finished_at)], ["Updated", when(job.updated_at)],
    ["Events", `${job.version} (last #${job.last_event_id})`],
  ];
  if (job.parent_id) rows.push(["Batch", el("a", { href: jobHref(job.parent_id) }, job.parent_id)]);
  if (job.replayed_from) rows.push(["Replay of", el("a", { href: jobHref(job.replayed_from) }, job.replayed_from)]);
  if (job.result_type) rows.push(["Result type", job.result_type]);
  return rows.flatMap(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]);
}

function documents(job) {
  const shown = [["Payload", job.payload], ["Metadata", job.metadata], ["Result", job.result], ["Error", job.error]];
  return shown.filter(([, value]) => value !== null && value !== undefined)
    .map(([name, value]) => el("section", { class: "doc" }, el("h3", {}, name), json(value, name)));
}

export function jobPage(main, id, who) {
  let job = null;
  let stream = null;
  let childStream = null;
  let stopped = false;
  let gone = false; // deleted
  const title = el("h1", {}, "Job");
  const status = el("span", {});
  const bar = new ProgressBar("Progress");
  const message = el("p", { class: "muted progress-message" });
  const details = el("dl", { class: "facts" });
  const docs = el("div", { class: "docs" });
  const outcome = el("p", { class: "outcome", role: "status" });
  const timeline = el("ol", { class: "timeline", "aria-label": "Events" });
  const live = el("span", { class: "live", role: "status" }, "connecting…");
  const childBody = el("tbody", {});
  const children = el("section", { class: "children", hidden: true, "aria-labelledby": "children-title" },
    el("h2", { id: "children-title" }, "Children"),
    el("div", { class: "table-wrap" }, el("table", { class: "jobs" }, el("thead", {}, el("tr", {},
      ...["Status", "Name", "Progress", "Updated"].map((h) => el("th", { scope: "col" }, h)))), childBody)));
  const asOfPanel = el("section", { class: "as-of-panel", hidden: true, tabindex: "-1", "aria-labelledby": "as-of-title" });

  const button = (text, action, extra = {}) => {
    const node = el("button", { type: "button", ...extra }, text);
    node.addEventListener("click", () => act(node, action));
    return node;
  };
  const star = button("☆ Star", () => api.call("PATCH", `/api/v1/jobs/${id}`, { starred: !job.starred })
    .then((changed) => [changed, changed.starred ? "Starred." : "Unstarred."]), { "aria-pressed": "false" });
  const cancel = button("Cancel", () => api.call("POST", `/api/v1/jobs/${id}/cancel`, {})
    .then((changed) => [changed, changed.status === "cancelled" ? "Cancelled."
      : "Cancel requested: the worker stops at its next checkpoint."]));
  const replay = button("Replay", () => api.call("POST", `/api/v1/jobs/${id}/replay`).then((copy) =>
    [null, el("span", {}, "Replayed as ", el("a", { href: jobHref(copy.id) }, `job ${copy.id}`), ".")]));
  let confirming = false;
  const remove = button("Delete", async () => {
    if (!confirming) {
      confirming = true;
      remove.textContent = "Confirm delete";
      return [null, "Press “Confirm delete” to delete this job."];
    }
    await api.call("DELETE", `/api/v1/jobs/${id}`);
    gone = true; // a finished job's stream is over: no `deleted` event comes to say so
    return [null, "Deleted. Its events stay in the event store."];
  }, { class: "danger" });

  async function act(node, action) {
    node.disabled = true;
    try {
      const [changed, said] = await action();
      if (changed) render(changed);
      outcome.replaceChildren(said);
      outcome.className = "outcome ok";
    } catch (error) {
      outcome.textContent = `Failed: ${error.message}`;
      outcome.className = "outcome failed";
    } finally {
      render(job); // enables the buttons that apply again
    }
  }

  function render(next) {
    if (!next) return;
    job = next;
    title.textContent = job.name || job.type;
    document.title = `${job.name || job.type} · jobtrail`;
    status.replaceChildren(statusBadge(gone ? "deleted" : job.status));
    if (job.cancel_requested && !TERMINAL.includes(job.status)) {
      status.append(el("span", { class: "muted" }, " stop requested"));
    }
    bar.update(job.progress);
    message.textContent = job.progress?.message || "";
    details.replaceChildren(...facts(job));
    docs.replaceChildren(...documents(job));
    star.textContent = job.starred ? "★ Starred" : "☆ Star";
    star.setAttribute("aria-pressed", String(job.starred));
    for (const node of [star, replay, remove]) node.disabled = gone;
    cancel.disabled = gone || TERMINAL.includes(job.status);
    if (job.children) {
      children.hidden = false;
      if (!childStream) reloadChildren();
    }
  }

  async function loadJob() {
    try {
      render(await api.call("GET", `/api/v1/jobs/${id}`));
    } catch (error) {
      if (error.status === 404 && job) deleted();
      else if (error.status !== 401) announce(error.message);
    }
  }

  function deleted() {
    gone = true;
    render(job);
  }

  async function loadChildren() {
    const params = new URLSearchParams({ parent_id: id, limit: String(MAX_CHILDREN), order: "asc" });
    const page = await api.call("GET", `/api/v1/jobs?${params}`);
    childBody.replaceChildren(...page.items.map((child) => {
      const childBar = new ProgressBar(`Progress of ${child.name || child.type}`);
      childBar.update(child.progress);
      return el("tr", { "data-job-id": child.id }, el("td", { "data-label": "Status" }, statusBadge(child.status)),
        el("td", { "data-label": "Name" }, el("a", { href: jobHref(child.id) }, child.name || child.type)),
        el("td", { "data-label": "Progress", class: "wide" }, childBar.root),
        el("td", { "data-label": "Updated" }, when(child.updated_at)));
    }));
    if (!childStream && !stopped && page.items.length) { // the children's own events, live
      childStream = follow("/api/v1/events", { after: job.last_event_id, onEvent: reloadChildren,
        types: EVENT_TYPES.filter((type) => type !== "log"),
        params: { job_id: page.items.map((child) => child.id).join(",") } });
    }
  }
  const reloadChildren = coalesce(() => loadChildren().catch((error) => announce(error.message)), 200);

  async function showAsOf(event) {
    try {
      const then = await api.call("GET", `/api/v1/jobs/${id}?as_of=${event.seq}`);
      const thenBar = new ProgressBar(`Progress after event ${event.seq}`);
      thenBar.update(then.progress);
      const close = el("button", { type: "button", class: "secondary" }, "Back to live");
      close.addEventListener("click", () => {
        asOfPanel.hidden = true;
        timeline.querySelector(`[data-seq="${event.seq}"] .as-of`)?.focus();
      });
      asOfPanel.replaceChildren(
        el("h2", { id: "as-of-title" }, `As it was after event #${event.seq} (${event.type})`),
        el("p", {}, statusBadge(then.status), " ", thenBar.root), json(then, `the job after event ${event.seq}`), close);
      asOfPanel.hidden = false;
      asOfPanel.focus();
    } catch (error) {
      announce(error.message);
    }
  }

  main.replaceChildren(
    el("p", { class: "crumbs" }, el("a", { href: "/" }, "← Jobs")),
    el("div", { class: "heading" }, title, status, live),
    el("p", { class: "mono muted" }, id),
    el("div", { class: "toolbar" }, star, cancel, replay, remove), outcome,
    el("div", { class: "progress-block" }, bar.root), message,
    asOfPanel, details, children, docs,
    el("section", { class: "events", "aria-labelledby": "timeline-title" },
      el("h2", { id: "timeline-title" }, "Timeline"), timeline));

  const refresh = coalesce(loadJob, 200);
  (async () => {
    try {
      render(await api.call("GET", `/api/v1/jobs/${id}`));
    } catch (error) {
      if (error.status === 404) main.replaceChildren(el("h1", {}, "Job not found"),
        el("p", {}, "No such job, or not one of yours. ", el("a", { href: "/" }, "All jobs")));
      else if (error.status !== 401) announce(error.message);
      return;
    }
    if (stopped) return;
    stream = follow(`/api/v1/jobs/${encodeURIComponent(id)}/events`, {
      onEvent(event) {
        const last = timeline.lastElementChild;
        if (last && Number(last.dataset.eventId) >= event.id) timeline.dataset.outOfOrder = "true";
        timeline.append(timelineItem(event, showAsOf));
        if (event.type === "deleted") deleted();
        else refresh();
      },
      onEnd: render,
      onState(now) {
        live.textContent = now === "live" ? "● live" : now;
        live.dataset.state = now;
      },
      // A finished job's stream answers a reconnect with 204 when nothing is left to send.
      // A deleted job answers 404 to its owner: nothing more will come.
      reopen: () => api.call("GET", `/api/v1/jobs/${id}`).then(
        (now) => !TERMINAL.includes(now.status),
        (error) => error.status !== 404,
      ),
    });
  })();
  return {
    stop() {
      stopped = true;
      stream?.close();
      childStream?.close();
    },
  };
}
