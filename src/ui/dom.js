// Building the page, and the way numbers and times read in it.
//
// Every node is built with DOM calls; strings become text nodes, never markup, because
// payloads, errors and names are user data.

export const $ = (selector) => document.querySelector(selector);

/** An element with properties and children. */
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** Sets a node's text only when it changed, so a refresh leaves a selection alone. */
export function setText(node, value) {
  const text = String(value);
  if (node.textContent !== text) node.textContent = text;
}

/**
 * Updates a table body in place, one row per key: a row stays (and so do the buttons in it)
 * while its item does, so a refresh neither flickers nor pulls a button from under a click.
 */
export function syncRows(tbody, items, keyOf, create, update) {
  const old = new Map([...tbody.rows].map((row) => [row.dataset.key, row]));
  items.forEach((item, at) => {
    const key = keyOf(item);
    let row = old.get(key);
    if (row) old.delete(key);
    else {
      row = create(item);
      row.dataset.key = key;
    }
    update(row, item);
    if (tbody.rows[at] !== row) tbody.insertBefore(row, tbody.rows[at] || null);
  });
  for (const row of old.values()) row.remove();
}

const number = new Intl.NumberFormat("en-US");

export const fmtCount = (n) => (typeof n === "number" ? number.format(n) : "–");

/** A rate per second: "…" until there are two reads to compare, one decimal below 10. */
export function fmtRate(rate) {
  if (rate === null || rate === undefined) return "…";
  if (rate === 0) return "0";
  return rate < 10 ? rate.toFixed(1) : number.format(Math.round(rate));
}

const pad = (n) => String(n).padStart(2, "0");

/** A time as YYYY-MM-DD HH:MM:SS in the browser's zone (the API's times are UTC). */
export function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(iso)}`;
}

/** HH:MM:SS in the browser's zone. */
export function fmtClock(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A length of time in ms, in its two largest units ("1 h 5 min", "30 s", "7 d"). */
export function fmtDuration(ms) {
  if (typeof ms !== "number") return "–";
  if (ms < 1000) return `${ms} ms`;
  const units = [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]];
  let rest = Math.floor(ms / 1000);
  const parts = [];
  for (const [unit, size] of units) {
    if (rest >= size && parts.length < 2) {
      parts.push(`${Math.floor(rest / size)} ${unit}`);
      rest %= size;
    }
  }
  return parts.join(" ");
}

/** "in 3 h 2 min" or "12 s ago", by the browser's clock. */
export function fmtRelative(iso) {
  if (!iso) return "";
  const delta = new Date(iso).getTime() - Date.now();
  if (Number.isNaN(delta)) return "";
  if (Math.abs(delta) < 1000) return "now";
  return delta > 0 ? `in ${fmtDuration(delta)}` : `${fmtDuration(-delta)} ago`;
}

/** Compact JSON on one line, cut to `max` characters. */
export function preview(value, max = 90) {
  const text = value === undefined ? "" : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * JSON.parse, keeping integers that a double cannot hold exactly (a 64-bit id in a payload) as
 * their source text, so the page shows what was stored rather than a rounded neighbour.
 */
export function parseJson(text) {
  if (typeof JSON.rawJSON !== "function") return JSON.parse(text);
  return JSON.parse(text, (key, value, context) =>
    typeof value === "number" && !Number.isSafeInteger(value) && context &&
      typeof context.source === "string" && /^-?\d+$/.test(context.source)
      ? JSON.rawJSON(context.source)
      : value);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  if (signal) signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
});

/** A figure with its label; `value` is the node to write it into. */
export function card(label, className, dataset) {
  const value = el("div", { class: `value ${className || ""}`, dataset }, "–");
  return { node: el("div", { class: "card" }, el("div", { class: "label" }, label), value), value };
}

/** Writes a count into a card, muted when it is 0. */
export function setCount(node, n) {
  setText(node, fmtCount(n));
  node.classList.toggle("zero", n === 0);
}

/** A panel's error line: `show(failure)` shows it, `show(null)` hides it. */
export function errorLine() {
  const node = el("div", { class: "panel-error", role: "alert", hidden: true });
  node.show = (failure) => {
    node.hidden = !failure;
    if (failure) setText(node, String(failure));
  };
  return node;
}
