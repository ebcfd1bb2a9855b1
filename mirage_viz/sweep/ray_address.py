"""Is there a Ray cluster at an address? Asked as Ray's own driver first asks, within seconds and interruptibly.

``HOST:PORT`` names a cluster's GCS: the check makes the call a driver makes first,
``ray.rpc.NodeInfoGcsService/GetClusterId``, as one gRPC call written directly as HTTP/2 frames on a socket (Ray
does not ship grpcio), and only a GCS answers it with a cluster id. ``ray://HOST:PORT`` names a Ray Client server:
it must answer the gRPC (HTTP/2) handshake. Every wait is a socket read with a deadline, which SIGTERM and Ctrl-C
interrupt at once, unlike ``ray.init``, whose C++ retries hold Python's signal handlers off for minutes.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

__all__ = ["ADDRESS_TIMEOUT_S", "check_ray_address"]

ADDRESS_TIMEOUT_S = 5.0  # the whole check: connect, handshake and the call
ACCEPTED = "start one with `ray start --head`, check the address, or leave --address out to start a local Ray"
_CLUSTER_ID_CALL = "/ray.rpc.NodeInfoGcsService/GetClusterId"
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # what an HTTP/2 client sends first
_DATA, _HEADERS, _RST_STREAM, _SETTINGS, _PING, _GOAWAY = 0, 1, 3, 4, 6, 7  # HTTP/2 frame types
_END_STREAM = _ACK = 0x1
_END_HEADERS, _PADDED = 0x4, 0x8
_MAX_FRAME = 16_384  # the largest frame a server may send a client that did not ask for more


class _NotRay(Exception):
    """The address answers, but not as Ray would; the message says how it answered."""


def check_ray_address(address: str, timeout_s: float = ADDRESS_TIMEOUT_S) -> None:
    """Refuse, within ``timeout_s``, an address where no Ray cluster answers: nothing listening, a server of
    another kind (a web server, say), or one that stays silent. A ``ValueError`` names the address and what is
    accepted."""
    host, port = _host_port(address)
    deadline = time.monotonic() + timeout_s
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as connection:
            if address.startswith("ray://"):
                _answer_handshake(connection, deadline)
            else:
                _answer_cluster_id(connection, f"{host}:{port}", deadline)
    except TimeoutError:
        raise ValueError(f"no Ray cluster answers at {address} (nothing answered within {timeout_s:g} s); "
                         f"{ACCEPTED}") from None
    except OSError as error:
        raise ValueError(f"no Ray cluster answers at {address} ({error.strerror or error}); {ACCEPTED}") from None
    except _NotRay as error:
        raise ValueError(f"{address} is not a Ray cluster ({error}); {ACCEPTED}") from None


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"Ray address {address!r} is not HOST:PORT (such as 10.0.0.5:6379, or ray://HOST:10001 for "
                         "Ray Client); leave --address out to start a local Ray")
    return host.removeprefix("[").removesuffix("]"), int(port)  # [::1]:6379 is IPv6


def _answer_handshake(connection: socket.socket, deadline: float) -> None:
    """A gRPC server answers the HTTP/2 preface with its settings (the first frame :func:`_frames` checks)."""
    connection.sendall(_PREFACE + _frame(_SETTINGS, 0, 0))
    next(_frames(connection, deadline))


def _answer_cluster_id(connection: socket.socket, authority: str, deadline: float) -> None:
    """Call GetClusterId on stream 1 and read the reply: a GCS returns a status of OK and its cluster id."""
    from ray import ClusterID
    from ray.core.generated.gcs_service_pb2 import GetClusterIdReply

    headers = {":method": "POST", ":scheme": "http", ":path": _CLUSTER_ID_CALL, ":authority": authority,
               "content-type": "application/grpc", "te": "trailers", **_token_header()}
    block = b"".join(b"\x00" + _string(name) + _string(value) for name, value in headers.items())  # HPACK literals
    empty_request = b"\x00" + (0).to_bytes(4, "big")  # gRPC message: not compressed, 0 bytes
    connection.sendall(_PREFACE + _frame(_SETTINGS, 0, 0) + _frame(_HEADERS, _END_HEADERS, 1, block)
                       + _frame(_DATA, _END_STREAM, 1, empty_request))
    message = b""
    for kind, flags, stream, payload in _frames(connection, deadline):
        if kind in (_SETTINGS, _PING) and not flags & _ACK:
            connection.sendall(_frame(kind, _ACK, 0, payload if kind == _PING else b""))
        elif kind == _GOAWAY or (kind == _RST_STREAM and stream == 1):
            raise _NotRay("it ended the call unanswered")
        elif kind == _DATA and stream == 1:
            message += payload[1:len(payload) - payload[0]] if flags & _PADDED else payload
            if len(message) >= 5 and len(message) >= 5 + int.from_bytes(message[1:5], "big"):
                break
        if stream == 1 and kind in (_DATA, _HEADERS) and flags & _END_STREAM:
            break
    try:
        reply = GetClusterIdReply.FromString(message[5:])
    except Exception:  # noqa: BLE001 - protobuf's DecodeError: any unreadable reply means the same
        reply = GetClusterIdReply()
    if message[:1] != b"\x00" or reply.status.code != 0 or len(reply.cluster_id) != ClusterID.size():
        raise _NotRay("it speaks gRPC, but gave no Ray cluster id: another service, or one that refused this "
                      "machine's Ray token")


def _frames(connection: socket.socket, deadline: float) -> Iterator[tuple[int, int, int, bytes]]:
    """The server's HTTP/2 frames as (type, flags, stream, payload); a server whose first frame is not its
    settings does not speak HTTP/2, and says so in its first line."""
    buffer, first = b"", True
    while True:
        length = int.from_bytes(buffer[:3], "big")
        if len(buffer) >= 9 and first and (buffer[3] != _SETTINGS or length > _MAX_FRAME):
            line = buffer.splitlines()[0][:60].decode("latin-1")
            raise _NotRay(f"it does not speak gRPC; it answered {line!r}")
        if len(buffer) >= 9 and len(buffer) >= 9 + length:
            yield buffer[3], buffer[4], int.from_bytes(buffer[5:9], "big") & 0x7FFF_FFFF, buffer[9:9 + length]
            buffer, first = buffer[9 + length:], False
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        connection.settimeout(remaining)
        chunk = connection.recv(65_536)
        if not chunk:
            raise _NotRay("it closed the connection" + (f" after {buffer[:60]!r}" if buffer else " without a word"))
        buffer += chunk


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + stream.to_bytes(4, "big") + payload


def _string(text: str) -> bytes:
    """An HPACK string literal, not Huffman coded: its length as an integer with a 7-bit prefix, then the bytes."""
    data, length = text.encode(), len(text.encode())
    if length < 127:
        return bytes((length,)) + data
    prefix, length = bytearray((127,)), length - 127
    while length >= 128:
        prefix.append(length % 128 + 128)
        length //= 128
    return bytes(prefix) + bytes((length,)) + data


def _token_header() -> dict[str, str]:
    """The authorization header ``ray.init`` would send: this machine's Ray token, where it has one."""
    from ray._raylet import AuthenticationTokenLoader
    from ray.exceptions import AuthenticationError

    try:
        header = AuthenticationTokenLoader.instance().get_token_for_http_header(ignore_auth_mode=True)
    except AuthenticationError:
        return {}
    return {name.lower(): value for name, value in header.items()}
