"""The app beside the assistant: its helpers end with it however it ends, and its background work runs below
normal priority. Real processes and real signals (Linux: /proc names a process's parent and niceness)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from tests import tiny_whisper
from tests.conftest import free_port
from utils import background

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
SIGNALS = [signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGKILL]


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name; None once the process is gone (or a zombie)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _gone_within(pids: list[int], seconds: float) -> list[int]:
    """The pids still alive after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_stat(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if _stat(p)]


def _helper_code(scratch: Path) -> str:
    """A helper that makes a temporary folder in `scratch`, says ready, and would work for ten minutes."""
    return textwrap.dedent(f"""
        import sys, tempfile, time
        sys.path.insert(0, {str(ROOT)!r})
        from utils import background
        background.end_with_app()
        with tempfile.TemporaryDirectory(dir={str(scratch)!r}):
            print("ready", flush=True)
            for _ in range(6000):  # work in short steps, as the warm-up's is
                time.sleep(0.1)
    """)


def _helper_script(scratch: Path) -> str:
    """An app that starts one helper (`_helper_code`)."""
    helper = _helper_code(scratch)
    return textwrap.dedent(f"""
        import signal, sys, time
        # As in a terminal, even where this test's shell ignores them (a background job, nohup).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        sys.path.insert(0, {str(ROOT)!r})
        from utils import background
        background.start_helper([sys.executable, "-c", {helper!r}])
        time.sleep(600)
    """)


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_a_helper_ends_with_the_app_and_cleans_up(tmp_path, sig):
    app = subprocess.Popen([sys.executable, "-c", _helper_script(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert app.stdout.readline().strip() == "ready"
        [helper] = _children(app.pid)
        assert any(tmp_path.iterdir())  # the helper's temporary folder
        assert int(_stat(helper)[16]) == background.NICENESS  # below normal priority from its start
        app.send_signal(sig)
        assert _gone_within([app.pid, helper], 5) == []
        assert not any(tmp_path.iterdir())  # its clean-up ran, even where the app was killed outright
    finally:
        app.kill()
        app.wait()


def test_stopping_a_helper_lets_it_clean_up(tmp_path):
    helper = background.start_helper([sys.executable, "-c", _helper_code(tmp_path)], stdout=subprocess.PIPE,
                                     text=True)
    assert helper.stdout.readline().strip() == "ready"
    started = time.monotonic()
    background.stop_helper(helper)
    assert time.monotonic() - started < 5 and helper.returncode is not None
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("sig", SIGNALS[:3], ids=lambda s: s.name)
def test_the_served_app_leaves_no_warm_up_behind(tmp_path, sig):
    """`main.py serve` starts the warm-up at once; however the server is stopped, nothing of it is left."""
    tiny_whisper.build(tmp_path / "model")
    port = free_port()
    env = {**os.environ, "S2S_TRAINING_BUILTIN_SPEECH": "true"}
    # main.py as a terminal runs it: Ctrl+C and a closed terminal stop it even where this test's shell
    # ignores those signals (a background job, nohup).
    as_in_a_terminal = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                        "signal.signal(signal.SIGHUP, signal.SIG_DFL); "
                        f"sys.argv = sys.argv[1:]; runpy.run_path({str(ROOT / 'main.py')!r}, run_name='__main__')")
    server = subprocess.Popen([sys.executable, "-c", as_in_a_terminal, "main.py", "serve",
                               "--db", str(tmp_path / "s2s.db"), "--model", str(tmp_path / "model"),
                               "--port", str(port), "--create"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (warming := _children(server.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert warming, "the warm-up did not start"
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=30).close()
        assert [p for p in warming if _stat(p)], "the warm-up ended before the test could stop the app"
        assert all(int(_stat(p)[16]) == background.NICENESS for p in warming)  # the assistant comes first
        server.send_signal(sig)
        assert _gone_within([server.pid, *warming], 5) == []
    finally:
        server.kill()
        server.wait()


def test_the_worker_and_the_re_scoring_run_below_normal_priority():
    """The training worker lowers itself once (stt/runs/worker.run); a server thread that decodes in the
    background lowers only itself, so the pages keep their priority."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import os, sys, threading
        sys.path.insert(0, {str(ROOT)!r})
        from utils import background
        seen = {{"base": os.nice(0)}}  # the test's own process may already run below normal (an earlier run)
        def scoring():
            background.lower_this_thread()
            stat = open(f"/proc/self/task/{{threading.get_native_id()}}/stat").read()
            seen["thread"] = stat.rsplit(")", 1)[1].split()[16]
        worker = threading.Thread(target=scoring)
        worker.start()
        worker.join()
        print(seen["base"], seen["thread"], os.nice(0))
        background.lower_this_process()
        background.lower_this_process()
        print(os.nice(0))
    """)], capture_output=True, text=True, check=True).stdout.split()
    base = int(out[0])
    assert out[1:] == [str(max(base, background.NICENESS)), str(base), str(min(19, base + background.NICENESS))]
