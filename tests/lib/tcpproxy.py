#!/usr/bin/env python3
"""tests/lib/tcpproxy.py - a TCP proxy that tests can cut and restore.

    tcpproxy.py LISTEN-PORT TARGET-HOST TARGET-PORT READY-FILE

Forwards connections on 127.0.0.1:LISTEN-PORT to the target.  SIGUSR1 cuts:
every forwarded connection is reset and the listening socket closed (new
connections are refused), as when the server goes down.  SIGUSR2 listens
again.  SIGHUP toggles a stall: nothing is forwarded or accepted (bytes
and connections wait), as when the server hangs.  READY-FILE is written
each time the state changed: "up", "down", "stalled".  SIGTERM ends it.
"""
import os
import select
import signal
import socket
import sys
import threading
import time

port, host, tport, ready = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
lock = threading.Lock()
conns = set()  # guarded by lock
state = {"up": True, "stall": False}


def pump(a, b):
    try:
        while True:
            if state["stall"]:
                time.sleep(0.05)
                continue
            r, _, _ = select.select([a, b], [], [], 0.1)
            for s in r:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            with lock:
                conns.discard(s)
            try:
                s.close()
            except OSError:
                pass


def cut(*_):
    state["up"] = False
    with lock:
        for s in list(conns):
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        conns.clear()


def restore(*_):
    state["up"] = True


def stall(*_):
    state["stall"] = not state["stall"]
    report("stalled" if state["stall"] else "up")


def report(what):
    with open(ready + ".tmp", "w") as f:
        f.write(what)
    os.rename(ready + ".tmp", ready)


signal.signal(signal.SIGUSR1, cut)
signal.signal(signal.SIGUSR2, restore)
signal.signal(signal.SIGHUP, stall)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
while True:
    if not state["up"]:
        report("down")
        while not state["up"]:
            signal.pause()
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(64)
    ls.settimeout(0.1)
    report("up")
    while state["up"]:
        if state["stall"]:
            time.sleep(0.05)
            continue
        try:
            c, _ = ls.accept()
        except (socket.timeout, InterruptedError):
            continue
        try:
            t = socket.create_connection((host, tport), timeout=5)
        except OSError:
            c.close()
            continue
        if not state["up"]:
            c.close()
            t.close()
            break
        c.settimeout(None)
        t.settimeout(None)
        with lock:
            conns.update((c, t))
        threading.Thread(target=pump, args=(c, t), daemon=True).start()
    ls.close()
