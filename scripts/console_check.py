#!/usr/bin/env python3
"""The DPO console in real headless Chromium (over WebDriver), against a live `consentd dev`.

Run by scripts/browser-check after the widget checks. It fails loudly at the first broken step:
  1. an unauthenticated visit is redirected to sign-in; a wrong key is refused;
  2. signing in with the dpo key shows the overview (chart and its table);
  3. a subject made by this test is looked up by a POST form (the URL never holds the number), its page shows the
     notice text; the export downloads and holds the subject;
  4. erasure needs the random code shown on the page: another code erases nothing (and the page shows a new one),
     the code shown erases (the API's export is then 404);
  5. a pending erasure request is completed from the requests queue;
  6. the log verifies from the audit page and a CSV report downloads;
  7. a form posted from another site (with the session cookie in the browser) is refused and changes nothing;
  8. a change webhook that failed once shows both attempts on the Webhooks page, and is sent again from there;
  9. at 1280 px and 390 px no page scrolls sideways; every visible form field has a label; screenshots of the
     overview and the subject page at both widths go to $SCREENSHOT_DIR.
"""
import argparse
import glob
import json
from datetime import datetime, timezone
import os
import tempfile
import urllib.request
import time

from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait as SeleniumWait

import browser_check as shared


class page_wait:
    """A wait that reads the page again when a form's redirect replaced it under the condition. Selenium calls such
    an element stale; Chrome 156 can instead answer "Node with given id does not belong to the document" as a plain
    WebDriverException (seen once in CI on the audit page's verify form), which is the same case."""

    def __init__(self, driver, timeout):
        self.wait = SeleniumWait(
            driver, timeout, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))

    def until(self, condition):
        def read_again_if_replaced(driver):
            try:
                return condition(driver)
            except WebDriverException as error:
                if "does not belong to the document" in (error.msg or ""):
                    return False
                raise

        return self.wait.until(read_again_if_replaced)


SUBJECT = "+393338000001"
KEEP = "+393338000002"
REQUESTED = "+393338000003"


def no_sideways_scroll(driver, where):
    width = driver.execute_script("return document.documentElement.scrollWidth")
    inner = driver.execute_script("return window.innerWidth")
    assert width <= inner, f"{where}: the page is {width}px wide in a {inner}px window"


def unlabelled_fields(driver):
    return driver.execute_script("""
        return Array.from(document.querySelectorAll('input, select, textarea'))
          .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
          .map(e => e.name || e.id);""")


def at_widths(driver, where, shots, name):
    for width in (1280, 390):
        driver.set_window_size(width, 900)
        time.sleep(0.2)
        no_sideways_scroll(driver, f"{where} at {width}px")
        if shots:
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.set_window_size(width, min(max(height, 900), 4000))
            time.sleep(0.2)
            driver.save_screenshot(os.path.join(shots, f"{name}-{width}.png"))
    driver.set_window_size(1280, 900)


def wait_for_file(directory, pattern, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        done = [f for f in glob.glob(os.path.join(directory, pattern)) if not f.endswith(".crdownload")]
        if done:
            return done[0]
        time.sleep(0.2)
    raise AssertionError(f"no download matching {pattern} in {directory}: {os.listdir(directory)}")


def lookup(driver, base, subject):
    driver.get(base + "/console/subject")
    field = driver.find_element(By.ID, "subject")
    field.clear()
    field.send_keys(subject)
    driver.find_element(By.CSS_SELECTOR, "#lookup button").click()
    page_wait(driver, 15).until(lambda d: d.find_elements(By.ID, "who-h") or d.find_elements(By.CSS_SELECTOR, ".problem"))


class WebhookReceiver:
    """A loopback receiver that answers its first request 500 and the rest 200, counting what it accepted."""

    def __init__(self):
        import http.server
        import threading
        outer = self
        self.seen = 0
        self.accepted = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.seen += 1
                status = 500 if outer.seen == 1 else 200
                if status == 200:
                    outer.accepted += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *arguments):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()


def main():
    parser = argparse.ArgumentParser()
    for name in ("url", "admin", "write", "dpo"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--screenshots", default=os.environ.get("SCREENSHOT_DIR", ""))
    args = parser.parse_args()
    base = args.url
    shots = args.screenshots
    if shots:
        os.makedirs(shots, exist_ok=True)
    downloads = tempfile.mkdtemp(prefix="console-downloads-")

    _, notice = shared.api(base, "POST", "/v1/notices", args.admin, {
        "channel": "whatsapp", "language": "en", "purposes": ["shipping_update", "marketing"],
        "text": "Send me shipping updates and offers on WhatsApp."}, expect=201)
    provenance = {"pageUrl": "https://shop.example/checkout", "collectedAt": "2026-11-20T10:00:00Z", "method": "checkbox",
                  "userAgent": "Mozilla/5.0 (console check)", "ipAddress": "203.0.113.5"}
    for subject in (SUBJECT, KEEP, REQUESTED):
        shared.api(base, "POST", "/v1/consents", args.write, {
            "subject": subject, "channel": "whatsapp", "purposes": ["shipping_update", "marketing"],
            "noticeId": notice["id"], "provenance": provenance}, expect=201)
    shared.api(base, "POST", "/v1/revocations", args.write,
               {"subject": KEEP, "channel": "whatsapp", "purposes": ["marketing"]}, expect=200)
    _, request = shared.api(base, "POST", "/v1/requests", args.dpo,
                            {"type": "erasure", "subject": REQUESTED, "channel": "whatsapp"}, expect=201)

    driver = shared.browser()
    try:
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads})
        driver.get(base + "/console")
        assert driver.current_url.endswith("/console/sign-in"), driver.current_url
        print("console-check: an unauthenticated visit is redirected to sign-in")
        driver.find_element(By.ID, "key").send_keys(args.write)
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        page_wait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".problem"))
        assert driver.current_url.endswith("/console/sign-in"), "a key without the dpo scope must be refused"
        driver.find_element(By.ID, "key").send_keys(args.dpo)
        driver.find_element(By.CSS_SELECTOR, "form button").click()
        page_wait(driver, 15).until(lambda d: d.current_url.rstrip("/").endswith("/console"))
        assert driver.find_element(By.CSS_SELECTOR, "svg.chart") and driver.find_element(By.ID, "active-h")
        assert args.dpo not in driver.page_source, "the key must never appear in a page"
        assert not unlabelled_fields(driver), unlabelled_fields(driver)
        at_widths(driver, "overview", shots, "overview")
        print("console-check: signed in; the overview shows the chart and its table")

        lookup(driver, base, "+39 333 800 0001")
        assert "/console/subject" in driver.current_url and "333" not in driver.current_url
        assert "Send me shipping updates and offers on WhatsApp." in driver.page_source
        assert not unlabelled_fields(driver), unlabelled_fields(driver)
        at_widths(driver, "subject page", shots, "subject")
        driver.find_element(By.ID, "export").click()
        bundle = json.load(open(wait_for_file(downloads, "subject-*.json")))
        assert bundle["subject"] == SUBJECT and len(bundle["consents"]) == 2, bundle.keys()
        print("console-check: looked up by POST; the export downloaded and holds the subject")

        # Six characters, as the field requires, but not the code shown: the identifier's last four characters no
        # longer confirm anything, and a field of four is refused by the browser before it is sent.
        shown = driver.find_element(By.ID, "erase-code").text
        assert len(shown) == 6, shown
        wrong = ("B" if shown[0] == "A" else "A") + shown[1:]
        driver.find_element(By.ID, "confirm").send_keys(wrong)
        driver.find_element(By.CSS_SELECTOR, "#erase button").click()
        page_wait(driver, 15).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".problem"))
        shared.api(base, "POST", "/v1/subjects/export", args.dpo, {"subject": SUBJECT, "channel": "whatsapp"}, expect=200)
        code = driver.find_element(By.ID, "erase-code").text
        assert len(code) == 6 and code != shown, (shown, code)
        driver.find_element(By.ID, "confirm").send_keys(code)
        driver.find_element(By.CSS_SELECTOR, "#erase button").click()
        page_wait(driver, 15).until(lambda d: d.find_elements(By.ID, "erased"))
        shared.api(base, "POST", "/v1/subjects/export", args.dpo, {"subject": SUBJECT, "channel": "whatsapp"}, expect=404)
        print("console-check: a wrong code erased nothing; the new code shown erased (export now 404)")

        driver.get(base + "/console/requests")
        driver.find_element(By.CSS_SELECTOR, f'a[href="/console/requests/{request["id"]}"]').click()
        driver.find_element(By.ID, "complete").click()
        page_wait(driver, 15).until(lambda d: "done=completed" in d.current_url)
        assert driver.find_element(By.ID, "request-status").text.startswith("completed")
        _, after = shared.api(base, "GET", f"/v1/requests/{request['id']}", args.dpo, expect=200)
        assert after["status"] == "completed", after
        print("console-check: the erasure request was completed from the queue")

        driver.get(base + "/console/audit")
        driver.find_element(By.ID, "verify").click()
        page_wait(driver, 30).until(lambda d: "Verified" in d.find_element(By.ID, "verification").text)
        driver.find_element(By.CSS_SELECTOR, "#report button").click()
        report = open(wait_for_file(downloads, "audit-*.csv")).read()
        lines = report.splitlines()
        header = next(i for i, line in enumerate(lines) if line.startswith("seq,"))
        rows = [line for line in lines[header + 1:] if line and not line.startswith("#")]
        assert any("subject.erased" in row for row in rows), rows[-5:]
        print(f"console-check: the log verified; a CSV report of {len(rows)} events downloaded (with the erasure)")

        _, template = shared.api(base, "POST", "/v1/templates", args.admin, {
            "channel": "whatsapp", "name": "order_shipped", "language": "en_US", "category": "utility",
            "purpose": "shipping_update",
            "body": "Your order {{1}} has shipped. Use code SAVE10 for 10% off your next order!"}, expect=201)
        assert template["lint"]["findings"], template
        driver.get(base + "/console/templates")
        marks = driver.find_elements(By.CSS_SELECTOR, "section.template mark")
        assert marks and all(m.get_attribute("title") for m in marks), driver.page_source[:800]
        assert "order_shipped" in driver.page_source and "pending" in driver.page_source
        assert not unlabelled_fields(driver), unlabelled_fields(driver)
        at_widths(driver, "templates page", shots, "templates")
        print(f"console-check: the templates page marks {len(marks)} lint finding(s) in the body")

        # A list imported through the API shows on the Imports page with its counts, and its report by line.
        csv = ("subject,purposes,collectedAt,source\n+393339200001,marketing,2025-01-01T00:00:00Z,crm\n"
               "+39 333 not a number,marketing,2025-01-01T00:00:00Z,crm\n").encode()
        upload = urllib.request.Request(
            base + "/v1/imports?channel=whatsapp&noticeId=" + notice["id"], data=csv, method="POST",
            headers={"Authorization": "Bearer " + args.write, "Content-Type": "text/csv"})
        with urllib.request.urlopen(upload) as response:
            assert response.status == 202, response.status
            imported = json.loads(response.read())
        for _ in range(100):
            _, state = shared.api(base, "GET", "/v1/imports/" + imported["id"], args.write, expect=200)
            if state["status"] == "completed":
                break
            time.sleep(0.2)
        assert state["status"] == "completed" and state["counts"]["granted"] == 1, state
        driver.get(base + "/console/imports")
        row = driver.find_element(By.XPATH, f'//a[contains(@href, "{imported["id"]}")]/ancestor::tr')
        assert "completed" in row.text and "CSV" in row.text, row.text
        assert not unlabelled_fields(driver), unlabelled_fields(driver)
        at_widths(driver, "imports page", shots, "imports")
        print("console-check: an imported list shows on the Imports page with its counts and its report")

        # The same page sends a file itself: the browser's multipart form, the notice chosen from the list.
        upload_path = os.path.join(downloads, "list-from-console.csv")
        with open(upload_path, "w", encoding="utf-8") as handle:
            handle.write("subject,purposes,collectedAt,source\n+393339200002,marketing,2025-01-01T00:00:00Z,crm\n")
        driver.get(base + "/console/imports")
        form = driver.find_element(By.ID, "import-form")
        form.find_element(By.CSS_SELECTOR, f'#import-notice option[value="{notice["id"]}"]').click()
        form.find_element(By.ID, "import-file").send_keys(upload_path)
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        page_wait(driver, 30).until(lambda d: "row(s) received" in d.page_source or d.find_elements(By.CSS_SELECTOR, ".problem"))
        assert "1 row(s) received" in driver.page_source, driver.page_source[:1500]
        for _ in range(100):
            _, listed = shared.api(base, "GET", "/v1/imports", args.write, expect=200)
            newest = listed["imports"][0]
            if newest["status"] == "completed":
                break
            time.sleep(0.2)
        assert newest["status"] == "completed" and newest["counts"]["granted"] == 1, newest
        print("console-check: a file sent from the Imports page's form is imported")

        # A change webhook to a receiver on this machine (`consentd dev` allows loopback) that fails its first
        # request: the Webhooks page shows both attempts with their status codes, and the DPO sends it again.
        receiver = WebhookReceiver()
        try:
            _, endpoint = shared.api(base, "POST", "/v1/webhooks/endpoints", args.admin, {
                "url": receiver.url, "events": ["consent.granted"], "description": "CRM"}, expect=201)
            assert endpoint["secret"].startswith("whsec_"), endpoint
            shared.api(base, "POST", "/v1/consents", args.write, {
                "subject": "+393338000099", "channel": "whatsapp", "purposes": ["marketing"],
                "noticeId": notice["id"], "provenance": provenance}, expect=201)
            deliveries = []
            for _ in range(200):
                _, listed = shared.api(base, "GET", f"/v1/webhooks/endpoints/{endpoint['id']}/deliveries",
                                       args.admin, expect=200)
                deliveries = listed["deliveries"]
                if deliveries and deliveries[0]["state"] == "delivered":
                    break
                time.sleep(0.25)
            assert deliveries and deliveries[0]["state"] == "delivered", deliveries
            assert [a.get("statusCode") for a in deliveries[0]["attempts"]] == [500, 200], deliveries
            driver.get(base + "/console/webhooks")
            row = driver.find_element(By.CSS_SELECTOR, f'tr[data-delivery="{deliveries[0]["id"]}"]')
            assert "HTTP 500" in row.text and "HTTP 200" in row.text and "consent.granted" in row.text, row.text
            assert not unlabelled_fields(driver), unlabelled_fields(driver)
            at_widths(driver, "webhooks page", shots, "webhooks")
            row = driver.find_element(By.CSS_SELECTOR, f'tr[data-delivery="{deliveries[0]["id"]}"]')
            row.find_element(By.CSS_SELECTOR, "button").click()
            page_wait(driver, 15).until(lambda d: "queued again" in d.page_source)
            for _ in range(100):
                if receiver.accepted >= 2:
                    break
                time.sleep(0.1)
            assert receiver.accepted >= 2, receiver.accepted
            print("console-check: a webhook delivery shows its attempts on the Webhooks page and is sent again")
        finally:
            receiver.stop()

        # An opt-out in the person's own words: marketing goes at once, the DPO decides the rest on the review page.
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        _, said = shared.api(base, "POST", "/v1/interactions", args.write, {
            "subject": KEEP, "channel": "whatsapp", "direction": "inbound", "occurredAt": now,
            "text": "per favore non voglio più ricevere messaggi da voi"}, expect=201)
        assert said["optOut"] == "phrase" and said.get("optOutReviewId"), said
        driver.get(base + "/console/opt-outs")
        review = driver.find_element(By.CSS_SELECTOR, f'article.review[data-review="{said["optOutReviewId"]}"]')
        assert "non voglio più ricevere messaggi" in review.text, review.text
        assert not unlabelled_fields(driver), unlabelled_fields(driver)
        at_widths(driver, "opt-outs page", shots, "opt-outs")
        review.find_element(By.CSS_SELECTOR, 'input[value="withdraw_all"]').find_element(By.XPATH, "..").find_element(
            By.TAG_NAME, "button").click()
        page_wait(driver, 15).until(lambda d: d.find_elements(By.ID, "no-reviews"))
        _, kept = shared.api(base, "POST", "/v1/subjects/export", args.dpo, {"subject": KEEP, "channel": "whatsapp"},
                             expect=200)
        statuses = {c["purpose"]: c["status"] for c in kept["consents"]}
        assert statuses == {"shipping_update": "withdrawn", "marketing": "withdrawn"}, statuses
        print("console-check: an opt-out phrase opened a review; withdrawing everything emptied the queue")

        attacker = shared.OtherSite()
        attacker.pages = {
            "/go.js": ("text/javascript", 'document.getElementById("f").submit();'),
            "/": ("text/html", f'<!doctype html><html><body><form id="f" method="post" action="{base}/console/subject/erase">'
                               f'<input name="subject" value="{KEEP}"><input name="channel" value="whatsapp">'
                               f'<input name="confirm" value="0002"><input name="csrf" value="guessed"></form>'
                               f'<script src="/go.js"></script></body></html>'),
        }
        driver.get(attacker.origin + "/")
        page_wait(driver, 15).until(lambda d: d.current_url.startswith(base))
        assert driver.find_elements(By.ID, "refused"), driver.page_source[:500]
        attacker.close()
        shared.api(base, "POST", "/v1/subjects/export", args.dpo, {"subject": KEEP, "channel": "whatsapp"}, expect=200)
        print("console-check: a cross-site form post was refused and erased nothing")

        driver.get(base + "/console")
        driver.find_element(By.CSS_SELECTOR, ".signout button").click()
        page_wait(driver, 15).until(lambda d: d.current_url.endswith("/console/sign-in"))
        driver.get(base + "/console/audit")
        assert driver.current_url.endswith("/console/sign-in")
        print("console-check: signed out; the console asks for sign-in again")
    finally:
        driver.quit()
    if shots:
        print(f"console-check: screenshots in {shots}: {sorted(os.listdir(shots))}")
    print("console-check: all passed")


if __name__ == "__main__":
    main()
