// The entry module: signs in (a token in the URL, or pasted), then shows the page the path names:
// "/" the jobs, "/jobs/{id}" one job. Any 401 or the token's expiry shows the sign-in form again.
import * as api from "./api.js";
import { announce, el } from "./dom.js";
import { jobPage } from "./job.js";
import { jobsPage } from "./jobs.js";

const main = document.getElementById("main");
const account = document.getElementById("account");
let view = null;
let expiry = null;

function stopView() {
  view?.stop();
  view = null;
  clearTimeout(expiry);
}

function signedOut(message) {
  stopView();
  account.replaceChildren();
  const input = el("textarea", { id: "token", name: "token", rows: "4", required: true,
    autocomplete: "off", spellcheck: "false", "aria-describedby": "token-help" });
  const form = el("form", { class: "signin", "aria-labelledby": "signin-title" },
    el("label", { for: "token" }, "Access token (JWT)"), input,
    el("p", { id: "token-help", class: "muted" }, "Run ", el("code", {}, "jobtrail serve --print-token"),
      " (or ", el("code", {}, "make run"), ") and open the URL it prints, or paste a token from ",
      el("code", {}, "jobtrail token --sub <you>"), "."),
    el("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    try {
      await api.signIn(input.value.trim());
      announce("");
      start();
    } catch (error) {
      announce(`That token was refused: ${error.message}`);
      input.focus();
    }
  });
  main.replaceChildren(
    el("h1", { id: "signin-title" }, "Sign in"),
    el("p", { class: "state", "data-state": "signed-out" }, message), form);
  document.title = "Sign in · jobtrail";
}

function showAccount(who) {
  const until = new Date(who.exp * 1000);
  const out = el("button", { type: "button", class: "link" }, "Sign out");
  out.addEventListener("click", async () => {
    await api.signOut();
    signedOut("You signed out.");
  });
  account.replaceChildren(
    el("span", { class: "who" }, "Signed in as ", el("strong", {}, who.sub),
      who.admin ? " (admin)" : "", el("span", { class: "muted" },
        ` · until ${until.toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" })}`)),
    out);
}

function expire() {
  api.forget();
  signedOut("Your session has expired. Sign in again with a new token.");
}

async function tokenFromAddress() {
  const params = new URLSearchParams(location.search);
  const value = params.get("token");
  if (value === null) return true;
  params.delete("token"); // at once: out of the address bar and the history
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
  try {
    await api.signIn(value);
    return true;
  } catch (error) {
    api.forget();
    signedOut(`The token in the link was refused: ${error.message}`);
    return false;
  }
}

function start() {
  stopView();
  const who = api.claims();
  if (!api.token() || !who) {
    signedOut("You are signed out.");
    return;
  }
  const left = who.exp * 1000 - Date.now();
  if (left <= 0) {
    expire();
    return;
  }
  expiry = setTimeout(expire, Math.min(left, 2 ** 31 - 1));
  showAccount(who);
  const match = location.pathname.match(/^\/jobs\/([^/]+)$/);
  view = match ? jobPage(main, decodeURIComponent(match[1]), who) : jobsPage(main, who);
}

window.addEventListener("jobtrail:unauthorized", (event) => {
  api.forget();
  signedOut(`You are signed out: ${event.detail}`);
});
window.addEventListener("storage", (event) => {
  if (event.key === "jobtrail.token") start(); // signed in or out in another tab
});

if (await tokenFromAddress()) start();
