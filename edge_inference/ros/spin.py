"""The one ``main()`` body every node executable shares: init, spin, destroy, shutdown."""
from __future__ import annotations

import functools
import threading

import rclpy
import rclpy.executors
import rclpy.logging


def spin_node(node_class, args=None) -> None:
    """Run one node on a single-threaded executor until Ctrl-C or shutdown.

    Every callback here is short; the slow work has its own thread (policy inference,
    the bridge's serial reader). Measured with the pwm bridge sharing its process with
    other busy Python threads (board emulator, a 30 Hz publisher; Kilted wheels, 2-core
    x86, 8 s): SingleThreadedExecutor send-timer gaps p99 21 ms, max 32 ms;
    MultiThreadedExecutor p99 389 ms, max 549 ms and 58 % of the ticks, enough to trip
    the board's 250 ms watchdog. Alone in its process the bridge kept 50 Hz with either.
    """
    rclpy.init(args=args)
    try:
        node = node_class()
    except (ValueError, RuntimeError, OSError) as exc:
        # a model, parameter or device the node cannot start with: one line, not a traceback
        rclpy.logging.get_logger(node_class.__name__).fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        raise SystemExit(1) from None
    executor = rclpy.executors.SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


def spin_in_threads(executors) -> tuple[threading.Event, list[threading.Thread]]:
    """Spin each executor in a thread until the returned event is set (clean stop: no shutdown race)."""
    stop = threading.Event()

    def loop(ex) -> None:
        while not stop.is_set():
            ex.spin_once(timeout_sec=0.05)

    threads = [threading.Thread(target=loop, args=(ex,), daemon=True) for ex in executors]
    for t in threads:
        t.start()
    return stop, threads


def destroy_on_failure(init):
    """Decorate a node's ``__init__``: when it raises after ``Node.__init__``, destroy the node at once.

    Otherwise rclpy's context keeps tracking the half-built node and destroys it at shutdown, after
    the executor and the other nodes are gone; with rclpy on Python 3.12 that crashed the process
    (a segfault in ``Node.destroy_node``) instead of letting the one-line error through.
    """
    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except BaseException as failure:
            if getattr(self, "_Node__node", None) is not None:  # the rcl node exists: the context tracks it
                try:
                    self.destroy_node()
                except Exception as exc:  # noqa: BLE001 - the constructor's error is the one to report
                    failure.add_note(f"(destroying the half-built node also failed: {exc!r})")
            raise
    return wrapper
