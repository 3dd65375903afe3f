// The API as the dashboard uses it. The only credential is the HttpOnly session cookie, which
// no script can read: the token is sent once, to POST /api/v1/session, and never kept. Every
// call sends the cookie (credentials: "same-origin"); the browser adds Sec-Fetch-Site or Origin
// to its writes, which the API's CSRF check asks of a cookie's POST, PATCH and DELETE.

export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
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

async function send(method, path, { body, headers = {} } = {}) {
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

// Trades the token for the session cookie. The token is this call's argument only: the page
// stores it nowhere (not in storage, a variable, or the address bar).
export async function signIn(token) {
  if (!token) throw new ApiError(401, "unauthorized", "The token is empty.");
  const headers = { Authorization: `Bearer ${token}` };
  await checked(await send("POST", "/api/v1/session", { headers }), false);
}

// Deletes the session cookie. Signed out already (401) is fine; the server unreachable is not.
export async function signOut() {
  const response = await send("DELETE", "/api/v1/session");
  if (response.status !== 401) await checked(response, false);
}

// Who the cookie signs in ({sub, admin, expires}), or null when signed out or expired.
export async function session() {
  const response = await send("GET", "/api/v1/session");
  if (response.status === 401) return null;
  const who = await (await checked(response)).json();
  return { sub: who.sub, admin: who.scopes.includes("admin"), expires: new Date(who.expires_at) };
}

// One call of the JSON API: the parsed answer, or null for a 204.
export async function call(method, path, body) {
  const response = await checked(await send(method, path, { body }));
  return response.status === 204 ? null : response.json();
}
