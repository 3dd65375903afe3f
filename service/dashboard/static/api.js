// The API as the dashboard uses it: the Bearer token kept in localStorage (the JSON routes read
// only the Authorization header), and the HttpOnly session cookie for EventSource.
const KEY = "jobtrail.token";

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function token() {
  return localStorage.getItem(KEY);
}

export function forget() {
  localStorage.removeItem(KEY);
}

// The token's claims, for display only (the server checks the signature): sub, scope, exp.
export function claims(value = token()) {
  try {
    const part = value.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    const bytes = Uint8Array.from(atob(part), (c) => c.charCodeAt(0));
    const parsed = JSON.parse(new TextDecoder().decode(bytes));
    const scopes = typeof parsed.scope === "string" ? parsed.scope.split(" ") : [];
    return { sub: String(parsed.sub), admin: scopes.includes("admin"), exp: Number(parsed.exp) };
  } catch {
    return null;
  }
}

async function failure(response) {
  try {
    const { error } = await response.json();
    return new ApiError(response.status, error.code, error.message, error.details || {});
  } catch {
    return new ApiError(response.status, "unknown", `The server answered ${response.status}.`);
  }
}

async function send(method, path, headers, body) {
  const init = { method, headers: { ...headers }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(path, init);
  } catch {
    throw new ApiError(0, "unreachable", "The server cannot be reached; retrying.");
  }
}

// A failed answer becomes an ApiError; a 401 also tells the page ("jobtrail:unauthorized").
async function checked(response, announce = true) {
  if (response.ok) return response;
  const error = await failure(response);
  if (response.status === 401 && announce) {
    window.dispatchEvent(new CustomEvent("jobtrail:unauthorized", { detail: error.message }));
  }
  throw error;
}

function bearer(value) {
  if (!value) throw new ApiError(401, "unauthorized", "You are signed out.");
  return { Authorization: `Bearer ${value}` };
}

// Trades the token for the session cookie (POST /api/v1/session), then keeps it.
export async function signIn(value) {
  await checked(await send("POST", "/api/v1/session", bearer(value)), false);
  localStorage.setItem(KEY, value);
}

export async function signOut() {
  const value = token();
  forget();
  if (value) await send("DELETE", "/api/v1/session", bearer(value));
}

// Sets the cookie again, for an EventSource that the server refused (cookie gone or expired).
export async function renewSession() {
  await checked(await send("POST", "/api/v1/session", bearer(token())));
}

// One call of the JSON API: the parsed answer, or null for a 204.
export async function call(method, path, body) {
  const response = await checked(await send(method, path, bearer(token()), body));
  return response.status === 204 ? null : response.json();
}
