"""A TCP relay on 127.0.0.1 that cuts a connection once it has carried a given number of client bytes (a real
connection error in the middle of a request body; TLS passes through untouched), and can pace what clients send
(a slow link, so a test can act while an upload is under way)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

BUFFER = 1 << 16


class CuttingRelay:
    """Relays 127.0.0.1:`port` to `target`; the first `cuts_left` connections that carry more than `cut_after`
    bytes from the client are closed there (both sides), later ones are relayed whole."""

    def __init__(self, target: tuple[str, int], cut_after: int, cuts: int = 1, rate: float | None = None) -> None:
        self.target = target
        self.cut_after = cut_after
        self.cuts_left = cuts
        self.rate = rate  # bytes per second from each client, None: as fast as it comes
        self.cut = 0  # connections cut so far
        self.carried = 0  # client bytes relayed, all connections
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._stopped = False

    def start(self) -> None:
        self._spawn(self._accept)

    def wait_carried(self, n: int, timeout: float = 120.0) -> None:
        """Block until `n` client bytes went through (in total)."""
        with self._progress:
            if not self._progress.wait_for(lambda: self.carried >= n, timeout):
                raise TimeoutError(f"only {self.carried} of {n} bytes went through the relay")

    def stop(self) -> None:
        self._stopped = True
        self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                _close(sock)
        for thread in self._threads:
            thread.join(timeout=10)

    def _spawn(self, fn: object, *args: object) -> None:
        thread = threading.Thread(target=fn, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=30)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            pair = (client, upstream)
            self._spawn(self._pump, client, upstream, pair, True)
            self._spawn(self._pump, upstream, client, pair, False)

    def _pump(self, src: socket.socket, dst: socket.socket, pair: tuple[socket.socket, socket.socket],
              from_client: bool) -> None:
        carried = 0
        started = time.monotonic()
        try:
            while True:
                data = src.recv(BUFFER)
                if not data:
                    dst.shutdown(socket.SHUT_WR)
                    return
                if from_client:
                    carried += len(data)
                    if carried > self.cut_after and self._take_cut():
                        for sock in pair:
                            _close(sock)
                        return
                    if self.rate:
                        # Pacing is the point here: hold the bytes until the link would have carried them.
                        time.sleep(max(0.0, started + carried / self.rate - time.monotonic()))
                dst.sendall(data)
                if from_client:
                    with self._progress:
                        self.carried += len(data)
                        self._progress.notify_all()
        except OSError:
            for sock in pair:
                _close(sock)

    def _take_cut(self) -> bool:
        with self._lock:
            if self.cuts_left <= 0:
                return False
            self.cuts_left -= 1
            self.cut += 1
            return True


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@contextmanager
def cutting_relay(target: tuple[str, int], cut_after: int, cuts: int = 1, rate: float | None = None
                  ) -> Iterator[CuttingRelay]:
    relay = CuttingRelay(target, cut_after, cuts, rate)
    relay.start()
    try:
        yield relay
    finally:
        relay.stop()
