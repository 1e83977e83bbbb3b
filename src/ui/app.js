// The wharf dashboard: plain JavaScript modules, no build step, no dependencies.
//
// Everything it shows comes from wharf's JSON API, called with the API key typed into the page
// (kept in this tab's sessionStorage only), so it can do no more than that key. It builds the
// page with DOM calls and text, never markup from data (and the server's Content-Security-
// Policy refuses inline script besides).
//
// Modules: dom.js (building and formatting), api.js (requests, the key, names per tenant),
// loop.js (the refresh of the open view), actions.js (confirmed changes), rates.js (live rates
// from /metrics), tail.js (the event stream), overview.js, queue.js and job.js (the views).

import { $ } from "./dom.js";
import { session, storeKey } from "./api.js";
import { findJob } from "./actions.js";
import { show } from "./loop.js";
import { resetRates } from "./rates.js";
import { restartTail } from "./tail.js";
import { overview } from "./overview.js";
import { queueView } from "./queue.js";
import { jobView } from "./job.js";

/** The view of the address's fragment: #/, #/queues/NAME[/STATE] or #/jobs/ID. */
function route() {
  let parts;
  try {
    parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  } catch (_) {
    parts = [];
  }
  if (parts[0] === "queues" && parts[1]) show(queueView(parts[1], parts[2]));
  else if (parts[0] === "jobs" && parts[1]) show(jobView(parts[1]));
  else show(overview());
}

/** Shows which key is in use: its id (the part of a token that is not secret). */
function showKey() {
  const id = /^wk_([0-9a-f]{16})_/.exec(session.key);
  $("#key-state").textContent = session.key ? (id ? `key ${id[1]}` : "key set") : "no key";
  $("#key").value = "";
  $("#key").placeholder = session.key ? "another API key (wk_…)" : "API key (wk_…)";
}

function useKey(key) {
  storeKey(key);
  resetRates();
  showKey();
  restartTail();
  route();
}

$("#key-form").addEventListener("submit", (event) => {
  // Never a real submission: the key must not end up in a URL (the policy forbids one anyway).
  event.preventDefault();
  if ($("#key").value.trim()) useKey($("#key").value);
  $("#key").blur();
});
$("#key-forget").addEventListener("click", () => useKey(""));
$("#find-job").addEventListener("submit", (event) => {
  event.preventDefault();
  findJob($("#find-id").value);
  $("#find-id").value = "";
  $("#find-id").blur();
});
$("#confirm-ok").addEventListener("click", () => $("#confirm").close("ok"));
$("#confirm-cancel").addEventListener("click", () => $("#confirm").close("cancel"));
window.addEventListener("hashchange", route);
showKey();
route();
