// The jobs page: totals by status, the list route's filters, sort and cursor paging, and rows
// that follow the global event stream (GET /api/v1/events) without a reload.
import * as api from "./api.js";
import { announce, el, jobHref, ProgressBar, statusBadge, when } from "./dom.js";
import { coalesce, EVENT_TYPES, follow } from "./live.js";

export const STATUSES = ["pending", "running", "succeeded", "failed", "cancelled"];
const LIVE_TYPES = EVENT_TYPES.filter((type) => type !== "log"); // a log line changes no row
const SORTS = { created_at: "Created", updated_at: "Updated", finished_at: "Finished", priority: "Priority" };
const TEXT_FILTERS = ["type", "category", "owner"];
const CHOICE_FILTERS = ["starred", "finished", "sort", "order"];
const PAGE_SIZE = 20;

function readFilters() {
  const params = new URLSearchParams(location.search);
  const filters = { status: (params.get("status") || "").split(",").filter((s) => STATUSES.includes(s)) };
  for (const name of [...TEXT_FILTERS, ...CHOICE_FILTERS]) filters[name] = params.get(name) || "";
  return filters;
}

function query(filters, { status = filters.status } = {}) {
  const params = new URLSearchParams();
  if (status.length) params.set("status", status.join(","));
  for (const name of [...TEXT_FILTERS, ...CHOICE_FILTERS]) {
    if (filters[name]) params.set(name, filters[name]);
  }
  return params;
}

function select(name, label, options, value) {
  return el("label", {}, label, el("select", { name },
    ...Object.entries(options).map(([key, text]) => el("option", { value: key, selected: key === value }, text))));
}

function filterForm(filters, admin, apply) {
  const statuses = el("fieldset", { class: "statuses" }, el("legend", {}, "Status"),
    ...STATUSES.map((status) => el("label", { class: "check" },
      el("input", { type: "checkbox", name: "status", value: status, checked: filters.status.includes(status) }),
      status)));
  const text = (name, label) => el("label", {}, label,
    el("input", { type: "search", name, value: filters[name], autocomplete: "off", placeholder: "any" }));
  const form = el("form", { class: "filters", role: "search", "aria-label": "Filter jobs" }, statuses,
    text("type", "Type"), text("category", "Category"), admin ? text("owner", "Owner") : null,
    select("starred", "Starred", { "": "any", true: "starred", false: "not starred" }, filters.starred),
    select("finished", "Finished", { "": "any", true: "finished", false: "unfinished" }, filters.finished),
    select("sort", "Sort by", { "": "Created", ...SORTS }, filters.sort),
    select("order", "Order", { "": "newest first", asc: "oldest first" }, filters.order),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Apply"),
      el("button", { type: "reset", class: "secondary" }, "Clear")));
  const read = () => {
    const data = new FormData(form);
    const next = { status: data.getAll("status") };
    for (const name of [...TEXT_FILTERS, ...CHOICE_FILTERS]) next[name] = (data.get(name) || "").trim();
    return next;
  };
  const sync = (now) => { // the fields show `now` (a total's button changes the status filter)
    for (const box of form.querySelectorAll("input[name=status]")) box.checked = now.status.includes(box.value);
    for (const name of [...TEXT_FILTERS, ...CHOICE_FILTERS]) {
      if (form.elements[name]) form.elements[name].value = now[name];
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    apply(read());
  });
  form.addEventListener("change", (event) => {
    if (event.target.tagName !== "INPUT" || event.target.type === "checkbox") apply(read());
  });
  form.addEventListener("reset", (event) => {
    event.preventDefault();
    apply({ status: [], ...Object.fromEntries([...TEXT_FILTERS, ...CHOICE_FILTERS].map((n) => [n, ""])) });
  });
  return { form, sync };
}

const COLUMNS = ["Status", "Name", "Type", "Owner", "Priority", "Progress", "Created", "Updated"];

class Row {
  constructor(admin) {
    this.bar = new ProgressBar("Progress");
    this.link = el("a", {});
    this.star = el("span", { class: "star", "aria-label": "starred" }, "★");
    this.cells = {
      Status: el("td", { "data-label": "Status" }),
      Name: el("td", { "data-label": "Name", class: "name" }, this.link),
      Type: el("td", { "data-label": "Type", class: "mono" }),
      Owner: admin ? el("td", { "data-label": "Owner" }) : null,
      Priority: el("td", { "data-label": "Priority" }),
      Progress: el("td", { "data-label": "Progress", class: "wide" }, this.bar.root),
      Created: el("td", { "data-label": "Created" }),
      Updated: el("td", { "data-label": "Updated" }),
    };
    this.tr = el("tr", {}, ...COLUMNS.map((name) => this.cells[name]));
  }

  update(job) {
    this.tr.dataset.jobId = job.id;
    this.tr.dataset.status = job.status;
    const stopping = job.cancel_requested && job.status === "running";
    this.cells.Status.replaceChildren(statusBadge(job.status));
    if (stopping) this.cells.Status.append(el("span", { class: "muted" }, " stopping"));
    this.link.href = jobHref(job.id);
    this.link.textContent = job.name || job.type;
    this.link.setAttribute("aria-label", `${job.name || job.type}, job ${job.id}`);
    if (job.starred) this.link.after(this.star);
    else this.star.remove();
    this.cells.Type.textContent = job.type;
    if (this.cells.Owner) this.cells.Owner.textContent = job.owner;
    this.cells.Priority.textContent = job.priority;
    this.bar.update(job.progress);
    this.cells.Created.replaceChildren(when(job.created_at));
    this.cells.Updated.replaceChildren(when(job.updated_at));
  }
}

export function jobsPage(main, who) {
  let filters = readFilters();
  let cursors = [null]; // the cursor of each page up to this one
  const rows = new Map();
  const body = el("tbody", {});
  const totals = el("ul", { class: "totals", "aria-label": "Totals by status" });
  const state = el("span", { class: "live", role: "status" }, "connecting…");
  const pageInfo = el("span", { class: "page-info", "aria-live": "polite" });
  const previous = el("button", { type: "button", class: "secondary" }, "← Previous");
  const next = el("button", { type: "button", class: "secondary" }, "Next →");
  const columns = COLUMNS.filter((name) => name !== "Owner" || who.admin);
  const table = el("table", { class: "jobs" },
    el("caption", { class: "visually-hidden" }, "Jobs"),
    el("thead", {}, el("tr", {}, ...columns.map((name) => el("th", { scope: "col" }, name)))), body);
  const empty = el("p", { class: "empty muted", hidden: true }, "No jobs match.");
  let lastPage = null;

  async function load() {
    const params = query(filters);
    params.set("limit", String(PAGE_SIZE));
    const cursor = cursors[cursors.length - 1];
    if (cursor) params.set("cursor", cursor);
    try {
      const [page, counts] = await Promise.all([api.call("GET", `/api/v1/jobs?${params}`), loadTotals()]);
      render(page);
      renderTotals(counts);
      announce("");
    } catch (error) {
      if (error.status !== 401) announce(error.message);
    }
  }

  function loadTotals() { // one count per status, under the other filters: `total` of a 1-row page
    return Promise.all(STATUSES.map(async (status) => {
      const params = query(filters, { status: [status] });
      params.set("limit", "1");
      return [status, (await api.call("GET", `/api/v1/jobs?${params}`)).total];
    }));
  }

  function render(page) {
    lastPage = page;
    const seen = new Set();
    page.items.forEach((job, index) => {
      seen.add(job.id);
      let row = rows.get(job.id);
      if (!row) rows.set(job.id, (row = new Row(who.admin)));
      row.update(job);
      if (body.children[index] !== row.tr) body.insertBefore(row.tr, body.children[index] || null);
    });
    for (const [id, row] of rows) {
      if (!seen.has(id)) {
        row.tr.remove();
        rows.delete(id);
      }
    }
    empty.hidden = page.items.length > 0;
    const first = (cursors.length - 1) * PAGE_SIZE;
    pageInfo.textContent = page.items.length
      ? `${first + 1}–${first + page.items.length} of ${page.total}` : `0 of ${page.total}`;
    previous.disabled = cursors.length === 1;
    next.disabled = !page.next_cursor;
  }

  const totalAll = el("span", { class: "count" }, "–");
  const totalButtons = STATUSES.map((status) => {
    const button = el("button", { type: "button", class: `total status-${status}`, "data-status": status },
      el("span", { class: "count" }, "–"), ` ${status}`);
    button.addEventListener("click", () => {
      const chosen = filters.status.includes(status) ? filters.status.filter((s) => s !== status) : [status];
      apply({ ...filters, status: chosen });
    });
    return button;
  });
  totals.append(el("li", {}, totalAll, " jobs"), ...totalButtons.map((button) => el("li", {}, button)));

  function renderTotals(counts) { // in place: a focused button keeps its focus
    totalAll.textContent = String(counts.reduce((sum, [, n]) => sum + n, 0));
    counts.forEach(([status, n], index) => {
      totalButtons[index].firstChild.textContent = String(n);
      totalButtons[index].setAttribute("aria-pressed", String(filters.status.includes(status)));
    });
  }

  function apply(changed) {
    filters = changed;
    cursors = [null];
    const params = query(filters).toString();
    history.replaceState(null, "", params ? `/?${params}` : "/");
    controls.sync(filters);
    load();
  }

  previous.addEventListener("click", () => {
    cursors.pop();
    load();
  });
  next.addEventListener("click", () => {
    if (lastPage?.next_cursor) cursors.push(lastPage.next_cursor);
    load();
  });

  const controls = filterForm(filters, who.admin, apply);
  main.replaceChildren(
    el("div", { class: "heading" }, el("h1", {}, "Jobs"), state), totals, controls.form,
    el("div", { class: "table-wrap" }, table), empty,
    el("nav", { class: "pager", "aria-label": "Pages" }, previous, pageInfo, next));
  document.title = "Jobs · jobtrail";

  const refresh = coalesce(load, 200);
  let stream = null;
  let stopped = false;
  (async () => {
    // The stream starts after the newest event now (readyz: no auth), the page is read after:
    // any later change reaches the page through the stream.
    const ready = await fetch("/readyz").then((r) => r.json()).catch(() => ({}));
    if (stopped) return;
    stream = follow("/api/v1/events", {
      after: ready.last_event_id || 0,
      types: LIVE_TYPES,
      onEvent: refresh,
      onOpen: refresh,
      onState: (now) => {
        state.textContent = now === "live" ? "● live" : now;
        state.dataset.state = now;
      },
    });
    await load();
  })();
  return {
    stop() {
      stopped = true;
      stream?.close();
    },
  };
}
