"""Drives the wharf dashboard in headless Chromium, as a person would, for tests/ui.rs.

    python3 driver.py SPEC_JSON

SPEC_JSON holds the broker's URL, two API keys (an operator's and a tenant's), the ids of the
jobs tests/ui.rs made, and the folder for screenshots. The driver loads the page, checks what it
shows, clicks pause (and cancels one), pages through a queue, searches jobs by id, replays the
dead jobs and switches keys. It prints a JSON report on success; on failure it saves
failure.png, prints why on stderr and exits 1. Every wait is a WebDriverWait on the page's state,
never a fixed sleep. The browser is quit whatever happens, and the whole run is bounded.
"""

import base64
import json
import signal
import sys
import tempfile
import traceback
import urllib.request
from datetime import datetime
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

RUN_LIMIT_S = 150  # the whole run; tests/ui.rs kills the process a little later
WAIT_S = 20  # one wait for the page


class Page:
    """The browser, with waits and reads by CSS selector."""

    def __init__(self, driver, base):
        self.driver = driver
        self.base = base

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css):
        """The element's text as in the DOM (not as CSS capitalises it)."""
        return self.find(css).get_attribute("textContent").strip()

    def wait(self, what, condition, timeout=WAIT_S):
        """Waits until condition() is truthy; elements missing or replaced meanwhile are retried."""
        try:
            return WebDriverWait(
                self.driver,
                timeout,
                poll_frequency=0.1,
                ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
            ).until(lambda _: condition())
        except TimeoutException:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None

    def wait_text(self, css, expected):
        self.wait(f"{css} to read {expected!r}", lambda: self.text(css) == expected)

    def wait_contains(self, css, expected):
        self.wait(f"{css} to contain {expected!r}", lambda: expected in self.text(css))

    def click(self, css):
        self.wait(f"{css} to be clickable", lambda: self.find(css).is_displayed() and self.find(css).is_enabled())
        self.find(css).click()

    def confirm(self, title_part, accept=True):
        """Answers the page's confirmation dialog."""
        self.wait("the confirmation dialog", lambda: self.find("#confirm").get_attribute("open") is not None)
        title = self.text("#confirm-title")
        assert title_part in title, f"the dialog asks {title!r}, not about {title_part!r}"
        self.click("#confirm-ok" if accept else "#confirm-cancel")
        self.wait("the dialog to close", lambda: self.find("#confirm").get_attribute("open") is None)

    def go(self, fragment):
        self.driver.execute_script("location.hash = arguments[0]", fragment)

    def type_into(self, css, text, submit=True):
        field = self.find(css)
        field.clear()
        field.send_keys(text + (Keys.ENTER if submit else ""))

    def shot(self, folder, name, whole=False):
        """Saves a screenshot of the window, or of the whole page (through the DevTools protocol)."""
        path = Path(folder) / name
        if whole:
            size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {"captureBeyondViewport": True, "clip": clip})
            path.write_bytes(base64.b64decode(shot["data"]))
        else:
            self.driver.save_screenshot(str(path))
        return str(path)


def local_time(iso):
    """An API time as the page shows it: YYYY-MM-DD HH:MM:SS in the machine's zone."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def api(spec, method, path, body=None, key=None):
    """A request to the broker beside the browser (to make load the page should see)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(spec["base"] + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key or spec['operator_key']}")
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


def queue_cell(queue, column):
    return f'#queues tr[data-queue="{queue}"] td[data-{column}]'


def overview_as_operator(page, spec, report):
    # No key yet: the page says what is wrong and what to do.
    page.driver.get(spec["base"] + "/ui/")
    page.wait("the 401 notice", lambda: page.find("#notice").is_displayed())
    page.wait_contains("#notice", "401 unauthorized")
    page.wait_contains("#queues-panel .panel-error", "401 unauthorized")
    assert page.text("#key-state") == "no key"

    page.type_into("#key", spec["operator_key"])
    page.wait("the notice to go", lambda: not page.find("#notice").is_displayed())
    page.wait_text("#key-state", f"key {spec['operator_key_id']}")
    stored = page.driver.execute_script("return [sessionStorage.getItem('wharf.key'), localStorage.length]")
    assert stored == [spec["operator_key"], 0], f"the key is kept in sessionStorage only: {stored}"

    # Counts per state, as enqueued by tests/ui.rs; an operator sees acme's queue as acme:billing.
    for queue, counts in spec["counts"].items():
        for state, n in counts.items():
            page.wait_text(queue_cell(queue, f'count="{state}"'), str(n))
    page.wait_text('#queues tr[data-queue="emails"] .badge', "active")

    # Schedules with their next fire times; mirrors with their lag.
    for name, iso in spec["next_fire"].items():
        cell = f'#schedules tr[data-schedule="{name}"] td[data-field="next"]'
        page.wait_contains(cell, local_time(iso))
        assert "in " in page.text(cell), page.text(cell)
    page.wait_contains('#mirrors tr[data-mirror="broken"] .badge', "down")
    lag = page.text('#mirrors tr[data-mirror="broken"] td[data-field="lag"]')
    assert int(lag.split(" ")[0].replace(",", "")) > 0, f"a mirror that is down lags: {lag!r}"

    # Live: jobs enqueued and acked now show up in the counts, the rates and the event tail.
    made = api(spec, "POST", "/v1/queues/reports/jobs", {"jobs": [{"payload": {"report": "hourly", "n": n}} for n in range(8)]})
    new_ids = [job["id"] for job in made["jobs"]]
    polled = api(spec, "POST", "/v1/queues/reports/poll", {"max": 4})["jobs"]
    for job in polled:
        api(spec, "POST", f"/v1/jobs/{job['id']}/ack", {"lease": job["lease"], "result": {"rows": 42}})
    page.wait_text(queue_cell("reports", 'count="ready"'), "4")
    page.wait_text(queue_cell("reports", 'count="succeeded"'), "4")
    for rate in ("enqueued", "acked"):
        cell = queue_cell("reports", f'rate="{rate}"')
        page.wait(f"a {rate} rate above 0", lambda cell=cell: page.text(cell) not in ("…", "0", "–"))
    for job_id in new_ids:
        page.wait(f"job {job_id} in the event tail", lambda job_id=job_id: any(
            f"job {job_id}" in li.get_attribute("textContent") for li in page.all('#tail li[data-type="job.enqueued"]')))
    page.wait("the acks in the event tail", lambda: len(page.all('#tail li[data-type="job.succeeded"]')) >= 4)
    report["tail_rows"] = len(page.all("#tail li"))
    report["screenshots"].append(page.shot(spec["screenshots"], "overview.png", whole=True))

    # Pause, confirmed: the queue reads paused. A cancelled pause changes nothing.
    page.click('#queues tr[data-queue="reports"] button[data-action="pause"]')
    page.confirm("Pause reports?", accept=False)
    page.click('#queues tr[data-queue="emails"] button[data-action="pause"]')
    page.confirm("Pause emails?")
    page.wait_text('#queues tr[data-queue="emails"] .badge', "paused")
    page.wait_contains("#toast", "Paused emails")
    assert page.text('#queues tr[data-queue="reports"] .badge') == "active"


def queue_and_jobs(page, spec, report):
    page.click('#queues tr[data-queue="emails"] a')
    page.wait("the queue view", lambda: page.find('.queue-view[data-queue="emails"]').is_displayed())
    page.wait_text(".queue-view .heading .badge", "paused")
    page.wait_text('.queue-view .value[data-count="dead"]', str(len(spec["dead"])))

    # Paging through the ready jobs, 25 at a time.
    ready = spec["ready"]
    page.wait_text("#page-where", f"1–25 of {len(ready)}")
    first_page = [row.get_attribute("data-job") for row in page.all("#jobs tbody tr")]
    assert first_page == ready[:25], first_page
    page.click("#next-page")
    page.wait_text("#page-where", f"26–{len(ready)} of {len(ready)}")
    page.wait("the second page", lambda: [r.get_attribute("data-job") for r in page.all("#jobs tbody tr")] == ready[25:])

    # Search by id: a payload that is markup stays text, and a 64-bit number stays exact.
    page.type_into("#queue-find", spec["markup_job"])
    page.wait_contains("#job-payload", '<img src=x onerror=\\"window.__xss=1\\">')
    page.wait_contains("#job-payload", "12345678901234567890")
    assert page.driver.execute_script("return window.__xss") is None, "the payload ran as markup"
    assert not page.all("#view img"), "the payload became an element"

    # The acked job: its result. The header's search field finds it.
    page.type_into("#find-id", spec["acked"])
    page.wait_text("#job-state", "succeeded")
    page.wait_contains("#job-result", '"message_id": "<m-1@example.com>"')

    # A dead job: attempts, the error (markup again, as text), and the replay button.
    page.go(f"#/jobs/{spec['dead'][0]}")
    page.wait_text("#job-state", "dead")
    page.wait_text("#job-error", "SMTP 550 <b>mailbox unavailable</b>")
    page.wait_text('#job-fields dd[data-field="attempts"]', "1 of 5")
    assert page.find("#replay-job").is_displayed()
    report["screenshots"].append(page.shot(spec["screenshots"], "job.png"))

    # The dead list, then replay every dead job, confirmed.
    page.go("#/queues/emails/dead")
    page.wait("the dead jobs", lambda: [r.get_attribute("data-job") for r in page.all("#jobs tbody tr")] == spec["dead"])
    errors = {cell.get_attribute("textContent") for cell in page.all("#jobs tbody td.err-text")}
    assert errors == {"SMTP 550 <b>mailbox unavailable</b>"}, errors
    report["screenshots"].append(page.shot(spec["screenshots"], "dead.png"))
    page.click("#replay-dead")
    page.confirm(f"every dead job ({len(spec['dead'])}) of emails")
    page.wait_contains("#toast", f"Replayed {len(spec['dead'])} dead jobs of emails")
    page.wait("the dead list to empty", lambda: not page.all("#jobs tbody tr") and page.find(".queue-view .empty").is_displayed())
    page.wait_text('.queue-view .value[data-count="dead"]', "0")


def as_tenant(page, spec, report):
    # Forget the operator's key: the page asks for one again.
    page.go("#/")
    page.click("#key-forget")
    page.wait_text("#key-state", "no key")
    page.wait("the 401 notice", lambda: page.find("#notice").is_displayed())
    assert page.driver.execute_script("return sessionStorage.getItem('wharf.key')") is None

    # A tenant's key sees its own queues under plain names, and is refused what it may not read.
    page.type_into("#key", spec["tenant_key"])
    page.wait_text(queue_cell("billing", 'count="ready"'), "2")
    assert not page.all('#queues tr[data-queue="emails"]'), "a tenant's key sees another tenant's queue"
    page.wait("the schedule under its plain name", lambda: page.find('#schedules tr[data-schedule="invoices"]').is_displayed())
    page.wait_contains("#mirrors-panel .panel-error", "403 forbidden")
    assert "mirrors:read" in page.text("#mirrors-panel .panel-error")
    page.click('#queues tr[data-queue="billing"] button[data-action="pause"]')
    page.confirm("Pause billing?")
    page.wait_text('#queues tr[data-queue="billing"] .badge', "paused")
    report["screenshots"].append(page.shot(spec["screenshots"], "tenant.png"))


def severe_console_errors(driver):
    """Console errors other than the refused requests the test provokes on purpose (401, 403)."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and "Failed to load resource" not in entry["message"]
    ]


def main():
    spec = json.loads(sys.argv[1])
    Path(spec["screenshots"]).mkdir(parents=True, exist_ok=True)

    def out_of_time(*_):
        raise TimeoutError(f"the browser run took more than {RUN_LIMIT_S} s")

    signal.signal(signal.SIGALRM, out_of_time)
    signal.alarm(RUN_LIMIT_S)

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    # Without the background-networking flags Chromium reaches for Google's services, which this
    # closed network refuses; --no-sandbox because CI runs as root.
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1440,1000",
                 f"--user-data-dir={tempfile.mkdtemp(prefix='wharf-ui-')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    report = {"screenshots": []}
    try:
        driver.set_page_load_timeout(30)
        page = Page(driver, spec["base"])
        overview_as_operator(page, spec, report)
        queue_and_jobs(page, spec, report)
        as_tenant(page, spec, report)
        errors = severe_console_errors(driver)
        assert not errors, f"the page logged errors: {errors}"
    except BaseException as failure:
        try:
            path = Page(driver, spec["base"]).shot(spec["screenshots"], "failure.png")
            print(f"screenshot of the failure: {path}", file=sys.stderr)
            print(f"console: {driver.get_log('browser')}", file=sys.stderr)
        except Exception:  # the browser may be gone: the failure itself is what matters
            pass
        traceback.print_exc()
        raise SystemExit(1) from failure
    finally:
        driver.quit()
        signal.alarm(0)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
