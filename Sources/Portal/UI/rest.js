// The client of the portal's REST API (/api/v1, same origin): call() with the
// session's token, its errors (shown by forms.js), and the end of a session.

import { state, saveSession } from "./state.js";
import { currentPath, go } from "./nav.js";

/** A refused REST call: the portal's {"error": {"code", "message", "field"}}. */
class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field ?? null;
  }
}

/**
 * Calls the portal's REST API; resolves with the JSON body (null for 204),
 * throws an ApiError. A 401 on anything but the login means the session is
 * gone: the user is sent back to the login view.
 */
export async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.session) headers.Authorization = `Bearer ${state.session.token}`;
  let response;
  try {
    response = await fetch(path, { method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, "network", `The portal did not answer (${error.message}).`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const e = data?.error;
    if (response.status === 401 && path !== "/api/v1/login") sessionEnded();
    throw new ApiError(response.status, e?.code ?? `http_${response.status}`,
      e?.message ?? `${method} ${path} answered ${response.status} ${response.statusText}`.trim(), e?.field);
  }
  return data;
}

/** The session expired or was ended elsewhere: back to the login, then back here. */
export function sessionEnded() {
  if (!state.session) return;
  saveSession(null);
  state.loginNotice = "Your session has ended. Log in again to continue.";
  state.next = currentPath();
  go("/login");
}

/** An error the UI finds before asking the server, shown the same way. */
export const localError = (message, field) => new ApiError(0, "local", message, field);
