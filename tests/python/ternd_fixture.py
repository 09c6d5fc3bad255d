"""A real ternd for the Python tests: started on a private socket in a temporary directory, ready
when its socket accepts a libtern connection, stopped with SIGTERM (then SIGKILL) at the end.

The binary comes from $TERND (set by tests/python/CMakeLists.txt to the build's ternd).
"""
import os
import signal
import subprocess
import tempfile
import time


class Ternd:
    def __init__(self, extra_args=(), ready_timeout_s=20.0):
        self.binary = os.environ.get("TERND")
        if not self.binary or not os.access(self.binary, os.X_OK):
            raise RuntimeError(f"$TERND must name the ternd executable (got '{self.binary}')")
        self.dir = tempfile.TemporaryDirectory(prefix="tern-pytest-")
        self.socket_path = os.path.join(self.dir.name, "ternd.sock")
        self.log_path = os.path.join(self.dir.name, "ternd.log")
        self._log = open(self.log_path, "w")
        # No configuration file: only these flags and the defaults (a TERN_* variable of the test's
        # environment would be read as ternd configuration, so they are removed).
        env = {k: v for k, v in os.environ.items() if not k.startswith("TERN_")}
        self.proc = subprocess.Popen(
            [self.binary, "--config", "/dev/null", "--socket-path", self.socket_path, "--advertise-host", "127.0.0.1",
             "--log-level", "info", "--log-format", "text", *extra_args],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self._wait_ready(ready_timeout_s)

    def _wait_ready(self, timeout_s):
        import tern
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ternd exited with status {self.proc.returncode} at start-up:\n{self.log()}")
            if os.path.exists(self.socket_path):
                try:
                    tern.connect(self.socket_path).close()
                    return
                except tern.UnavailableError:
                    pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"ternd not ready within {timeout_s} s:\n{self.log()}")
            time.sleep(0.05)

    def log(self):
        self._log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, timeout_s=15.0):
        """SIGTERM, and SIGKILL if it has not exited within timeout_s. Returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def close(self):
        self.stop()
        self.dir.cleanup()
