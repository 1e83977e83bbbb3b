// A queue: its settings and counts, pause / resume / replay / purge, and its jobs in one live
// state, a page at a time, with a search by id.

import {
  card, el, errorLine, fmtCount, fmtDuration, fmtRelative, fmtTime, preview, setCount, setText, syncRows,
} from "./dom.js";
import { ALL_STATES, ApiFailure, LIVE_STATES, api, jobHash, queueHash, queuePath } from "./api.js";
import { findJob, pauseOrResume, purge, replayDead } from "./actions.js";
import { refreshNow } from "./loop.js";

const PAGE_SIZE = 25;
// The time each state's list shows, and its column's heading.
const WHEN = {
  ready: ["run_at", "Due since"],
  scheduled: ["run_at", "Due at"],
  leased: ["lease_expires_at", "Lease until"],
  dead: ["finished_at", "Died"],
};

/** A search field that opens a job by id. */
export function findForm(id) {
  const input = el("input", { placeholder: "Find job by id", inputmode: "numeric", "aria-label": "Job id", id });
  return el("form", {
    class: "find",
    autocomplete: "off",
    onsubmit: (event) => {
      event.preventDefault();
      findJob(input.value);
      input.blur();
    },
  }, input);
}

/** The settings of a queue, in one line. */
function settingsLine(q) {
  const backoff = q.backoff || {};
  return [
    q.tenant && q.tenant !== "default" ? `tenant ${q.tenant}` : null,
    `lease ${fmtDuration(q.lease_ms)}`,
    `max attempts ${q.max_attempts}`,
    `backoff ${fmtDuration(backoff.base_ms)} to ${fmtDuration(backoff.cap_ms)}${backoff.jitter ? " with jitter" : ""}`,
    `succeeded kept ${fmtDuration(q.retention_ms)}`,
    `dead kept ${fmtDuration(q.dead_retention_ms)}`,
    q.max_depth ? `max depth ${fmtCount(q.max_depth)}` : null,
  ].filter(Boolean).join(" · ");
}

function jobRow() {
  const row = el("tr");
  row.parts = {
    id: el("a"), priority: el("td", { class: "num" }), attempts: el("td", { class: "num" }),
    enqueued: el("td"), when: el("td"), error: el("td", { class: "clip err-text" }),
    payload: el("td", { class: "clip mono" }),
  };
  const p = row.parts;
  row.append(el("td", {}, p.id), p.priority, p.attempts, p.enqueued, p.when, p.error, p.payload);
  return row;
}

export function queueView(ref, wanted) {
  const state = LIVE_STATES.includes(wanted) ? wanted : "ready";
  const pages = [""]; // the `after` of each page seen so far: the last is the page shown
  let nextAfter = null;
  let queue = null;

  const badge = el("span", { class: "badge" });
  const pauseButton = el("button", { class: "outline", type: "button", id: "pause-queue", onclick: () => queue && pauseOrResume(queue, ref) }, "Pause");
  const replayButton = el("button", { class: "outline", type: "button", id: "replay-dead", onclick: () => queue && replayDead(ref, queue.counts.dead) }, "Replay dead");
  const purgeButton = el("button", { class: "outline danger-text", type: "button", id: "purge-queue", onclick: () => purge(ref) }, "Purge");
  const settings = el("div", { class: "settings" });
  const cards = Object.fromEntries(ALL_STATES.map((s) => {
    const c = card(s, s, { count: s });
    if (LIVE_STATES.includes(s)) {
      // The cards of live states open their list.
      const link = el("a", { class: `card${s === state ? " current" : ""}`, href: queueHash(ref, s) }, ...c.node.childNodes);
      return [s, { node: link, value: c.value }];
    }
    return [s, c];
  }));
  const tabs = el("nav", { class: "tabs", id: "state-tabs" }, LIVE_STATES.map((s) =>
    el("a", { href: queueHash(ref, s), class: s === state ? "current" : "", dataset: { state: s } },
      s, el("span", { class: "n" }))));
  const where = el("span", { class: "where", id: "page-where" });
  const go = (change) => () => { change(); refreshNow(); };
  const first = el("button", { class: "outline small", type: "button", onclick: go(() => { pages.length = 1; }) }, "First");
  const previous = el("button", { class: "outline small", type: "button", onclick: go(() => { if (pages.length > 1) pages.pop(); }) }, "Previous");
  const next = el("button", { class: "outline small", type: "button", id: "next-page", onclick: go(() => { if (nextAfter) pages.push(nextAfter); }) }, "Next");
  const rows = el("tbody");
  const error = errorLine();
  const empty = el("p", { class: "empty", hidden: true }, `No ${state} jobs.`);
  const [whenField, whenHeading] = WHEN[state];

  const node = el("div", { class: "queue-view", dataset: { queue: ref, state } },
    el("div", { class: "heading" },
      el("a", { href: "#/", class: "crumb" }, "Queues /"),
      el("h1", {}, ref), badge,
      el("div", { class: "buttons" }, pauseButton, replayButton, purgeButton)),
    settings,
    el("div", { class: "cards six" }, Object.values(cards).map((c) => c.node)),
    el("section", { class: "panel" },
      el("div", { class: "toolbar" }, tabs, findForm("queue-find"),
        el("div", { class: "pager" }, where, first, previous, next)),
      error,
      el("div", { class: "scroll" }, el("table", { id: "jobs" },
        el("thead", {}, el("tr", {},
          el("th", {}, "Job"), el("th", { class: "num" }, "Priority"), el("th", { class: "num" }, "Attempts"),
          el("th", {}, "Enqueued"), el("th", {}, whenHeading), el("th", {}, "Last error"), el("th", {}, "Payload"))),
        rows)),
      empty));

  function updateRow(row, job) {
    const p = row.parts;
    row.dataset.job = job.id;
    p.id.href = jobHash(job.id);
    setText(p.id, job.id);
    setText(p.priority, job.priority);
    setText(p.attempts, `${job.attempts} / ${job.max_attempts}`);
    setText(p.enqueued, fmtTime(job.enqueued_at));
    setText(p.when, fmtTime(job[whenField]));
    p.when.title = fmtRelative(job[whenField]);
    setText(p.error, job.last_error || "–");
    p.error.title = job.last_error || "";
    setText(p.payload, preview(job.payload));
  }

  async function refresh() {
    const after = pages[pages.length - 1];
    try {
      const [q, page] = await Promise.all([
        api("GET", queuePath(ref)),
        api("GET", `${queuePath(ref)}/jobs?state=${state}&limit=${PAGE_SIZE}` +
          `${after ? `&after=${encodeURIComponent(after)}` : ""}`),
      ]);
      queue = q;
      error.show(null);
      setText(badge, q.paused ? "paused" : "active");
      badge.className = `badge ${q.paused ? "paused" : "active"}`;
      setText(pauseButton, q.paused ? "Resume" : "Pause");
      pauseButton.dataset.action = q.paused ? "resume" : "pause";
      replayButton.disabled = !q.counts.dead;
      setText(replayButton, q.counts.dead ? `Replay dead (${fmtCount(q.counts.dead)})` : "Replay dead");
      setText(settings, settingsLine(q));
      for (const s of ALL_STATES) setCount(cards[s].value, q.counts[s] || 0);
      for (const tab of tabs.children) setText(tab.lastChild, fmtCount(q.counts[tab.dataset.state] || 0));

      nextAfter = page.next_after;
      const start = (pages.length - 1) * PAGE_SIZE;
      setText(where, page.jobs.length
        ? `${fmtCount(start + 1)}–${fmtCount(start + page.jobs.length)} of ${fmtCount(q.counts[state])}`
        : "");
      first.disabled = previous.disabled = pages.length === 1;
      next.disabled = !nextAfter;
      empty.hidden = page.jobs.length > 0;
      syncRows(rows, page.jobs, (job) => job.id, jobRow, updateRow);
    } catch (failure) {
      error.show(failure.code === "queue_not_found"
        ? new ApiFailure(404, failure.code, `no queue named ${ref}`)
        : failure);
    }
  }

  return { node, refresh };
}
