#!/usr/bin/env python3
"""Test helper: the receiving end of the OCI console socket protocol (runc's
--console-socket). Listens on ARGV[1], takes one pty master by SCM_RIGHTS, writes INPUT
(ARGV[2]) to it, then copies what the container prints to stdout until it hangs up."""
import os
import socket
import sys

path, text = sys.argv[1], sys.argv[2]
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(1)
print("listening", flush=True)
conn, _ = srv.accept()
msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
master = fds[0]
print("got", msg.decode(), flush=True)
os.write(master, text.encode())
out = b""
while True:
    try:
        chunk = os.read(master, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
sys.stdout.write(out.decode(errors="replace"))
