#!/usr/bin/env python3
"""The checkout widget and the self-service page in real headless Chromium, against a live `consentd dev`.

Run by scripts/browser-check (which starts the server); each step fails loudly, nothing is skipped:
  1. /widget.js is under 10 kB;
  2. the demo checkout's notice covers two categories (order updates: utility; offers: marketing); the widget
     renders the notice exactly as stored with one unticked box per category, labelled as the session describes;
     ticking only the utility box and saving records that category alone (a check says consent_granted for
     shipping_update and no_consent for marketing), with the page, user agent and address as provenance;
  3. one `accepted` for the two-category notice is refused (422 categories_required) and uses nothing up; saving
     with no box ticked then records nothing (a check says no_consent for both);
  4. the used token is refused (410) when posted again;
  5. a page on an origin the tenant has not allowed cannot use a session; once allowed, it can;
  6. the self-service link lists the consent and withdraws it in one click (a check says consent_withdrawn,
     the audit log says source self_service);
  7. no page broke its Content-Security-Policy.
"""
import argparse
import http.server
import json
import os
import shutil
import sys
import threading
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

NOTICE_TEXT = ("We can message you on WhatsApp about this order (shipping and delivery) and, if you wish, with our "
               "offers. Tick what you agree to. You can withdraw at any time by replying STOP.")
# The demo notice's categories in the notice's order, each with the label its box must show.
CATEGORIES = [("utility", "Shipping updates"), ("marketing", "Marketing")]
NOTICE_PURPOSES = ["shipping_update", "marketing"]


def api(base, method, path, key=None, body=None, expect=None, origin=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if origin:
        request.add_header("Origin", origin)
    if key:
        request.add_header("Authorization", "Bearer " + key)
    try:
        with urllib.request.urlopen(request) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, payload = error.code, error.read()
    if expect is not None and status != expect:
        raise AssertionError(f"{method} {path}: expected {expect}, got {status}: {payload[:300]!r}")
    return status, (json.loads(payload) if payload and payload[:1] in (b"{", b"[") else payload)


def check(base, key, subject, purpose="shipping_update"):
    _, answer = api(base, "POST", "/v1/checks", key,
                    {"subject": subject, "channel": "whatsapp", "purpose": purpose}, expect=200)
    return answer


def browser():
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=420,900"):
        options.add_argument(argument)
    binary = os.environ.get("CHROME_BINARY") or shutil.which("chromium") or shutil.which("chromium-browser") \
        or shutil.which("google-chrome")
    driver_path = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
    if not binary or not driver_path:
        raise SystemExit("browser-check: Chromium or chromedriver is missing (apt-get install chromium chromium-driver)")
    options.binary_location = binary
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver_path), options=options)


def csp_violations(driver):
    return [entry["message"] for entry in driver.get_log("browser")
            if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]]


def checkout(driver, base, phone):
    """Opens the demo checkout for `phone` and waits for the widget; returns ({category: box}, save, token)."""
    driver.get(base + "/demo/checkout")
    field = driver.find_element(By.ID, "phone")
    field.send_keys(phone)
    driver.find_element(By.ID, "continue").click()
    wait = WebDriverWait(driver, 15)
    wait.until(lambda d: d.find_element(By.ID, "outcome").get_attribute("data-outcome") == "ready")
    notice = driver.find_element(By.CSS_SELECTOR, "#consent .consentledger-notice")
    assert notice.text == NOTICE_TEXT, f"the widget showed {notice.text!r}, not the stored notice"
    boxes = driver.find_elements(By.CSS_SELECTOR, "#consent input[type=checkbox]")
    shown = [(box.get_attribute("data-category"),
              driver.find_element(By.CSS_SELECTOR, f"#consent label[for='{box.get_attribute('id')}']").text)
             for box in boxes]
    assert shown == CATEGORIES, f"the widget showed the boxes {shown}, not one per category: {CATEGORIES}"
    assert not any(box.is_selected() for box in boxes), "every box must start unticked: a pre-ticked box is not consent"
    save = driver.find_element(By.CSS_SELECTOR, "#consent button")
    token = driver.find_element(By.CSS_SELECTOR, "script[data-token]").get_attribute("data-token")
    return {box.get_attribute("data-category"): box for box in boxes}, save, token


def outcome(driver):
    WebDriverWait(driver, 15).until(
        lambda d: d.find_element(By.ID, "outcome").get_attribute("data-outcome") not in ("ready", "pending"))
    return driver.find_element(By.ID, "outcome").get_attribute("data-outcome")


class OtherSite:
    """A site on another origin (another port of 127.0.0.1) serving the pages it is given: path -> (type, body).
    Pages may be replaced while it runs; `origin` is what its pages send as `Origin`."""

    def __init__(self):
        self.pages = {}
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                kind, body = site.pages.get(self.path, ("text/plain", "not found"))
                data = body.encode()
                self.send_response(200 if self.path in site.pages else 404)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


SHOP_EVENTS = ('document.addEventListener("consentledger:ready",function(){document.body.setAttribute("data-state","ready")});'
               'document.addEventListener("consentledger:error",function(e){document.body.setAttribute("data-state","error:"+e.detail.code)});')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--admin", required=True)
    parser.add_argument("--write", required=True)
    parser.add_argument("--check", required=True)
    parser.add_argument("--dpo", required=True)
    args = parser.parse_args()
    base = args.url

    _, script = api(base, "GET", "/widget.js", expect=200)
    assert len(script) < 10 * 1024, f"widget.js is {len(script)} bytes"
    print(f"browser-check: widget.js is {len(script)} bytes")

    driver = browser()
    try:
        print(f"browser-check: {driver.capabilities.get('browserName')} {driver.capabilities.get('browserVersion')}")
        accepted, declined = "+393331002001", "+393331002002"

        boxes, save, token = checkout(driver, base, "+39 333 100 2001")
        boxes["utility"].click()
        assert boxes["utility"].is_selected() and not boxes["marketing"].is_selected()
        save.click()
        assert outcome(driver) == "accepted", driver.find_element(By.ID, "outcome").text
        answer = check(base, args.check, accepted)
        assert answer["allowed"] is True and answer["reason"] == "consent_granted", answer
        answer = check(base, args.check, accepted, purpose="marketing")
        assert answer["allowed"] is False and answer["reason"] == "no_consent", \
            f"the order-updates box granted marketing: {answer}"
        print("browser-check: ticked only the utility box and saved -> shipping_update consent_granted, "
              "marketing no_consent")
        assert not csp_violations(driver), csp_violations(driver)

        _, bundle = api(base, "POST", "/v1/subjects/export", args.dpo,
                        {"subject": accepted, "channel": "whatsapp"}, expect=200)
        provenance = bundle["consents"][0]["provenance"]
        assert provenance["pageUrl"].endswith("/demo/checkout"), provenance
        assert "Chrome" in provenance.get("userAgent", ""), provenance
        assert provenance.get("ipAddress") == "127.0.0.1", provenance
        assert provenance.get("origin") == base, provenance
        print("browser-check: provenance holds the page, the browser's user agent and its address")

        status, _ = api(base, "POST", f"/v1/consent-sessions/{token}/decision", body={"accepted": True}, origin=base)
        assert status == 410, f"a used token answered {status}"
        status, _ = api(base, "GET", f"/v1/consent-sessions/{token}")
        assert status == 410, f"a used token's session answered {status}"
        print("browser-check: the used token is refused with 410")

        _, save, token = checkout(driver, base, "+39 333 100 2002")
        status, refused = api(base, "POST", f"/v1/consent-sessions/{token}/decision", body={"accepted": True},
                              origin=base)
        assert status == 422 and refused["error"]["code"] == "categories_required", (status, refused)
        print("browser-check: one 'accepted' for the two-category notice is refused with 422 categories_required")
        save.click()
        assert outcome(driver) == "declined"
        for purpose in NOTICE_PURPOSES:
            answer = check(base, args.check, declined, purpose=purpose)
            assert answer["allowed"] is False and answer["reason"] == "no_consent", answer
        print("browser-check: saved with no box ticked -> nothing recorded (no_consent)")

        # Another origin: refused until the tenant allows it.
        shop = OtherSite()
        foreign = shop.origin
        _, notices = api(base, "GET", "/v1/notices", args.admin, expect=200)
        notice = next(n for n in notices["notices"]
                      if n["text"] == NOTICE_TEXT and n["purposes"] == NOTICE_PURPOSES)
        for allowed in (False, True):
            if allowed:
                api(base, "PUT", "/v1/settings/origins", args.admin, {"origins": [foreign]}, expect=200)
            _, opened = api(base, "POST", "/v1/consent-sessions", args.write,
                            {"subject": "+393331002003", "channel": "whatsapp", "noticeId": notice["id"],
                             "pageUrl": foreign + "/checkout"}, expect=201)
            shop.pages = {
                "/events.js": ("text/javascript", SHOP_EVENTS),
                "/": ("text/html", f'<!doctype html><html><body data-state="loading"><div id="c"></div>'
                                   f'<script src="/events.js"></script><script src="{base}/widget.js" '
                                   f'data-token="{opened["token"]}" data-target="c"></script></body></html>'),
            }
            driver.get(foreign + "/")
            WebDriverWait(driver, 15).until(
                lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") != "loading")
            state = driver.find_element(By.TAG_NAME, "body").get_attribute("data-state")
            expected = "ready" if allowed else "error:network_error"
            assert state == expected, f"from {foreign} (allowed={allowed}): {state}"
        shop.close()
        print(f"browser-check: {foreign} is refused until PUT /v1/settings/origins allows it")

        _, link = api(base, "POST", "/v1/subjects/links", args.write,
                      {"subject": accepted, "channel": "whatsapp"}, expect=201)
        assert accepted not in link["url"] and "393331002001" not in link["url"], "the link must not carry the number"
        driver.get(link["url"])
        item = driver.find_element(By.CSS_SELECTOR, "li[data-purpose=shipping_update]")
        item.find_element(By.TAG_NAME, "button").click()
        WebDriverWait(driver, 15).until(lambda d: "withdrawn=1" in d.current_url)
        driver.find_element(By.ID, "no-consents")
        answer = check(base, args.check, accepted)
        assert answer["allowed"] is False and answer["reason"] == "consent_withdrawn", answer
        _, events = api(base, "GET", "/v1/audit/events?limit=1000", args.dpo, expect=200)
        sources = [e["data"].get("source") for e in events["events"] if e["action"] == "consent.withdrawn"]
        assert "self_service" in sources, sources
        assert not csp_violations(driver), csp_violations(driver)
        print("browser-check: the self-service page withdrew the purpose in one click (source self_service)")
    finally:
        driver.quit()
    print("browser-check: all passed")


if __name__ == "__main__":
    main()
