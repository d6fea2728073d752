"""Where tests start child interpreters: outside the checkout, so that
`import pyasync` in the child finds the installed package (with its compiled
modules) and not the bare source directory. And Ctrl-C sent to a fit
running in one (a crash or a hang there cannot take pytest down)."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

CHILD_CWD = tempfile.gettempdir()


def interrupt_child(code, args=(), delay=0.5):
    """Runs `code` in a child interpreter, sends it SIGINT `delay` seconds
    after it prints READY, and returns the JSON it prints after "RESULT "."""
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    proc = subprocess.Popen([sys.executable, "-c", code, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=CHILD_CWD)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "READY", (line, proc.stderr.read())
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, f"child died with {proc.returncode}:\n{err}"
    results = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
    assert results, f"no result:\n{out}\n{err}"
    return json.loads(results[-1][len("RESULT "):])


def interrupt_mid_epoch(code, epoch, args=(), delay=0.5):
    """`interrupt_child` until the KeyboardInterrupt comes from inside the
    compiled epoch (a traceback frame, the child's "frames", named `epoch`):
    its workers poll for signals, so Ctrl-C does not wait for the epoch's
    end. Where the signal lands in the Python code around the epochs, it
    tries again, later each time: on a loaded machine the checks before the
    first epoch can outlast the first delay."""
    for attempt in range(5):
        res = interrupt_child(code, args, delay * 2 ** attempt)
        assert "frames" in res, f"the fit was never interrupted: {res}"
        if any(frame.endswith(epoch) for frame in res["frames"]):
            return res
    pytest.fail(f"the signal never landed mid-epoch: {res['frames']}")
