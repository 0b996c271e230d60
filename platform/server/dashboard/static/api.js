// The server's public HTTP API, as the dashboard calls it: the session cookie goes by itself
// (same origin); a change also carries the session's CSRF token.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const session = { csrf: null, user: null, hasPassword: false, onSignedOut: () => {} };

export function currentUser() {
  return session.user;
}

export function hasPassword() {
  return session.hasPassword;
}

export function setSession(view) {
  session.csrf = view ? view.csrf_token : null;
  session.user = view ? view.user : null;
  session.hasPassword = view ? Boolean(view.has_password) : false;
}

export function onSignedOut(handler) {
  session.onSignedOut = handler;
}

export async function api(method, path, body, options = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && session.csrf) headers["X-CSRF-Token"] = session.csrf;
  let payload;
  if (options.raw !== undefined) {
    payload = options.raw;
    headers["Content-Type"] = "application/octet-stream";
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(`/__api__${path}`, {
      method, headers, body: payload, credentials: "same-origin", cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "the server cannot be reached");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const message = (data && data.error) || `${response.status} ${response.statusText}`;
    if (response.status === 401 && !options.signingIn) {
      setSession(null);
      session.onSignedOut(message);
    }
    throw new ApiError(response.status, message);
  }
  return data;
}
