#!/usr/bin/env python3
"""Crash safety, measured from outside: acknowledged writes survive SIGKILLs of the server and an immediate stop of
PostgreSQL, retries with the same Idempotency-Key duplicate nothing, the audit log has no gaps and verifies, and the
server finds the database again by itself.

It provisions a cluster, a tenant and keys with `consentd dev`, stops that, then runs `consentd serve` (production mode)
against the same cluster while worker threads drive opt-ins and withdrawals. Each worker retries a request with the same
Idempotency-Key until it is acknowledged and records every acknowledged response. Meanwhile the server is killed with
SIGKILL at random moments and restarted, and PostgreSQL is once stopped with `pg_ctl stop -m immediate` while the
server keeps running. Afterwards the database, the audit log (read over the HTTP API) and `consentd audit verify` are
compared with the client's record. Any difference is a failure (exit 1). Used by .ci/run through scripts/chaos.
"""

import argparse
import collections
import datetime
import glob
import http.client
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
        self.log(f"workload stopped after {time.monotonic() - started:.0f} s")
        if record.failures:
            raise ChaosFailure("; ".join(record.failures[:5]))
        self.verify(record)

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

    def cleanup(self):
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGINT)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()
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
