// The overview: totals, every queue with its counts and rates, schedules, mirrors, live events.

import {
  card, el, errorLine, fmtCount, fmtDuration, fmtRate, fmtRelative, fmtTime, setCount, setText, syncRows,
} from "./dom.js";
import { ALL_STATES, api, learnKeyKind, queueHash, refOf } from "./api.js";
import { pauseOrResume } from "./actions.js";
import { queueKey, rateNote, rateOf, ratesRefused, readRates } from "./rates.js";
import { tailPanel } from "./tail.js";

const RATES = ["enqueued", "acked", "dead"];

/** Every queue the key may see, a page of 1000 at a time. */
async function allQueues() {
  const queues = [];
  let after = null;
  for (let page = 0; page < 20; page++) {
    const reply = await api("GET", `/v1/queues${after ? `?after=${encodeURIComponent(after)}` : ""}`);
    queues.push(...reply.queues);
    if (!reply.next_after) break;
    after = reply.next_after;
  }
  return queues;
}

/** A panel with a heading, a note, an error line, a table and what it says when empty. */
function tablePanel(id, title, note, headers, emptyText) {
  const rows = el("tbody");
  const error = errorLine();
  const empty = el("p", { class: "empty", hidden: true }, emptyText);
  const table = el("div", { class: "scroll" }, el("table", { id }, el("thead", {}, el("tr", {}, headers)), rows));
  const node = el("section", { class: "panel", id: `${id}-panel` },
    el("header", {}, el("h2", {}, title), note), error, table, empty);
  // A refused read shows its error in place of the table.
  const show = error.show;
  error.show = (failure) => {
    show(failure);
    table.hidden = Boolean(failure);
    if (failure) empty.hidden = true;
  };
  return { node, rows, error, empty };
}

function queuesPanel() {
  const note = el("span", { class: "hint", id: "rate-note" }, rateNote());
  const panel = tablePanel("queues", "Queues", note, [
    el("th", {}, "Queue"), el("th", {}, "Status"),
    ALL_STATES.map((s, i) => el("th", { class: `num${i === 0 ? " group-start" : ""}` }, s)),
    el("th", { class: "num group-start", title: "Jobs enqueued per second" }, "Enqueued/s"),
    el("th", { class: "num", title: "Jobs acked per second" }, "Acked/s"),
    el("th", { class: "num", title: "Jobs that became dead per second" }, "Dead/s"),
    el("th", {}),
  ], "No queues yet: a queue is created by its first enqueue.");

  const create = () => {
    const row = el("tr");
    const parts = {
      link: el("a"),
      status: el("span", { class: "badge" }),
      counts: Object.fromEntries(ALL_STATES.map((s, i) =>
        [s, el("td", { class: `num${i === 0 ? " group-start" : ""}`, dataset: { count: s } })])),
      rates: Object.fromEntries(RATES.map((r, i) =>
        [r, el("td", { class: `num rate${i === 0 ? " group-start" : ""}`, dataset: { rate: r } })])),
      button: el("button", { class: "outline small", type: "button", onclick: () => pauseOrResume(row.queue, row.dataset.queue) }),
    };
    row.append(el("td", {}, parts.link), el("td", {}, parts.status), ...Object.values(parts.counts),
      ...Object.values(parts.rates), el("td", { class: "actions" }, parts.button));
    row.parts = parts;
    return row;
  };

  const update = (row, q) => {
    const ref = refOf(q.tenant, q.name);
    const { link, status, counts, rates, button } = row.parts;
    row.queue = q;
    row.dataset.queue = ref;
    link.href = queueHash(ref);
    setText(link, ref);
    setText(status, q.paused ? "paused" : "active");
    status.className = `badge ${q.paused ? "paused" : "active"}`;
    for (const s of ALL_STATES) setCount(counts[s], q.counts[s] || 0);
    const rate = rateOf(q.tenant, q.name);
    for (const r of RATES) setText(rates[r], ratesRefused() ? "–" : fmtRate(rate && rate[r]));
    setText(button, q.paused ? "Resume" : "Pause");
    button.dataset.action = q.paused ? "resume" : "pause";
  };

  const cards = {
    queues: card("Queues"),
    ready: card("Ready", "ready"),
    scheduled: card("Scheduled", "scheduled"),
    leased: card("Leased", "leased"),
    dead: card("Dead", "dead"),
    enqueued: card("Enqueued / s"),
    acked: card("Acked / s"),
  };

  async function refresh() {
    try {
      const [list] = await Promise.all([allQueues(), readRates()]);
      await learnKeyKind(list);
      panel.error.show(null);
      panel.empty.hidden = list.length > 0;
      syncRows(panel.rows, list, (q) => queueKey(q.tenant, q.name), create, update);
      setText(cards.queues.value, fmtCount(list.length));
      for (const s of ["ready", "scheduled", "leased", "dead"]) {
        setCount(cards[s].value, list.reduce((sum, q) => sum + (q.counts[s] || 0), 0));
      }
      const each = list.map((q) => rateOf(q.tenant, q.name));
      for (const r of ["enqueued", "acked"]) {
        const known = !ratesRefused() && each.every(Boolean);
        setText(cards[r].value, known ? fmtRate(each.reduce((sum, x) => sum + x[r], 0)) : "–");
      }
      setText(note, rateNote());
    } catch (failure) {
      panel.error.show(failure);
    }
  }

  return { node: panel.node, cards: Object.values(cards).map((c) => c.node), refresh };
}

function schedulesPanel() {
  const note = el("span", { class: "hint" }, "times in your time zone");
  const panel = tablePanel("schedules", "Schedules", note,
    ["Schedule", "Cron", "Queue", "Next fire", "State"].map((h) => el("th", {}, h)), "No schedules.");

  const create = () => {
    const row = el("tr");
    row.parts = {
      name: el("td"), cron: el("td", { class: "mono" }), queue: el("td"),
      next: el("td", { dataset: { field: "next" } }), state: el("span", { class: "badge" }),
    };
    const p = row.parts;
    row.append(p.name, p.cron, p.queue, p.next, el("td", {}, p.state));
    return row;
  };

  const update = (row, s) => {
    const p = row.parts;
    const ref = refOf(s.tenant, s.name);
    row.dataset.schedule = ref;
    setText(p.name, ref);
    setText(p.cron, `${s.cron} (${s.timezone || "UTC"})`);
    const queueRef = refOf(s.tenant, s.queue);
    if (p.queue.textContent !== queueRef) p.queue.replaceChildren(el("a", { href: queueHash(queueRef) }, queueRef));
    if (s.next_fire_at) {
      p.next.replaceChildren(fmtTime(s.next_fire_at), el("span", { class: "sub" }, fmtRelative(s.next_fire_at)));
      p.next.title = `then ${(s.upcoming || []).slice(1).map(fmtTime).join(", ")}`;
    } else {
      p.next.replaceChildren(el("span", { class: "sub" }, "none while paused"));
    }
    setText(p.state, s.paused ? "paused" : "active");
    p.state.className = `badge ${s.paused ? "paused" : "active"}`;
  };

  async function refresh() {
    try {
      const { schedules } = await api("GET", "/v1/schedules");
      panel.error.show(null);
      panel.empty.hidden = schedules.length > 0;
      syncRows(panel.rows, schedules, (s) => queueKey(s.tenant, s.name), create, update);
    } catch (failure) {
      panel.error.show(failure);
    }
  }

  return { node: panel.node, refresh };
}

function mirrorsPanel() {
  const note = el("span", { class: "hint" }, "lag: events a mirror does not hold yet");
  const panel = tablePanel("mirrors", "Mirrors", note, [
    el("th", {}, "Mirror"), el("th", {}, "State"), el("th", { class: "num" }, "Position"),
    el("th", { class: "num" }, "Lag"), el("th", {}, "Last error"),
  ], "No mirrors configured ([[mirror]] in the config file, or --mirror URL).");

  const create = () => {
    const row = el("tr");
    row.parts = {
      name: el("td"), state: el("span", { class: "badge" }), position: el("td", { class: "num" }),
      lag: el("td", { class: "num", dataset: { field: "lag" } }), error: el("td", { class: "wrap err-text" }),
    };
    const p = row.parts;
    row.append(p.name, el("td", {}, p.state), p.position, p.lag, p.error);
    return row;
  };

  const update = (row, m) => {
    const p = row.parts;
    row.dataset.mirror = m.name;
    p.name.replaceChildren(m.name, el("span", { class: "sub" }, m.kind));
    setText(p.state, m.state);
    p.state.className = `badge ${m.state}`;
    setText(p.position, fmtCount(m.position));
    p.lag.replaceChildren(`${fmtCount(m.lag_events)} events`,
      el("span", { class: "sub" }, m.lag_ms ? `oldest waiting ${fmtDuration(m.lag_ms)}` : "caught up"));
    setText(p.error, m.last_error || "–");
  };

  async function refresh() {
    try {
      const { mirrors } = await api("GET", "/v1/mirrors");
      panel.error.show(null);
      panel.empty.hidden = mirrors.length > 0;
      syncRows(panel.rows, mirrors, (m) => m.name, create, update);
    } catch (failure) {
      panel.error.show(failure);
    }
  }

  return { node: panel.node, refresh };
}

export function overview() {
  const queues = queuesPanel();
  const schedules = schedulesPanel();
  const mirrors = mirrorsPanel();
  const node = el("div", { class: "overview" },
    el("div", { class: "cards" }, queues.cards),
    queues.node,
    el("div", { class: "columns" }, el("div", {}, schedules.node, mirrors.node), tailPanel()));
  return {
    node,
    refresh: () => Promise.all([queues.refresh(), schedules.refresh(), mirrors.refresh()]),
  };
}
