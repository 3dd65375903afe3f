// Building the page from data, safely: text goes in as text nodes, never as HTML.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

const notice = () => document.getElementById("notice");

// A message for everyone, screen readers included (the region is role=alert); "" clears it.
export function announce(message, kind = "error") {
  const region = notice();
  region.className = message ? `notice notice-${kind}` : "";
  region.textContent = message;
}

export function jobHref(id) {
  return `/jobs/${encodeURIComponent(id)}`;
}

export function statusBadge(status) {
  return el("span", { class: `status status-${status}` }, status);
}

const TODAY = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
const OTHER_DAY = { ...TODAY, year: "numeric", month: "short", day: "numeric" };

export function when(iso) {
  if (!iso) return el("span", { class: "muted" }, "—");
  const date = new Date(iso);
  const today = date.toDateString() === new Date().toDateString();
  const text = date.toLocaleString(undefined, today ? TODAY : OTHER_DAY);
  return el("time", { datetime: iso, title: iso }, text);
}

export function duration(fromIso, toIso) {
  if (!fromIso) return "—";
  const ms = (toIso ? new Date(toIso) : new Date()) - new Date(fromIso);
  if (ms < 1000) return `${Math.max(ms, 0)} ms`;
  const s = Math.round(ms / 100) / 10;
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function json(value, label) {
  return el("pre", { class: "json", tabindex: "0", "aria-label": label }, JSON.stringify(value, null, 2));
}

// What a progress object says, in words: "75.5% · rendering · 150/200 · 2 failed".
export function progressText(progress) {
  if (!progress) return "";
  const parts = [];
  if (progress.percent !== null && progress.percent !== undefined) parts.push(`${progress.percent}%`);
  if (progress.stage) parts.push(progress.stage);
  if (progress.total !== null && progress.total !== undefined) {
    parts.push(`${progress.completed ?? 0}/${progress.total}`);
  } else if (progress.completed !== null && progress.completed !== undefined) {
    parts.push(`${progress.completed} done`);
  }
  if (progress.failed) parts.push(`${progress.failed} failed`);
  return parts.join(" · ");
}

function percentOf(progress) {
  if (!progress) return null;
  if (typeof progress.percent === "number") return progress.percent;
  if (progress.total) return (100 * ((progress.completed ?? 0) + (progress.failed ?? 0))) / progress.total;
  return null;
}

// A progress bar (role=progressbar with aria-valuenow), updated in place.
export class ProgressBar {
  constructor(label) {
    this.fill = el("span", { class: "fill" });
    this.bar = el("span", { class: "track", role: "progressbar", "aria-label": label,
      "aria-valuemin": "0", "aria-valuemax": "100" }, this.fill);
    this.text = el("span", { class: "progress-text" });
    this.root = el("span", { class: "progress" }, this.bar, this.text);
  }

  update(progress) {
    const percent = percentOf(progress);
    const words = progressText(progress);
    this.text.textContent = words || "—";
    if (percent === null) {
      this.bar.removeAttribute("aria-valuenow");
      this.bar.setAttribute("aria-valuetext", words || "no progress reported");
      this.fill.style.width = "0";
    } else {
      const clamped = Math.min(Math.max(percent, 0), 100);
      this.bar.setAttribute("aria-valuenow", String(Math.round(clamped * 100) / 100));
      this.bar.setAttribute("aria-valuetext", words);
      this.fill.style.width = `${clamped}%`;
    }
  }
}
