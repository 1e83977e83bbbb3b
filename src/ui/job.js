// A job: where and how it stands, its payload, last error, result and headers.

import { el, errorLine, fmtRelative, fmtTime, setText } from "./dom.js";
import { ApiFailure, api, queueHash, refOf } from "./api.js";
import { replayDead } from "./actions.js";

const json = (value) => JSON.stringify(value, null, 2);

export function jobView(id) {
  const crumb = el("span", { class: "crumb" });
  const badge = el("span", { class: "badge", id: "job-state" });
  const replayButton = el("button", { type: "button", id: "replay-job", hidden: true }, "Replay this job");
  const error = errorLine();
  const fields = el("dl", { class: "fields", id: "job-fields" });
  const payload = el("pre", { class: "json", id: "job-payload" });
  const lastError = el("pre", { class: "json", id: "job-error" });
  const result = el("pre", { class: "json", id: "job-result" });
  const headers = el("pre", { class: "json", id: "job-headers" });
  const panel = (title, body) => el("section", { class: "panel" }, el("header", {}, el("h2", {}, title)), body);
  const details = el("div", { hidden: true },
    el("section", { class: "panel" }, fields),
    el("div", { class: "blocks" },
      panel("Payload", payload),
      el("div", {}, panel("Last error", lastError), panel("Result", result), panel("Headers", headers))));
  const node = el("div", { class: "job-view", dataset: { job: id } },
    el("div", { class: "heading" }, crumb, el("h1", {}, `Job ${id}`), badge,
      el("div", { class: "buttons" }, replayButton)),
    error, details);
  let shown = "";

  function render(job) {
    const ref = refOf(job.tenant, job.queue);
    crumb.replaceChildren(el("a", { href: queueHash(ref) }, ref), " /");
    setText(badge, job.state);
    badge.className = `badge ${job.state}`;
    replayButton.hidden = job.state !== "dead";
    replayButton.onclick = () => replayDead(ref, 1, [job.id]);
    const field = (name, value, title) =>
      el("div", {}, el("dt", {}, name), el("dd", { title, dataset: { field: name } }, value));
    const at = (iso) => `${fmtTime(iso)} (${fmtRelative(iso)})`;
    fields.replaceChildren(...[
      field("queue", ref),
      field("state", job.state),
      field("priority", String(job.priority)),
      field("attempts", `${job.attempts} of ${job.max_attempts}`),
      field("enqueued", fmtTime(job.enqueued_at), job.enqueued_at),
      field("updated", fmtTime(job.updated_at), job.updated_at),
      job.run_at ? field("due", at(job.run_at), job.run_at) : null,
      job.lease_expires_at ? field("lease until", at(job.lease_expires_at), job.lease_expires_at) : null,
      job.finished_at ? field("finished", fmtTime(job.finished_at), job.finished_at) : null,
      field("group", job.group ?? "–"),
    ].filter(Boolean));
    setText(payload, json(job.payload));
    setText(lastError, job.last_error || "none");
    lastError.classList.toggle("error", Boolean(job.last_error));
    setText(result, job.result === null || job.result === undefined ? "none" : json(job.result));
    setText(headers, Object.keys(job.headers || {}).length ? json(job.headers) : "none");
  }

  async function refresh() {
    let job;
    try {
      job = await api("GET", `/v1/jobs/${encodeURIComponent(id)}`);
    } catch (failure) {
      details.hidden = true;
      error.show(failure.code === "job_not_found"
        ? new ApiFailure(404, failure.code, `no job ${id}: it never existed, or a purge or its retention deleted it`)
        : failure);
      return;
    }
    error.show(null);
    details.hidden = false;
    // Drawn again only when the job changed, so reading or selecting its payload is left alone.
    const text = JSON.stringify(job);
    if (text !== shown) {
      shown = text;
      render(job);
    }
  }

  return { node, refresh };
}
