"""A TCP proxy for PostgreSQL that can silently "black-hole" chosen connections.

Used by chaos tests of consentd: point the service at the proxy instead of at
PostgreSQL, then call ``blackhole(predicate)`` to simulate a network partition
for some connections (e.g. only the LISTEN connections) while the others keep
working. A black-holed connection stays open on both sides, but the proxy stops
reading from both sockets, so TCP flow control stalls the peers; nothing is
closed and no error is seen. ``resume()`` delivers whatever was held.

The proxy sniffs (never alters) the startup sequence to learn ``application_name``
and ``user``: an optional SSLRequest/GSSENCRequest, the server's one-byte answer
('N' means a plaintext StartupMessage follows; 'S'/'G' means encrypted, so the
name stays None), then the StartupMessage. Bytes are forwarded exactly.

    proxy = BlackholeProxy("127.0.0.1", 0, "127.0.0.1", 5432); proxy.start()
    proxy.blackhole(lambda c: (c.application_name or "").endswith("-listener"))
    ...; proxy.resume(); proxy.stop()

Standard library only. One accept thread (blocking connect to upstream) and one
selector thread that does all forwarding; all state is guarded by one lock.
A black-holed client that hangs up is noticed (without reading it, via TCP_INFO
on Linux) and its upstream closed; an upstream hang-up is only seen after resume().
"""
import collections
import itertools
import selectors
import socket
import struct
import threading
import time

Connection = collections.namedtuple(
    "Connection",
    "id application_name user opened_at bytes_up bytes_down blackholed open")

SSL_REQUEST, GSSENC_REQUEST, PROTOCOL_3 = 80877103, 80877104, 196608
CHUNK = 65536        # max bytes per recv
HOLD_LIMIT = 262144  # max bytes buffered per direction before we stop reading
PEER_CHECK = 0.25    # how often black-holed clients are checked for a hang-up
R, W = selectors.EVENT_READ, selectors.EVENT_WRITE


def _peer_gone(sock):
    """Has the peer closed? Answered without reading any data (Linux TCP_INFO)."""
    try:
        if hasattr(socket, "TCP_INFO"):  # tcpi_state: 7 = CLOSE, 8 = CLOSE_WAIT
            return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0] in (7, 8)
        return sock.recv(1, socket.MSG_PEEK) == b""  # fallback: sees EOF only if no data is pending
    except BlockingIOError:
        return False
    except OSError:
        return True


class _Conn:
    def __init__(self, cid, client, upstream):
        self.id, self.opened_at = cid, time.time()
        self.socks = {"c": client, "u": upstream}
        self.out = {"c": bytearray(), "u": bytearray()}  # pending bytes TO each side
        self.eof = {"c": False, "u": False}
        self.mask = {"c": 0, "u": 0}                     # currently registered events
        self.application_name = self.user = None
        self.sent = {"c": 0, "u": 0}                     # bytes delivered to each side
        self.blackholed, self.open = False, True
        self.phase, self.sniff = "first", bytearray()   # first|answer|startup|done

    def snapshot(self):
        return Connection(self.id, self.application_name, self.user, self.opened_at,
                          self.sent["u"], self.sent["c"], self.blackholed, self.open)


class BlackholeProxy:
    def __init__(self, listen_host, listen_port, upstream_host, upstream_port):
        self._listen = (listen_host, listen_port)
        self._upstream = (upstream_host, upstream_port)
        self._lock = threading.RLock()
        self._conns, self._new, self._rules = {}, [], []  # rules: predicates (None = all)
        self._ids = itertools.count(1)
        self._stopping = self._io_stopping = self._dirty = False
        self.port = None

    def start(self):
        self._listener = socket.create_server(self._listen, backlog=1024)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, R, None)
        self._threads = [threading.Thread(target=target, name="blackhole-proxy", daemon=True)
                         for target in (self._accept_loop, self._io_loop)]
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        """Stop accepting, then close every connection (both sockets)."""
        self._stopping = True
        self._threads[0].join(timeout=10)  # accept thread first: no conns added after
        self._listener.close()
        self._io_stopping = True
        self._wake()
        self._threads[1].join(timeout=10)

    def connections(self):
        with self._lock:
            return [c.snapshot() for c in self._conns.values()]

    def blackhole(self, predicate=None):
        """Stall current and future connections matching predicate(snapshot) (all if None)."""
        with self._lock:
            self._rules.append(predicate)
            hit = [c for c in self._conns.values()
                   if c.open and not c.blackholed and (predicate is None or
                   (c.phase == "done" and self._call(predicate, c)))]
            for c in hit:
                c.blackholed = True
            self._dirty = True
        self._wake()
        return len(hit)

    def resume(self):
        """Forward again on every black-holed connection; stop black-holing new ones."""
        with self._lock:
            self._rules = []
            hit = [c for c in self._conns.values() if c.open and c.blackholed]
            for c in hit:
                c.blackholed = False
            self._dirty = True
        self._wake()
        return len(hit)

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except OSError:  # buffer full (a wake-up is already pending) or closed
            pass

    @staticmethod
    def _call(predicate, c):
        try:
            return bool(predicate(c.snapshot()))
        except Exception:
            return False

    def _accept_loop(self):
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            for s in (client, upstream):
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                c = _Conn(next(self._ids), client, upstream)
                c.blackholed = None in self._rules  # black-hole-all: from the first byte
                self._conns[c.id] = c
                self._new.append(c)
            self._wake()

    def _io_loop(self):
        last_check = 0.0
        while not self._io_stopping:
            events = self._sel.select(PEER_CHECK)
            with self._lock:
                for key, mask in events:
                    if key.data is None:
                        self._wake_r.recv(4096)  # only ever reported when readable
                    elif key.data[0].open:
                        self._handle(*key.data, mask)
                new, self._new = self._new, []
                for c in new:
                    self._update(c)
                if self._dirty:
                    self._dirty = False
                    for c in self._conns.values():
                        self._update(c)
                if time.monotonic() - last_check >= PEER_CHECK:
                    last_check = time.monotonic()
                    for c in list(self._conns.values()):
                        if c.open and c.blackholed and _peer_gone(c.socks["c"]):
                            self._close(c)  # dead client: don't keep its backend alive
        with self._lock:
            for c in self._conns.values():
                self._close(c)
            self._sel.close()
            self._wake_r.close()
            self._wake_w.close()

    def _handle(self, c, side, mask):
        if c.blackholed:
            return
        other, sock = ("u" if side == "c" else "c"), c.socks[side]
        try:
            if mask & W and c.out[side]:
                n = sock.send(c.out[side])
                del c.out[side][:n]
                c.sent[side] += n
            if mask & R:
                data = sock.recv(CHUNK)
                if not data:
                    c.eof[side] = True
                else:
                    c.out[other] += data
                    if c.phase != "done":
                        self._sniff(c, side, data)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            return self._close(c)
        if (c.eof["c"] and not c.out["u"]) or (c.eof["u"] and not c.out["c"]):
            return self._close(c)  # one side hung up and everything it sent is delivered
        self._update(c)

    def _sniff(self, c, side, data):
        """Follow the startup sequence; never changes what is forwarded."""
        if side == "u":
            if c.phase == "answer":  # server's one-byte answer to SSL/GSSENC request
                if data[:1] == b"N":
                    c.phase = "first"  # plaintext: another request or the startup follows
                    self._sniff(c, "c", b"")
                else:
                    self._startup_known(c)  # 'S'/'G' (encrypted) or an error: opaque
            return
        c.sniff += data
        if len(c.sniff) > HOLD_LIMIT:
            return self._startup_known(c)  # not a startup sequence we understand
        if c.phase == "first" and len(c.sniff) >= 8:
            length, code = struct.unpack("!ii", c.sniff[:8])
            if length == 8 and code in (SSL_REQUEST, GSSENC_REQUEST):
                del c.sniff[:8]
                c.phase = "answer"
            else:
                c.phase = "startup"
        if c.phase == "startup" and len(c.sniff) >= 8:
            length, code = struct.unpack("!ii", c.sniff[:8])
            if not 8 <= length <= HOLD_LIMIT:
                return self._startup_known(c)  # not something we understand
            if len(c.sniff) >= length:
                if code == PROTOCOL_3:
                    fields = bytes(c.sniff[8:length]).split(b"\0")
                    params = {k.decode("utf-8", "replace"): v.decode("utf-8", "replace")
                              for k, v in zip(fields[0::2], fields[1::2])}
                    c.application_name, c.user = params.get("application_name"), params.get("user")
                self._startup_known(c)

    def _startup_known(self, c):
        c.phase, c.sniff = "done", None
        if not c.blackholed and any(p is None or self._call(p, c) for p in self._rules):
            c.blackholed = True

    def _update(self, c):
        """Register exactly the events this connection should wait for now."""
        for side, other in (("c", "u"), ("u", "c")):
            want = 0
            if c.open and not c.blackholed:
                if not c.eof[side] and len(c.out[other]) < HOLD_LIMIT:
                    want |= R
                if c.out[side]:
                    want |= W
            have, sock = c.mask[side], c.socks[side]
            if want != have:
                if not have:
                    self._sel.register(sock, want, (c, side))
                elif not want:
                    self._sel.unregister(sock)
                else:
                    self._sel.modify(sock, want, (c, side))
                c.mask[side] = want

    def _close(self, c):
        if not c.open:
            return
        c.open = False
        for side, sock in c.socks.items():
            if c.mask[side]:
                self._sel.unregister(sock)
                c.mask[side] = 0
            sock.close()
        c.out = {"c": bytearray(), "u": bytearray()}
