"""Shared fixtures and paths for the interop suites (pytest, project venv).

Paths come from the environment `make check` sets (EHDELTA_TOP_BUILDDIR,
EHDELTA_TOP_SRCDIR); running pytest by hand from a configured tree works too.
"""
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.environ.get("EHDELTA_TOP_SRCDIR", os.path.dirname(os.path.dirname(HERE)))
TOP_BUILDDIR = os.environ.get("EHDELTA_TOP_BUILDDIR", TOP_SRCDIR)
EHDELTA = os.path.join(TOP_BUILDDIR, "ehdelta")
EHEMU = os.path.join(TOP_BUILDDIR, "ehemu")
AZURITE = os.path.join(TOP_SRCDIR, ".tools", "node", "node_modules", ".bin", "azurite")
sys.path.insert(0, HERE)


def free_port():
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout=10.0, interval=0.02, what="condition"):
    """Poll pred() until it is truthy; raise after timeout (never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
