"""Tests for blackhole_proxy (127.0.0.1 only).

Run from the repository root:  python3 -m unittest scripts/lib/test_blackhole_proxy.py
"""
import os
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from blackhole_proxy import BlackholeProxy, _Conn  # noqa: E402

SSL_REQUEST = struct.pack("!ii", 8, 80877103)
GSSENC_REQUEST = struct.pack("!ii", 8, 80877104)


def startup_message(user, application_name=None):
    body = struct.pack("!i", 196608) + b"user\0" + user.encode() + b"\0database\0consent\0"
    if application_name is not None:
        body += b"application_name\0" + application_name.encode() + b"\0"
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def recv_exactly(sock, n, timeout=5.0):
    sock.settimeout(timeout)
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return bytes(data)


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


class FakeUpstream:
    """Answers an SSLRequest with `answer`, then echoes everything; records what it got."""

    def __init__(self, answer=b"N"):
        self.answer = answer
        self.sessions = []  # one dict per accepted connection: received, closed
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                sock, _ = self.server.accept()
            except OSError:
                return
            session = {"received": bytearray(), "closed": threading.Event(), "sock": sock}
            with self.lock:
                self.sessions.append(session)
            threading.Thread(target=self._serve, args=(session,), daemon=True).start()

    def _serve(self, session):
        sock, first = session["sock"], True
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                with self.lock:
                    session["received"] += data
                if first and data[:8] == SSL_REQUEST:
                    sock.sendall(self.answer + data[8:])
                else:
                    sock.sendall(data)
                first = False
        except OSError:
            pass
        finally:
            session["closed"].set()
            sock.close()

    def received(self, index):
        with self.lock:
            return bytes(self.sessions[index]["received"])

    def close(self):
        self.server.close()
        with self.lock:
            for session in self.sessions:
                try:
                    session["sock"].shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class BlackholeProxyTest(unittest.TestCase):
    def setUp(self):
        self.upstream = FakeUpstream()
        self.proxy = BlackholeProxy("127.0.0.1", 0, "127.0.0.1", self.upstream.port).start()
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.proxy.stop()
        self.upstream.close()

    def connect(self, application_name=None, ssl=False, user="consentd"):
        sock = socket.create_connection(("127.0.0.1", self.proxy.port), timeout=5)
        self.clients.append(sock)
        if ssl:
            sock.sendall(SSL_REQUEST)
            self.assertEqual(recv_exactly(sock, 1), b"N")
        if application_name is not False:
            msg = startup_message(user, application_name)
            sock.sendall(msg)
            self.assertEqual(recv_exactly(sock, len(msg)), msg)
        return sock

    def snapshot(self, index):
        self.assertTrue(wait_for(lambda: len(self.proxy.connections()) > index))
        return sorted(self.proxy.connections())[index]

    def assert_echoes(self, sock, payload=b"SELECT 1"):
        sock.sendall(payload)
        self.assertEqual(recv_exactly(sock, len(payload)), payload)

    def assert_silent(self, sock, seconds=1.0):
        sock.settimeout(seconds)
        with self.assertRaises(socket.timeout):
            sock.recv(1)

    def test_byte_exact_forwarding_with_ssl_request(self):
        sock = self.connect("consentd-api", ssl=True)
        payload = os.urandom(1_000_000)
        threading.Thread(target=sock.sendall, args=(payload,), daemon=True).start()
        self.assertEqual(recv_exactly(sock, len(payload)), payload)
        expected = SSL_REQUEST + startup_message("consentd", "consentd-api") + payload
        self.assertEqual(self.upstream.received(0), expected)
        snap = self.snapshot(0)
        self.assertEqual((snap.application_name, snap.user), ("consentd-api", "consentd"))
        self.assertEqual(snap.bytes_up, len(expected))
        self.assertEqual(snap.bytes_down, len(expected) - 7)  # 'N' instead of 8-byte request
        self.assertTrue(snap.open)
        self.assertFalse(snap.blackholed)

    def test_parses_plain_startup_message(self):
        self.connect("feed-listener", user="alice")
        snap = self.snapshot(0)
        self.assertEqual((snap.application_name, snap.user), ("feed-listener", "alice"))

    def test_startup_without_application_name(self):
        self.connect(None, ssl=True)
        self.assertTrue(wait_for(lambda: self.proxy.connections()[0].user == "consentd"))
        self.assertIsNone(self.snapshot(0).application_name)

    def test_tls_leaves_application_name_unknown(self):
        self.upstream.answer = b"S"
        sock = self.connect(False)
        sock.sendall(SSL_REQUEST)
        self.assertEqual(recv_exactly(sock, 1), b"S")
        hello = startup_message("consentd", "looks-like-startup-but-is-tls")
        self.assert_echoes(sock, hello)
        snap = self.snapshot(0)
        self.assertIsNone(snap.application_name)
        self.assertIsNone(snap.user)

    def test_client_close_closes_upstream_and_vice_versa(self):
        a = self.connect("a")
        b = self.connect("b")
        a.close()
        self.assertTrue(self.upstream.sessions[0]["closed"].wait(2))
        self.upstream.sessions[1]["sock"].shutdown(socket.SHUT_RDWR)
        self.assertEqual(b.recv(1), b"")
        self.assertTrue(wait_for(lambda: not any(c.open for c in self.proxy.connections())))

    def test_blackhole_by_predicate_stalls_only_matching_connections(self):
        listener = self.connect("consentd-listener")
        api = self.connect("consentd-api")
        affected = self.proxy.blackhole(lambda c: (c.application_name or "").endswith("-listener"))
        self.assertEqual(affected, 1)
        listener.sendall(b"LISTEN consent_changes")
        self.assert_silent(listener)
        self.assert_echoes(api)
        # a new matching connection is black-holed once its startup is known
        late = socket.create_connection(("127.0.0.1", self.proxy.port), timeout=5)
        self.clients.append(late)
        late.sendall(startup_message("consentd", "other-listener"))
        self.assert_silent(late)
        self.assert_echoes(self.connect("consentd-worker"))
        flags = {c.application_name: c.blackholed for c in self.proxy.connections()}
        self.assertEqual(flags, {"consentd-listener": True, "consentd-api": False,
                                 "other-listener": True, "consentd-worker": False})
        self.assertEqual(self.proxy.resume(), 2)
        self.assertEqual(recv_exactly(listener, 22), b"LISTEN consent_changes")
        msg = startup_message("consentd", "other-listener")
        self.assertEqual(recv_exactly(late, len(msg)), msg)
        self.assert_echoes(listener)
        self.assertFalse(any(c.blackholed for c in self.proxy.connections()))

    def test_blackhole_stalls_bulk_sender_without_unbounded_buffering(self):
        sock = self.connect("bulk")
        self.proxy.blackhole()
        sent = 0
        sock.settimeout(0.5)
        try:
            while sent < 200_000_000:
                sent += sock.send(b"x" * 65536)
        except socket.timeout:
            pass
        self.assertLess(sent, 200_000_000, "TCP flow control never stalled the client")
        startup_len = len(startup_message("consentd", "bulk"))
        self.assertEqual(self.proxy.connections()[0].bytes_up, startup_len)

    def test_client_close_during_blackhole_closes_upstream(self):
        sock = self.connect("consentd-listener")
        self.assertEqual(self.proxy.blackhole(), 1)
        sock.sendall(b"unread query bytes")
        time.sleep(0.2)
        sock.close()
        self.assertTrue(self.upstream.sessions[0]["closed"].wait(3))
        self.assertTrue(wait_for(lambda: not self.proxy.connections()[0].open))

    def test_blackhole_all_stalls_fresh_connection_from_first_byte(self):
        self.assertEqual(self.proxy.blackhole(), 0)
        sock = socket.create_connection(("127.0.0.1", self.proxy.port), timeout=5)
        self.clients.append(sock)
        sock.sendall(SSL_REQUEST)
        self.assert_silent(sock)
        self.assertTrue(wait_for(lambda: len(self.upstream.sessions) == 1))
        self.assertEqual(self.upstream.received(0), b"")
        snap = self.snapshot(0)
        self.assertTrue(snap.blackholed)
        self.assertEqual(snap.bytes_up, 0)
        self.assertEqual(self.proxy.resume(), 1)
        self.assertEqual(recv_exactly(sock, 1), b"N")
        self.assertEqual(self.upstream.received(0), SSL_REQUEST)
        msg = startup_message("consentd", "late")
        sock.sendall(msg)
        self.assertEqual(recv_exactly(sock, len(msg)), msg)
        self.assertEqual(self.snapshot(0).application_name, "late")

    def test_hundreds_of_connections(self):
        socks = [self.connect("c%d" % i, ssl=i % 2 == 0) for i in range(200)]
        self.assertEqual(self.proxy.blackhole(lambda c: int(c.application_name[1:]) % 3 == 0), 67)
        for i, sock in enumerate(socks):
            sock.sendall(b"ping %d" % i)
        for i, sock in enumerate(socks):
            if i % 3:
                self.assertEqual(recv_exactly(sock, len(b"ping %d" % i)), b"ping %d" % i)
        self.assert_silent(socks[0], 0.5)
        self.proxy.resume()
        for i in range(0, 200, 3):
            self.assertEqual(recv_exactly(socks[i], len(b"ping %d" % i)), b"ping %d" % i)

    def test_stop_closes_everything(self):
        sock = self.connect("x")
        self.proxy.stop()
        self.assertEqual(sock.recv(1), b"")
        self.assertTrue(self.upstream.sessions[0]["closed"].wait(2))
        self.assertFalse(self.proxy.connections()[0].open)



class SnifferTest(unittest.TestCase):
    """The startup sniffer copes with messages split at any byte."""

    def sniff_bytewise(self, exchange):
        proxy, conn = BlackholeProxy("127.0.0.1", 0, "127.0.0.1", 0), _Conn(1, None, None)
        for side, data in exchange:
            for i in range(len(data)):
                if conn.phase != "done":
                    proxy._sniff(conn, side, data[i:i + 1])
        return conn

    def test_gssenc_then_ssl_then_startup(self):
        conn = self.sniff_bytewise([("c", GSSENC_REQUEST), ("u", b"N"), ("c", SSL_REQUEST),
                                    ("u", b"N"), ("c", startup_message("bob", "x-listener"))])
        self.assertEqual((conn.phase, conn.application_name, conn.user),
                         ("done", "x-listener", "bob"))

    def test_gssenc_accepted_is_opaque(self):
        conn = self.sniff_bytewise([("c", GSSENC_REQUEST), ("u", b"G"),
                                    ("c", startup_message("bob", "x"))])
        self.assertEqual((conn.phase, conn.application_name, conn.user), ("done", None, None))


if __name__ == "__main__":
    unittest.main()
