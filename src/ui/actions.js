// What the page changes: pause, resume, replay and purge, each confirmed first. They are the
// API's own routes, so a key without queues:admin is refused here as anywhere (403).

import { $, fmtCount, setText } from "./dom.js";
import { api, queuePath } from "./api.js";
import { refreshNow } from "./loop.js";

let toastTimer = null;

/** A short note in the corner, for the outcome of an action. */
export function toast(message, bad) {
  const node = $("#toast");
  setText(node, message);
  node.className = bad ? "toast bad" : "toast";
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, 5000);
}

/** Asks before a change; resolves true only when the confirm button was clicked. */
function confirmAction(title, text, verb) {
  const dialog = $("#confirm");
  setText($("#confirm-title"), title);
  setText($("#confirm-text"), text);
  setText($("#confirm-ok"), verb);
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

/** Confirms, sends one change, says how it went, and reads the view again. */
async function act({ title, text, verb, method, path, body, done }) {
  if (!(await confirmAction(title, text, verb))) return;
  try {
    toast(done(await api(method, path, body)));
  } catch (failure) {
    toast(`${verb} failed: ${failure}`, true);
  }
  refreshNow();
}

export function pauseOrResume(queue, ref) {
  const pausing = !queue.paused;
  return act({
    title: pausing ? `Pause ${ref}?` : `Resume ${ref}?`,
    text: pausing
      ? "Polls get no jobs from this queue until it is resumed. Enqueues, acks and nacks go on."
      : "Consumers get its ready jobs again from their next poll.",
    verb: pausing ? "Pause" : "Resume",
    method: "POST",
    path: `${queuePath(ref)}/${pausing ? "pause" : "resume"}`,
    done: () => (pausing ? `Paused ${ref}` : `Resumed ${ref}`),
  });
}

/** Replays the dead jobs `ids` of queue `ref`, or every one of them (`count`). */
export function replayDead(ref, count, ids) {
  const which = ids ? `job ${ids[0]}` : `every dead job (${fmtCount(count)})`;
  return act({
    title: `Replay ${which} of ${ref}?`,
    text: "Replayed jobs are ready again at once, with their attempts reset to 0.",
    verb: "Replay",
    method: "POST",
    path: `${queuePath(ref)}/replay`,
    body: ids ? { ids } : {},
    done: (reply) => {
      const n = reply.replayed.length;
      return `Replayed ${fmtCount(n)} dead job${n === 1 ? "" : "s"} of ${ref}`;
    },
  });
}

export function purge(ref) {
  return act({
    title: `Purge ${ref}?`,
    text: "Deletes every scheduled, ready and dead job of this queue, payloads and all. " +
      "Leased jobs are left to finish. This cannot be undone.",
    verb: "Purge",
    method: "DELETE",
    path: `${queuePath(ref)}/jobs`,
    done: (reply) => `Purged ${fmtCount(reply.purged)} jobs of ${ref}`,
  });
}

/** Opens job `text` (an id), or says why not. */
export function findJob(text) {
  const id = String(text).trim();
  if (!/^\d+$/.test(id)) {
    toast("A job id is a number, such as 42.", true);
    return;
  }
  location.hash = `#/jobs/${id}`;
}
