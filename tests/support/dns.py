"""A tiny DNS server on loopback whose A records a test changes while it runs: it
stands in for Docker's embedded DNS when nginx looks the API replicas up."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from collections.abc import Iterator

__all__ = ["DnsServer"]

_A, _IN = 1, 1
_NXDOMAIN = 3


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        query, sock = self.request
        answer = self.server.dns.answer(query)
        if answer is not None:
            with contextlib.suppress(OSError):  # the server closed meanwhile
                sock.sendto(answer, self.client_address)


class _Server(socketserver.ThreadingUDPServer):
    daemon_threads = True

    def __init__(self, dns: DnsServer) -> None:
        self.dns = dns
        super().__init__(("127.0.0.1", 0), _Handler)


class DnsServer:
    """Answers A queries from ``records`` (name -> IPv4 addresses) with a 1 s TTL; an
    unknown name is NXDOMAIN, any other record type an empty answer."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.queries: list[str] = []
        self._server = _Server(self)

    @property
    def address(self) -> str:
        port = self._server.server_address[1]
        return f"127.0.0.1:{port}"

    def answer(self, query: bytes) -> bytes | None:
        if len(query) < 12:
            return None
        qid, _flags, qdcount = struct.unpack("!HHH", query[:6])
        if qdcount != 1:
            return None
        labels, pos = [], 12
        while pos < len(query) and (length := query[pos]):
            labels.append(query[pos + 1 : pos + 1 + length].decode("ascii", "replace"))
            pos += 1 + length
        qtype, _qclass = struct.unpack("!HH", query[pos + 1 : pos + 5])
        question = query[12 : pos + 5]
        name = ".".join(labels).lower()
        self.queries.append(name)
        addresses = self.records.get(name)
        if addresses is None:
            return struct.pack("!HHHHHH", qid, 0x8180 | _NXDOMAIN, 1, 0, 0, 0) + question
        found = addresses if qtype == _A else []
        head = struct.pack("!HHHHHH", qid, 0x8180, 1, len(found), 0, 0)
        # Each answer names the question by a pointer to offset 12.
        body = b"".join(
            struct.pack("!HHHIH", 0xC00C, _A, _IN, 1, 4) + socket.inet_aton(a) for a in found
        )
        return head + question + body

    @contextlib.contextmanager
    def running(self) -> Iterator[DnsServer]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join(5)
