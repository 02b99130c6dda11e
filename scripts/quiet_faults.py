#!/usr/bin/env python3
"""The quiet faults (issue 21), measured from outside: a network that stops forwarding without closing anything,
and a lock held by someone else. Run by scripts/chaos after the crash run.

PostgreSQL listens on 127.0.0.1 behind a proxy of our own (scripts/lib/blackhole_proxy.py) that can stop forwarding
chosen connections, or all of them, without closing them, and resume. Instance A reaches the database through the
proxy; instance B directly, over the Unix socket. Three scenarios, each printing its counts and bounds:

1. listener black hole: only A's change-listener connection goes silent. Withdrawals and key revocations go through
   B; A must give 0 allows for withdrawn people and accept 0 revoked keys, over 200 withdraw-then-check pairs and 20
   revocations, and its caches must turn off within the freshness bound (printed).
2. everything black-holed for 60 s under a write and check load on A: every request ends within A's request
   deadline + 1 s (the maximum is printed), A serves again within seconds of the network's return, and every
   acknowledged write is present exactly once (the crash run's verification, reused).
3. a lock held for 60 s on `consents`: writes answer 503 within the deadline + 1 s, and other routes keep answering
   (the pool is not exhausted).
4. SIGTERM while every connection is black-holed and writes are in flight: A stops within its shutdown grace (the
   request deadline + 5 s, `ServiceStarter.shutdownGrace`) + 1 s.
Any miss exits 1 and keeps the work folder.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import chaos  # noqa: E402  (scripts/chaos.py: provisioning, the write workload, its verification)
from blackhole_proxy import BlackholeProxy  # noqa: E402

DEADLINE = 5  # CONSENTD_REQUEST_TIMEOUT_SECONDS for instance A
# The crash run's verification (reused for scenario 2) accounts for every SMS consent; the scenarios' own writes and
# probes use e-mail, so that they are not counted as writes nobody acknowledged.
PROBE_CHANNEL = "email"
SHUTDOWN_GRACE = DEADLINE + 5  # ServiceStarter.shutdownGrace
FRESHNESS_BOUND = 5.0  # ConsentChangeListener's default: caches stop answering this long after the last proof


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TimedClient(chaos.Client):
    """A chaos client that records the longest a request took to end, however it ended."""

    longest = 0.0
    lock = threading.Lock()

    def request(self, *arguments, **keywords):
        started = time.monotonic()
        try:
            return super().request(*arguments, **keywords)
        finally:
            took = time.monotonic() - started
            with TimedClient.lock:
                TimedClient.longest = max(TimedClient.longest, took)


class QuietFaults(chaos.Chaos):
    def __init__(self, arguments):
        super().__init__(arguments)
        self.port_b = free_port()
        self.metrics_a = free_port()
        self.servers = {}
        self.logs = {}
        self.proxy = None
        self.failures = []

    def log(self, message):
        print(f"quiet faults: {message}", flush=True)

    def check(self, condition, message):
        self.log(("ok: " if condition else "FAILED: ") + message)
        if not condition:
            self.failures.append(message)

    # Set-up -----------------------------------------------------------------------------------------------------

    def listen_on_tcp(self):
        """Restarts the dev cluster listening on 127.0.0.1 too (trusted, like its socket), and puts the proxy in
        front of that port."""
        self.cluster.stop("fast")
        self.pg_port = free_port()
        # First: pg_hba.conf is read top down, and the dev cluster's file rejects TCP further on.
        hba_path = os.path.join(self.cluster.data, "pg_hba.conf")
        with open(hba_path) as hba:
            rules = hba.read()
        with open(hba_path, "w") as hba:
            hba.write("host all all 127.0.0.1/32 trust\n" + rules)
        options = f"-c listen_addresses='127.0.0.1' -k {self.cluster.socket} -p {self.pg_port}"
        self.cluster.pg_ctl("start", "-D", self.cluster.data, "-l", self.cluster.log, "-w", "-t", "120", "-o", options)
        # The socket's name carries the port: every URL names the new one.
        parsed = urllib.parse.urlparse(self.owner_url)
        netloc = parsed.netloc.split(":")[0] + f":{self.pg_port}"
        self.owner_url = urllib.parse.urlunparse(parsed._replace(netloc=netloc))
        self.runtime_url = self.owner_url.replace("consentd_owner@", "consentd_app@", 1)
        self.proxy = BlackholeProxy("127.0.0.1", 0, "127.0.0.1", self.pg_port).start()
        database = parsed.path.lstrip("/")
        self.proxied_url = f"postgres://consentd_app@127.0.0.1:{self.proxy.port}/{database}?sslmode=disable"

    def start_instance(self, name, port, database_url, metrics_port):
        environment = dict(os.environ)
        with open(os.path.join(self.work, ".consentd", "master.key")) as master, \
                open(os.path.join(self.work, ".consentd", "signing.key")) as signing:
            environment.update({
                "DATABASE_URL": database_url,
                "CONSENTD_MASTER_KEY": master.read().strip(),
                "CONSENTD_SIGNING_KEY": signing.read().strip(),
                "CONSENTD_HOST": "127.0.0.1",
                "CONSENTD_PORT": str(port),
                "CONSENTD_METRICS_PORT": str(metrics_port),
                "CONSENTD_REQUEST_TIMEOUT_SECONDS": str(DEADLINE),
                "CONSENTD_RATE_LIMIT_CONSENT_WRITE": "1000000/10000000",
                "CONSENTD_RATE_LIMIT_CONSENT_CHECK": "1000000/10000000",
                "CONSENTD_RATE_LIMIT_ADMIN": "1000000/10000000",
            })
        log = open(os.path.join(self.work, f"serve-{name}.log"), "ab")
        self.logs[name] = log
        self.servers[name] = subprocess.Popen([self.binary, "serve"], cwd=self.work, env=environment,
                                              stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.servers[name].poll() is not None:
                raise chaos.ChaosFailure(f"instance {name} exited; see {log.name}")
            try:
                if self.call_on(port, "GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise chaos.ChaosFailure(f"instance {name} did not become ready in 60 s")

    def call_on(self, port, method, path, key=None, body=None, headers=None):
        client = chaos.Client(port)
        try:
            status, _, data = client.request(method, path, key, body, headers)
            return status, data
        finally:
            client.close()

    def opt_in(self, port, subject):
        status, data = self.call_on(port, "POST", "/v1/consents", self.keys["consent:write"], {
            "subject": subject, "channel": PROBE_CHANNEL, "purposes": ["marketing"], "noticeId": self.email_notice_id,
            "provenance": {"pageUrl": "https://shop.example/checkout", "collectedAt": "2026-11-20T10:00:00Z",
                           "method": "checkbox"}})
        if status != 201:
            raise chaos.ChaosFailure(f"an opt-in answered {status}: {data[:200]!r}")

    def allowed(self, port, subject, key=None):
        status, data = self.call_on(port, "POST", "/v1/checks", key or self.keys["consent:check"],
                                    {"subject": subject, "channel": PROBE_CHANNEL, "purpose": "marketing"})
        if status != 200:
            raise chaos.ChaosFailure(f"a check answered {status}: {data[:200]!r}")
        return json.loads(data)["allowed"]

    def cache_listening(self):
        try:
            status, data = self.call_on(self.metrics_a, "GET", "/metrics")
        except OSError:
            return None
        for line in data.decode().splitlines():
            if line.startswith("consentd_check_cache_listening "):
                return line.split()[1] == "1"
        return None

    def wait_for_cache(self, on, within):
        started = time.monotonic()
        while time.monotonic() - started < within:
            if self.cache_listening() == on:
                return time.monotonic() - started
            time.sleep(0.05)
        return None

    # 1. The listener's connection goes silent ------------------------------------------------------------------

    def listener_black_hole(self):
        a, b = self.port, self.port_b
        subjects = [f"quiet{n}@faults.example" for n in range(200)]
        for subject in subjects:
            self.opt_in(b, subject)
        # Keys are made by the operator's CLI (the API only lists and revokes them); the list gives their ids.
        tokens = {}
        for n in range(20):
            made = subprocess.run([self.binary, "keys", "create", "--tenant", "demo", "--scope", "consent:check",
                                   "--label", f"quiet {n}"], env=dict(os.environ, DATABASE_URL=self.owner_url),
                                  capture_output=True, text=True, check=True)
            tokens[f"quiet {n}"] = made.stdout.strip().splitlines()[-1]
        status, data = self.call_on(b, "GET", "/v1/keys", self.keys["admin"])
        if status != 200:
            raise chaos.ChaosFailure(f"listing keys answered {status}: {data[:200]!r}")
        listed = json.loads(data)
        listed = listed.get("keys", listed) if isinstance(listed, dict) else listed
        check_keys = [(entry["id"], tokens[entry["label"]]) for entry in listed if entry.get("label") in tokens]
        if len(check_keys) != len(tokens):
            raise chaos.ChaosFailure(f"{len(check_keys)} of the {len(tokens)} new keys listed")
        if self.wait_for_cache(True, 30) is None:
            raise chaos.ChaosFailure("instance A's cache never turned on")
        # Warm A: every subject and every key answered from its caches from now on.
        for subject in subjects:
            if not (self.allowed(a, subject) and self.allowed(a, subject)):
                raise chaos.ChaosFailure("an opted-in subject was refused before any fault")
        for _, key in check_keys:
            self.allowed(a, subjects[0], key)

        silenced = self.proxy.blackhole(lambda c: (c.application_name or "").endswith("-listener"))
        started = time.monotonic()
        self.check(silenced >= 1, f"A's listener connection found behind the proxy ({silenced} black-holed)")
        off_after = self.wait_for_cache(False, 30)
        self.check(off_after is not None and off_after <= FRESHNESS_BOUND + 1.5,
                   f"A's caches turned off {off_after if off_after is None else round(off_after, 2)} s after its "
                   f"listener went silent (bound {FRESHNESS_BOUND} s + the 1 s heartbeat)")
        stale_allows = 0
        for subject in subjects:
            status, data = self.call_on(b, "POST", "/v1/revocations", self.keys["consent:write"],
                                        {"subject": subject, "channel": PROBE_CHANNEL, "purposes": ["marketing"]})
            if status != 200:
                raise chaos.ChaosFailure(f"a withdrawal through B answered {status}: {data[:200]!r}")
            stale_allows += self.allowed(a, subject)
        accepted_revoked = 0
        for key_id, key in check_keys:
            status, data = self.call_on(b, "POST", f"/v1/keys/{key_id}/revoke", self.keys["admin"])
            if status not in (200, 204):
                raise chaos.ChaosFailure(f"revoking a key through B answered {status}: {data[:200]!r}")
            status, _ = self.call_on(a, "POST", "/v1/checks", key,
                                     {"subject": subjects[0], "channel": PROBE_CHANNEL, "purpose": "marketing"})
            accepted_revoked += status != 401
        silent_for = time.monotonic() - started
        self.check(stale_allows == 0, f"{stale_allows} stale allows on A over {len(subjects)} withdraw-then-check pairs")
        self.check(accepted_revoked == 0, f"{accepted_revoked} revoked keys accepted by A over {len(check_keys)} "
                                          f"revocations (listener silent for {silent_for:.0f} s)")
        self.proxy.resume()
        back_after = self.wait_for_cache(True, 30)
        self.check(back_after is not None, f"A's caches on again {back_after and round(back_after, 2)} s after the "
                                           "network's return")

    # 2. Every connection silent for 60 s under load -------------------------------------------------------------

    def everything_black_hole(self, seconds):
        record = chaos.Record()
        stop = threading.Event()
        chaos.Client = TimedClient  # the workload's requests are timed too
        workload = chaos.Workload(self.port, self.keys["consent:write"], self.notice_id, record, stop,
                                  self.arguments.seed)
        workers = [threading.Thread(target=workload.run_worker, args=(n,), daemon=True) for n in range(4)]
        checks = threading.Thread(target=self.check_load, args=(stop,), daemon=True)
        for thread in workers + [checks]:
            thread.start()
        time.sleep(3)
        TimedClient.longest = 0.0
        self.proxy.blackhole()
        self.log(f"every connection to PostgreSQL black-holed for {seconds} s under load")
        time.sleep(seconds)
        self.proxy.resume()
        returned = time.monotonic()
        serving_after = None
        while time.monotonic() - returned < 30:
            try:
                if self.call_on(self.port, "GET", "/readyz")[0] == 200:
                    self.opt_in(self.port, "probe@faults.example")
                    serving_after = time.monotonic() - returned
                    break
            except (OSError, chaos.ChaosFailure):
                pass
            time.sleep(0.1)
        longest_during = TimedClient.longest
        time.sleep(3)
        stop.set()
        for thread in workers + [checks]:
            thread.join(timeout=chaos.ACK_DEADLINE + 30)
        self.check(longest_during <= DEADLINE + 1.0,
                   f"the longest request during the black hole ended after {longest_during:.2f} s "
                   f"(deadline {DEADLINE} s + 1 s)")
        self.check(serving_after is not None and serving_after <= 10,
                   f"A served a write again {serving_after and round(serving_after, 2)} s after the network's return")
        if record.failures:
            raise chaos.ChaosFailure("; ".join(record.failures[:5]))
        self.log(f"{len(record.acknowledged)} writes acknowledged; retries by reason: {dict(record.retry_reasons)}")
        self.verify(record)

    def check_load(self, stop):
        client = TimedClient(self.port)
        while not stop.is_set():
            try:
                client.request("POST", "/v1/checks", self.keys["consent:check"],
                               {"subject": "+393400000001", "channel": "sms", "purpose": "marketing"})
            except OSError:
                pass
            time.sleep(0.02)
        client.close()

    # 3. A lock held for 60 s -------------------------------------------------------------------------------------

    def held_lock(self, seconds):
        holder = subprocess.Popen(
            [chaos.postgres_binary("psql"), self.owner_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
             f"BEGIN; LOCK TABLE consents IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({seconds}); COMMIT;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        time.sleep(1)
        self.log(f"consents locked for {seconds} s by another session")
        results, lock = [], threading.Lock()

        def write(n):
            started = time.monotonic()
            client = chaos.Client(self.port)
            try:
                status, _, _ = client.request("POST", "/v1/consents", self.keys["consent:write"], {
                    "subject": f"+39360000{n:04d}", "channel": "sms", "purposes": ["marketing"],
                    "noticeId": self.notice_id,
                    "provenance": {"pageUrl": "https://shop.example/checkout",
                                   "collectedAt": "2026-11-20T10:00:00Z", "method": "checkbox"}},
                    {"Idempotency-Key": f"locked-{n}"})
            except OSError:
                status = None
            finally:
                client.close()
            with lock:
                results.append((status, time.monotonic() - started))

        # More writes than the pool has connections (20): none may starve the routes that need no lock.
        writers = [threading.Thread(target=write, args=(n,)) for n in range(40)]
        for thread in writers:
            thread.start()
        time.sleep(0.5)
        other_route_times = []
        for _ in range(10):
            started = time.monotonic()
            status, _ = self.call_on(self.port, "GET", "/v1/purposes", self.keys["admin"])
            other_route_times.append((status, time.monotonic() - started))
        for thread in writers:
            thread.join(timeout=120)
        holder.wait(timeout=seconds + 30)
        statuses = sorted({status for status, _ in results}, key=str)
        longest = max(took for _, took in results)
        self.check(all(status == 503 for status, _ in results),
                   f"writes behind the lock answered {statuses} (503 expected)")
        self.check(longest <= DEADLINE + 1.0, f"the longest write behind the lock ended after {longest:.2f} s")
        slowest_other = max(took for _, took in other_route_times)
        self.check(all(status == 200 for status, _ in other_route_times) and slowest_other < 1.0,
                   f"GET /v1/purposes during the lock: {sorted({s for s, _ in other_route_times})}, slowest "
                   f"{slowest_other:.2f} s")

    # 4. SIGTERM while the database is silent ----------------------------------------------------------------------

    def sigterm_in_black_hole(self):
        stop = threading.Event()

        def write(worker):
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    self.call_on(self.port, "POST", "/v1/consents", self.keys["consent:write"], {
                        "subject": f"term{worker}-{n}@faults.example", "channel": PROBE_CHANNEL,
                        "purposes": ["marketing"], "noticeId": self.email_notice_id,
                        "provenance": {"pageUrl": "https://shop.example/checkout",
                                       "collectedAt": "2026-11-20T10:00:00Z", "method": "checkbox"}})
                except (OSError, chaos.ChaosFailure):
                    time.sleep(0.05)

        writers = [threading.Thread(target=write, args=(n,), daemon=True) for n in range(4)]
        for thread in writers:
            thread.start()
        time.sleep(1)
        self.proxy.blackhole()
        time.sleep(2)  # the writes in flight now wait on a network that answers nothing
        server = self.servers["a"]
        started = time.monotonic()
        server.send_signal(15)
        try:
            server.wait(timeout=SHUTDOWN_GRACE + 30)
            took = time.monotonic() - started
        except subprocess.TimeoutExpired:
            took = None
            server.kill()
        stop.set()
        self.proxy.resume()
        for thread in writers:
            thread.join(timeout=30)
        self.check(took is not None and took <= SHUTDOWN_GRACE + 1.0,
                   f"A stopped {took if took is None else round(took, 2)} s after SIGTERM with every connection "
                   f"black-holed (grace {SHUTDOWN_GRACE} s + 1 s)")

    # The run ----------------------------------------------------------------------------------------------------

    def run(self):
        self.provision()
        self.listen_on_tcp()
        self.start_instance("a", self.port, self.proxied_url, self.metrics_a)
        self.start_instance("b", self.port_b, self.runtime_url, free_port())
        status, data = self.call_on(self.port_b, "POST", "/v1/notices", self.keys["admin"], {
            "channel": PROBE_CHANNEL, "language": "en", "text": "E-mails with offers from Shop.",
            "purposes": ["marketing"]})
        if status != 201:
            raise chaos.ChaosFailure(f"creating the e-mail notice answered {status}: {data[:200]!r}")
        self.email_notice_id = json.loads(data)["id"]
        self.listener_black_hole()
        self.everything_black_hole(self.arguments.black_hole_seconds)
        self.held_lock(self.arguments.lock_seconds)
        self.sigterm_in_black_hole()
        if self.failures:
            raise chaos.ChaosFailure("; ".join(self.failures))

    def cleanup(self):
        for name, server in self.servers.items():
            if server.poll() is None:
                server.send_signal(2)
                try:
                    server.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    self.failures.append(f"instance {name} did not stop within 40 s of SIGINT")
                    server.kill()
        for log in self.logs.values():
            log.close()
        if self.proxy is not None:
            self.proxy.stop()
        super().cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, help="the consentd executable")
    parser.add_argument("--port", type=int, default=18084)
    parser.add_argument("--black-hole-seconds", type=float, default=60)
    parser.add_argument("--lock-seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, cluster) afterwards")
    arguments = parser.parse_args()
    faults = QuietFaults(arguments)
    try:
        faults.run()
    except (chaos.ChaosFailure, subprocess.CalledProcessError) as failure:
        print(f"quiet faults: FAILED: {failure}", file=sys.stderr, flush=True)
        arguments.keep = True
        faults.cleanup()
        return 1
    except BaseException:
        arguments.keep = True
        faults.cleanup()
        raise
    faults.cleanup()
    if faults.failures:
        print(f"quiet faults: FAILED: {'; '.join(faults.failures)}", file=sys.stderr, flush=True)
        return 1
    print("quiet faults: all passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
