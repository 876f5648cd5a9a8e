"""A software null-modem cable: two pseudo-terminals whose bytes are cross-copied.

Both ends are real tty device paths, so the bridge node and a board (the Python
board emulator, the simulator, or the firmware under simavr) each open "their"
serial port by path exactly as on the car. ``unplug()``/``replug()`` cut and
restore the link to exercise reconnect logic. (What ``socat pty pty`` does,
without the extra process.)
"""
from __future__ import annotations

import os
import select
import threading
import tty


class NullModem:
    def __init__(self):
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._open_pair("a")
        self._open_pair("b")
        self.connected = True
        self.bytes_a_to_b = 0
        self.bytes_b_to_a = 0
        self._thread = threading.Thread(target=self._pump, name="null-modem", daemon=True)

    def _open_pair(self, side: str) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line discipline: binary frames pass untouched
        os.set_blocking(master, False)
        setattr(self, f"_{side}_master", master)
        setattr(self, f"_{side}_slave", slave)  # kept open so the device stays alive
        setattr(self, f"path_{side}", os.ttyname(slave))

    def start(self) -> "NullModem":
        self._thread.start()
        return self

    def _pump(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                fds = [self._a_master, self._b_master]
            try:
                ready, _, _ = select.select(fds, [], [], 0.05)
            except (OSError, ValueError):
                continue
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except (BlockingIOError, OSError):
                    continue
                if not data or not self.connected:
                    continue  # unplugged: bytes fall on the floor like a pulled cable
                dst = self._b_master if fd == self._a_master else self._a_master
                try:
                    os.write(dst, data)
                except (BlockingIOError, OSError):
                    continue
                if fd == self._a_master:
                    self.bytes_a_to_b += len(data)
                else:
                    self.bytes_b_to_a += len(data)

    def unplug(self) -> None:
        self.connected = False

    def replug(self) -> None:
        self.connected = True

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)
        for name in ("_a_master", "_a_slave", "_b_master", "_b_slave"):
            try:
                os.close(getattr(self, name))
            except OSError:
                pass

    def __enter__(self) -> "NullModem":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
