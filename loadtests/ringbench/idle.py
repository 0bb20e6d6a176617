"""Idle keep-alive connections: the memory a proxy spends per connection it holds open.

Opens N HTTP/1.1 connections to the proxy, sends one keep-alive request on
each, reads the whole response, and leaves the connection idle. The proxy's
RSS is read before the first connection and after the last response; the
difference divided by the connections held is KiB per idle connection.
Everything is bounded by a deadline, and every socket is closed afterwards
(with SO_LINGER 0, so that 10,000 sockets do not linger in TIME_WAIT).
"""

import errno
import selectors
import socket
import struct
import time

REQUEST = b"GET /small HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
IN_FLIGHT = 256  # connections being opened at once


def _response_complete(buf):
    """True once `buf` holds a whole 200 response (Content-Length or chunked)."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    head = bytes(buf[:end]).lower()
    if not head.startswith((b"http/1.1 200", b"http/1.0 200")):
        raise ValueError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    body = len(buf) - end - 4
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip() == b"content-length":
            return body >= int(value)
    if b"transfer-encoding: chunked" in head:
        return buf.endswith(b"0\r\n\r\n")
    raise ValueError("response without Content-Length")


def _close(sock):
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


def _still_open(sock):
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return data != b""  # b"" is the peer's FIN


def open_idle(port, count, deadline):
    """Open up to `count` idle keep-alive connections before `deadline` (monotonic).

    Returns (idle sockets, failures, first failure message).
    """
    sel = selectors.DefaultSelector()
    idle, failures, first_error = [], 0, None
    started = 0
    try:
        while len(idle) + failures < count and time.monotonic() < deadline:
            while started < count and len(sel.get_map()) < IN_FLIGHT:
                started += 1
                try:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                except OSError as e:  # EMFILE: out of file descriptors
                    failures += 1
                    first_error = first_error or f"socket: {e}"
                    continue
                sock.setblocking(False)
                err = sock.connect_ex(("127.0.0.1", port))
                if err not in (0, errno.EINPROGRESS):
                    failures += 1
                    first_error = first_error or f"connect: {errno.errorcode.get(err, err)}"
                    _close(sock)
                    continue
                sel.register(sock, selectors.EVENT_WRITE, bytearray())
            for key, _ in sel.select(timeout=0.2):
                sock, buf = key.fileobj, key.data
                try:
                    if key.events == selectors.EVENT_WRITE:
                        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            raise OSError(err, errno.errorcode.get(err, str(err)))
                        sock.send(REQUEST)  # 42 bytes: one send on a fresh socket
                        sel.modify(sock, selectors.EVENT_READ, buf)
                        continue
                    data = sock.recv(65536)
                    if not data:
                        raise OSError("closed before the response was complete")
                    buf += data
                    if _response_complete(buf):
                        sel.unregister(sock)
                        idle.append(sock)
                except (OSError, ValueError) as e:
                    failures += 1
                    first_error = first_error or str(e)
                    sel.unregister(sock)
                    _close(sock)
    finally:
        for key in list(sel.get_map().values()):
            failures += 1
            _close(key.fileobj)
        sel.close()
    if len(idle) + failures < count:
        first_error = first_error or "deadline reached"
    return idle, failures, first_error


def measure(server, count, timeout_s):
    """Open `count` idle connections to `server`; report RSS before/after and KiB each."""
    group = server.group()
    before = group.rss_kib()
    t0 = time.monotonic()
    idle, failures, error = open_idle(server.port, count, t0 + timeout_s)
    try:
        after = group.rss_kib()
        seconds = time.monotonic() - t0
        still_open = sum(_still_open(s) for s in idle)
    finally:
        for sock in idle:
            _close(sock)
    held = len(idle)
    return {
        "requested": count,
        "opened": held,
        "failed": failures,
        "still_open": still_open,
        "error": error,
        "seconds": round(seconds, 2),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_conn": round((after - before) / held, 2) if held else None,
        "flagged": bool(failures or still_open < held),
    }
