"""Signals that ask a run to end: each behaves like Ctrl-C.

SIGINT (Ctrl-C), SIGTERM (``kill``, a container stopping), SIGHUP (the terminal closed) and the
other catchable signals whose default would kill the process (SIGQUIT, SIGUSR1/2, SIGALRM,
SIGVTALRM, SIGPROF, SIGXCPU, SIGIO, SIGPWR) raise :class:`Interrupted`, a ``KeyboardInterrupt``,
so every path that keeps the last good image and removes temporary files on Ctrl-C does the same
for them. A run so ended exits ``128 + signal`` (130 for Ctrl-C, 143 for SIGTERM, 129 for
SIGHUP), the shell's convention, so a caller can tell which signal it was.

Only signals at their default action are taken over: one that is ignored (``nohup`` ignores
SIGHUP) stays ignored, and a handler that an embedding program installed is left alone.
While the files of a result are written, :func:`held` defers all of them until the set is whole
(one still at its default action then ends the process as it would have, the files complete).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

NAMES = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGVTALRM",
         "SIGPROF", "SIGXCPU", "SIGIO", "SIGPWR")
ENDING = tuple(dict.fromkeys(getattr(signal, n) for n in NAMES if hasattr(signal, n)))


class Interrupted(KeyboardInterrupt):
    """A signal (``signum``) asked the run to end."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__()
        self.signum = int(signum)


def name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_code(exc: BaseException | None = None) -> int:
    """128 + the signal that ended the run (SIGINT for a plain ``KeyboardInterrupt``)."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


_last = [signal.SIGINT]


def last() -> int:
    """The signal that most recently ended a run here (SIGINT if none did)."""
    return _last[0]


def _raise(signum, frame):
    _last[0] = signum
    raise Interrupted(signum)


def _ours(handler) -> bool:
    return handler in (_raise, signal.default_int_handler)


@contextlib.contextmanager
def as_interrupts():
    """For the block, every ending signal at its default action raises :class:`Interrupted`."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals only reach the main thread
        return
    previous = {}
    _last[0] = signal.SIGINT
    for sig in ENDING:
        current = signal.getsignal(sig)
        if current == signal.SIG_DFL or (sig == signal.SIGINT and current is signal.default_int_handler):
            previous[sig] = current
            signal.signal(sig, _raise)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def held():
    """Defer the ending signals (those raising ``Interrupted``/``KeyboardInterrupt``) for the
    block; yields a list that holds each signal that came, in order."""
    got: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield got
        return
    previous = {}
    for sig in ENDING:
        current = signal.getsignal(sig)
        if _ours(current) or current == signal.SIG_DFL:
            previous[sig] = current
            signal.signal(sig, lambda s, f: got.append(s))
    try:
        yield got
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sig in got:  # one that would have killed the process does so now, the files whole
            if previous.get(sig) == signal.SIG_DFL:
                os.kill(os.getpid(), sig)
