"""A one-request Kafka client: asks a broker which brokers are live.

An open TCP port only means the socket server is up; a Metadata answer listing every
broker means the node has caught up with the controller quorum and is unfenced, which
is what a producer needs. Written against the wire protocol so the package keeps to the
standard library. Metadata v4 (non-flexible) is served by Kafka 1.0 through 4.x.
"""

from __future__ import annotations

import socket
import struct

_METADATA = 3
_VERSION = 4
_CLIENT_ID = b"pearls-infra"


def _request(correlation_id: int) -> bytes:
    header = struct.pack(">hhih", _METADATA, _VERSION, correlation_id, len(_CLIENT_ID))
    # topics: empty array = "no topics" (v1+); allow_auto_topic_creation: false.
    body = struct.pack(">ib", 0, 0)
    payload = header + _CLIENT_ID + body
    return struct.pack(">i", len(payload)) + payload


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


def _parse_broker_ids(data: bytes, correlation_id: int) -> list[int]:
    offset = 0

    def take(fmt: str) -> int:
        nonlocal offset
        (value,) = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return int(value)

    def skip_string() -> None:
        nonlocal offset
        length = take(">h")
        offset += max(length, 0)

    if take(">i") != correlation_id:
        raise ConnectionError("unexpected correlation id")
    take(">i")  # throttle_time_ms
    ids = []
    for _ in range(take(">i")):
        ids.append(take(">i"))
        skip_string()  # host
        take(">i")  # port
        skip_string()  # rack (nullable)
    return ids


def live_broker_ids(host: str, port: int, timeout: float = 2.0) -> list[int] | None:
    """Node ids the broker at host:port reports as live, or None when it does not answer."""
    correlation_id = 1
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_request(correlation_id))
            (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
            return _parse_broker_ids(_recv_exactly(sock, size), correlation_id)
    except (OSError, struct.error):
        return None
