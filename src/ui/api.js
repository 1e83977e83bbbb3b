// The JSON API, called with the key typed into the page; and the names requests must use.

import { $, fmtClock, parseJson, setText } from "./dom.js";

export const REFRESH_MS = 2000; // how often the open view reads the API again
export const ALL_STATES = ["scheduled", "ready", "leased", "dead", "succeeded", "cancelled"];
/** The states a queue's jobs can be listed in (finished jobs are read by id). */
export const LIVE_STATES = ["ready", "scheduled", "leased", "dead"];
const KEY_STORE = "wharf.key";

export const session = {
  // Kept in sessionStorage: gone when the tab closes, never sent anywhere but this broker.
  key: sessionStorage.getItem(KEY_STORE) || "",
  // Whether the key is an operator's (it names another tenant's queue "tenant:name"); null
  // until a queue outside the default tenant is in sight (see learnKeyKind).
  operator: null,
};

/** Keeps the key for this tab (an empty one forgets it). */
export function storeKey(key) {
  session.key = key.trim();
  if (session.key) sessionStorage.setItem(KEY_STORE, session.key);
  else sessionStorage.removeItem(KEY_STORE);
  session.operator = null;
}

export function authHeaders() {
  return session.key ? { Authorization: `Bearer ${session.key}` } : {};
}

/** A refused or failed request: the API's status, machine code and message. */
export class ApiFailure extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  toString() {
    return this.status ? `${this.status} ${this.code}: ${this.message}` : this.message;
  }
}

/** The ApiFailure of a reply that is not a 2xx. */
export async function failureOf(response) {
  const body = await response.text();
  let code = "error";
  let message = body || response.statusText;
  try {
    const error = JSON.parse(body).error;
    if (error && error.code) ({ code, message } = error);
  } catch (_) { /* not JSON: the text says it */ }
  return new ApiFailure(response.status, code, message);
}

/** One API request with the key: the parsed reply, or an ApiFailure. */
export async function api(method, path, body) {
  const init = { method, headers: authHeaders(), cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    const failure = new ApiFailure(0, "unreachable", `cannot reach the broker (${error.message})`);
    connection(failure);
    throw failure;
  }
  if (!response.ok) {
    const failure = await failureOf(response);
    connection(failure);
    throw failure;
  }
  connection(null);
  const text = await response.text();
  return (response.headers.get("content-type") || "").includes("json") ? parseJson(text) : text;
}

/**
 * The connection state in the top bar, and the notice for a missing key or an unreachable
 * broker. Other refusals (403, 404, ...) are for the panel that asked to show.
 */
function connection(failure) {
  const live = $("#live");
  const notice = $("#notice");
  if (!failure || (failure.status !== 0 && failure.status !== 401)) {
    live.className = "live ok";
    setText(live, `live · ${fmtClock(new Date().toISOString())}`);
    if (!failure) notice.hidden = true;
    return;
  }
  live.className = "live bad";
  if (failure.status === 401) {
    setText(live, "needs a key");
    setText(notice, `${failure} — this broker needs an API key: type one in the field above. ` +
      "It is kept in this tab's session storage only.");
  } else {
    setText(live, "offline");
    setText(notice, `${failure}. Retrying every ${REFRESH_MS / 1000} s.`);
  }
  notice.hidden = false;
}

export const queuePath = (ref) => `/v1/queues/${encodeURIComponent(ref)}`;
export const queueHash = (ref, state) => `#/queues/${encodeURIComponent(ref)}${state ? `/${state}` : ""}`;
export const jobHash = (id) => `#/jobs/${encodeURIComponent(id)}`;

/**
 * The name a request uses for a tenant's queue or schedule. A tenant's key names its own
 * plainly; an operator key names another tenant's "tenant:name" (the default tenant's have no
 * prefix). Replies always show the plain name, with the tenant beside it.
 */
export function refOf(tenant, name) {
  return session.operator && tenant && tenant !== "default" ? `${tenant}:${name}` : name;
}

/**
 * Finds out whether the key is an operator's, once a queue outside the default tenant is in
 * sight: queues of several tenants mean an operator; with one tenant, asking for the queue by
 * its full name tells (a tenant's key cannot spell a prefix: 400).
 */
export async function learnKeyKind(queues) {
  if (session.operator !== null) return;
  const other = queues.find((q) => q.tenant && q.tenant !== "default");
  if (!other) return; // every name is plain, whoever asks
  if (new Set(queues.map((q) => q.tenant)).size > 1) {
    session.operator = true;
    return;
  }
  try {
    await api("GET", queuePath(`${other.tenant}:${other.name}`));
    session.operator = true;
  } catch (failure) {
    if (failure.status !== 0) session.operator = failure.status !== 400;
  }
}
