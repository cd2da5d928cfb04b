"""pytest fixtures for the wsrouted integration tests (see wsrtest.py)."""

import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import wsrtest  # noqa: E402

# 1,000 concurrent connections need > 2,000 descriptors in this process;
# the daemon inherits the raised limit too.
wsrtest.raise_nofile(8192)

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer", "WARNING: ThreadSanitizer")


class DaemonFactory:
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.daemons = []

    def __call__(self, config=None, ready=None, args=None, start=True):
        """Start a daemon; config defaults to wsrtest.make_config()."""
        d = tmp_path_for(self.tmp_path, len(self.daemons))
        daemon = wsrtest.Daemon(d, config if config is not None else wsrtest.make_config(),
                                ready=ready, args=args)
        self.daemons.append(daemon)
        if start:
            daemon.start()
        return daemon

    def teardown(self):
        problems = []
        for d in self.daemons:
            if d.proc is None:
                continue
            died_early = d.proc.poll()
            if died_early is not None and died_early < 0 and d.returncode is None:
                problems.append("daemon %d was killed by signal %d during the test"
                                % (d.pid, -died_early))
            rc, killed = d.stop(signal.SIGTERM, 10.0)
            if killed:
                problems.append("daemon %d did not exit within 10 s of SIGTERM (SIGKILLed)" % d.pid)
            elif rc is not None and rc < 0 and died_early is None:
                problems.append("daemon %d died from signal %d on SIGTERM" % (d.pid, -rc))
            log = d.log_text()
            for m in SANITIZER_MARKERS:
                if m in log:
                    problems.append("sanitizer report in daemon log (%s)" % m)
                    break
            if problems:
                problems.append("daemon log tail:\n" + d.log_tail(30))
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


def tmp_path_for(base, i):
    p = base / ("d%d" % i)
    p.mkdir(exist_ok=True)
    return p


@pytest.fixture
def daemon_factory(tmp_path):
    f = DaemonFactory(tmp_path)
    yield f
    f.teardown()


@pytest.fixture
def daemon(daemon_factory):
    """A daemon with the default test config: route /echo, no pings, no idle timeout."""
    return daemon_factory()
