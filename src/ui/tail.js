// The live tail of the change log, over server-sent events.
//
// EventSource cannot send an Authorization header, so the stream is read with fetch() and its
// frames are parsed here. A reconnect resumes after the last event seen (Last-Event-ID).

import { el, fmtClock, fmtTime, preview, parseJson, setText, sleep } from "./dom.js";
import { ApiFailure, api, authHeaders, failureOf, jobHash, refOf } from "./api.js";

const KEEP = 200; // events kept in the tail
const START = 30; // the tail opens with up to this many of the latest events

const list = el("ol", { class: "tail", id: "tail" });
const status = el("div", { class: "tail-status", id: "tail-status" }, "connecting…");
const filter = { types: "", queue: "" };
let following = true;
let lastSeq = null; // the last seq received; null: open near the head again
let controller = null;
let pending = [];
let flushTimer = null;

export function startTail() {
  if (controller || !following) return;
  controller = new AbortController();
  follow(controller.signal);
}

function stopTail() {
  if (controller) controller.abort();
  controller = null;
}

/** Starts afresh (a new key or filter): the latest events, then what comes. */
export function restartTail() {
  stopTail();
  lastSeq = null;
  pending = [];
  list.replaceChildren();
  startTail();
}

function say(text, bad) {
  setText(status, text);
  status.className = bad ? "tail-status bad" : "tail-status";
}

/** Queues an event's row: rows are added in batches, so a busy log cannot swamp the page. */
function push(event) {
  pending.push(event);
  if (pending.length > KEEP) pending.splice(0, pending.length - KEEP);
  if (!flushTimer) flushTimer = setTimeout(flush, 100);
}

function flush() {
  flushTimer = null;
  list.prepend(...pending.map(eventRow).reverse());
  pending = [];
  while (list.children.length > KEEP) list.lastElementChild.remove();
}

/** The gist of an event's data, by its type. */
function gist(type, data) {
  switch (type) {
    case "job.enqueued": return `priority ${data.priority} · ${preview(data.payload, 70)}`;
    case "job.leased": case "job.extended": case "job.lease_expired": return `attempt ${data.attempt}`;
    case "job.retry_scheduled": case "job.dead":
      return data.error ? `error: ${data.error}` : `attempt ${data.attempt}`;
    case "job.succeeded":
      return data.result === null || data.result === undefined ? "" : `result ${preview(data.result, 70)}`;
    case "job.deleted": return data.reason || "";
    case "queue.purged": return `${data.jobs} jobs`;
    case "schedule.fired": return `due ${fmtTime(data.due_at)}`;
    case "message": return `${data.topic}${data.key ? ` / ${data.key}` : ""} · ${preview(data.payload, 60)}`;
    case "audit":
      return `${data.action} ${data.target || ""} → ${data.status} ${data.outcome}` +
        `${data.by && data.by.key_id ? ` · key ${data.by.key_id}` : ""}`;
    default: return "";
  }
}

/** One event as a line: seq, time, type, where, and the gist of its data. */
function eventRow(event) {
  const data = event.data || {};
  const where = [];
  if (event.queue) where.push(refOf(event.tenant, event.queue));
  if (event.job_id) where.push(`job ${event.job_id}`);
  if (data.name) where.push(refOf(event.tenant, data.name));
  const place = where.join(" · ");
  const detail = gist(event.type, data);
  return el("li", { dataset: { type: event.type, seq: event.seq } },
    el("span", { class: "seq" }, `#${event.seq}`),
    el("time", { datetime: event.at, title: fmtTime(event.at) }, fmtClock(event.at)),
    el("span", { class: `type ${String(event.type).replace(".", "-")}` }, event.type),
    el("span", { class: "what" },
      event.job_id ? el("a", { href: jobHash(event.job_id) }, place) : place && el("span", {}, place),
      detail ? el("span", { class: "detail" }, detail) : null));
}

async function follow(signal) {
  let backoff = 1000;
  while (!signal.aborted) {
    try {
      const params = new URLSearchParams();
      if (filter.types) params.set("types", filter.types);
      if (filter.queue) params.set("queue", filter.queue);
      const headers = authHeaders();
      if (lastSeq === null) {
        // Open a little before the head, so the tail starts with the latest events.
        const page = await api("GET", `/v1/events?limit=1${params.size ? `&${params}` : ""}`);
        params.set("after", String(Math.max(page.head - START, (page.oldest || 1) - 1, 0)));
      } else {
        headers["Last-Event-ID"] = String(lastSeq);
      }
      const response = await fetch(`/v1/events/stream?${params}`, { headers, signal, cache: "no-store" });
      if (!response.ok) throw await failureOf(response);
      say(`following the change log${filter.types ? `: ${filter.types}` : ""}` +
        `${filter.queue ? ` of ${filter.queue}` : ""}`);
      backoff = 1000;
      await readFrames(response.body, (type, id, data) => {
        if (type === "error") {
          // The reader fell behind the log's trimmed start, or the broker failed: it ends here.
          const error = parseJson(data);
          if (error.code === "events_trimmed") lastSeq = null;
          throw new ApiFailure(0, error.code, `${error.code}: ${error.message}`);
        }
        const event = parseJson(data);
        lastSeq = Number(id) || event.seq;
        push(event);
      });
      say("the stream ended; reconnecting…");
    } catch (failure) {
      if (signal.aborted) return;
      say(`${failure} (retrying in ${backoff / 1000} s)`, true);
    }
    await sleep(backoff, signal);
    backoff = Math.min(backoff * 2, 15000);
  }
}

/**
 * Reads a text/event-stream: a frame ends at a blank line; each line is "field: value", data
 * lines join with newlines, and lines that start with ":" are comments (the keep-alives).
 */
async function readFrames(body, onFrame) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer = (buffer + value).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let type = "message";
      let id = null;
      const data = [];
      for (const line of frame.split("\n")) {
        if (line === "" || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") data.push(value);
        else if (field === "event") type = value;
        else if (field === "id") id = value;
      }
      if (data.length) onFrame(type, id, data.join("\n"));
    }
  }
}

/** The panel: filters, pause and clear, the status line and the events, newest first. */
export function tailPanel() {
  const types = el("select", { "aria-label": "Event types", id: "tail-types" },
    [["", "every type"], ["job.*", "job.*"], ["queue.*", "queue.*"], ["schedule.*", "schedule.*"],
      ["message", "message"], ["audit", "audit"]]
      .map(([value, label]) => el("option", { value, selected: value === filter.types }, label)));
  types.addEventListener("change", () => {
    filter.types = types.value;
    restartTail();
  });
  // A key limited to some queues reads the log one queue at a time: it must name one here.
  const queue = el("input", { placeholder: "one queue", "aria-label": "Queue", value: filter.queue, id: "tail-queue" });
  queue.addEventListener("change", () => {
    filter.queue = queue.value.trim();
    restartTail();
  });
  const toggle = el("button", { class: "outline small", type: "button", id: "tail-toggle" }, following ? "Pause" : "Follow");
  toggle.addEventListener("click", () => {
    following = !following;
    setText(toggle, following ? "Pause" : "Follow");
    if (following) startTail();
    else {
      stopTail();
      say(`paused after #${lastSeq ?? 0}; Follow resumes from there`);
    }
  });
  const clear = el("button", { class: "outline small", type: "button", onclick: () => list.replaceChildren() }, "Clear");
  startTail();
  return el("section", { class: "panel", id: "events-panel" },
    el("header", {}, el("h2", {}, "Live events"),
      el("div", { class: "tail-controls" }, types, queue, toggle, clear)),
    status, list);
}
