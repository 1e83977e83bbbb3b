"""Hooks for scripts/schemathesis.sh.

The run's own key is never revoked: schemathesis learns key ids from `GET /v1/keys` and tries
them on `DELETE /v1/keys/{id}`, and every request after the revocation of the key it sends would
be a 401. That delete goes to a key id no key has instead (a 404).

A long poll on a queue with nothing ready waits up to `wait_ms` (the API allows 30000), and so
does a read of the change log with nothing new: a few such requests would spend the whole time
budget of the run. Waits up to the API's limit are cut to LONG_POLL_MS before each request is
sent; values the API refuses (above the limit, negative, not a number) are sent as generated.
"""

import os

import schemathesis

OWN_KEY_ID = os.environ.get("WHARF_KEY_ID")
NO_KEY_ID = "0" * 16

LONG_POLL_MS = 50
MAX_WAIT_MS = 30_000
LONG_POLLS = {("POST", "/v1/queues/{queue}/poll"): "body", ("GET", "/v1/events"): "query"}


@schemathesis.hook
def before_call(context, case, kwargs):
    operation = (case.operation.method.upper(), case.operation.path)
    if operation == ("DELETE", "/v1/keys/{id}") and isinstance(case.path_parameters, dict):
        if OWN_KEY_ID and case.path_parameters.get("id") == OWN_KEY_ID:
            case.path_parameters["id"] = NO_KEY_ID
    where = LONG_POLLS.get(operation)
    fields = getattr(case, where) if where else None
    if isinstance(fields, dict) and "wait_ms" in fields:
        wait = fields["wait_ms"]
        if isinstance(wait, str) and wait.isdigit():
            wait = int(wait)
        if isinstance(wait, int) and not isinstance(wait, bool) and LONG_POLL_MS < wait <= MAX_WAIT_MS:
            fields["wait_ms"] = LONG_POLL_MS
