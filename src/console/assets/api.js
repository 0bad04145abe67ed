// The console listener's own JSON API (same origin as this page): the session
// (an HttpOnly cookie the page never sees, plus a CSRF token held in memory
// only) and presigned URLs. The secret key is sent once, at sign-in, and is
// never kept by the page.

let csrfToken = null;
let onSignedOut = () => {};

/** Called when the server answers 401 to a call made with a session. */
export function whenSignedOut(callback) { onSignedOut = callback; }

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (csrfToken) headers["X-Tessera-Csrf"] = csrfToken;
  const resp = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await resp.json(); } catch { /* an empty body */ }
  if (!resp.ok) {
    const error = new ApiError(resp.status, data?.error || `${method} ${path}: HTTP ${resp.status}`);
    if (resp.status === 401 && path !== "/api/session") onSignedOut(error);
    throw error;
  }
  return data;
}

export async function signIn(accessKey, secretKey) {
  const session = await call("POST", "/api/session", { access_key: accessKey, secret_key: secretKey });
  csrfToken = session.csrf_token;
  return session;
}

/** The current session (after a reload), or null when signed out. */
export async function currentSession() {
  try {
    const session = await call("GET", "/api/session");
    csrfToken = session.csrf_token;
    return session;
  } catch (e) {
    if (e.status === 401) return null;
    throw e;
  }
}

export async function signOut() {
  try { await call("DELETE", "/api/session"); } finally { csrfToken = null; }
}

export function overview() { return call("GET", "/api/overview"); }

// Presign requests made in the same tick share one POST /api/presign (at most
// 1000 per call), so listing a folder or starting 4 parts costs one round trip.
const pending = [];

/**
 * A presigned URL for one S3 request: {method, bucket, key?, query?, headers?, expires?}.
 * Every header listed is signed and must be sent with exactly that value.
 */
export function presign(request) {
  return new Promise((resolve, reject) => {
    pending.push({ request, resolve, reject });
    if (pending.length === 1) queueMicrotask(flush);
  });
}

async function flush() {
  const batch = pending.splice(0, 1000);
  if (pending.length) queueMicrotask(flush);
  try {
    const { urls } = await call("POST", "/api/presign", { requests: batch.map(b => b.request) });
    batch.forEach((b, i) => b.resolve(urls[i]));
  } catch (e) {
    batch.forEach(b => b.reject(e));
  }
}
