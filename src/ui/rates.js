// Live rates per queue, from the broker's own counters (wharf_jobs_*_total in /metrics).
//
// Each read is kept with the time it was taken. A rate is the rise of a counter from the oldest
// read of the last RATE_WINDOW_MS to the newest, divided by the time between them: jobs per
// second that were enqueued, acked, or became dead, not changes of the counts (which
// retention also moves). The counters restart at 0 with the broker: a fall starts afresh.

import { api } from "./api.js";

const RATE_WINDOW_MS = 10000;
const SERIES = {
  wharf_jobs_enqueued_total: "enqueued",
  wharf_jobs_acked_total: "acked",
  wharf_jobs_dead_lettered_total: "dead",
};
const NONE = { enqueued: 0, acked: 0, dead: 0 };

export const queueKey = (tenant, name) => `${tenant}\u0000${name}`;

/** The counters of each queue in a /metrics text, by queueKey. */
function parseCounters(text) {
  const counters = new Map();
  for (const line of text.split("\n")) {
    const m = /^(wharf_jobs_[a-z_]+_total)\{tenant="([^"]*)",queue="([^"]*)"\} (\d+)$/.exec(line);
    if (!m || !Object.hasOwn(SERIES, m[1])) continue;
    const key = queueKey(m[2], m[3]);
    if (!counters.has(key)) counters.set(key, { ...NONE });
    counters.get(key)[SERIES[m[1]]] = Number(m[4]);
  }
  return counters;
}

let reads = [];
let failure = null;

export function resetRates() {
  reads = [];
  failure = null;
}

/** Reads /metrics once more (a key without metrics:read gets no rates, and a note why). */
export async function readRates() {
  try {
    const counters = parseCounters(await api("GET", "/metrics"));
    const at = performance.now();
    const last = reads[reads.length - 1];
    const fell = last && [...counters].some(([key, now]) => {
      const before = last.counters.get(key);
      return before && Object.keys(NONE).some((name) => now[name] < before[name]);
    });
    if (fell) reads = [];
    reads.push({ at, counters });
    while (reads.length > 2 && at - reads[1].at >= RATE_WINDOW_MS) reads.shift();
    failure = null;
  } catch (refused) {
    reads = [];
    failure = refused;
  }
}

/** {enqueued, acked, dead} per second of a queue; null before two reads, or without rates. */
export function rateOf(tenant, name) {
  if (failure || reads.length < 2) return null;
  const first = reads[0];
  const last = reads[reads.length - 1];
  const key = queueKey(tenant, name);
  const now = last.counters.get(key);
  const seconds = (last.at - first.at) / 1000;
  if (!now || seconds <= 0) return null;
  // A queue created since the first read started from 0.
  const then = first.counters.get(key) || NONE;
  return Object.fromEntries(Object.keys(NONE).map((name) => [name, (now[name] - then[name]) / seconds]));
}

export const ratesRefused = () => failure !== null;

/** What the rate columns mean, or why they are empty. */
export function rateNote() {
  if (failure) {
    return failure.status === 403
      ? "Rates need a key with metrics:read."
      : `Rates unavailable: ${failure}`;
  }
  return `Rates: jobs per second over the last ${RATE_WINDOW_MS / 1000} s, from the broker's counters (/metrics).`;
}
