#!/usr/bin/env python3
"""The measuring half of scripts/bench-import: writes the file, runs the ceiling, uploads it, samples checks while
the import runs, and prints the figures. Standard library only."""
import argparse
import http.client
import json
import os
import subprocess
import threading
import time
import urllib.parse


def call(base, key, method, path, body=None, content_type="application/json"):
    url = urllib.parse.urlparse(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    headers = {"Authorization": "Bearer " + key}
    if body is not None:
        headers["Content-Type"] = content_type
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def write_file(path, rows):
    """Distinct Italian mobile numbers; every tenth row two purposes, every fiftieth a number that is not one."""
    with open(path, "w") as out:
        out.write("subject,purposes,collectedAt,method,pageUrl,source\n")
        for n in range(rows):
            subject = "+39 33%08d" % n if n % 50 != 49 else "+39 33%08d-x" % n
            purposes = "marketing;shipping_update" if n % 10 == 0 else "marketing"
            out.write("%s,%s,2025-%02d-%02dT10:%02d:00Z,import,https://shop.example/list,crm\n"
                      % (subject, purposes, 1 + n % 12, 1 + n % 28, n % 60))


def peak_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class CheckSampler(threading.Thread):
    def __init__(self, base, key):
        super().__init__(daemon=True)
        self.base, self.key, self.latencies, self.failures = base, key, [], 0
        self.stop = threading.Event()

    def run(self):
        url = urllib.parse.urlparse(self.base)
        connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        body = json.dumps({"subject": "+393300000000", "channel": "whatsapp", "purpose": "marketing"})
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                connection.request("POST", "/v1/checks", body=body,
                                   headers={"Authorization": "Bearer " + self.key, "Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    self.failures += 1
            except (OSError, http.client.HTTPException):
                self.failures += 1
                connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            self.latencies.append(time.perf_counter() - started)
            time.sleep(0.02)


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def main():
    parser = argparse.ArgumentParser()
    for name in ("base", "work", "admin", "write", "check", "psql", "owner-url"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    args = parser.parse_args()

    status, data = call(args.base, args.admin, "POST", "/v1/notices", json.dumps({
        "channel": "whatsapp", "language": "en", "text": "Offers and order updates on WhatsApp.",
        "purposes": ["marketing", "shipping_update"]}))
    assert status == 201, data
    notice = json.loads(data)["id"]

    path = os.path.join(args.work, "import.csv")
    write_file(path, args.rows)
    size = os.path.getsize(path)
    print("bench-import: %d rows, %.1f MB" % (args.rows, size / 1e6))

    copy_sql = ("CREATE TEMP TABLE ceiling (subject text, purposes text, collected_at text, method text, "
                "page_url text, source text); \\copy ceiling FROM '%s' WITH (FORMAT csv, HEADER true)" % path)
    started = time.perf_counter()
    subprocess.run([args.psql, args.owner_url, "-q", "-v", "ON_ERROR_STOP=1"], input=copy_sql, text=True, check=True)
    ceiling = time.perf_counter() - started

    sampler = CheckSampler(args.base, args.check)
    sampler.start()
    started = time.perf_counter()
    with open(path, "rb") as body:
        status, data = call(args.base, args.write, "POST",
                            "/v1/imports?channel=whatsapp&noticeId=%s" % notice, body=body, content_type="text/csv")
    received = time.perf_counter() - started
    assert status == 202, data
    import_id = json.loads(data)["id"]
    while True:
        status, data = call(args.base, args.write, "GET", "/v1/imports/" + import_id)
        state = json.loads(data)
        if state["status"] == "completed":
            break
        time.sleep(0.5)
    elapsed = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    rss = peak_rss_kib(args.pid)  # `consentd dev` serves in its own process

    print("| figure | value |")
    print("| --- | --- |")
    print("| rows | %d (%.1f MB of CSV) |" % (args.rows, size / 1e6))
    print("| upload received and kept (202) | %.1f s |" % received)
    print("| import completed, from the upload's start | **%.1f s** (%d rows/s; target < 120 s for 1,000,000) |"
          % (elapsed, args.rows / elapsed))
    print("| ceiling: psql \\copy of the same file into a plain table, same run | %.1f s |" % ceiling)
    print("| ratio, ceiling / import | %.3f |" % (ceiling / elapsed))
    print("| outcomes | %s |" % json.dumps(state["counts"], sort_keys=True))
    print("| checks during the import, one at a time: n, p50, p99, max, failures | %d, %.1f ms, %.1f ms, %.1f ms, %d |"
          % (len(sampler.latencies), percentile(sampler.latencies, 0.5) * 1000,
             percentile(sampler.latencies, 0.99) * 1000, max(sampler.latencies or [0]) * 1000, sampler.failures))
    print("| consentd dev's peak resident memory (VmHWM) | %s |"
          % ("%.0f MB" % (rss / 1024) if rss else "unknown"))
    expected_invalid = args.rows // 50
    assert state["counts"]["invalid"] == expected_invalid, state
    assert state["counts"]["granted"] == args.rows - expected_invalid, state


if __name__ == "__main__":
    main()
