"""Work the app does beside the assistant: below its priority, and never outliving the app.

The assistant transcribes its user in real time on the same computer, so every process the app
starts (the training worker, the warm-up) and every thread of the server that decodes in the
background (re-scoring after a deploy) runs below normal priority: when both want a core, the
assistant gets it.

A helper process also ends with the app however the app ends (Ctrl+C, SIGTERM, SIGHUP, a closed
console window, a crash): the app holds the write end of a pipe that is the helper's stdin, and the
operating system closes it when the app's process is gone, whatever ended it, on Windows as on Linux.
The helper reads end-of-file and stops: its own clean-up runs first (temporary folders), and a few
seconds later it exits whatever it was doing. No signal handler, so nothing here is POSIX-only.
"""
from __future__ import annotations

import _thread
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

# How far below normal: a nice value on Linux and macOS; Windows has one class for it.
NICENESS = 10
_WINDOWS_BELOW_NORMAL_CLASS = 0x00004000
_WINDOWS_THREAD_BELOW_NORMAL = -1
# After the app is gone, how long a helper's clean-up may take before it exits regardless.
CLEANUP_GRACE_S = 3.0
_lowered = False


def start_helper(args: list[str], **popen: Any) -> subprocess.Popen:
    """Start a helper process below normal priority, ending when this process ends (see end_with_app)."""
    flags = getattr(subprocess, "BELOW_NORMAL_PRIORITY_CLASS", 0)  # Windows sets it at creation
    process = subprocess.Popen(args, stdin=subprocess.PIPE, creationflags=flags, **popen)
    if hasattr(os, "setpriority"):  # elsewhere at once from here (no preexec_fn: it is not thread-safe)
        try:
            os.setpriority(os.PRIO_PROCESS, process.pid, NICENESS)
        except OSError:
            pass  # a priority we may not change only costs the assistant some speed
    return process


def stop_helper(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """End a helper: closing its stdin lets it clean up as when the app ends; force after `timeout`."""
    try:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        process.kill()
        process.wait()


def end_with_app() -> None:
    """In a helper started by start_helper: stop once the app's end of stdin closes. The main thread gets a
    KeyboardInterrupt, so `with` blocks remove what they made; after CLEANUP_GRACE_S the process exits."""
    # The interruption below is Python's Ctrl+C; a parent that ignored SIGINT (a background job of a
    # script) would have passed its "ignore" on, and the clean-up would not run.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def watch() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        _thread.interrupt_main()
        time.sleep(CLEANUP_GRACE_S)
        os._exit(1)

    threading.Thread(target=watch, name="end-with-app", daemon=True).start()


def lower_this_process() -> None:
    """Below normal priority for the rest of this process (the training worker, `main.py train`); once."""
    global _lowered
    if _lowered:
        return
    _lowered = True
    try:
        if hasattr(os, "nice"):
            os.nice(NICENESS)
        elif sys.platform == "win32":
            import ctypes

            kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
            kernel32.SetPriorityClass(kernel32.GetCurrentProcess(), _WINDOWS_BELOW_NORMAL_CLASS)
    except OSError:
        pass  # a priority we may not change only costs the assistant some speed


def lower_this_thread() -> None:
    """Below normal priority for the calling thread of the server (which itself stays at normal priority, so
    the pages stay quick). On Linux each thread has its own nice value, inherited by the threads it starts
    (a decoder's own); elsewhere only Windows can lower one thread."""
    try:
        if sys.platform.startswith("linux"):
            thread = threading.get_native_id()
            # Never raised: a process already below normal (a niced server) keeps its threads there.
            os.setpriority(os.PRIO_PROCESS, thread, max(NICENESS, os.getpriority(os.PRIO_PROCESS, thread)))
        elif sys.platform == "win32":
            import ctypes

            kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
            kernel32.SetThreadPriority(kernel32.GetCurrentThread(), _WINDOWS_THREAD_BELOW_NORMAL)
    except OSError:
        pass
