#!/usr/bin/env python3
"""Crash safety, measured from outside: acknowledged writes survive SIGKILLs of the server and an immediate stop of
PostgreSQL, retries with the same Idempotency-Key duplicate nothing, the audit log has no gaps and verifies, and the
server finds the database again by itself.

It provisions a cluster, a tenant and keys with `consentd dev`, stops that, then runs `consentd serve` (production mode)
against the same cluster while worker threads drive opt-ins and withdrawals. Each worker retries a request with the same
Idempotency-Key until it is acknowledged and records every acknowledged response. Meanwhile the server is killed with
SIGKILL at random moments and restarted, and PostgreSQL is once stopped with `pg_ctl stop -m immediate` while the
server keeps running. Afterwards the database, the audit log (read over the HTTP API) and `consentd audit verify` are
compared with the client's record.

It also proves that every committed change is announced at least once by a change webhook (issue 22), across the
kills (the deliverer dies with the server) and the outage. A receiver in this script (WebhookReceiver), registered as
an endpoint for the consent events right after provisioning, checks every delivery's Standard Webhooks signature by
itself and answers 500 to a random ~20% of them, after a random wait of up to 300 ms, so that kills land during
deliveries in flight and retries happen. Once the other checks pass, it waits until every `webhook_events` row was
received with a 2xx answer, and checks that the outbox holds one event per consent change of the audit log and that
nothing was received that the outbox does not hold. Any difference is a failure (exit 1). Used by .ci/run through
scripts/chaos.
"""

import argparse
import base64
import collections
import datetime
import glob
import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

# A 500 is not among them: the database going away is a 503 (`database_unavailable` or `request_timeout`) by the
# contract, so a 500 under this workload is a failure.
RETRYABLE_STATUSES = {429, 502, 503, 504}
REQUEST_TIMEOUT = 10.0
ACK_DEADLINE = 120.0  # a write not acknowledged within this many seconds of retrying is a failure

# Change webhooks (issue 22): the types the receiver subscribes to, and the audit actions each announces (0019's
# app_webhook_type; a confirmed double opt-in is a grant).
WEBHOOK_TYPES = ("consent.granted", "consent.withdrawn", "consent.superseded")
ANNOUNCED_AS = {"consent.granted": "consent.granted", "consent.confirmed": "consent.granted",
                "consent.withdrawn": "consent.withdrawn", "consent.superseded": "consent.superseded"}
# Claims of a killed deliverer lapse after 60 s and failed attempts back off from 15 s, doubling.
WEBHOOK_DRAIN_DEADLINE = 180.0
RECEIVER_FAILURE_RATE = 0.2
RECEIVER_MAX_DELAY = 0.3
# The receiver fails each event once at most: backoff doubles per failure (15 s, 30 s, 60 s, ...) on top of a lapsed
# claim's 60 s, and a person's events go out one at a time, so repeated failures of one person's events would let
# the drain outlast its deadline by the dice alone (a run failing twice per event drained in 151 s of 180).
RECEIVER_MAX_FAILURES_PER_EVENT = 1
# Standard Webhooks receivers refuse a webhook-timestamp further than this from their clock (a replay defence).
WEBHOOK_TIMESTAMP_TOLERANCE = 300
# The workload's phone numbers (Workload.next_subject): personal data no delivery may carry.
PHONE_NUMBER = re.compile(rb"3933\d{8}")


class ChaosFailure(Exception):
    pass


def postgres_binary(name):
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise ChaosFailure(f"{name} not found: PostgreSQL is not installed")
    return candidates[-1]


class Cluster:
    """The dev cluster, driven with pg_ctl as its owner (the postgres user when we are root)."""

    def __init__(self, data_directory, socket_directory, log_file):
        self.data = data_directory
        self.socket = socket_directory
        self.log = log_file
        self.run_as = ["/usr/sbin/runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def pg_ctl(self, *arguments):
        subprocess.run(self.run_as + [postgres_binary("pg_ctl"), *arguments], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd="/")

    def start(self):
        options = f"-c listen_addresses='' -k {self.socket} -p 5432"
        self.pg_ctl("start", "-D", self.data, "-l", self.log, "-w", "-t", "120", "-o", options)

    def stop(self, mode):
        self.pg_ctl("stop", "-D", self.data, "-m", mode, "-w", "-t", "60")


class Client:
    """One keep-alive HTTP connection, reopened after any failure."""

    def __init__(self, port):
        self.port = port
        self.connection = None

    def request(self, method, path, key=None, body=None, headers=None):
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        all_headers = {"Content-Type": "application/json"}
        if key:
            all_headers["Authorization"] = f"Bearer {key}"
        all_headers.update(headers or {})
        try:
            self.connection.request(method, path, body=None if body is None else json.dumps(body), headers=all_headers)
            response = self.connection.getresponse()
            data = response.read()
            return response.status, dict(response.getheaders()), data
        except Exception:
            self.close()
            raise

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class Record:
    """Everything the clients saw acknowledged, shared by the workers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acknowledged = []  # (operation, idempotency key, subject, response json)
        self.retry_reasons = collections.Counter()
        self.replays_checked = 0
        self.failures = []
        self.last_step = {}  # subject -> index of its last acknowledged step

    def fail(self, message):
        with self.lock:
            self.failures.append(message)


class Workload:
    """People who opt in to two purposes, withdraw marketing, then opt in to marketing again."""

    STEPS = ("opt_in", "withdraw", "opt_in_again")

    def __init__(self, port, write_key, notice_id, record, stop, seed):
        self.port = port
        self.write_key = write_key
        self.notice_id = notice_id
        self.record = record
        self.stop = stop
        self.counter = 0
        self.counter_lock = threading.Lock()
        self.random = random.Random(seed)

    def next_subject(self):
        with self.counter_lock:
            self.counter += 1
            return f"+3933{self.counter:08d}"

    def request_for(self, step, subject):
        provenance = {"pageUrl": "https://shop.example/checkout", "collectedAt": "2026-11-20T10:00:00Z",
                      "method": "checkbox"}
        if step == "opt_in":
            return "/v1/consents", {"subject": subject, "channel": "sms", "purposes": ["marketing", "shipping_update"],
                                    "noticeId": self.notice_id, "provenance": provenance}
        if step == "withdraw":
            return "/v1/revocations", {"subject": subject, "channel": "sms", "purposes": ["marketing"]}
        # Opting in again after the withdrawal is a new tick, collected after it: an opt-in collected before a
        # withdrawal is kept as `superseded` and grants nothing (issue 20). A clock two seconds ahead is allowed;
        # the service counts it as the time the opt-in arrived, which is after the acknowledged withdrawal.
        again = dict(provenance, collectedAt=(datetime.datetime.now(datetime.timezone.utc)
                                              + datetime.timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        return "/v1/consents", {"subject": subject, "channel": "sms", "purposes": ["marketing"],
                                "noticeId": self.notice_id, "provenance": again}

    def acknowledge(self, client, path, body, idempotency_key):
        """Sends until a 2xx arrives; any other 4xx is a failure of the service, not of the chaos."""
        started = time.monotonic()
        while True:
            if time.monotonic() - started > ACK_DEADLINE:
                raise ChaosFailure(f"{path} with key {idempotency_key} was not acknowledged in {ACK_DEADLINE:.0f} s")
            try:
                status, headers, data = client.request("POST", path, self.write_key, body,
                                                       {"Idempotency-Key": idempotency_key})
            except (OSError, http.client.HTTPException) as error:
                with self.record.lock:
                    self.record.retry_reasons[type(error).__name__] += 1
                time.sleep(0.05 + self.random.random() * 0.15)
                continue
            if status in RETRYABLE_STATUSES:
                with self.record.lock:
                    self.record.retry_reasons[f"HTTP {status}"] += 1
                time.sleep(0.05 + self.random.random() * 0.15)
                continue
            if not 200 <= status < 300:
                raise ChaosFailure(f"{path} with key {idempotency_key} answered {status}: {data[:300]!r}")
            return status, headers, data

    def run_worker(self, worker):
        client = Client(self.port)
        try:
            while not self.stop.is_set():
                subject = self.next_subject()
                for index, step in enumerate(self.STEPS):
                    if self.stop.is_set():
                        break
                    path, body = self.request_for(step, subject)
                    key = f"chaos-{worker}-{subject}-{step}"
                    status, _, data = self.acknowledge(client, path, body, key)
                    response = json.loads(data)
                    with self.record.lock:
                        self.record.acknowledged.append((step, key, subject, response))
                        self.record.last_step[subject] = index
                    # A client that lost the answer sends again: the same key must give the same bytes and nothing new.
                    if self.random.random() < 0.2:
                        _, headers, again = self.acknowledge(client, path, body, key)
                        if again != data or headers.get("Idempotent-Replayed") != "true":
                            self.record.fail(f"the retry of {key} was not a faithful replay")
                        with self.record.lock:
                            self.record.replays_checked += 1
        except ChaosFailure as failure:
            self.record.fail(str(failure))
        except Exception as error:  # noqa: BLE001 - any crash of a worker must fail the run, with its reason
            self.record.fail(f"worker {worker} crashed: {error!r}")
        finally:
            client.close()


def webhook_signature_valid(secret, webhook_id, timestamp, body, header):
    """The Standard Webhooks check, done here apart from the service's code: HMAC-SHA256 keyed with the base64 after
    `whsec_`, over `<id>.<timestamp>.<body>`; the header holds `v1,<base64>` signatures separated by spaces, and one
    that matches is enough (during a secret rotation there are two)."""
    if not secret or not secret.startswith("whsec_"):
        return False
    key = base64.b64decode(secret[len("whsec_"):])
    expected = base64.b64encode(
        hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest())
    return any(candidate.startswith("v1,") and hmac.compare_digest(candidate[3:].encode("utf-8", "replace"), expected)
               for candidate in (header or "").split(" "))


# One request received: its headers' id and timestamp, the raw body, the status answered, and when (unix time).
Received = collections.namedtuple("Received", "webhook_id timestamp body answered signature_valid timely at")


class WebhookReceiver:
    """A tenant's webhook endpoint on loopback: records every POST, checks its signature and answers; a 500 now and
    then and a short wait before every answer make retries happen and kills of the server land mid-delivery."""

    def __init__(self, seed):
        self.random = random.Random(f"{seed}:webhook-receiver")  # apart from the workload's, to repeat a run
        self.lock = threading.Lock()
        self.secret = None  # set once the endpoint is registered; nothing is sent to it before that
        self.received = []
        self.failures_injected = collections.Counter()  # webhook-id -> 500s answered on purpose
        self.cut_short = 0  # requests whose sender died before the body was in
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), WebhookRequestHandler)
        self.server.daemon_threads = True
        self.server.receiver = self
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/chaos-webhooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def receive(self, headers, body):
        """Records one complete request; answers the status to send and how long to wait before sending it."""
        webhook_id = headers.get("webhook-id") or ""
        timestamp = headers.get("webhook-timestamp") or ""
        signature_valid = webhook_signature_valid(self.secret, webhook_id, timestamp, body,
                                                  headers.get("webhook-signature"))
        timely = timestamp.isdigit() and abs(time.time() - int(timestamp)) <= WEBHOOK_TIMESTAMP_TOLERANCE
        with self.lock:
            delay = self.random.uniform(0.0, RECEIVER_MAX_DELAY)
            fail = self.random.random() < RECEIVER_FAILURE_RATE
            if not (signature_valid and timely):
                answered = 400  # what a receiver does with a message it cannot trust
            elif fail and self.failures_injected[webhook_id] < RECEIVER_MAX_FAILURES_PER_EVENT:
                self.failures_injected[webhook_id] += 1
                answered = 500
            else:
                answered = 200
            self.received.append(Received(webhook_id, timestamp, body, answered, signature_valid, timely, time.time()))
        return answered, delay

    def note_cut_short(self):
        with self.lock:
            self.cut_short += 1

    def snapshot(self):
        with self.lock:
            return list(self.received)

    def acknowledged_ids(self):
        """The webhook-ids received at least once and answered with a 2xx."""
        with self.lock:
            return {item.webhook_id for item in self.received if 200 <= item.answered < 300}

    def write_log(self, path):
        """One line per request received, for the evidence a failed run keeps."""
        with open(path, "w", encoding="utf-8") as log:
            for item in self.snapshot():
                log.write(json.dumps({"receivedAt": round(item.at, 3), "webhookId": item.webhook_id,
                                      "timestamp": item.timestamp, "answered": item.answered,
                                      "signatureValid": item.signature_valid, "timely": item.timely,
                                      "body": item.body.decode("utf-8", "replace")}) + "\n")


class WebhookRequestHandler(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as a real receiver would be: the deliverer reuses its connections."""

    protocol_version = "HTTP/1.1"
    timeout = 30  # a connection left half-open by a killed sender does not hold a thread for ever

    def handle(self):
        try:
            super().handle()
        except OSError:
            pass  # a killed sender resets the connections it kept open: nothing was being received on them

    def do_POST(self):
        body = self.read_body()
        if body is None:
            # The sender died mid-request: this is no delivery, and its signature cannot be checked on part of a body.
            self.server.receiver.note_cut_short()
            self.close_connection = True
            return
        answered, delay = self.server.receiver.receive(self.headers, body)
        time.sleep(delay)
        try:
            self.send_response(answered)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:
            self.close_connection = True  # the sender is gone; the answer does not matter to what was received

    def read_body(self):
        """The whole body, or None when the connection ended before it did."""
        try:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks = []
                while True:
                    line = self.rfile.readline(1024)
                    if not line:
                        return None
                    size = int(line.split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunk = self.rfile.read(size + 2)
                    if len(chunk) < size + 2:
                        return None
                    chunks.append(chunk[:size])
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            return body if len(body) == length else None
        except (OSError, ValueError):
            return None

    def log_message(self, format, *arguments):  # noqa: A002 - the base class's signature
        pass  # thousands of requests; the summary says what matters


class Chaos:
    def __init__(self, arguments):
        self.arguments = arguments
        self.binary = arguments.binary
        self.port = arguments.port
        self.work = tempfile.mkdtemp(prefix="consentd-chaos-")
        os.chmod(self.work, 0o755)
        self.server = None
        self.server_log = open(os.path.join(self.work, "serve.log"), "ab")
        self.cluster = None
        self.kills = 0
        self.readyz_recovery = None
        self.receiver = None
        self.workload_stopped = None

    def log(self, message):
        print(f"chaos: {message}", flush=True)

    # Provisioning -----------------------------------------------------------------------------------------------

    def provision(self):
        dev_log_path = os.path.join(self.work, "dev.log")
        with open(dev_log_path, "wb") as dev_log:
            dev = subprocess.Popen([self.binary, "dev", "--port", str(self.port)], cwd=self.work,
                                   stdout=dev_log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            text = ""
            while time.monotonic() < deadline:
                text = open(dev_log_path, encoding="utf-8", errors="replace").read()
                if "ConsentLedger is running" in text and "admin" in text.split("ConsentLedger is running")[1]:
                    break
                if dev.poll() is not None:
                    raise ChaosFailure(f"consentd dev exited:\n{text}")
                time.sleep(0.2)
            else:
                raise ChaosFailure(f"consentd dev did not start:\n{text}")
            keys = dict(re.findall(r"^\s+(consent:write|consent:check|dpo|admin)\s+(\S+)$", text, re.MULTILINE))
            self.keys = keys
            self.owner_url = re.search(r"psql '([^']+)'", text).group(1)
            self.tenant_id = re.search(r"tenant\s+demo \(([0-9a-f-]+)\)", text).group(1)
            status, data = self.call("POST", "/v1/notices", keys["admin"], {
                "channel": "sms", "language": "en", "text": "Texts about your orders, and offers, from Shop.",
                "purposes": ["marketing", "shipping_update"]})
            if status != 201:
                raise ChaosFailure(f"creating the notice answered {status}: {data!r}")
            self.notice_id = json.loads(data)["id"]
        finally:
            dev.send_signal(signal.SIGINT)
            dev.wait(timeout=60)
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.owner_url).query)
        socket_directory = query["host"][0]
        base = os.path.join(self.work, ".consentd", "postgres")
        # The log goes where consentd dev keeps it: a folder the cluster's owner can write.
        self.cluster = Cluster(os.path.join(base, "data"), socket_directory, os.path.join(base, "server.log"))
        self.cluster.start()
        self.runtime_url = self.owner_url.replace("consentd_owner@", "consentd_app@", 1)

    def call(self, method, path, key=None, body=None):
        client = Client(self.port)
        try:
            status, _, data = client.request(method, path, key, body)
            return status, data
        finally:
            client.close()

    # The server -------------------------------------------------------------------------------------------------

    def start_server(self):
        environment = dict(os.environ)
        with open(os.path.join(self.work, ".consentd", "master.key")) as master, \
                open(os.path.join(self.work, ".consentd", "signing.key")) as signing:
            environment.update({
                "DATABASE_URL": self.runtime_url,
                "CONSENTD_MASTER_KEY": master.read().strip(),
                "CONSENTD_SIGNING_KEY": signing.read().strip(),
                "CONSENTD_HOST": "127.0.0.1",
                "CONSENTD_PORT": str(self.port),
                # The limiter is not under test here; the workers must not be slowed by it.
                "CONSENTD_RATE_LIMIT_CONSENT_WRITE": "1000000/10000000",
                # The webhook receiver is this script, on plain http on loopback, which serve refuses otherwise.
                "CONSENTD_WEBHOOK_ALLOW_LOOPBACK": "true",
            })
        self.server = subprocess.Popen([self.binary, "serve"], cwd=self.work, env=environment,
                                       stdout=self.server_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise ChaosFailure(f"consentd serve exited with {self.server.returncode}; see its log:\n"
                                   + open(self.server_log.name, encoding="utf-8", errors="replace").read()[-3000:])
            try:
                status, _ = self.call("GET", "/readyz")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise ChaosFailure("consentd serve did not become ready in 60 s")

    def register_webhook_endpoint(self):
        """Starts the receiver and registers it for the consent events, before the first write: every change the
        workload makes must then be announced to it."""
        self.receiver = WebhookReceiver(self.arguments.seed)
        self.receiver.start()
        status, data = self.call("POST", "/v1/webhooks/endpoints", self.keys["admin"],
                                 {"url": self.receiver.url, "events": list(WEBHOOK_TYPES)})
        if status != 201:
            raise ChaosFailure(f"registering the webhook endpoint answered {status}: {data[:300]!r}")
        endpoint = json.loads(data)
        self.receiver.secret = endpoint["secret"]
        self.webhook_endpoint_id = endpoint["id"]

    def kill_server(self):
        self.server.send_signal(signal.SIGKILL)
        self.server.wait()
        self.kills += 1

    def database_outage(self):
        """Stops PostgreSQL without a shutdown checkpoint and brings it back; the running server must notice both."""
        pid = self.server.pid
        self.log("stopping PostgreSQL with pg_ctl stop -m immediate")
        self.cluster.stop("immediate")
        saw_unready = False
        for _ in range(50):
            try:
                status, _ = self.call("GET", "/readyz")
            except OSError:
                status = None
            if status == 503:
                saw_unready = True
                break
            time.sleep(0.1)
        if not saw_unready:
            raise ChaosFailure("/readyz did not answer 503 while PostgreSQL was down")
        time.sleep(self.arguments.outage_seconds)
        self.cluster.start()
        restarted = time.monotonic()
        while time.monotonic() - restarted < 60:
            try:
                status, _ = self.call("GET", "/readyz")
            except OSError:
                status = None
            if status == 200:
                break
            time.sleep(0.1)
        else:
            raise ChaosFailure("/readyz did not recover within 60 s of PostgreSQL's restart")
        if self.server.poll() is not None or self.server.pid != pid:
            raise ChaosFailure("the server exited during the database outage")
        self.readyz_recovery = time.monotonic() - restarted
        self.log(f"PostgreSQL back; /readyz recovered in {self.readyz_recovery:.1f} s without a server restart")

    # The run ----------------------------------------------------------------------------------------------------

    def run(self):
        self.provision()
        self.start_server()
        self.register_webhook_endpoint()
        record = Record()
        stop = threading.Event()
        workload = Workload(self.port, self.keys["consent:write"], self.notice_id, record, stop, self.arguments.seed)
        workers = [threading.Thread(target=workload.run_worker, args=(n,), daemon=True)
                   for n in range(self.arguments.workers)]
        for worker in workers:
            worker.start()
        chooser = random.Random(self.arguments.seed)
        outage_after = self.arguments.kills // 2
        started = time.monotonic()
        for kill in range(self.arguments.kills):
            time.sleep(chooser.uniform(0.3, 2.0))
            self.kill_server()
            self.log(f"SIGKILL {self.kills}: {len(record.acknowledged)} writes acknowledged so far")
            time.sleep(chooser.uniform(0.0, 0.5))
            self.start_server()
            if kill + 1 == outage_after:
                time.sleep(chooser.uniform(0.3, 1.0))
                self.database_outage()
            if record.failures:
                break
        time.sleep(1.0)
        stop.set()
        for worker in workers:
            worker.join(timeout=ACK_DEADLINE + 30)
        if any(worker.is_alive() for worker in workers):
            record.fail("a worker did not finish")
        if self.readyz_recovery is None:
            record.fail(f"PostgreSQL was never stopped: --kills {self.arguments.kills} is too few (at least 2)")
        self.workload_stopped = time.monotonic()
        self.log(f"workload stopped after {self.workload_stopped - started:.0f} s")
        if record.failures:
            raise ChaosFailure("; ".join(record.failures[:5]))
        self.verify(record)
        self.verify_webhooks()

    # Verification -----------------------------------------------------------------------------------------------

    def psql(self, sql):
        command = [postgres_binary("psql"), self.owner_url, "-X", "-q", "-t", "-A", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                   "-c", f"SET consentd.tenant_id = '{self.tenant_id}'", "-c", sql]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        return [line.split("\t") for line in output.splitlines() if line]

    def audit_events(self):
        events, after = [], None
        while True:
            path = "/v1/audit/events?limit=1000" + ("" if after is None else f"&after={after}")
            status, data = self.call("GET", path, self.keys["dpo"])
            if status != 200:
                raise ChaosFailure(f"reading the audit log answered {status}: {data[:300]!r}")
            page = json.loads(data)
            events += page["events"]
            if page.get("next") is None:
                return events
            after = page["next"]

    def verify(self, record):
        problems = []
        granted, withdrawn, opt_ins, keys = collections.Counter(), collections.Counter(), 0, set()
        for step, key, _subject, response in record.acknowledged:
            keys.add(key)
            if step == "withdraw":
                withdrawn.update(item["id"] for item in response["revoked"])
            else:
                opt_ins += 1
                granted.update(item["id"] for item in response["consents"])
        if len(keys) != len(record.acknowledged):
            problems.append("an idempotency key was acknowledged twice as separate writes")
        if any(count > 1 for count in granted.values()):
            problems.append("two acknowledged opt-ins returned the same consent id")

        # Every event reaches the log through the sequencer; wait until nothing is left unsequenced.
        deadline = time.monotonic() + 60
        while int(self.psql("SELECT count(*) FROM audit_unsequenced")[0][0]) > 0:
            if time.monotonic() > deadline:
                problems.append("events were still unsequenced 60 s after the workload stopped")
                break
            time.sleep(0.2)

        rows = self.psql("SELECT id, status FROM consents WHERE channel = 'sms'")
        stored = {consent_id: status for consent_id, status in rows}
        missing = [consent_id for consent_id in granted if consent_id not in stored]
        extra = [consent_id for consent_id in stored if consent_id not in granted]
        if missing:
            problems.append(f"{len(missing)} acknowledged consents are missing, e.g. {missing[:3]}")
        if extra:
            problems.append(f"{len(extra)} consents exist that no acknowledged response named, e.g. {extra[:3]}")
        stored_withdrawn = {consent_id for consent_id, status in stored.items() if status == "withdrawn"}
        if stored_withdrawn != set(withdrawn):
            problems.append(f"withdrawn in the database {len(stored_withdrawn)}, acknowledged {len(withdrawn)}")
        # Counted for SMS consents alone: the quiet-fault scenarios write e-mail consents of their own.
        collections_stored = int(self.psql(
            "SELECT count(DISTINCT e.collection_id) FROM consent_evidence e JOIN consents c ON c.id = e.consent_id "
            "WHERE c.channel = 'sms'")[0][0])
        if collections_stored != opt_ins:
            problems.append(f"{collections_stored} collections stored for {opt_ins} acknowledged opt-ins")
        evidence = int(self.psql(
            "SELECT count(*) FROM consent_evidence e JOIN consents c ON c.id = e.consent_id WHERE c.channel = 'sms'"
        )[0][0])
        if evidence != sum(granted.values()):
            problems.append(f"{evidence} evidence rows for {sum(granted.values())} acknowledged consents")
        claims = int(self.psql("SELECT count(*) FROM idempotency_keys WHERE key LIKE 'chaos-%'")[0][0])
        if claims != len(keys):
            problems.append(f"{claims} idempotency records for {len(keys)} acknowledged keys")

        events = self.audit_events()
        sequence = [event["seq"] for event in events]
        if sequence != list(range(len(events))):
            problems.append("the audit log's seq has gaps or repeats")
        logged_grants = collections.Counter(
            e["data"]["consentId"] for e in events if e["action"] == "consent.granted" and e["data"].get("channel") == "sms")
        logged_withdrawals = collections.Counter(
            e["data"]["consentId"] for e in events if e["action"] == "consent.withdrawn" and e["data"].get("channel") == "sms")
        if logged_grants != granted:
            problems.append(f"consent.granted events {sum(logged_grants.values())} != acknowledged {len(granted)}")
        if logged_withdrawals != withdrawn:
            problems.append(f"consent.withdrawn events {sum(logged_withdrawals.values())} != acknowledged {len(withdrawn)}")

        status, data = self.call("GET", "/v1/audit/key", self.keys["dpo"])
        public_key = json.loads(data)["publicKey"]
        verify = subprocess.run([self.binary, "audit", "verify", "--tenant", "demo", "--public-key", public_key],
                                env=dict(os.environ, DATABASE_URL=self.owner_url), capture_output=True, text=True)
        if verify.returncode != 0:
            problems.append(f"consentd audit verify failed: {verify.stdout}{verify.stderr}")

        # The check cache came back after every restart and the outage: checks agree with the acknowledged history.
        subjects = sorted(record.last_step)
        mismatched = 0
        for start in range(0, len(subjects), 5000):
            chunk = subjects[start:start + 5000]
            status, data = self.call("POST", "/v1/checks/batch", self.keys["consent:check"],
                                     {"channel": "sms", "purpose": "marketing", "subjects": chunk})
            if status != 200:
                problems.append(f"the batch check answered {status}")
                break
            for subject, result in zip(chunk, json.loads(data)["results"]):
                if result["allowed"] != (record.last_step[subject] != 1):
                    mismatched += 1
        if mismatched:
            problems.append(f"{mismatched} checks disagree with the acknowledged history")

        retries = sum(record.retry_reasons.values())
        if self.readyz_recovery is not None:
            self.log(f"kills survived: {self.kills} SIGKILLs of consentd serve, 1 immediate stop of PostgreSQL")
        self.log(f"writes acknowledged: {len(record.acknowledged)} ({opt_ins} opt-ins, "
                 f"{len(record.acknowledged) - opt_ins} withdrawals) for {len(subjects)} people; "
                 f"{retries} retries ({', '.join(f'{k} {v}' for k, v in record.retry_reasons.most_common())})")
        self.log(f"found: {len(granted)} acknowledged consents, {len(stored)} stored; {len(withdrawn)} acknowledged "
                 f"withdrawals, {len(stored_withdrawn)} stored; {collections_stored} collections; "
                 f"{claims} idempotency records; {record.replays_checked} deliberate replays identical")
        self.log(f"audit log: {len(events)} events, seq 0..{len(events) - 1} without gaps; "
                 f"consentd audit verify: {'passed' if verify.returncode == 0 else 'FAILED'}")
        self.log(f"checks: {len(subjects) - mismatched} of {len(subjects)} agree with the history; "
                 + (f"/readyz recovered {self.readyz_recovery:.1f} s after PostgreSQL came back"
                    if self.readyz_recovery is not None else "no PostgreSQL stop in this run"))
        if problems:
            raise ChaosFailure("; ".join(problems))

    # Webhooks -----------------------------------------------------------------------------------------------------

    def wait_for_webhooks(self, events):
        """Seconds until every outbox event was received with a 2xx, or None if some were not within the deadline.
        The server keeps running meanwhile: deliveries a killed server had claimed come back when their claims
        lapse, and those the receiver failed when their backoff ends."""
        started = time.monotonic()
        while set(events) - self.receiver.acknowledged_ids():
            if time.monotonic() - started > WEBHOOK_DRAIN_DEADLINE:
                return None
            time.sleep(0.5)
        return time.monotonic() - started

    def undelivered_detail(self, event_ids):
        """What the database says of events never received with a 2xx, for the failure message."""
        listed = ", ".join(f"'{event_id}'" for event_id in sorted(event_ids)[:5])
        rows = self.psql("SELECT d.event_id, e.type, d.state, d.attempts, d.next_attempt_at, w.status "
                         "FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id "
                         f"JOIN webhook_endpoints w ON w.id = d.endpoint_id WHERE d.event_id IN ({listed}) "
                         "ORDER BY d.event_id")
        answers = collections.defaultdict(list)
        for item in self.receiver.snapshot():
            answers[item.webhook_id].append(item.answered)
        return "; ".join(f"{event_id} {event_type}: delivery {state} after {attempts} attempts, next at {next_at}, "
                         f"endpoint {endpoint}, received with {answers.get(event_id) or 'nothing'}"
                         for event_id, event_type, state, attempts, next_at, endpoint in rows)

    @staticmethod
    def body_problem(body, event_type):
        """Why a delivery's body is not what its outbox event announces, or None."""
        if PHONE_NUMBER.search(body):
            return "it carries a phone number"
        try:
            payload = json.loads(body)
        except ValueError:
            return "it is not JSON"
        if not isinstance(payload, dict) or set(payload) != {"type", "timestamp", "data"}:
            return f"its keys are {sorted(payload) if isinstance(payload, dict) else type(payload).__name__}"
        if payload["type"] != event_type:
            return f"its type is {payload['type']}, the outbox's {event_type}"
        lacking = {"consentId", "purpose", "channel", "subjectRef"} - set(payload["data"])
        if lacking:
            return f"its data lacks {sorted(lacking)}"
        return None

    def verify_webhooks(self):
        """Every committed change was delivered at least once, signed, and nothing was announced that did not commit."""
        problems = []
        # Read once: the workload has stopped, so no consent changes, and no outbox rows, come any more.
        events = {event_id: (int(audit_id), event_type) for event_id, audit_id, event_type in self.psql(
            "SELECT id, audit_event_id, type FROM webhook_events WHERE type <> 'webhook.test'")}
        waited_from = time.monotonic()
        drained = self.wait_for_webhooks(events)
        received = self.receiver.snapshot()
        undelivered = set(events) - self.receiver.acknowledged_ids()
        if undelivered:
            problems.append(f"{len(undelivered)} of {len(events)} webhook events were not received with a 2xx "
                            f"in {WEBHOOK_DRAIN_DEADLINE:.0f} s of waiting: {self.undelivered_detail(undelivered)}")

        # The outbox is written in the change's own transaction: one event per consent change that committed.
        actions = {int(audit_id): action for audit_id, action in self.psql(
            "SELECT id, action FROM audit_events WHERE action IN "
            "('consent.granted', 'consent.confirmed', 'consent.withdrawn', 'consent.superseded')")}
        announced = collections.Counter(audit_id for audit_id, _ in events.values())
        if set(actions) != set(announced):
            unannounced, unknown = sorted(set(actions) - set(announced)), sorted(set(announced) - set(actions))
            problems.append(f"audit events without an outbox event: {len(unannounced)} (e.g. {unannounced[:5]}); "
                            f"outbox events of no such audit event: {len(unknown)} (e.g. {unknown[:5]})")
        twice = [audit_id for audit_id, count in announced.items() if count > 1]
        if twice:
            problems.append(f"{len(twice)} audit events announced by more than one outbox event, e.g. {twice[:5]}")
        mistyped = [event_id for event_id, (audit_id, event_type) in events.items()
                    if audit_id in actions and ANNOUNCED_AS[actions[audit_id]] != event_type]
        if mistyped:
            problems.append(f"{len(mistyped)} outbox events of the wrong type for their audit event, "
                            f"e.g. {mistyped[:3]}")

        # What arrived: nothing the outbox does not hold (nothing announced that rolled back), every signature
        # good, and each body what its event announces.
        unknown_ids = sorted({item.webhook_id for item in received} - set(events))
        if unknown_ids:
            problems.append(f"{len(unknown_ids)} webhook-ids received that no outbox event has, e.g. {unknown_ids[:3]}")
        bad_signatures = [item for item in received if not item.signature_valid]
        if bad_signatures:
            problems.append(f"{len(bad_signatures)} deliveries with a bad signature, e.g. "
                            f"{[item.webhook_id for item in bad_signatures[:3]]}")
        stale = [item for item in received if not item.timely]
        if stale:
            problems.append(f"{len(stale)} deliveries with a webhook-timestamp over {WEBHOOK_TIMESTAMP_TOLERANCE} s "
                            f"off, e.g. {[(item.webhook_id, item.timestamp) for item in stale[:3]]}")
        bodies = [(item.webhook_id, self.body_problem(item.body, events[item.webhook_id][1]))
                  for item in received if item.webhook_id in events]
        bodies = [(webhook_id, problem) for webhook_id, problem in bodies if problem]
        if bodies:
            problems.append(f"{len(bodies)} delivery bodies are wrong, e.g. {bodies[:3]}")

        acknowledged = collections.Counter(item.webhook_id for item in received if 200 <= item.answered < 300)
        duplicates = sum(count - 1 for count in acknowledged.values())
        states = dict(self.psql("SELECT state, count(*) FROM webhook_deliveries GROUP BY state ORDER BY state"))
        self.log(f"webhooks: {len(events)} events for {len(actions)} consent changes in the audit log; "
                 f"{len(received)} deliveries received ({sum(acknowledged.values())} answered 2xx, "
                 f"{sum(self.receiver.failures_injected.values())} answered 500 on purpose, "
                 f"{self.receiver.cut_short} cut short by a kill); {duplicates} duplicates "
                 f"({sum(1 for count in acknowledged.values() if count > 1)} events received more than once with "
                 f"a 2xx); {len(bad_signatures)} failed signatures")
        if drained is None:
            drain = f"NOT drained in {WEBHOOK_DRAIN_DEADLINE:.0f} s of waiting"
        else:
            drain = (f"drained in {drained:.1f} s of waiting, "
                     f"{waited_from + drained - self.workload_stopped:.1f} s after the workload stopped")
        self.log(f"webhooks: {drain}; deliveries in the database: "
                 + ", ".join(f"{state} {count}" for state, count in states.items()))
        if problems:
            raise ChaosFailure("; ".join(problems))

    def cleanup(self):
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGINT)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
        if self.receiver is not None:
            self.receiver.stop()
            self.receiver.write_log(os.path.join(self.work, "webhooks.jsonl"))
        if self.cluster is not None:
            try:
                self.cluster.stop("fast")
            except subprocess.CalledProcessError:
                pass
        self.server_log.close()
        if self.arguments.keep:
            self.log(f"kept {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, help="the consentd executable")
    parser.add_argument("--port", type=int, default=18082)
    parser.add_argument("--kills", type=int, default=12, help="SIGKILLs of the server (at least 10 in CI)")
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--outage-seconds", type=float, default=3.0, help="how long PostgreSQL stays down")
    parser.add_argument("--seed", type=int, default=None, help="fixes the random moments, to repeat a run")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, cluster) afterwards")
    arguments = parser.parse_args()
    if arguments.seed is None:
        arguments.seed = random.randrange(1 << 30)
    chaos = Chaos(arguments)
    print(f"chaos: seed {arguments.seed}", flush=True)
    try:
        chaos.run()
    except (ChaosFailure, subprocess.CalledProcessError) as failure:
        print(f"chaos: FAILED: {failure}", file=sys.stderr, flush=True)
        arguments.keep = True  # the logs and the cluster are the evidence
        chaos.cleanup()
        return 1
    except BaseException:
        arguments.keep = True
        chaos.cleanup()
        raise
    chaos.cleanup()
    print("chaos: all passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
