#!/usr/bin/python3
"""ternd as a process: the command line's exit codes, and the service life cycle as systemd drives it.

  ternd_process_test.py cli --ternd PATH
      --version/--help/--dump-config/--check-config exit codes and output; a dumped configuration
      reloads to the same dump; configuration errors are one line naming file:line, exit 78.
  ternd_process_test.py lifecycle --ternd PATH
      as the current user: READY=1 and STATUS= on an emulated NOTIFY_SOCKET, watchdog pings while
      healthy, journal-format log lines, socket not world-writable, SIGTERM -> STOPPING=1 and exit
      0 within a deadline, socket removed.
  ternd_process_test.py service-user --prefix STAGE/usr/local [--consumer PATH]
      needs root (exit 77 otherwise): creates user/group tern with the installed sysusers.d file,
      runs the installed ternd as tern (setpriv) the way ternd.service does (runtime directory 0750
      tern:tern, umask 0007), checks readiness, the socket's owner and mode, that a member of group
      tern can connect (ternctl, the pkg-config consumer) and that another user cannot, and a clean
      SIGTERM exit.

Every wait has a deadline; every process started is killed on the way out.
"""
import argparse
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

SKIP = 77
EX_CONFIG = 78


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, **kwargs)


class NotifyListener:
    """The receiving end of sd_notify(3): a datagram socket whose path goes into NOTIFY_SOCKET."""

    def __init__(self, directory, owner_uid=None):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        if owner_uid is not None:
            os.chown(self.path, owner_uid, -1)
        self.messages = []

    def wait_for(self, key, deadline_s):
        """Collects messages until one holds a line starting with `key` (e.g. "READY=1")."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if any(line.startswith(key) for m in self.messages for line in m.split("\n")):
                return True
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        return any(line.startswith(key) for m in self.messages for line in m.split("\n"))

    def count(self, line):
        return sum(m.split("\n").count(line) for m in self.messages)

    def close(self):
        self.sock.close()


def wait_exit(proc, deadline_s):
    try:
        return proc.wait(timeout=deadline_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def stop_and_check(proc, listener, socket_path, deadline_s=10.0):
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = wait_exit(proc, deadline_s)
    elapsed = time.monotonic() - started
    stderr = proc.stderr.read() if proc.stderr else ""
    check(code is not None, f"ternd did not exit within {deadline_s} s of SIGTERM; stderr:\n{stderr}")
    check(code == 0, f"ternd exited with {code} after SIGTERM (want 0); stderr:\n{stderr}")
    check(listener.wait_for("STOPPING=1", 1.0), f"no STOPPING=1 notification; got {listener.messages}")
    check(not os.path.exists(socket_path), f"{socket_path} still exists after a clean shutdown")
    print(f"ok: SIGTERM -> exit 0 in {elapsed * 1000:.0f} ms, STOPPING=1 sent, socket removed")
    return stderr


def check_socket_mode(path, want_uid=None):
    st = os.stat(path)
    check(stat.S_ISSOCK(st.st_mode), f"{path} is not a socket")
    mode = stat.S_IMODE(st.st_mode)
    check(mode & stat.S_IWOTH == 0, f"{path} is world-writable (mode {mode:o})")
    if want_uid is not None:
        check(st.st_uid == want_uid, f"{path} is owned by uid {st.st_uid}, want {want_uid}")
    print(f"ok: {path} mode {mode:o} owner {st.st_uid}:{st.st_gid}")


# --- cli -----------------------------------------------------------------------------------------

def test_cli(args):
    ternd = args.ternd
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERN_")}
    with tempfile.TemporaryDirectory(prefix="ternd-cli-") as tmp:
        r = run([ternd, "--version"], env=env)
        check(r.returncode == 0 and r.stdout.startswith("ternd (tern) "), f"--version: {r}")
        r = run([ternd, "--help"], env=env)
        check(r.returncode == 0 and "--socket-path" in r.stdout and "--dump-config" in r.stdout, f"--help: {r}")

        r = run([ternd, "--config", "/dev/null", "--max-clients", "9", "--dump-config"], env=env)
        check(r.returncode == 0 and "\nmax_clients = 9\n" in r.stdout, f"--dump-config: {r}")
        dumped = os.path.join(tmp, "dumped.toml")
        with open(dumped, "w") as f:
            f.write(r.stdout)
        again = run([ternd, "--config", dumped, "--dump-config"], env=env)
        check(again.returncode == 0 and again.stdout == r.stdout, "dump -> reload -> dump differs")
        r = run([ternd, "--config", dumped, "--check-config"], env=env)
        check(r.returncode == 0 and dumped in r.stdout, f"--check-config on a dump: {r}")
        print("ok: --version, --help, --dump-config reloads to the same dump, --check-config accepts it")

        bad = os.path.join(tmp, "bad.toml")
        with open(bad, "w") as f:
            f.write("[control]\nmax_clients = 0\n")
        r = run([ternd, "--config", bad, "--check-config"], env=env)
        check(r.returncode == EX_CONFIG, f"--check-config on a bad file exited {r.returncode}, want {EX_CONFIG}")
        line = r.stderr.strip()
        check("\n" not in line and f"{bad}:2" in line and "control.max_clients" in line,
              f"error is not one line naming file:line and key: {r.stderr!r}")
        # Running (not just checking) with a bad configuration fails the same way, before binding.
        r = run([ternd, "--config", bad], env=env)
        check(r.returncode == EX_CONFIG, f"ternd with a bad file exited {r.returncode}")
        r = run([ternd, "--config", os.path.join(tmp, "missing.toml"), "--check-config"], env=env)
        check(r.returncode == EX_CONFIG and "No such file" in r.stderr, f"missing explicit file: {r}")
        r = run([ternd, "--check-config", "--config", "/dev/null"], env=dict(env, TERN_LOG_LEVEL="loud"))
        check(r.returncode == EX_CONFIG and "environment TERN_LOG_LEVEL" in r.stderr, f"bad env: {r}")
        r = run([ternd, "--frobnicate"], env=env)
        check(r.returncode == EX_CONFIG and "--frobnicate" in r.stderr, f"unknown flag: {r}")
        print(f"ok: configuration errors exit {EX_CONFIG} with one line naming the source")

        # A valid configuration whose socket cannot be created: exit 1, one critical line saying why,
        # in the text format (no JOURNAL_STREAM).
        r = run([ternd, "--config", "/dev/null", "--socket-path", "/dev/null/ternd.sock"], env=env)
        check(r.returncode == 1, f"ternd with an impossible socket path exited {r.returncode}, want 1: {r}")
        text_line = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} critical ")
        errors = [l for l in r.stderr.splitlines() if text_line.match(l)]
        check(len(errors) == 1 and "/dev/null/ternd.sock" in errors[0],
              f"want one critical line naming the path: {r.stderr!r}")
        print(f"ok: a start failure exits 1 with one line: {errors[0][24:]}")


# --- lifecycle -----------------------------------------------------------------------------------

def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith(("TERN_", "NOTIFY_", "WATCHDOG_", "JOURNAL_"))}


def start_ternd(cmd, listener, extra_env, socket_path, ready_deadline_s=20.0, stderr=subprocess.PIPE):
    env = clean_env()
    env.update({"NOTIFY_SOCKET": listener.path, "TERN_SOCKET": socket_path})
    env.update(extra_env)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
    if not listener.wait_for("READY=1", ready_deadline_s):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        fail(f"ternd did not notify READY=1 within {ready_deadline_s} s (exit {proc.returncode}); "
             f"messages {listener.messages}; stderr:\n{err}")
    check(os.path.exists(socket_path), f"READY=1 before {socket_path} exists")
    return proc


def test_lifecycle(args):
    with tempfile.TemporaryDirectory(prefix="ternd-life-") as tmp:
        listener = NotifyListener(tmp)
        socket_path = os.path.join(tmp, "run", "ternd.sock")
        os.mkdir(os.path.dirname(socket_path), 0o750)
        # stderr is a pipe that JOURNAL_STREAM names (device:inode), as systemd does for a service
        # logging to the journal: log.format "auto" must pick the journal format.
        read_end, write_end = os.pipe()
        st = os.fstat(write_end)
        # 600 ms watchdog: pings every 300 ms.
        env = {"WATCHDOG_USEC": "600000", "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        try:
            proc = start_ternd([args.ternd, "--config", "/dev/null"], listener, env, socket_path, stderr=write_end)
        finally:
            os.close(write_end)
        proc.stderr = os.fdopen(read_end)
        try:
            # The monitor refreshes STATUS= with the counts from Daemon::status_json().
            check(listener.wait_for(f"STATUS=Serving on {socket_path}: 0 clients, 0 groups", 5.0),
                  f"no STATUS= line with client and group counts: {listener.messages}")
            check_socket_mode(socket_path, os.getuid())
            end = time.monotonic() + 5
            while listener.count("WATCHDOG=1") < 3 and time.monotonic() < end:
                listener.wait_for("__none__", 0.3)
            check(listener.count("WATCHDOG=1") >= 3, f"fewer than 3 watchdog pings in 5 s: {listener.messages}")
            print(f"ok: READY=1, STATUS=, {listener.count('WATCHDOG=1')} watchdog pings")
            if args.ternctl:
                r = run([args.ternctl, "status", "--socket", socket_path])
                check(r.returncode == 0, f"ternctl status failed: {r}")
                print("ok: ternctl status")
            stderr = stop_and_check(proc, listener, socket_path)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            listener.close()
        lines = [l for l in stderr.splitlines() if l]
        check(lines, "ternd logged nothing")
        bad = [l for l in lines if not (l.startswith("<") and l[2:3] == ">" and l[1] in "0234567")]
        check(not bad, f"log lines without a syslog priority prefix (JOURNAL_STREAM matched stderr): {bad[:3]}")
        check(any(l.startswith("<6>") and "received SIGTERM" in l for l in lines), "SIGTERM was not logged at info")
        print(f"ok: {len(lines)} log lines, all with <N> priority prefixes")


# --- service-user --------------------------------------------------------------------------------

def ensure_user(sysusers_file):
    r = run(["systemd-sysusers", sysusers_file])
    check(r.returncode == 0, f"systemd-sysusers {sysusers_file}: {r.stderr}")
    try:
        user = pwd.getpwnam("tern")
        group = grp.getgrnam("tern")
    except KeyError:
        fail("systemd-sysusers ran but there is no user or group tern")
    check(user.pw_gid == group.gr_gid, "user tern's primary group is not tern")
    check(user.pw_shell.endswith("nologin"), f"user tern has a login shell: {user.pw_shell}")
    return user.pw_uid, group.gr_gid


def ensure_member(name, gid):
    """A throwaway user in group tern (a trainer), created once on this CI machine."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        r = run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
        check(r.returncode == 0, f"useradd {name}: {r.stderr}")
    r = run(["usermod", "-a", "-G", str(gid), name])
    check(r.returncode == 0, f"usermod {name}: {r.stderr}")


def as_user(name, cmd):
    """cmd as user `name` with its primary and supplementary groups, like User= in a unit."""
    user = pwd.getpwnam(name)
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--no-new-privs",
            "--"] + cmd


def test_service_user(args):
    if os.geteuid() != 0:
        print("SKIP: needs root (creates the tern user and runs ternd as it)")
        sys.exit(SKIP)
    for tool in ("systemd-sysusers", "setpriv", "useradd"):
        if shutil.which(tool) is None:
            fail(f"{tool} is missing (install-deps installs systemd and util-linux)")
    check(os.access(os.path.join(args.prefix, "sbin", "ternd"), os.X_OK), f"{args.prefix}/sbin/ternd is not installed")
    uid, gid = ensure_user(os.path.join(args.prefix, "lib", "sysusers.d", "tern.conf"))
    print(f"ok: user tern ({uid}:{gid}) from the installed sysusers.d/tern.conf")

    tmp = tempfile.mkdtemp(prefix="ternd-svc-")
    os.chmod(tmp, 0o755)  # the test root: traversable, like / above /run
    proc = None
    listener = None
    try:
        # The staged tree may sit below a directory the service user cannot traverse (a build tree
        # in /root): run a copy, which the relative RPATHs keep working.
        prefix = os.path.join(tmp, "prefix")
        shutil.copytree(args.prefix, prefix, symlinks=True)
        ternd = os.path.join(prefix, "sbin", "ternd")
        ternctl = os.path.join(prefix, "bin", "ternctl")
        consumer = None
        if args.consumer:
            consumer = os.path.join(tmp, "consumer")
            shutil.copy(args.consumer, consumer)
        # What RuntimeDirectory=tern + RuntimeDirectoryMode=0750 + User/Group=tern set up.
        runtime = os.path.join(tmp, "run-tern")
        os.mkdir(runtime)
        os.chown(runtime, uid, gid)
        os.chmod(runtime, 0o750)
        socket_path = os.path.join(runtime, "ternd.sock")
        listener = NotifyListener(tmp, owner_uid=uid)
        config = os.path.join(tmp, "ternd.toml")
        shutil.copy(os.path.join(prefix, "share", "doc", "tern", "ternd.toml.example"), config)
        os.chmod(config, 0o644)
        cmd = ["sh", "-c", 'umask 0007 && exec "$@"', "ternd"] + as_user("tern", [ternd, "--config", config])
        proc = start_ternd(cmd, listener, {}, socket_path)
        st = os.stat(socket_path)
        check(st.st_uid == uid, f"socket owned by uid {st.st_uid}, not tern ({uid})")
        check_socket_mode(socket_path, uid)
        with open(f"/proc/{proc.pid}/status") as f:
            ids = {l.split(":")[0]: l.split()[1:] for l in f if l.startswith(("Uid", "Gid"))}
        check(ids["Uid"][0] == str(uid) and ids["Gid"][0] == str(gid), f"ternd runs as {ids}, not tern")
        print("ok: ternd runs as tern:tern and is ready")

        ensure_member("tern-ci-trainer", gid)
        if os.access(ternctl, os.X_OK):
            r = run(as_user("tern-ci-trainer", [ternctl, "status", "--socket", socket_path]))
            check(r.returncode == 0, f"ternctl status as a member of group tern failed: {r}")
            print("ok: ternctl status as a member of group tern")
        if consumer:
            r = run(as_user("tern-ci-trainer", ["env", f"LD_LIBRARY_PATH={prefix}/lib", consumer, socket_path]))
            check(r.returncode == 0, f"the pkg-config consumer could not talk to ternd: {r}")
            print("ok: a program built against the installed libtern talks to the installed ternd")
        probe = ("import socket, sys\ns = socket.socket(socket.AF_UNIX)\ntry:\n    s.connect(sys.argv[1])\n"
                 "except PermissionError:\n    sys.exit(3)\nsys.exit(0)\n")
        r = run(as_user("nobody", [sys.executable, "-c", probe, socket_path]))
        check(r.returncode == 3, f"a user outside group tern: connect gave exit {r.returncode}, want EACCES: {r}")
        print("ok: a user outside group tern cannot reach the socket")

        stop_and_check(proc, listener, socket_path)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        if listener is not None:
            listener.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("cli")
    p.add_argument("--ternd", required=True)
    p = sub.add_parser("lifecycle")
    p.add_argument("--ternd", required=True)
    p.add_argument("--ternctl")
    p = sub.add_parser("service-user")
    p.add_argument("--prefix", required=True)
    p.add_argument("--consumer")
    args = parser.parse_args()
    {"cli": test_cli, "lifecycle": test_lifecycle, "service-user": test_service_user}[args.mode](args)
    print("PASS")


if __name__ == "__main__":
    main()
