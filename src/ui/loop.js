// The open view, read again every REFRESH_MS.

import { REFRESH_MS } from "./api.js";

let current = null;
let timer = null;
let generation = 0;

/** Shows `view` ({node, refresh}) in the page and starts reading for it. */
export function show(view) {
  current = view;
  document.querySelector("#view").replaceChildren(view.node);
  window.scrollTo(0, 0);
  refreshNow();
}

/** Reads the API for the open view now, then every REFRESH_MS (one timer, whoever calls). */
export async function refreshNow() {
  clearTimeout(timer);
  const mine = ++generation;
  try {
    if (current) await current.refresh();
  } catch (failure) {
    console.error(failure);
  } finally {
    if (mine === generation) timer = setTimeout(refreshNow, REFRESH_MS);
  }
}
