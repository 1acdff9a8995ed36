// The UI's shared state (memory only, except the session): who is logged in
// (kept in sessionStorage), the gateway URLs, the working tokens, the path
// parameters' values and the snippets' language.

const SESSION_KEY = "streamgate.portal.session";

export const state = {
  /** {token, username, role, expires_at} of the logged-in user, or null. */
  session: loadSession(),
  /** Where to go after logging in (the page asked for before the login). */
  next: null,
  /** A message for the login view (why the user is back there). */
  loginNotice: null,
  /** The gateways' WebSocket URLs (from GET /api/v1/config, or as the user edited them). */
  gatewayUrls: null,
  /** "portal" when /api/v1/config said, "guess" when it did not answer, "edited" after the user changed them. */
  gatewayUrlsSource: null,
  /** API name -> the token the console and the snippets use (minted here, or pasted). Memory only. */
  workingTokens: new Map(),
  /** "api|path|param" -> the value the console and the snippets put in for {param}. */
  paramValues: new Map(),
  /** The snippets' language: chosen once, for every endpoint. */
  snippetLanguage: "js",
};

function loadSession() {
  try {
    const session = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null");
    return session && typeof session.token === "string" ? session : null;
  } catch {
    return null;
  }
}

export function saveSession(session) {
  state.session = session;
  if (session) sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(SESSION_KEY);
}

export const isAdmin = () => state.session?.role === "admin";
