#!/usr/bin/env python3
"""bench/fanout_floor: the cost floor of a fan-out on this machine, for bench/livestream.

Accepts N WebSocket clients (answers 101 without any checks: the C receiver does not verify
it), then for every HTTP request on the trigger port sends the request body as one text frame
to every client with a bare send() loop (no framework, no queues, no allocation per socket),
answers 200 and closes. What remains is the kernel's per-socket cost of a loopback write.
Usage: fanout_floor.py WS_PORT TRIGGER_PORT N   (prints "ready" once listening)
"""
import socket
import sys

ws_port, trig_port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])


def listener(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(4096)
    return s


L, T = listener(ws_port), listener(trig_port)
print("ready", flush=True)
conns = []
while len(conns) < n:
    c, _ = L.accept()
    c.recv(8192)
    c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conns.append(c)
while True:
    t, _ = T.accept()
    data = b""
    while b"\r\n\r\n" not in data:
        data += t.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    clen = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            clen = int(v)
    while len(body) < clen:
        body += t.recv(65536)
    hdr = bytes([0x81, len(body)]) if len(body) < 126 else bytes([0x81, 126, len(body) >> 8, len(body) & 255])
    frame = hdr + body
    for c in conns:
        c.send(frame)
    t.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    t.close()
