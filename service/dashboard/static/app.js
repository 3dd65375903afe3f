// The entry module: signs in (a token in the URL, or pasted), then shows the page the path names:
// "/" the jobs, "/jobs/{id}" one job. Who is signed in comes from GET /api/v1/session (the
// HttpOnly cookie; the page never holds the token). Any 401 or the session's end shows the
// sign-in form again, saying why.
import * as api from "./api.js";
import { announce, el } from "./dom.js";
import { jobPage } from "./job.js";
import { jobsPage } from "./jobs.js";

const EXPIRED = "Your session has expired. Sign in again with a new token.";
const RETRY_MS = 2000;
const main = document.getElementById("main");
const account = document.getElementById("account");
// Other tabs of this dashboard: told (never the token) when this one signs in or out.
const tabs = "BroadcastChannel" in window ? new BroadcastChannel("jobtrail.session") : null;
let view = null;
let timer = null; // the session's end, or the next try to reach the server
let starts = 0; // the latest start() wins
let signedIn = false; // a view was shown: a 401 now means the session expired

function stopView() {
  view?.stop();
  view = null;
  clearTimeout(timer);
}

function signedOut(message) {
  stopView();
  starts += 1; // a start() under way ends here
  signedIn = false;
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
    } catch (error) {
      announce(`That token was refused: ${error.message}`);
      input.focus();
      return;
    } finally {
      input.value = ""; // sent once; from now on the cookie speaks for it
    }
    announce("");
    tabs?.postMessage("signed-in");
    start();
  });
  main.replaceChildren(
    el("h1", { id: "signin-title" }, "Sign in"),
    el("p", { class: "state", "data-state": "signed-out" }, message), form);
  document.title = "Sign in · jobtrail";
}

function showAccount(who) {
  const out = el("button", { type: "button", class: "link" }, "Sign out");
  out.addEventListener("click", async () => {
    try {
      await api.signOut();
    } catch (error) {
      announce(`Signing out failed: ${error.message}`);
      return;
    }
    tabs?.postMessage("signed-out");
    signedOut("You signed out.");
  });
  const until = who.expires.toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" });
  account.replaceChildren(
    el("span", { class: "who" }, "Signed in as ", el("strong", {}, who.sub),
      who.admin ? " (admin)" : "", el("span", { class: "muted" }, ` · until ${until}`)),
    out);
}

function unreachable(message) {
  main.replaceChildren(el("p", { class: "state", "data-state": "unreachable" }, message));
  timer = setTimeout(start, RETRY_MS);
}

async function start() {
  stopView();
  const mine = ++starts;
  let who;
  try {
    who = await api.session();
  } catch (error) {
    if (mine === starts) unreachable(error.message);
    return;
  }
  if (mine !== starts) return;
  if (!who) {
    signedOut(signedIn ? EXPIRED : "You are signed out.");
    return;
  }
  const left = who.expires.getTime() - Date.now();
  if (left <= 0) {
    signedOut(EXPIRED);
    return;
  }
  signedIn = true;
  timer = setTimeout(() => signedOut(EXPIRED), Math.min(left, 2 ** 31 - 1));
  showAccount(who);
  const match = location.pathname.match(/^\/jobs\/([^/]+)$/);
  view = match ? jobPage(main, decodeURIComponent(match[1]), who) : jobsPage(main, who);
}

// A sign-in link (`jobtrail serve --print-token`): the token leaves the address bar and the
// history at once, goes to POST /api/v1/session, and is kept nowhere.
async function signInFromAddress() {
  const params = new URLSearchParams(location.search);
  if (!params.has("token")) return true;
  const sent = api.signIn(params.get("token"));
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : "") + location.hash);
  try {
    await sent;
  } catch (error) {
    signedOut(`The token in the link was refused: ${error.message}`);
    return false;
  }
  tabs?.postMessage("signed-in");
  return true;
}

window.addEventListener("jobtrail:unauthorized", (event) => {
  if (!signedIn) return; // a call of a view that is gone
  const said = String(event.detail).replace(/\.$/, "");
  signedOut(`Your session has expired (the server said: ${said}). Sign in again with a new token.`);
});
tabs?.addEventListener("message", ({ data }) => {
  if (data !== "signed-out") start();
  else if (signedIn) signedOut("You signed out in another tab."); // a form being filled stays
});

if (await signInFromAddress()) start();
