#!/usr/bin/env python3
"""The collector's footprint while it polls N SNMP devices (scripts/bench-collector-footprint).

Requirement: "Footprint while polling 1,000 SNMP devices at 1-minute intervals (device
entries pointing at snmpd on loopback): resident memory under 30 MB and CPU under 5 % of one
core."

What it sets up (as root; everything is undone at exit, also on Ctrl-C / SIGTERM):
  * ADDRESS/32 (default 10.254.0.1) on `lo`, removed again if this script added it. The
    devices are *not* named 127.0.0.1: a loopback name makes a device the collector's own
    host, which would add the host datasources to every device.
  * Debian's snmpd on udp:ADDRESS:<free port>, v2c community, own config and persistent dir.
  * `palisade serve` (release) on 127.0.0.1 with a fresh data dir (embedded SQLite and
    time-series store); through the CLI an API-only user, its role (host_group:*:manage,
    setting:datasources:read) and an LMv1 and a Bearer token, and the collector.
  * N devices through the REST API (LMv1): name ADDRESS, display name bench-snmp-NNNN,
    snmp.version=v2c, snmp.community, snmp.port, preferredCollectorId = the bench collector,
    so that the built-in SNMP datasources apply (their appliesTo is `snmp.community || ...`).
  * A counting pass-through proxy on 127.0.0.1 between the collector and the portal: it
    forwards every request unchanged and counts, from the work the portal hands out, which
    datasources run on how many devices at which interval, and from every acknowledged
    results batch, the results per datasource and status (errors with their messages).
  * `palisade-collector register` + `run` as an unprivileged user (default nobody:nogroup,
    via setpriv --clear-groups); its state directory is owned by that user.

Measured, after WARMUP seconds, over WINDOW seconds: the collector's CPU (utime+stime from
/proc/PID/stat, delta / window, as % of one core; also the busiest sample interval), VmRSS
every SAMPLE seconds (mean, max), VmHWM, threads and open fds; the CPU of snmpd and of the
portal for comparison; snmpd's own counters snmpInPkts/snmpOutPkts (requests per second).
What was polled: every result with a collection time in the window, whether the portal
acknowledged it (counted by the proxy) or it was still in the collector's buffer at the end
(the collector is stopped with SIGTERM 10 s after the window and its buffer files are read).
What was delivered: results and batches the portal acknowledged during the window, the
buffer's backlog at the window's start and end, and the Prometheus-compatible API's count of
stored samples as a cross-check.

Exit 0 when the polling happened (every 1-minute SNMP datasource collected ok results in the
window and SNMP results reached the portal during it), 1 when it did not, 2 when the setup
failed. The targets are printed beside the numbers but do not decide the exit status; a
delivery lagging behind collection is printed as a warning.
"""

from __future__ import annotations

import argparse
import base64
import collections
import datetime
import gzip
import hashlib
import hmac
import http.server
import json
import os
import platform
import pwd
import grp
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

try:
    import requests
except ImportError:  # pragma: no cover
    sys.exit("bench-collector-footprint: needs python `requests` (the repository's .venv has it)")

TARGET_RSS_MB = 30.0  # 10^6 bytes; the RSS figures are MiB (VmRSS is in KiB)
TARGET_RSS_MIB = TARGET_RSS_MB * 1e6 / 2**20
TARGET_CPU_PCT = 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
COMMUNITY = "bench-" + secrets.token_hex(6)
# A key datapoint per SNMP datasource: one sample of it per instance per successful poll.
KEY_DATAPOINT = {
    "SNMP_System": "sysUpTime",
    "SNMP_Interfaces": "ifOperStatus",
    "SNMP_HR_Processor": "hrProcessorLoad",
    "SNMP_HR_Storage": "hrStorageSize",
}


class SetupError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- cleanup

_cleanups: list[tuple[str, object]] = []


def on_exit(what: str, fn) -> None:
    _cleanups.append((what, fn))


def run_cleanups() -> None:
    while _cleanups:
        what, fn = _cleanups.pop()
        try:
            fn()  # type: ignore[operator]
        except Exception as exc:  # noqa: BLE001
            print(f"cleanup ({what}) failed: {exc}", file=sys.stderr)


def _signal_exit(signum, _frame):
    raise SystemExit(128 + signum)


def stop_process(proc: subprocess.Popen, name: str, timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"{name} did not stop on SIGTERM within {timeout:.0f} s: SIGKILL")
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- /proc


def proc_cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, val = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "VmSize", "Threads"):
                out[key] = int(val.split()[0])
    return out


def find_descendant(root: int, comm: str) -> int | None:
    children: dict[int, list[int]] = collections.defaultdict(list)
    comms = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        pid = int(d)
        comms[pid] = st[st.index("(") + 1 : st.rindex(")")]
        children[int(st[st.rindex(")") + 2 :].split()[1])].append(pid)
    todo = [root]
    while todo:
        p = todo.pop()
        if comms.get(p) == comm:
            return p
        todo.extend(children.get(p, []))
    return None


def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# --------------------------------------------------------------------------- helpers


def free_port(kind: int, host: str) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def lmv1(access_id: str, access_key: str, method: str, path: str, body: str) -> str:
    epoch = str(int(time.time() * 1000))
    digest = hmac.new(access_key.encode(), f"{method}{epoch}{body}{path}".encode(), hashlib.sha256).hexdigest()
    return f"LMv1 {access_id}:{base64.b64encode(digest.encode()).decode()}:{epoch}"


class Rest:
    def __init__(self, base: str, access_id: str, access_key: str, bearer: str):
        self.base, self.access_id, self.access_key, self.bearer = base, access_id, access_key, bearer
        self.s = requests.Session()

    def call(self, method: str, path: str, body=None, params=None) -> dict:
        data = json.dumps(body) if body is not None else ""
        headers = {
            "X-version": "3",
            "Content-Type": "application/json",
            "Authorization": lmv1(self.access_id, self.access_key, method, path, data),
        }
        r = self.s.request(method, self.base + "/santaba/rest" + path, data=data or None, params=params,
                           headers=headers, timeout=60)
        if r.status_code >= 300:
            raise SetupError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        return r.json()

    def promql(self, query: str, at: float) -> list:
        r = self.s.get(self.base + "/api/v1/query", params={"query": query, "time": f"{at:.3f}"},
                       headers={"Authorization": f"Bearer {self.bearer}"}, timeout=60)
        if r.status_code != 200:
            raise SetupError(f"query {query!r}: {r.status_code} {r.text[:300]}")
        return r.json()["data"]["result"]

    def promql_scalar(self, query: str, at: float) -> float:
        res = self.promql(query, at)
        return float(res[0]["value"][1]) if res else 0.0


# --------------------------------------------------------------------------- the counting proxy


class Counter:
    """What went through the proxy. Results are keyed by their collection timestamp."""

    def __init__(self):
        self.lock = threading.Lock()
        # (received, collection ts ms, datasource, status, instance, message, device id)
        self.results: list[tuple] = []
        self.requests: list[tuple[float, str, int, int, float, float]] = []  # (time, path, status, body bytes, portal s, proxy s)
        self.work: dict | None = None
        self.work_fetches = 0
        self.batch_ids: set[str] = set()

    def add_request(self, path: str, status: int, size: int, portal_s: float, total_s: float) -> None:
        with self.lock:
            self.requests.append((time.time(), path, status, size, portal_s, total_s))

    def add_work(self, body: bytes) -> None:
        try:
            w = json.loads(body)
        except ValueError:
            return
        # Only the shape is kept (the work carries credentials: they are dropped here).
        devices = [{"id": d.get("id"), "displayName": d.get("displayName"), "datasources": d.get("datasources", [])}
                   for d in w.get("devices", [])]
        intervals = {d.get("name"): d.get("collectInterval") for d in w.get("datasources", [])}
        methods = {d.get("name"): (d.get("collector") or {}).get("method") or d.get("collectMethod")
                   for d in w.get("datasources", [])}
        with self.lock:
            self.work = {"devices": devices, "intervals": intervals, "methods": methods}
            self.work_fetches += 1

    def add_results(self, body: bytes, now: float) -> None:
        try:
            batch = json.loads(body)
        except ValueError:
            return
        items = batch.get("results", [])
        rows = [(now, int(r.get("timestamp", 0)), r.get("datasource", "?"), r.get("status", "ok"),
                 r.get("instance"), r.get("message"), r.get("deviceId")) for r in items]
        with self.lock:
            self.results.extend(rows)
            self.batch_ids.add(batch.get("batchId", ""))


def start_proxy(upstream: str, counter: Counter) -> tuple[http.server.ThreadingHTTPServer, int]:
    local = threading.local()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args):  # quiet
            pass

        def _forward(self):
            started = time.perf_counter()
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            if not hasattr(local, "s"):
                local.s = requests.Session()
            headers = {k: v for k, v in self.headers.items()
                       if k.lower() in ("authorization", "content-type", "if-none-match", "accept",
                                        "content-encoding", "user-agent", "x-version")}
            headers["Accept-Encoding"] = "identity"
            up = time.perf_counter()
            try:
                r = local.s.request(self.command, upstream + self.path, data=body or None, headers=headers,
                                    timeout=120, allow_redirects=False)
                status, content = r.status_code, r.content
                ctype, etag = r.headers.get("Content-Type"), r.headers.get("ETag")
                retry_after = r.headers.get("Retry-After")
            except requests.RequestException:
                status, content, ctype, etag, retry_after = 502, b"proxy: portal unreachable", "text/plain", None, None
            portal_s = time.perf_counter() - up
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            if etag:
                self.send_header("ETag", etag)
            if retry_after:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            try:
                self.wfile.write(content)
            except (BrokenPipeError, ConnectionResetError):  # the collector stopped meanwhile
                return
            path = self.path.split("?")[0]
            counter.add_request(path, status, len(body), portal_s, time.perf_counter() - started)
            if path == "/api/collector/v1/work" and status == 200:
                counter.add_work(content)
            elif path == "/api/collector/v1/results" and 200 <= status < 300:
                try:
                    ack = json.loads(content)
                except ValueError:
                    ack = {}
                if not ack.get("duplicate"):
                    raw = gzip.decompress(body) if self.headers.get("Content-Encoding") == "gzip" else body
                    counter.add_results(raw, time.time())

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, name="proxy", daemon=True).start()
    return srv, srv.server_address[1]


# --------------------------------------------------------------------------- setup steps


def need(path: str, hint: str) -> str:
    found = shutil.which(path) or (path if os.path.isfile(path) and os.access(path, os.X_OK) else None)
    if not found:
        raise SetupError(f"`{path}` not found: {hint}")
    return found


def add_address(addr: str) -> None:
    shown = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", "lo"], capture_output=True, text=True, check=True).stdout
    if re.search(rf"\binet {re.escape(addr)}/", shown):
        log(f"{addr} is already on lo (left in place at exit)")
        return
    subprocess.run(["ip", "addr", "add", f"{addr}/32", "dev", "lo"], check=True)
    on_exit("ip addr del", lambda: subprocess.run(["ip", "addr", "del", f"{addr}/32", "dev", "lo"], check=True))
    log(f"added {addr}/32 to lo")


def snmpget(addr: str, port: int, *oids: str) -> list[int]:
    out = subprocess.run(["snmpget", "-v2c", "-c", COMMUNITY, "-On", "-Oqvt", "-t", "3", "-r", "2", f"udp:{addr}:{port}", *oids],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise SetupError(f"snmpget failed: {out.stderr.strip()}")
    return [int(v.split()[-1]) for v in out.stdout.split()]


def start_snmpd(tmp: Path, addr: str) -> tuple[subprocess.Popen, int]:
    snmpd = need("/usr/sbin/snmpd", "apt-get install -y snmpd snmp")
    need("snmpget", "apt-get install -y snmp")
    d = tmp / "snmpd"
    (d / "persist").mkdir(parents=True)
    conf = d / "snmpd.conf"
    conf.write_text(f"rocommunity {COMMUNITY} default\n")
    port = free_port(socket.SOCK_DGRAM, addr)
    logf = open(d / "snmpd.log", "wb")
    proc = subprocess.Popen(
        # -f foreground, -Lo log to stdout (our file), -C no other config files, -I -smux no
        # SMUX listener on TCP 199.
        [snmpd, "-f", "-Lo", "-C", "-I", "-smux", "-c", str(conf), f"udp:{addr}:{port}"],
        stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "SNMP_PERSISTENT_DIR": str(d / "persist"), "SNMPCONFPATH": str(d)},
    )
    on_exit("snmpd", lambda: stop_process(proc, "snmpd"))
    for _ in range(50):
        if proc.poll() is not None:
            raise SetupError(f"snmpd exited: {(d / 'snmpd.log').read_text()[-500:]}")
        try:
            snmpget(addr, port, "1.3.6.1.2.1.1.3.0")
            return proc, port
        except (SetupError, subprocess.TimeoutExpired):
            time.sleep(0.2)
    raise SetupError(f"snmpd does not answer on {addr}:{port}: {(d / 'snmpd.log').read_text()[-500:]}")


def cli_json(bin_dir: Path, data: Path, *args: str):
    res = subprocess.run([str(bin_dir / "palisade"), "--data-dir", str(data), *args], capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise SetupError(f"palisade {' '.join(args)}: rc={res.returncode} {res.stderr[-500:]}")
    return json.loads(res.stdout)


def collector_status(as_user: list[str], bin_dir: Path, state: Path, cenv: dict) -> dict:
    """`palisade-collector status` as the collector's user (reads the buffer; no network)."""
    res = subprocess.run([*as_user, str(bin_dir / "palisade-collector"), "status", "--state-dir", str(state)],
                         capture_output=True, text=True, timeout=60, env=cenv)
    try:
        return json.loads(res.stdout)
    except ValueError:
        return {}


def start_portal(bin_dir: Path, data: Path, tmp: Path) -> tuple[subprocess.Popen, str]:
    port = free_port(socket.SOCK_STREAM, "127.0.0.1")
    logf = open(tmp / "portal.log", "wb")
    env = dict(os.environ, PALISADE_LOG=os.environ.get("PALISADE_LOG", "warn"))
    env.pop("PALISADE_MASTER_KEY_FILE", None)
    # Rate limits raised: the setup makes N REST calls from 127.0.0.1, the same address the
    # collector's requests come from (the counts of those are reported).
    proc = subprocess.Popen([str(bin_dir / "palisade"), "--data-dir", str(data), "serve", "--listen", f"127.0.0.1:{port}",
                             "--token-rate-limit", "100000000", "--ip-rate-limit", "100000000"],
                            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env)
    on_exit("portal", lambda: stop_process(proc, "portal"))
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        if proc.poll() is not None:
            raise SetupError(f"the portal exited: {(tmp / 'portal.log').read_text()[-800:]}")
        try:
            if requests.get(url + "/healthz", timeout=2).ok:
                return proc, url
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise SetupError("the portal did not start")


# --------------------------------------------------------------------------- main


def main() -> int:
    env = os.environ.get
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--devices", type=int, default=int(env("BENCH_DEVICES", "1000")))
    ap.add_argument("--warmup", type=float, default=float(env("BENCH_WARMUP", "120")), help="seconds before measuring")
    ap.add_argument("--window", type=float, default=float(env("BENCH_WINDOW", "300")), help="seconds measured")
    ap.add_argument("--sample", type=float, default=float(env("BENCH_SAMPLE", "5")), help="seconds between RSS samples")
    ap.add_argument("--bin-dir", default=env("BENCH_BIN_DIR", "target/release"), help="where palisade and palisade-collector are")
    ap.add_argument("--address", default=env("BENCH_ADDRESS", "10.254.0.1"), help="address added to lo for snmpd")
    ap.add_argument("--user", default=env("BENCH_USER", "nobody"))
    ap.add_argument("--group", default=env("BENCH_GROUP", "nogroup"))
    ap.add_argument("--ping", action="store_true",
                    help="let the collector's group send ICMP (net.ipv4.ping_group_range widened for the run, restored at exit) "
                         "so that the built-in Ping datasource really pings every device; default: Ping reports 'denied'")
    ap.add_argument("--json", help="also write the figures to this file")
    ap.add_argument("--wrapper", default=env("BENCH_WRAPPER"),
                    help="profile: run the collector under this command, e.g. 'heaptrack -o /tmp/ht' or "
                         "'valgrind --tool=massif --massif-out-file=/tmp/massif.out' (the figures then include its overhead)")
    ap.add_argument("--collector-env", action="append", default=[], metavar="NAME=VALUE",
                    help="extra environment of the collector (repeatable), e.g. GLIBC_TUNABLES=glibc.malloc.mmap_threshold=32768")
    ap.add_argument("--tmp-parent", default=env("BENCH_TMP_PARENT"),
                    help="create the temporary directory (data dir, collector state and buffer) here, e.g. /dev/shm "
                         "to take disk fsync latency out of the picture")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, data dir)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench-collector-footprint: run as root (adds an address to lo, starts snmpd, drops the collector to --user)",
              file=sys.stderr)
        return 2
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, _signal_exit)
    try:
        return bench(a)
    except SetupError as exc:
        print(f"bench-collector-footprint: setup failed: {exc}", file=sys.stderr)
        return 2
    finally:
        run_cleanups()


def bench(a) -> int:
    bin_dir = Path(a.bin_dir).resolve()
    for b in ("palisade", "palisade-collector"):
        if not os.access(bin_dir / b, os.X_OK):
            raise SetupError(f"{bin_dir / b} missing: cargo build --release -p palisade -p palisade-collector")
    setpriv = need("setpriv", "util-linux")
    need("ip", "iproute2")
    uid, gid = pwd.getpwnam(a.user).pw_uid, grp.getgrnam(a.group).gr_gid
    if uid == 0:
        raise SetupError("--user must not be root (the collector refuses root)")

    tmp = Path(tempfile.mkdtemp(prefix="palisade-footprint-", dir=a.tmp_parent))
    os.chmod(tmp, 0o711)  # the collector's user must reach its state directory
    if a.keep:
        on_exit("keep", lambda: log(f"kept {tmp}"))
    else:
        on_exit("rm tmp", lambda: shutil.rmtree(tmp, ignore_errors=True))

    if a.ping:
        path = Path("/proc/sys/net/ipv4/ping_group_range")
        old = path.read_text().strip()
        lo_, hi_ = (int(x) for x in old.split())
        if not (lo_ <= gid <= hi_):
            path.write_text(f"{gid} {gid}\n")
            on_exit("ping_group_range", lambda: path.write_text(old + "\n"))
            log(f"net.ipv4.ping_group_range {old} -> {gid} {gid} for the run")

    add_address(a.address)
    snmpd, snmp_port = start_snmpd(tmp, a.address)
    log(f"snmpd (pid {snmpd.pid}) on udp:{a.address}:{snmp_port}")

    data = tmp / "data"
    data.mkdir(mode=0o700)
    cli_json(bin_dir, data, "role", "add", "bench-footprint", "--privilege", "host_group:*:manage",
             "--privilege", "setting:datasources:read")
    cli_json(bin_dir, data, "user", "add", "bench-footprint", "--email", "bench@example.com", "--role", "bench-footprint", "--api-only")
    tok = cli_json(bin_dir, data, "token", "create", "bench-footprint")
    bearer = cli_json(bin_dir, data, "token", "create", "bench-footprint", "--bearer")["bearerToken"]
    col = cli_json(bin_dir, data, "collector", "add", "--description", "footprint bench")
    collector_id, reg_secret = col["id"], col["registrationSecret"]

    portal, url = start_portal(bin_dir, data, tmp)
    log(f"portal (pid {portal.pid}) on {url}, collector {collector_id}")
    rest = Rest(url, tok["accessId"], tok["accessKey"], bearer)

    t = time.time()
    bench_ids: set[int] = set()
    for i in range(a.devices):
        d = rest.call("POST", "/device/devices", {
            "name": a.address,
            "displayName": f"bench-snmp-{i:04d}",
            "preferredCollectorId": collector_id,
            "customProperties": [
                {"name": "snmp.version", "value": "v2c"},
                {"name": "snmp.community", "value": COMMUNITY},
                {"name": "snmp.port", "value": str(snmp_port)},
            ],
        })
        bench_ids.add(int(d["id"]))
    log(f"created {a.devices} devices in {time.time() - t:.1f} s")
    builtins = {d["name"]: d for d in rest.call("GET", "/setting/datasources", params={"size": 1000})["items"]}

    counter = Counter()
    proxy, proxy_port = start_proxy(url, counter)
    on_exit("proxy", proxy.shutdown)

    state = tmp / "collector"
    state.mkdir(mode=0o700)
    secret_file = tmp / "registration-secret"
    secret_file.write_text(reg_secret)
    os.chmod(secret_file, 0o600)
    for p in (state, secret_file):
        os.chown(p, uid, gid)
    as_user = [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"]
    cenv = {"PATH": "/usr/bin:/bin", "HOME": str(state), "PALISADE_COLLECTOR_LOG": os.environ.get("PALISADE_COLLECTOR_LOG", "info")}
    cenv.update(kv.split("=", 1) for kv in a.collector_env)
    reg = subprocess.run([*as_user, str(bin_dir / "palisade-collector"), "register", "--portal", f"http://127.0.0.1:{proxy_port}",
                          "--secret-file", str(secret_file), "--state-dir", str(state)],
                         capture_output=True, text=True, timeout=60, env=cenv)
    secret_file.unlink()
    if reg.returncode != 0:
        raise SetupError(f"register: rc={reg.returncode} {reg.stderr[-500:]}")
    clog_path = tmp / "collector.log"
    clog = open(clog_path, "wb")
    wrapper = a.wrapper.split() if a.wrapper else []
    collector = subprocess.Popen([*as_user, *wrapper, str(bin_dir / "palisade-collector"), "run", "--state-dir", str(state)],
                                 stdin=subprocess.DEVNULL, stdout=clog, stderr=clog, env=cenv)
    started = time.time()
    cpid = collector.pid  # setpriv execs: this is the collector itself

    def stop_collector() -> None:
        # Under a wrapper the collector is its child: stop the collector itself first (a
        # wrapper such as heaptrack does not pass SIGTERM on).
        if cpid != collector.pid and collector.poll() is None:
            try:
                os.kill(cpid, signal.SIGTERM)
                for _ in range(300):
                    os.kill(cpid, 0)
                    time.sleep(0.1)
                os.kill(cpid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        stop_process(collector, "collector", 30)

    on_exit("collector", stop_collector)
    time.sleep(1)
    if collector.poll() is not None:
        raise SetupError(f"the collector exited ({collector.returncode}): {clog_path.read_text()[-800:]}")
    if wrapper:  # the collector is a descendant of the wrapper
        for _ in range(100):
            found = find_descendant(collector.pid, "palisade-collec")
            if found:
                cpid = found
                break
            time.sleep(0.2)
    if proc_status(cpid) and os.stat(f"/proc/{cpid}").st_uid != uid:
        raise SetupError("the collector does not run as the bench user")
    with open(f"/proc/{cpid}/comm") as f:
        if f.read().strip() != "palisade-collec":
            raise SetupError("pid is not the collector")

    # The work: which datasources run on the bench devices, at which interval.
    for _ in range(120):
        if counter.work and any(d["id"] in bench_ids for d in counter.work["devices"]):
            break
        if collector.poll() is not None:
            raise SetupError(f"the collector exited ({collector.returncode}): {clog_path.read_text()[-800:]}")
        time.sleep(0.5)
    else:
        raise SetupError("the collector fetched no work with the bench devices within 60 s")
    work = counter.work
    assert work is not None
    tasks = collections.Counter()
    other_tasks = collections.Counter()
    for d in work["devices"]:
        (tasks if d["id"] in bench_ids else other_tasks).update(d["datasources"])
    intervals = work["intervals"]
    log(f"work: {len(work['devices'])} devices; tasks on the bench devices: "
        + ", ".join(f"{ds}×{n} every {intervals.get(ds)} s" for ds, n in sorted(tasks.items())))
    if other_tasks:
        log("other devices of the collector (its own host): " + ", ".join(f"{ds} every {intervals.get(ds)} s" for ds in sorted(other_tasks)))

    log(f"warm-up {a.warmup:.0f} s ...")
    deadline = started + a.warmup
    while time.time() < deadline:
        time.sleep(min(5, max(0.1, deadline - time.time())))
        if collector.poll() is not None:
            raise SetupError(f"the collector exited ({collector.returncode}): {clog_path.read_text()[-800:]}")

    # ---------------------------------------------------------------- the window
    log(f"measuring {a.window:.0f} s ...")
    pids = {"collector": cpid, "snmpd": snmpd.pid, "portal": portal.pid}
    backlog0 = collector_status(as_user, bin_dir, state, cenv).get("buffer", {}).get("batches")
    snmp0 = snmpget(a.address, snmp_port, "1.3.6.1.2.1.11.1.0", "1.3.6.1.2.1.11.2.0")
    t0 = time.time()
    cpu0 = {k: proc_cpu_ticks(p) for k, p in pids.items()}
    samples: list[dict] = []
    prev_t, prev_cpu = t0, cpu0["collector"]
    next_sample = t0
    t_end = t0 + a.window
    while True:
        now = time.time()
        if now >= next_sample:
            st = proc_status(cpid)
            c = proc_cpu_ticks(cpid)
            dt = now - prev_t
            samples.append({"t": now - t0, "rss": st["VmRSS"], "anon": st.get("RssAnon", 0), "threads": st["Threads"],
                            "fds": proc_fds(cpid),
                            "cpu": (c - prev_cpu) / CLK_TCK / dt * 100 if dt > 0.5 else None})
            prev_t, prev_cpu = now, c
            next_sample += a.sample
        if now >= t_end:
            break
        time.sleep(max(0.05, min(next_sample, t_end) - time.time()))
        if collector.poll() is not None:
            raise SetupError(f"the collector exited during the window ({collector.returncode})")
    t1 = time.time()
    cpu1 = {k: proc_cpu_ticks(p) for k, p in pids.items()}
    final = proc_status(cpid)
    snmp1 = snmpget(a.address, snmp_port, "1.3.6.1.2.1.11.1.0", "1.3.6.1.2.1.11.2.0")
    elapsed = t1 - t0
    cpu_pct = {k: (cpu1[k] - cpu0[k]) / CLK_TCK / elapsed * 100 for k in pids}
    log("window done; waiting 10 s for results of the window still in flight, then stopping the collector")
    time.sleep(10)
    backlog1 = collector_status(as_user, bin_dir, state, cenv).get("buffer", {}).get("batches")
    stop_collector()  # SIGTERM: what was collected goes to the buffer first

    # ---------------------------------------------------------------- results
    lo_ms, hi_ms = t0 * 1000, t1 * 1000
    with counter.lock:
        delivered_rows = list(counter.results)
        reqs = [r for r in counter.requests if t0 <= r[0] < t1]
        delivered_ids = set(counter.batch_ids)
    # What the collector collected but had not delivered yet: the batches left in its buffer
    # (a batch is deleted only after the portal acknowledged it; skip any acknowledged one).
    buffered_rows = []
    for f in sorted((state / "buffer").glob("*.batch")):
        batch_id = f.name[: -len(".batch")].split("-", 2)[2]
        if batch_id in delivered_ids:
            continue
        raw = f.read_bytes()
        if raw[:4] != b"PCB1":
            continue
        for r in json.loads(raw[12:]).get("results", []):
            buffered_rows.append((None, int(r.get("timestamp", 0)), r.get("datasource", "?"), r.get("status", "ok"),
                                  r.get("instance"), r.get("message"), r.get("deviceId")))

    def tally(rows):
        # devices: the bench devices with at least one ok result of the datasource. The
        # collector's own host device has its own rows, marked " (own host)".
        by = collections.defaultdict(lambda: {"results": 0, "polls": set(), "devices": set(), "status": collections.Counter()})
        errs = collections.Counter()
        for _recv, ts, ds, status, _inst, msg, dev in rows:
            e = by[ds if dev in bench_ids else ds + " (own host)"]
            e["results"] += 1
            e["polls"].add((dev, ts))
            if dev in bench_ids and status == "ok":
                e["devices"].add(dev)
            e["status"][status] += 1
            if status != "ok":
                errs[(ds, status, (msg or "")[:200])] += 1
        return by, errs

    in_window = [r for r in delivered_rows + buffered_rows if lo_ms <= r[1] < hi_ms]
    by_ds, errors = tally(in_window)  # collected in the window
    delivered_by_ds, _ = tally([r for r in delivered_rows if lo_ms <= r[1] < hi_ms])
    arrived = [r for r in delivered_rows if t0 <= r[0] < t1]  # acknowledged during the window
    minutes = elapsed / 60
    req_by_path = collections.Counter(r[1] for r in reqs)
    non2xx = collections.Counter((r[1], r[2]) for r in reqs if not 200 <= r[2] < 300 and r[2] != 304)
    results_reqs = [r for r in reqs if r[1] == "/api/collector/v1/results"]
    results_bytes = sum(r[3] for r in results_reqs)
    res_portal_ms = sorted(r[4] * 1000 for r in results_reqs)
    res_total_ms = sorted(r[5] * 1000 for r in results_reqs)

    # Cross-check: what the portal's time-series store holds for the window (Prometheus API).
    w = max(1, int(round(elapsed)))
    stored = {}
    for ds, dp in KEY_DATAPOINT.items():
        if ds in tasks:
            m = f"{ds}_{dp}"
            stored[ds] = {
                "samples": rest.promql_scalar(f"sum(count_over_time({m}[{w}s]))", t1),
                "devices": rest.promql_scalar(f"count(count by (device) (count_over_time({m}[{w}s])))", t1),
            }
    stored_all = rest.promql_scalar(f'sum(count_over_time({{datasource=~"SNMP_.*"}}[{w}s]))', t1)

    clog.flush()
    log_text = clog_path.read_text(errors="replace")
    failed_lines = [l for l in log_text.splitlines() if "collection failed" in l]
    warn_lines = [l for l in log_text.splitlines() if " WARN " in l or " ERROR " in l]

    # ---------------------------------------------------------------- report
    rss = [s["rss"] / 1024 for s in samples]
    cpu_samples = [s["cpu"] for s in samples if s["cpu"] is not None]
    snmp_tasks = {ds: n for ds, n in tasks.items() if work["methods"].get(ds) == "snmp"}
    expected_polls_min = sum(n * 60 / intervals[ds] for ds, n in snmp_tasks.items())
    snmp_polls = sum(len(by_ds[ds]["polls"]) for ds in snmp_tasks)
    snmp_ok = sum(by_ds[ds]["status"]["ok"] for ds in snmp_tasks)
    snmp_err = sum(n for ds in snmp_tasks for st_, n in by_ds[ds]["status"].items() if st_ != "ok")
    snmp_delivered = sum(delivered_by_ds[ds]["results"] for ds in snmp_tasks)
    snmp_collected = sum(by_ds[ds]["results"] for ds in snmp_tasks)
    in_pkts, out_pkts = snmp1[0] - snmp0[0] - 1, snmp1[1] - snmp0[1] - 1  # minus our own probe
    arrived_snmp = sum(1 for r in arrived if r[2] in snmp_tasks)

    host = platform.node()
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem_total = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
    print()
    print(f"== palisade-collector footprint, {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}")
    print(f"   machine: {os.cpu_count()} CPUs ({cpu_model}), {mem_total // 1024} MiB RAM, kernel {platform.release()}, host {host}")
    print(f"   load average at the end: {' '.join(open('/proc/loadavg').read().split()[:3])} "
          "(CPU figures are CPU time used, not a share of wall time: other load does not inflate them)")
    print(f"   collector {bin_dir / 'palisade-collector'} as {a.user}:{a.group} (uid {uid}), pid {cpid}; state in {tmp}")
    print(f"   {a.devices} devices named {a.address} -> snmpd udp:{a.address}:{snmp_port} (v2c); "
          f"warm-up {a.warmup:.0f} s, window {elapsed:.0f} s, RSS sampled every {a.sample:g} s ({len(samples)} samples)")
    print()
    print("== What was polled: results with a collection time in the window (delivered + left in the buffer)")
    print(f"   {'datasource':<24}{'devices':>8}{'interval':>9}{'sched/min':>10}{'polls/min':>10}{'results':>9}"
          f"{'ok':>8}{'not ok':>8}{'ok devs':>8}{'delivered':>10}")
    for ds in sorted(tasks) + sorted(set(by_ds) - set(tasks)):
        e = by_ds[ds]
        iv = intervals.get(ds.split()[0]) or 60
        n = tasks.get(ds)
        ok = e["status"]["ok"]
        print(f"   {ds:<24}{n or '':>8}{iv:>8}s{(n * 60 / iv if n else 0):>10.0f}{len(e['polls']) / minutes:>10.0f}"
              f"{e['results']:>9}{ok:>8}{e['results'] - ok:>8}{len(e['devices']) if n else '':>8}"
              f"{delivered_by_ds[ds]['results']:>10}")
    print(f"   SNMP: {expected_polls_min:.0f} polls/min scheduled, {snmp_polls / minutes:.0f} polls/min done "
          f"({snmp_ok} ok (instance) results, {snmp_err} not ok); snmpd received {in_pkts / elapsed:.1f} requests/s "
          f"({in_pkts} in the window) and answered {out_pkts / elapsed:.1f}/s")
    if errors:
        print("   results not ok:")
        for (ds, st_, msg), n in errors.most_common(8):
            print(f"     {n:>7} {ds} {st_}: {msg}")
    print()
    print("== Delivery to the portal")
    print(f"   of the SNMP results collected in the window, {snmp_delivered} of {snmp_collected} "
          f"({100 * snmp_delivered / max(1, snmp_collected):.0f} %) were acknowledged by the portal within 10 s after it")
    print(f"   acknowledged during the window: {len(arrived)} results ({len(arrived) / minutes:.0f}/min, SNMP {arrived_snmp / minutes:.0f}/min) "
          f"in {len(results_reqs)} batches ({len(results_reqs) / minutes:.1f}/min, "
          f"{len(arrived) / max(1, len(results_reqs)):.1f} results per batch, {results_bytes / minutes / 1024:.0f} KiB/min); "
          f"{req_by_path['/api/collector/v1/heartbeat']} heartbeats, {req_by_path['/api/collector/v1/work']} work fetches")
    print(f"   collector -> portal requests: {sum(req_by_path.values()) / minutes:.0f}/min (the portal's default "
          f"--ip-rate-limit is 2000 per 60 s per address; raised for this bench)" + (f"; NOT 2xx: {dict(non2xx)}" if non2xx else ""))
    if res_portal_ms:
        med = lambda v: v[len(v) // 2]
        p95 = lambda v: v[int(len(v) * 0.95)]
        print(f"   results POST answer time: portal median {med(res_portal_ms):.1f} ms, p95 {p95(res_portal_ms):.1f} ms "
              f"(through the counting proxy: median {med(res_total_ms):.1f} ms, p95 {p95(res_total_ms):.1f} ms)")
    print(f"   collector buffer (batches not yet acknowledged): {backlog0} at the window's start, {backlog1} 10 s after its end"
          + (f" (+{(backlog1 - backlog0) / minutes:.0f}/min)" if isinstance(backlog0, int) and isinstance(backlog1, int) else ""))
    print("   stored in the portal's time-series store for the window (Prometheus API, samples of one datapoint):")
    for ds, s in stored.items():
        print(f"     {ds}_{KEY_DATAPOINT[ds]}: {s['samples']:.0f} samples, {s['devices']:.0f} devices")
    print(f"     all SNMP datapoints: {stored_all:.0f} samples")
    print(f"   collector log: {len(failed_lines)} 'collection failed' lines, {len(warn_lines)} WARN/ERROR lines in total"
          + (f"; last: {warn_lines[-1][-160:]}" if warn_lines else ""))
    print()
    print("== Footprint of palisade-collector in the window")
    RSS_TARGET = f"< {TARGET_RSS_MB:.0f} MB = {TARGET_RSS_MIB:.1f} MiB"
    CPU_TARGET = f"< {TARGET_CPU_PCT:.0f} %"
    limits = {RSS_TARGET: TARGET_RSS_MIB, CPU_TARGET: TARGET_CPU_PCT}
    rows_out = [
        ("RSS mean (VmRSS)", f"{statistics.mean(rss):.1f} MiB", RSS_TARGET),
        ("RSS max (VmRSS samples)", f"{max(rss):.1f} MiB", RSS_TARGET),
        ("RSS peak since start (VmHWM)", f"{final['VmHWM'] / 1024:.1f} MiB", RSS_TARGET),
        ("  of which anonymous (RssAnon, last)", f"{final.get('RssAnon', 0) / 1024:.1f} MiB", ""),
        ("CPU (utime+stime / window)", f"{cpu_pct['collector']:.2f} % of one core", CPU_TARGET),
        (f"CPU, busiest {a.sample:g} s sample", f"{max(cpu_samples) if cpu_samples else 0:.1f} % of one core", ""),
        ("threads (min-max)", f"{min(s['threads'] for s in samples)}-{max(s['threads'] for s in samples)}", ""),
        ("open fds (min-max)", f"{min(s['fds'] for s in samples)}-{max(s['fds'] for s in samples)}", ""),
        ("snmpd CPU (comparison)", f"{cpu_pct['snmpd']:.2f} % of one core", ""),
        ("portal CPU (comparison)", f"{cpu_pct['portal']:.2f} % of one core", ""),
    ]
    print(f"   {'':<38}{'measured':>24}   {'target':<24}")
    for name, val, target in rows_out:
        verdict = ""
        if target:
            verdict = "met" if float(val.split()[0]) < limits[target] else "ABOVE TARGET"
        print(f"   {name:<38}{val:>24}   {target:<24}{verdict}")

    def ds_json(d):
        return {ds: {"results": e["results"], "polls": len(e["polls"]), "okDevices": len(e["devices"]),
                     "status": dict(e["status"])} for ds, e in d.items()}

    figures = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model, "memMiB": mem_total // 1024, "kernel": platform.release()},
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "devices": a.devices, "warmupSecs": a.warmup, "windowSecs": elapsed, "wrapper": a.wrapper,
        "tasks": dict(tasks), "intervals": {ds: intervals.get(ds) for ds in tasks},
        "snmpPollsPerMinScheduled": expected_polls_min, "snmpPollsPerMin": snmp_polls / minutes,
        "snmpOkResults": snmp_ok, "snmpNotOkResults": snmp_err,
        "collected": ds_json(by_ds), "delivered": ds_json(delivered_by_ds),
        "errors": [{"datasource": ds, "status": s, "message": m, "count": n} for (ds, s, m), n in errors.most_common()],
        "snmpdRequestsPerSec": in_pkts / elapsed,
        "acknowledgedResultsPerMin": len(arrived) / minutes, "batchesPerMin": len(results_reqs) / minutes,
        "backlogBatches": [backlog0, backlog1],
        "portalAnswerMs": {"median": res_portal_ms[len(res_portal_ms) // 2] if res_portal_ms else None},
        "storedSamples": stored, "storedSnmpSamples": stored_all,
        "rssMeanMiB": statistics.mean(rss), "rssMaxMiB": max(rss), "hwmMiB": final["VmHWM"] / 1024,
        "rssAnonMiB": final.get("RssAnon", 0) / 1024,
        "cpuPct": cpu_pct["collector"], "cpuPctBusiestSample": max(cpu_samples) if cpu_samples else None,
        "snmpdCpuPct": cpu_pct["snmpd"], "portalCpuPct": cpu_pct["portal"],
        "threads": [min(s["threads"] for s in samples), max(s["threads"] for s in samples)],
        "fds": [min(s["fds"] for s in samples), max(s["fds"] for s in samples)],
        "samples": samples,
    }
    if a.json:
        Path(a.json).write_text(json.dumps(figures, indent=2))

    # Did the polling happen? Every 1-minute SNMP datasource collected ok results, and SNMP
    # results reached the portal during the window. (Lagging delivery or devices without an
    # ok result are printed as warnings, not failures.)
    one_minute = [ds for ds in snmp_tasks if intervals[ds] <= 60]
    missing = [ds for ds in one_minute if by_ds[ds]["status"]["ok"] == 0]
    if not one_minute or missing or arrived_snmp == 0:
        print(f"\nFAILED: SNMP polling did not happen: "
              f"{'no SNMP results reached the portal' if arrived_snmp == 0 else ''} {missing or ''}")
        return 1
    partial = {ds: len(by_ds[ds]["devices"]) for ds in one_minute if len(by_ds[ds]["devices"]) < snmp_tasks[ds]}
    if partial:
        print(f"\nWARNING: not every device has an ok result in the window: {partial} of {a.devices}")
    if snmp_delivered < snmp_collected * 0.95:
        print(f"\nWARNING: delivery lags behind collection: {snmp_collected - snmp_delivered} SNMP results of the window "
              f"were still in the collector's buffer 10 s after it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
