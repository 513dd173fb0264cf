#!/usr/bin/env python3
"""FastGate benchmark orchestrator: runs every scenario against direct / nginx /
FastGate (1 thread and all cores, each with the audit on and off) and writes
docs/performance.md. Started by bench/run.sh (which installs the tools and builds
the binaries); Python 3 standard library only.

    python3 bench/harness.py [--quick] [--scenarios a32,b,...] [--targets direct,nginx,...]
                             [--no-pin] [--output docs/performance.md]
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import time
import types
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_DIR = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
BIN = os.path.join(TARGET_DIR, "release")
FASTGATE = os.path.join(BIN, "fastgate")
MOCK = os.path.join(BIN, "bench-mock")
STREAM = os.path.join(BIN, "bench-stream")
TICKS = os.sysconf("SC_CLK_TCK")
CHAT_PATH = "/v1/chat/completions"

# Per-key limits set on the bench key: checked on every request, never reached.
LIMITS = {"requests_per_minute": 100_000_000, "requests_per_day": 4_000_000_000,
          "tokens_per_minute": 100_000_000_000, "max_concurrent": 1_000_000}
# And a monthly request quota, so the quota path (and its usage ledger) runs too.
QUOTA = {"requests": 1_000_000_000_000, "period": "monthly"}

# Latency differences to nginx smaller than this (µs) are reported as a tie.
TIE_US = 20

# A run where other processes used more than this many cores is flagged noisy.
NOISY_CORES = 0.15

TARGET_LABELS = {
    "direct": "direct (mock alone)",
    "nginx": "nginx, 1 worker",
    "fastgate-1t": "FastGate, 1 thread",
    "fastgate-1t-noaudit": "FastGate, 1 thread, audit off",
    "fastgate": "FastGate, all cores",
    "fastgate-noaudit": "FastGate, all cores, audit off",
}

# The FastGate variants: data dir (one bench key and one set of limits each),
# worker threads (0 = one per CPU), pinned to the proxy core, audit on or off.
FASTGATE_TARGETS = {
    "fastgate-1t": dict(data="fg-1t", threads=1, pinned=True, audit=True),
    "fastgate-1t-noaudit": dict(data="fg-1t-na", threads=1, pinned=True, audit=False),
    "fastgate": dict(data="fg-all", threads=0, pinned=False, audit=True),
    "fastgate-noaudit": dict(data="fg-all-na", threads=0, pinned=False, audit=False),
}

# Each audit-on variant (these decide the targets) and its audit-off reference.
AUDIT_OFF = {"fastgate-1t": "fastgate-1t-noaudit", "fastgate": "fastgate-noaudit"}

DEFAULT_TARGETS = "direct,nginx,fastgate-1t,fastgate-1t-noaudit,fastgate,fastgate-noaudit"


def audit_off(target):
    """True for a FastGate variant run with `audit.enabled: false`."""
    return target in FASTGATE_TARGETS and not FASTGATE_TARGETS[target]["audit"]


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- /proc helpers


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def cpu_seconds(pids):
    """User + system CPU seconds of the processes (all threads); vanished ones count 0."""
    total = 0.0
    for pid in pids:
        try:
            stat = read(f"/proc/{pid}/stat")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def mem_kb(pids):
    """Summed (VmRSS, VmHWM) in kB."""
    rss = hwm = 0
    for pid in pids:
        try:
            status = read(f"/proc/{pid}/status")
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm += int(line.split()[1])
    return rss, hwm


def machine_ticks():
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    fields = [int(x) for x in read("/proc/stat").splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total


def loadavg():
    return read("/proc/loadavg").split()[0:3]


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = read(f"/proc/{entry}/stat")
        except OSError:
            continue
        if int(stat[stat.rfind(")") + 2:].split()[1]) == pid:
            out.append(int(entry))
    return out


def cpu_model():
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mem_total_gb():
    for line in read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


# ---------------------------------------------------------------- processes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=2.0, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read().decode("utf-8", "replace")


def wait_http(url, proc, timeout=15.0):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited with {proc.returncode}")
        try:
            status, _ = http_get(url, timeout=1.0)
            if status == 200:
                return
        except (urllib.error.URLError, OSError) as e:
            last = e
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout}s: {last}")


class Service:
    """A long-running process under test (mock, nginx or FastGate)."""

    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.argv = argv
        self.log_file = open(log_path, "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     env=env, start_new_session=True)
        self.extra_pids = []

    @property
    def pids(self):
        return [self.proc.pid] + self.extra_pids

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def run_client(argv, out_path, timeout):
    """Runs a load generator; returns (exit code, its CPU seconds, wall seconds)."""
    started = time.time()
    with open(out_path, "wb") as out, open(out_path + ".err", "wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        deadline = started + timeout
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.time() > deadline:
                proc.kill()
                pid, status, ru = os.wait4(proc.pid, 0)
                proc.returncode = -9
                break
            time.sleep(0.02)
    return proc.returncode, ru.ru_utime + ru.ru_stime, time.time() - started


# ---------------------------------------------------------------- Prometheus


METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_RE.match(line)
        if m:
            try:
                out[(m.group(1), m.group(2) or "")] = float(m.group(3))
            except ValueError:
                pass
    return out


def metric_sum(metrics, name):
    return sum(v for (n, _), v in metrics.items() if n == name)


def histogram_delta(before, after, name):
    """[(upper bound, cumulative count)] of a histogram's growth between scrapes."""
    buckets = {}
    for (n, labels), v in after.items():
        if n != name + "_bucket":
            continue
        m = re.search(r'le="([^"]+)"', labels)
        if not m:
            continue
        le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
        buckets[le] = buckets.get(le, 0.0) + v - before.get((n, labels), 0.0)
    return sorted(buckets.items())


def histogram_quantile(q, buckets):
    """Prometheus-style estimate (linear inside the bucket); None when empty."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le


# ---------------------------------------------------------------- scenarios


def scenarios(quick, max_streams):
    """Scenario definitions; `quick` shortens everything for a smoke run."""
    d = (lambda full, short: short if quick else full)
    idle_streams = min(1000 if quick else 10000, max_streams)
    return {
        "a32": dict(title="(a) non-stream chat, closed loop, 32 connections", kind="oha",
                    conns=32, duration=d(8, 2), body="small"),
        "a128": dict(title="(a) non-stream chat, closed loop, 128 connections", kind="oha",
                     conns=128, duration=d(8, 2), body="small"),
        "b": dict(title="(b) fixed rate 1,000 req/s, latency-corrected", kind="oha",
                  conns=32, duration=d(10, 3), rate=1000, body="small"),
        "c": dict(title="(c) 200 concurrent streams, 20 chunks x 20 ms", kind="stream",
                  conns=200, duration=d(6, 2), chunks=20, delay_ms=20,
                  # Starts spread over one stream's length (200 / 0.4 s), so the
                  # closed loop does not send its requests in synchronised waves.
                  ramp=500),
        "d": dict(title="(d) 100 KB request bodies, closed loop, 32 connections", kind="oha",
                  conns=32, duration=d(6, 2), body="large"),
        "e": dict(title=f"(e) {idle_streams:,} concurrent idle-ish streams (memory)",
                  kind="stream", conns=idle_streams, duration=0, chunks=d(20, 10),
                  delay_ms=d(500, 200), ramp=4000, memory=True),
        "f": dict(title="(f) audit-heavy: request and response bodies captured, 32 connections",
                  kind="oha", conns=32, duration=d(8, 2), body="audit", audit_bodies=True,
                  response_bytes=2048),
    }


def make_bodies(work):
    small = {"model": "bench-model",
             "messages": [{"role": "user", "content": "Hello! Say something short."}]}
    words = "The quick brown fox jumps over the lazy dog. "
    large_text = (words * (102400 // len(words) + 1))[:102400 - 80]
    large = {"model": "bench-model", "messages": [{"role": "user", "content": large_text}]}
    audit_text = (words * 50)[:2000]
    audit = {"model": "bench-model", "messages": [{"role": "user", "content": audit_text}]}
    paths = {}
    for name, body in (("small", small), ("large", large), ("audit", audit)):
        path = os.path.join(work, f"body-{name}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(body, f, separators=(",", ":"))
        paths[name] = path
    return paths


# ---------------------------------------------------------------- configs


NGINX_CONF = """\
# Generated by bench/harness.py: nginx as a plain reverse proxy.
worker_processes 1;
daemon off;
master_process on;
{user}
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
worker_rlimit_nofile {nofile};
events {{ worker_connections {worker_connections}; }}
http {{
  access_log off;
  client_body_temp_path {work}/ngx-body;
  proxy_temp_path {work}/ngx-proxy;
  fastcgi_temp_path {work}/ngx-fastcgi;
  uwsgi_temp_path {work}/ngx-uwsgi;
  scgi_temp_path {work}/ngx-scgi;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  upstream mock {{
    server 127.0.0.1:{mock_port};
    keepalive 256;
    keepalive_requests 1000000;
  }}
  server {{
    listen 127.0.0.1:{port} backlog=8192;
    client_max_body_size 8m;
    client_body_buffer_size 128k;
    location / {{
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
    }}
  }}
}}
"""

FASTGATE_CONF = """\
# Generated by bench/harness.py: FastGate with every feature on.
server:
  listen: "127.0.0.1:{port}"
  worker_threads: {threads}
  max_connections: 30000
  shutdown_grace: 2s
data_dir: "{data}"
database: {{ url: "sqlite://{data}/fastgate.db" }}
admin: {{ token: "{admin_token}" }}
audit: {{ enabled: true, batch_size: 512, flush_interval: 200ms, queue_capacity: 65536 }}
log: {{ level: warn }}
metrics: {{ enabled: true }}
upstreams:
  - name: mock
    kind: openai
    base_url: "http://127.0.0.1:{mock_port}"
    credentials:
      - {{ name: k1, key: "sk-bench-{cred}" }}
      - {{ name: k2, key: "sk-bench-{cred}x" }}
  - name: mock-anthropic
    kind: anthropic
    base_url: "http://127.0.0.1:{mock_port}"
    credentials: [ {{ name: a1, key: "sk-ant-bench-{cred}" }} ]
routes:
  # A realistic table: the benchmarked route plus neighbours the matcher must skip.
  - name: chat
    match: {{ path: "{chat}", methods: [POST] }}
    upstream: mock
    audit: {{ headers: true, bodies: {bodies}, body_max_bytes: 65536 }}
  - name: embeddings
    match: {{ path: "/v1/embeddings", methods: [POST] }}
    upstream: mock
  - name: models
    match: {{ path: "/v1/models", methods: [GET] }}
    upstream: mock
  - name: model-by-id
    match: {{ path: "/v1/models/{{id}}", methods: [GET] }}
    upstream: mock
  - name: messages
    match: {{ path: "/v1/messages", methods: [POST] }}
    upstream: mock-anthropic
  - name: gpt4-team
    priority: 50
    match: {{ path: "{chat}", methods: [POST], headers: {{ x-team: "research" }} }}
    upstream: mock
  - name: prefixed
    match: {{ path: "/openai/**" }}
    upstream: mock
    strip_prefix: true
  - name: files
    match: {{ path: "/v1/files/*.jsonl", methods: [GET] }}
    upstream: mock
  - name: catch-all
    priority: 1000
    match: {{ path: "/v1/**" }}
    upstream: mock
"""

# `--health-load`: the credential-health work a deployment would configure: ten
# provider keys on the benchmarked upstream and five rules (status, range with a
# threshold, body, JSON path and latency conditions). None fires on the mock's
# answers; the point is what evaluating them costs on every response.
HEALTH_CREDENTIALS = "".join(
    f'      - {{{{ name: k{i}, key: "sk-bench-{{cred}}-{i}", weight: {1 + i % 3} }}}}\n'
    for i in range(1, 11)
)

HEALTH_RULES = """\
rules:
  - name: out-of-quota
    when: {{ any: [ {{ status: [402, 429] }}, {{ body_contains: "insufficient_quota" }} ] }}
    cooldown: 5m
    actions: [ {{ disable: 10m }}, {{ log: true }} ]
  - name: key-rejected
    when: {{ status: [401, 403] }}
    actions: [ {{ disable: 1h }} ]
  - name: server-errors
    when: {{ status: "500-599" }}
    threshold: {{ hits: 10, within: 60s }}
    actions: [ {{ disable: 2m }} ]
  - name: billing
    when: {{ json_path: {{ path: "$.error.code", equals: "insufficient_quota" }} }}
    actions: [ {{ ban: true }} ]
  - name: slow-key
    when: {{ latency_ms_over: 30000 }}
    threshold: {{ hits: 5, within: 60s }}
    actions: [ {{ disable: 5m }} ]
"""


AUDIT_ON_LINE = ("audit: {{ enabled: true, batch_size: 512, flush_interval: 200ms, "
                 "queue_capacity: 65536 }}\n")


def without_audit(text):
    """FASTGATE_CONF with the audit turned off; everything else (limits, metrics,
    routes and their audit options) unchanged."""
    if AUDIT_ON_LINE not in text:
        raise SystemExit("bench config changed: cannot turn the audit off")
    return text.replace(AUDIT_ON_LINE, "audit: {{ enabled: false }}\n", 1)


def with_health_load(text):
    """FASTGATE_CONF with ten credentials on `mock` and five rules."""
    two = ('      - {{ name: k1, key: "sk-bench-{cred}" }}\n'
           '      - {{ name: k2, key: "sk-bench-{cred}x" }}\n')
    if two not in text:
        raise SystemExit("bench config changed: cannot add the health load")
    return text.replace(two, HEALTH_CREDENTIALS).replace("routes:\n", HEALTH_RULES + "routes:\n", 1)


# ---------------------------------------------------------------- the runner


class Bench:
    def __init__(self, args):
        self.args = args
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.work = os.path.join(TARGET_DIR, "fastgate-bench", f"run-{stamp}")
        os.makedirs(self.work, exist_ok=True)
        self.nproc = os.cpu_count() or 1
        self.pin = not args.no_pin and self.nproc >= 2 and shutil.which("taskset")
        # Placement: the proxy gets a core of its own; the mock and the load
        # generator share the other one (two cores), or get their own (more).
        if self.pin:
            self.cpu_proxy = "1"
            if self.nproc >= 4:
                self.cpu_mock, self.cpu_client = "2", "0,3" if self.nproc == 4 else f"0,3-{self.nproc - 1}"
            elif self.nproc == 3:
                self.cpu_mock, self.cpu_client = "2", "0"
            else:
                self.cpu_mock = self.cpu_client = "0"
        else:
            self.cpu_proxy = self.cpu_mock = self.cpu_client = None
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
        self.nofile = soft
        # A proxy holds two sockets per stream (client side and upstream side), and
        # nginx starts closing connections once fewer than 1/16 of its
        # worker_connections are free: keep below that, with room for its pool.
        self.max_streams = max(100, int((self.nofile - 64) * 15 / 32) - 300)
        self.bodies = make_bodies(self.work)
        self.admin_token = "bench-" + secrets.token_hex(16)
        self.cred = secrets.token_hex(8)
        self.results = []
        self.mock = None
        self.mock_port = None
        self.keys = {}
        self.limits = {}
        self.commands = {}
        self.started = time.time()
        self.binary_bytes = os.path.getsize(FASTGATE) if os.path.exists(FASTGATE) else None

    # -- helpers

    def pinned(self, cpus, argv):
        return (["taskset", "-c", cpus] + argv) if cpus else argv

    def start_mock(self):
        self.mock_port = free_port()
        argv = self.pinned(self.cpu_mock, [MOCK, "--listen", f"127.0.0.1:{self.mock_port}",
                                           "--threads", "1", "--backlog", "16384"])
        self.mock = Service("mock", argv, os.path.join(self.work, "mock.log"))
        wait_http(f"http://127.0.0.1:{self.mock_port}/health", self.mock.proc)
        self.commands["mock"] = argv

    def fastgate_config(self, name, threads, audit_bodies, port, audit=True):
        data = os.path.join(self.work, name)
        os.makedirs(data, exist_ok=True)
        template = with_health_load(FASTGATE_CONF) if self.args.health_load else FASTGATE_CONF
        if not audit:
            template = without_audit(template)
        text = template.format(port=port, threads=threads, data=data,
                                    admin_token=self.admin_token, mock_port=self.mock_port,
                                    cred=self.cred, chat=CHAT_PATH,
                                    bodies="true" if audit_bodies else "false")
        if self.args.redis:
            # Limits shared through Redis (a fleet's setup), under this run's own prefix.
            text = text.replace("metrics: { enabled: true }\n",
                                "metrics: { enabled: true }\n"
                                f"redis: {{ url: \"{self.args.redis}\", "
                                f"key_prefix: \"fgbench:{os.path.basename(self.work)}:\" }}\n", 1)
            if "redis:" not in text:
                raise SystemExit("bench config changed: cannot add the redis section")
        path = os.path.join(self.work, f"{name}{'-audit' if audit_bodies else ''}.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        if name not in self.keys:
            out = subprocess.run([FASTGATE, "--config", path, "keys", "create", "--name", "bench",
                                  "--json"], capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise RuntimeError(f"fastgate keys create failed: {out.stderr.strip()}")
            self.keys[name] = json.loads(out.stdout)["key"]
        return path

    def start_target(self, target, scenario):
        """Starts a fresh proxy; returns (service or None, base URL, auth key)."""
        if target == "direct":
            return None, f"http://127.0.0.1:{self.mock_port}", None
        port = free_port()
        if target == "nginx":
            conf = os.path.join(self.work, "nginx.conf")
            conns = self.nofile - 64 if scenario.get("memory") else 4096
            with open(conf, "w", encoding="utf-8") as f:
                f.write(NGINX_CONF.format(
                    work=self.work, port=port, mock_port=self.mock_port, nofile=self.nofile,
                    worker_connections=min(conns, self.nofile - 64),
                    user="user root;" if os.geteuid() == 0 else ""))
            argv = self.pinned(self.cpu_proxy, [shutil.which("nginx") or "nginx", "-p", self.work,
                                                "-c", conf])
            svc = Service("nginx", argv, os.path.join(self.work, "nginx.log"))
            wait_http(f"http://127.0.0.1:{port}/health", svc.proc)
            for _ in range(50):
                svc.extra_pids = children(svc.proc.pid)
                if svc.extra_pids:
                    break
                time.sleep(0.05)
            self.commands["nginx"] = argv
            return svc, f"http://127.0.0.1:{port}", None
        spec = FASTGATE_TARGETS[target]
        name = spec["data"]
        conf = self.fastgate_config(name, spec["threads"], scenario.get("audit_bodies", False), port,
                                    audit=spec["audit"])
        argv = self.pinned(self.cpu_proxy if spec["pinned"] else None,
                           [FASTGATE, "serve", "--config", conf])
        svc = Service(target, argv, os.path.join(self.work, f"{name}.log"))
        wait_http(f"http://127.0.0.1:{port}/health", svc.proc)
        self.commands[target] = argv
        if name not in self.limits:
            self.limits[name] = self.set_limits(f"http://127.0.0.1:{port}")
        return svc, f"http://127.0.0.1:{port}", self.keys[name]

    def set_limits(self, url):
        """Gives the bench key per-key limits far above the load, so the limiter runs
        on every request without ever refusing one. Returns the stored limits, or
        None when this FastGate has no per-key limits."""
        body = json.dumps({"limits": LIMITS, "quota": QUOTA}).encode()
        req = urllib.request.Request(url + "/admin/api/keys/bench", data=body, method="PATCH",
                                     headers={"Authorization": f"Bearer {self.admin_token}",
                                              "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                stored = json.loads(resp.read()).get("limits")
        except (urllib.error.URLError, OSError, ValueError) as e:
            log(f"  per-key limits not available ({e}); measuring without them")
            return None
        if not stored or not any(stored.get(k) for k in LIMITS):
            log("  per-key limits not stored by this FastGate; measuring without them")
            return None
        time.sleep(1.0)  # the key index picks changes up within a second
        return stored

    def oha_argv(self, sc, url, key, duration, warmup=False):
        argv = ["oha", "--no-tui", "--output-format", "json", "-z", f"{duration}s", "-w",
                "-c", str(sc["conns"]), "-m", "POST", "-T", "application/json",
                "-D", self.bodies[sc["body"]]]
        if self.cpu_client:
            argv += ["--worker-threads", str(len(self.expand(self.cpu_client)))]
        if key:
            argv += ["-H", f"authorization: Bearer {key}"]
        if sc.get("response_bytes"):
            argv += ["-H", f"x-mock-response-bytes: {sc['response_bytes']}"]
        if sc.get("rate") and not warmup:
            argv += ["-q", str(sc["rate"]), "--latency-correction"]
        argv.append(url + CHAT_PATH)
        return self.pinned(self.cpu_client, argv)

    def stream_argv(self, sc, url, key, sample, duration=None, conns=None):
        argv = [STREAM, "--url", url + CHAT_PATH,
                "--connections", str(conns or sc["conns"]),
                "--duration", f"{sc['duration'] if duration is None else duration}s",
                "--ramp", str(sc.get("ramp", 0)),
                "--header", f"x-mock-chunks: {sc['chunks']}",
                "--header", f"x-mock-chunk-delay-ms: {sc['delay_ms']}",
                "--threads", "1", "--stream-timeout", "120s"]
        if key:
            argv += ["--header", f"authorization: Bearer {key}"]
        for label, pids in sample:
            argv += ["--sample", f"{label}={','.join(str(p) for p in pids)}"]
        return self.pinned(self.cpu_client, argv)

    def drop_databases(self):
        """The audit databases grow to ~1 GB per FastGate variant: removed after the
        run unless --keep-data (configs, logs and raw results stay)."""
        for spec in FASTGATE_TARGETS.values():
            path = os.path.join(self.work, spec["data"])
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
        runs = sorted(d for d in os.listdir(os.path.dirname(self.work)) if d.startswith("run-"))
        for old in runs[:-5]:
            shutil.rmtree(os.path.join(os.path.dirname(self.work), old), ignore_errors=True)

    def mask(self, text):
        for k in self.keys.values():
            text = text.replace(k, "fg_…")
        return text

    @staticmethod
    def expand(cpus):
        out = []
        for part in cpus.split(","):
            if "-" in part:
                a, b = part.split("-")
                out += list(range(int(a), int(b) + 1))
            else:
                out.append(int(part))
        return out

    def scrape(self, url):
        try:
            _, text = http_get(url + "/metrics", timeout=5.0)
            return parse_metrics(text)
        except (urllib.error.URLError, OSError) as e:
            log(f"  metrics scrape failed: {e}")
            return {}

    # -- one measurement

    def wait_quiet(self):
        """Waits (up to --quiet-wait s) until other processes leave the CPUs alone;
        returns (seconds waited, background load in cores just before the run)."""
        start = time.time()
        while True:
            b0, t0 = machine_ticks()
            time.sleep(0.5)
            b1, t1 = machine_ticks()
            cores = (b1 - b0) / TICKS / 0.5
            waited = time.time() - start
            if cores <= self.args.quiet_threshold or waited >= self.args.quiet_wait:
                return waited, cores
            log(f"  machine busy ({cores:.2f} cores used by other processes); waiting")

    def run_one(self, sid, sc, target):
        waited, background = self.wait_quiet()
        svc, url, key = self.start_target(target, sc)
        res = {"scenario": sid, "target": target, "ok": True,
               "quiet_wait_s": waited, "background_cores": background}
        try:
            time.sleep(0.3)
            if svc:
                res["idle_rss_kb"], _ = mem_kb(svc.pids)
            # Warm-up: fills connection pools and caches; not measured.
            if sc["kind"] == "oha":
                run_client(self.oha_argv(sc, url, key, 1, warmup=True),
                           os.path.join(self.work, f"{sid}-{target}-warmup.json"), 30)
            elif not sc.get("memory"):
                run_client(self.stream_argv(sc, url, key, [], duration=1, conns=min(sc["conns"], 50)),
                           os.path.join(self.work, f"{sid}-{target}-warmup.json"), 60)
            is_fg = target.startswith("fastgate")
            before_metrics = self.scrape(url) if is_fg else {}
            res["loadavg_before"] = loadavg()
            proxy_cpu0 = cpu_seconds(svc.pids) if svc else 0.0
            mock_cpu0 = cpu_seconds(self.mock.pids)
            busy0, total0 = machine_ticks()
            out = os.path.join(self.work, f"{sid}-{target}.json")
            if sc["kind"] == "oha":
                argv = self.oha_argv(sc, url, key, sc["duration"])
                timeout = sc["duration"] + 60
            else:
                sample = [("proxy", svc.pids)] if svc else []
                sample.append(("mock", self.mock.pids))
                argv = self.stream_argv(sc, url, key, sample)
                timeout = sc["duration"] + 180
            rc, client_cpu, wall = run_client(argv, out, timeout)
            busy1, total1 = machine_ticks()
            res["proxy_cpu_s"] = (cpu_seconds(svc.pids) - proxy_cpu0) if svc else None
            res["mock_cpu_s"] = cpu_seconds(self.mock.pids) - mock_cpu0
            res["client_cpu_s"] = client_cpu
            res["wall_s"] = wall
            res["machine_busy_cores"] = (busy1 - busy0) / TICKS / wall
            res["machine_busy_pct"] = 100.0 * (busy1 - busy0) / max(1, total1 - total0)
            res["argv"] = [self.mask(a) for a in argv]
            if svc:
                res["rss_kb"], res["hwm_kb"] = mem_kb(svc.pids)
            if rc != 0:
                res["ok"] = False
                res["error"] = f"load generator exited with {rc}: " + read(out + ".err")[-500:]
            else:
                with open(out, encoding="utf-8") as f:
                    data = json.load(f)
                if sc["kind"] == "oha":
                    self.digest_oha(res, data)
                else:
                    self.digest_stream(res, data)
            if is_fg:
                self.digest_fastgate(res, url, before_metrics, audit_off(target))
        except Exception as e:  # noqa: BLE001 - one failed run must not stop the suite
            res["ok"] = False
            res["error"] = f"{type(e).__name__}: {e}"
        finally:
            if svc:
                svc.stop()
        others = (res.get("machine_busy_cores") or 0.0) * res.get("wall_s", 0.0) - sum(
            res.get(k) or 0.0 for k in ("proxy_cpu_s", "mock_cpu_s", "client_cpu_s"))
        res["other_cpu_s"] = max(0.0, others)
        return res

    @staticmethod
    def digest_oha(res, d):
        s = d.get("summary", {})
        codes = d.get("statusCodeDistribution", {}) or {}
        errors = d.get("errorDistribution", {}) or {}
        ok = sum(v for k, v in codes.items() if k.startswith("2"))
        res["requests"] = sum(codes.values())
        res["non2xx"] = res["requests"] - ok
        res["errors"] = sum(errors.values())
        res["error_kinds"] = list(errors.keys())[:3]
        res["rps"] = s.get("requestsPerSec")
        lp = d.get("latencyPercentiles", {}) or {}
        res["lat_us"] = {k: (v * 1e6 if v is not None else None) for k, v in lp.items()}
        res["lat_us"]["mean"] = (s.get("average") or 0) * 1e6

    @staticmethod
    def digest_stream(res, d):
        res["requests"] = d.get("streams", 0)
        res["errors"] = d.get("errors", 0)
        res["non2xx"] = d.get("streams", 0) - d.get("ok", 0)
        res["error_kinds"] = d.get("error_samples", [])
        res["ttfb_us"] = d.get("ttfb_us", {})
        res["total_us"] = d.get("total_us", {})
        res["gap_us"] = d.get("gap_us", {})
        res["peak_open"] = d.get("peak_open_streams")
        res["stream_rss"] = d.get("rss", {})
        res["rps"] = d.get("streams", 0) / max(1e-9, d.get("elapsed_s", 1))

    def digest_fastgate(self, res, url, before, no_audit=False):
        after = self.scrape(url)
        buckets = histogram_delta(before, after, "fastgate_gateway_overhead_seconds")
        res["overhead_us"] = {
            "count": buckets[-1][1] if buckets else 0,
            "p50": none_mul(histogram_quantile(0.50, buckets), 1e6),
            "p99": none_mul(histogram_quantile(0.99, buckets), 1e6),
        }
        if no_audit:
            res["audit"] = None  # no writer: nothing to drain or count
            return
        written0 = metric_sum(before, "fastgate_audit_written_total")
        written_run = metric_sum(after, "fastgate_audit_written_total") - written0
        depth_end = metric_sum(after, "fastgate_audit_queue_depth")
        # Let the writer finish, then count what it kept up with.
        drain_start = time.time()
        drained = after
        while time.time() - drain_start < 15:
            if metric_sum(drained, "fastgate_audit_queue_depth") <= 0:
                break
            time.sleep(0.1)
            drained = self.scrape(url)
        audit = {
            "written_during_run": written_run,
            "rows_per_s": written_run / max(1e-9, res.get("wall_s", 1)),
            # FastGate's own high-water mark (since start, so the 1 s warm-up at the same
            # load is included): nothing polls /metrics during the run, which would take
            # CPU on the measured cores that no other target pays.
            "queue_depth_max": max(metric_sum(after, "fastgate_audit_queue_depth_peak"), depth_end),
            "queue_depth_end": depth_end,
            "drain_s": time.time() - drain_start,
            "written_total": metric_sum(drained, "fastgate_audit_written_total") - written0,
        }
        for name in ("dropped", "overflow", "spilled", "sink_errors", "rejected"):
            audit[name] = (metric_sum(drained, f"fastgate_audit_{name}_total")
                           - metric_sum(before, f"fastgate_audit_{name}_total"))
        res["audit"] = audit

    # -- whole suite

    def run(self):
        log(f"work dir {self.work}")
        self.start_mock()
        plan = scenarios(self.args.quick, self.max_streams)
        chosen = [s for s in self.args.scenarios.split(",") if s] if self.args.scenarios else list(plan)
        targets = [t for t in self.args.targets.split(",") if t]
        for t in targets:
            if t not in TARGET_LABELS:
                raise SystemExit(f"unknown target {t} (known: {', '.join(TARGET_LABELS)})")
        try:
            for sid in chosen:
                if sid not in plan:
                    raise SystemExit(f"unknown scenario {sid} (known: {', '.join(plan)})")
                sc = plan[sid]
                log(sc["title"])
                # Targets interleaved per scenario so slow drift hits all alike.
                for target in targets:
                    best = None
                    for attempt in range(1, self.args.retries + 2):
                        res = self.run_one(sid, sc, target)
                        res["attempt"] = attempt
                        if best is None or noise(res) < noise(best):
                            best = res
                        if res.get("ok") and noise(res) <= NOISY_CORES:
                            break
                        if attempt <= self.args.retries:
                            log(f"  {target:19s} noisy or failed run (other processes used "
                                f"{noise(res):.2f} cores); retrying")
                    best["attempts"] = attempt
                    self.results.append(best)
                    log(f"  {target:19s} {short(best, sc)}")
        finally:
            self.mock.stop()
            if not self.args.keep_data:
                self.drop_databases()
        self.elapsed = time.time() - self.started
        meta = {k: getattr(self, k) for k in META_FIELDS}
        meta["args"] = {"quick": self.args.quick, "quiet_wait": self.args.quiet_wait,
                        "quiet_threshold": self.args.quiet_threshold}
        meta["commands"] = {k: [self.mask(a) for a in v] for k, v in self.commands.items()}
        meta["date"] = time.time()
        with open(os.path.join(self.work, "results.json"), "w", encoding="utf-8") as f:
            json.dump({"results": self.results, "plan": plan, "chosen": chosen,
                       "targets": targets, "meta": meta}, f, indent=1, default=str)
        report = Report(self, plan, chosen, targets).render()
        out = self.args.output
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, "w", encoding="utf-8") as f:
            f.write(report)
        log(f"report written to {out} (raw results in {self.work}/results.json); "
            f"suite took {self.elapsed:.0f}s")


META_FIELDS = ("elapsed", "nproc", "nofile", "pin", "cpu_proxy", "cpu_mock", "cpu_client",
               "limits", "binary_bytes")


def report_only(path, output):
    """Re-renders the report from a saved results.json (no load is run)."""
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    meta = saved["meta"]
    # .get: results saved by an older harness lack the newer fields (binary_bytes).
    bench = types.SimpleNamespace(**{k: meta.get(k) for k in META_FIELDS})
    bench.args = types.SimpleNamespace(**meta["args"])
    bench.results = saved["results"]
    bench.commands = meta["commands"]
    bench.keys = {}
    bench.date = meta.get("date")
    text = Report(bench, saved["plan"], saved["chosen"], saved["targets"]).render()
    with open(output, "w", encoding="utf-8") as f:
        f.write(text)
    log(f"report re-rendered from {path} into {output}")


def noise(res):
    """Cores used by other processes during a run (failed runs count as very noisy)."""
    if not res.get("ok"):
        return 1e9
    return res.get("other_cpu_s", 0.0) / max(1e-9, res.get("wall_s", 1.0))


def none_mul(v, k):
    return None if v is None else v * k


def short(res, sc):
    if not res.get("ok"):
        return "FAILED: " + res.get("error", "?")
    if sc["kind"] == "oha":
        lat = res.get("lat_us", {})
        return (f"{res.get('rps', 0):9.0f} req/s  p50 {fmt_us(lat.get('p50'))}  "
                f"p99 {fmt_us(lat.get('p99'))}  proxy cpu {fmt_num(res.get('proxy_cpu_s'), 2)} s  "
                f"errors {res.get('errors', 0) + res.get('non2xx', 0)}")
    return (f"{res.get('requests', 0)} streams  ttfb p50 {fmt_us(res['ttfb_us'].get('p50'))}  "
            f"gap p99 {fmt_us(res['gap_us'].get('p99'))}  peak open {res.get('peak_open')}  "
            f"errors {res.get('errors', 0)}")


# ---------------------------------------------------------------- formatting


def fmt_us(v):
    if v is None:
        return "—"
    if abs(v) >= 10000:
        return f"{v / 1000:.1f} ms"
    if abs(v) >= 1000:
        return f"{v / 1000:.2f} ms"
    return f"{v:.0f} µs"


def fmt_num(v, digits=0):
    if v is None:
        return "—"
    return f"{v:,.{digits}f}"


def fmt_mb(kb):
    return "—" if not kb else f"{kb / 1024:.1f} MB"


def fmt_ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def fmt_signed_us(v):
    if v is None:
        return "—"
    return ("+" if v >= 0 else "−") + fmt_us(abs(v))


def fmt_cpu(us):
    return "—" if us is None else f"{us:.1f} µs"


def verdict(ok):
    return "—" if ok is None else ("**met**" if ok else "**missed**")


def vs_nginx(a, b):
    """a ≤ b, with differences under TIE_US reported as a tie."""
    if a > b + TIE_US:
        return "**missed**"
    return "**met**" if a <= b else f"**met** (tie: within {TIE_US} µs)"


def audit_cells(target, a):
    """The audit writer's columns of "FastGate's own view"."""
    if audit_off(target):
        return ["off"] * 8
    if not a:
        return ["—"] * 8
    return [fmt_num(a["written_during_run"]), fmt_num(a["rows_per_s"]),
            fmt_num(a["queue_depth_max"]), fmt_num(a["queue_depth_end"]), f"{a['drain_s']:.1f} s",
            fmt_num(a["dropped"] + a["overflow"]), fmt_num(a["spilled"]), fmt_num(a["sink_errors"])]


def write_rows(w, rows):
    """Markdown table rows (the header is written by the caller), then a blank line."""
    for row in rows:
        w("| " + " | ".join(row) + " |")
    w("")


def shell_join(argv, secrets_to_hide=()):
    text = " ".join(shlex.quote(a) for a in argv)
    for s in secrets_to_hide:
        if s:
            text = text.replace(s, "fg_…")
    return text.replace(ROOT + "/", "")


class Report:
    def __init__(self, bench, plan, chosen, targets):
        self.b = bench
        self.plan = plan
        self.chosen = chosen
        self.targets = targets
        self.by = {(r["scenario"], r["target"]): r for r in bench.results}

    def get(self, sid, target):
        r = self.by.get((sid, target))
        return r if r and r.get("ok") else None

    def tool_version(self, argv):
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            text = (out.stdout + out.stderr).strip().splitlines()
            return text[0] if text else "?"
        except OSError:
            return "not found"

    def fastgate_targets(self):
        """The FastGate variants of this run, in --targets order."""
        return [t for t in self.targets if t in FASTGATE_TARGETS]

    def added(self, sid, target, field, p):
        """The target's percentile p of `field` (lat_us, ttfb_us, gap_us) minus the direct
        run's, or None when either is missing."""
        r, d = self.get(sid, target), self.get(sid, "direct")
        if not r or not d:
            return None
        a, b = r.get(field, {}).get(p), d.get(field, {}).get(p)
        return None if a is None or b is None else a - b

    def cpu_per_req(self, r):
        if not r or not r.get("requests") or r.get("proxy_cpu_s") is None:
            return None
        return r["proxy_cpu_s"] / r["requests"] * 1e6

    def render(self):
        b = self.b
        L = []
        w = L.append
        mode = "quick smoke run (--quick): short runs, numbers are indicative only" if b.args.quick \
            else "full run"
        w("# FastGate performance")
        w("")
        w("Generated by `bash bench/run.sh` (the harness in [`bench/`](../bench/README.md)); "
          "do not edit by hand — rerun it. Every figure below comes from that run; none comes "
          "from tests.")
        w("")
        w("## How it was measured")
        w("")
        when = getattr(b, "date", None) or time.time()
        w(f"- Date: {datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, "
          f"{mode}; whole suite took {b.elapsed:.0f} s.")
        w(f"- Machine: {cpu_model()}, {b.nproc} CPUs (`nproc`), {mem_total_gb():.0f} GB RAM, "
          f"Linux {platform.release()}; open-file limit {b.nofile}.")
        w(f"- Tools: {self.tool_version(['oha', '--version'])}; "
          f"{self.tool_version(['nginx', '-v'])}; {self.tool_version(['rustc', '--version'])}.")
        if b.pin:
            w(f"- CPU pinning (`taskset`): the proxy under test on CPU {b.cpu_proxy}; the mock on "
              f"CPU {b.cpu_mock}; the load generator on CPU {b.cpu_client}. nginx (1 worker) and "
              "FastGate (1 worker thread, audit on or off) are therefore measured on one core each, "
              "with nothing else scheduled there: a per-core comparison. \"FastGate, all cores\" "
              "(audit on or off) is not pinned (its runtime has one worker per CPU) and competes "
              "with the mock and the load generator.")
        else:
            w("- No CPU pinning (fewer than 2 CPUs, `taskset` missing or `--no-pin`).")
        w("- Targets: **direct** = the load generator talks to the mock upstream; **nginx** = "
          "Debian's nginx as a plain reverse proxy (1 worker, upstream keep-alive pool of 256, "
          "`proxy_http_version 1.1`, `proxy_buffering off`, `proxy_request_buffering off`, "
          "access log off); **FastGate** = gateway-key auth, a 9-route table, credential "
          "pool, audit of every request to SQLite (with headers; bodies too in (f)) and "
          "Prometheus metrics, `log.level: warn`, with 1 worker thread and with all cores; "
          "**FastGate, … audit off** = the same configuration with `audit: { enabled: false }` "
          "(limits, metrics and routes unchanged), to show what the audit costs. The targets "
          "are judged on the audit-on variants.")
        limits = b.limits or {}
        stored = [v for v in limits.values() if v]
        if stored and len(stored) == len(limits):
            w("- Per-key limits are on: the bench key has "
              + ", ".join(f"`{k}: {v:,}`" for k, v in sorted(stored[0].items()) if v)
              + " (set through the admin API), far above the load, so the limiter runs on "
              "every request and never refuses one.")
        else:
            w("- Per-key limits (\"limits\") could not be set on the bench key (not available "
              "in this FastGate build), so they are not part of the measured path.")
        w("- Each (scenario, target) pair gets a fresh proxy process (so peak RSS is per scenario), "
          "a 1 s warm-up, then the measured run. Targets run interleaved per scenario, so slow "
          "drift in machine load affects all of them alike.")
        w("- CPU seconds are read from `/proc/PID/stat` (utime+stime, all threads; for nginx "
          "master + worker) before and after the measured run; the load generator's from "
          "`wait4` rusage. \"CPU/req\" is the proxy's CPU time divided by the requests of the "
          "run. RSS is `VmRSS` at the end of the run; \"idle\" is right after start.")
        w("- Machine load: `load1` is `/proc/loadavg` just before the run; \"busy\" is the "
          "whole machine's CPU use during the run (from `/proc/stat`, in cores); \"other\" is "
          "the CPU time used by processes other than proxy, mock and load generator (⚠ when "
          f"above {NOISY_CORES} cores: a noisy run). \"proxy cores\" is the proxy's CPU time "
          "divided by the run's wall time: close to 1.00 for a pinned proxy means that core was "
          "saturated (the proxy was the bottleneck). Before each run the harness waits up to "
          f"{b.args.quiet_wait:.0f} s for other processes to use less than "
          f"{b.args.quiet_threshold} cores.")
        w("- Added latency = target's percentile minus the direct run's same percentile in the "
          "same scenario (so it includes the extra loopback hop, as it would for nginx).")
        w("")
        w("Command:")
        w("")
        w("```sh")
        w("bash bench/run.sh            # full suite, writes docs/performance.md (~7–9 min)")
        w("bash bench/run.sh --quick    # smoke run, ~3 min")
        w("```")
        w("")
        self.render_summary(w)
        self.render_audit_cost(w)
        for sid in self.chosen:
            sc = self.plan[sid]
            w(f"## {sc['title']}")
            w("")
            if sc["kind"] == "oha":
                self.render_oha(w, sid, sc)
            else:
                self.render_stream(w, sid, sc)
            self.render_fastgate_extra(w, sid)
            self.render_commands(w, sid)
        self.render_failures(w)
        return "\n".join(L) + "\n"

    def render_summary(self, w):
        w("## Targets at a glance")
        w("")
        w("Targets from the performance issue, measured with every feature on: the audit-on "
          "FastGate targets decide met / missed. The \"audit off\" column gives the same figure "
          "for the audit-off variant of the same target, for reference only. Where the CPU "
          "goes, and what is left to gain: [performance-profile.md](performance-profile.md) "
          "(`bash bench/profile.sh`).")
        w("")
        w("| target | measured | audit off (reference) | result |")
        w("| --- | --- | --- | --- |")
        write_rows(w, self.summary_rows())

    def summary_rows(self):
        one, both = ["fastgate-1t"], list(AUDIT_OFF)
        rows = []
        for sid in ("a32", "a128"):
            rows += self.goal_rows("CPU per request ≤ 2.0× nginx", sid, one,
                                   self.m_cpu_vs_nginx(sid), lambda v: verdict(v <= 2.0))
            rows += self.goal_rows("throughput ≥ 0.7× nginx", sid, one,
                                   self.m_rps_vs_nginx(sid), lambda v: verdict(v >= 0.7))
            rows += self.goal_rows("throughput ≥ 1.0× nginx", sid, ["fastgate"],
                                   self.m_rps_vs_nginx(sid), lambda v: verdict(v >= 1.0))
        for p in ("p50", "p99"):
            rows += self.goal_rows(f"added latency {p} at 1,000 req/s ≤ nginx's", "b", both,
                                   self.m_added_vs_nginx("b", "lat_us", p), lambda v: vs_nginx(*v))
        rows += self.goal_rows("SPEC §9: added p99 < 100 µs at 1,000 req/s", "", both,
                               self.m_added("b", "lat_us", "p99"), lambda v: verdict(v < 100))
        rows += self.goal_rows("stream added TTFB p50 ≤ nginx's", "c", both,
                               self.m_added_vs_nginx("c", "ttfb_us", "p50"), lambda v: vs_nginx(*v))
        rows += self.goal_rows("stream added inter-chunk gap p99 ≤ nginx's", "c", both,
                               self.m_added_vs_nginx("c", "gap_us", "p99"), lambda v: vs_nginx(*v))
        rows += self.goal_rows("memory ≤ 30 kB per concurrent stream", "e", both,
                               self.m_stream_kb, lambda v: verdict(v <= 30))
        streams = self.plan.get("e", {}).get("conns", 10000)
        rows += self.goal_rows(f"{streams:,} concurrent streams ≤ 300 MB", "e", both,
                               self.m_streams_10k, lambda v: verdict(v <= 300 * 1024))
        rows += self.idle_rss_rows()
        rows += self.audit_writer_rows()
        size = getattr(self.b, "binary_bytes", None)
        if size:
            rows.append(["release binary size (`target/release/fastgate`)", fmt_mb(size / 1024),
                         "—", "reported"])
        return rows

    def goal_rows(self, goal, where, targets, measure, judge):
        """One row per audit-on target in `targets` that has a result. `measure(t)` gives
        (text, short text, value) or None; `judge(value)` the verdict; the short text of
        the target's audit-off variant fills the reference column."""
        rows = []
        for t in targets:
            m = measure(t)
            if m is None:
                continue
            ref = measure(AUDIT_OFF[t])
            label = f"{goal} ({where + ', ' if where else ''}{TARGET_LABELS[t]})"
            rows.append([label, m[0], ref[1] if ref else "—", judge(m[2])])
        return rows

    def m_rps_vs_nginx(self, sid):
        def measure(t):
            f, n = self.get(sid, t), self.get(sid, "nginx")
            if not f or not n or not n.get("rps") or f.get("rps") is None:
                return None
            ratio = f["rps"] / n["rps"]
            return (f"{fmt_num(f['rps'])} vs {fmt_num(n['rps'])} req/s = {ratio:.2f}×",
                    f"{fmt_num(f['rps'])} req/s = {ratio:.2f}×", ratio)
        return measure

    def m_cpu_vs_nginx(self, sid):
        def measure(t):
            cf, cn = self.cpu_per_req(self.get(sid, t)), self.cpu_per_req(self.get(sid, "nginx"))
            if not cf or not cn:
                return None
            return (f"{fmt_cpu(cf)} vs {fmt_cpu(cn)} = {cf / cn:.2f}×",
                    f"{fmt_cpu(cf)} = {cf / cn:.2f}×", cf / cn)
        return measure

    def m_added(self, sid, field, p):
        def measure(t):
            af = self.added(sid, t, field, p)
            return None if af is None else (fmt_signed_us(af), fmt_signed_us(af), af)
        return measure

    def m_added_vs_nginx(self, sid, field, p):
        def measure(t):
            af, an = self.added(sid, t, field, p), self.added(sid, "nginx", field, p)
            if af is None or an is None:
                return None
            return f"{fmt_signed_us(af)} vs nginx {fmt_signed_us(an)}", fmt_signed_us(af), (af, an)
        return measure

    def e_memory(self, t):
        """(peak RSS, idle RSS, kB per stream) of scenario (e), or None."""
        e = self.get("e", t)
        peak = e and e.get("stream_rss", {}).get("proxy", {}).get("peak_kb")
        if not peak or not e.get("peak_open"):
            return None
        idle = e.get("idle_rss_kb") or 0
        return peak, idle, (peak - idle) / e["peak_open"]

    def m_stream_kb(self, t):
        mem = self.e_memory(t)
        if not mem:
            return None
        peak, idle, per = mem
        opened = self.get("e", t)["peak_open"]
        return (f"{per:.1f} kB = ({fmt_mb(peak)} peak − {fmt_mb(idle)} idle) / {opened:,} streams",
                f"{per:.1f} kB", per)

    def m_streams_10k(self, t):
        mem = self.e_memory(t)
        if not mem:
            return None
        peak, idle, per = mem
        scaled = idle + per * 10000
        opened = self.get("e", t)["peak_open"]
        if self.plan.get("e", {}).get("conns", 10000) >= 10000:
            return f"{fmt_mb(peak)} at {opened:,} open", fmt_mb(peak), scaled
        why = "--quick" if self.b.args.quick else "limited by the open-file limit"
        return (f"{fmt_mb(peak)} at {opened:,} open ({why}; ≈ {fmt_mb(scaled)} scaled to 10,000)",
                f"≈ {fmt_mb(scaled)} scaled to 10,000", scaled)

    def idle_rss_rows(self):
        def worst(audit):
            idle = [r["idle_rss_kb"] for r in self.b.results
                    if r.get("target") in FASTGATE_TARGETS and r.get("idle_rss_kb")
                    and audit_off(r["target"]) != audit]
            return max(idle) if idle else None
        on, off = worst(True), worst(False)
        if on is None:
            return []
        return [["idle RSS ≤ 30 MB (FastGate, largest over all fresh starts)", fmt_mb(on),
                 fmt_mb(off) if off else "—", verdict(on <= 30 * 1024)]]

    def audit_writer_rows(self):
        rows = []
        for sid in ("a128", "f"):
            for t in AUDIT_OFF:
                r = self.get(sid, t)
                if not r or not r.get("audit"):
                    continue
                a = r["audit"]
                lost = a["dropped"] + a["overflow"]
                rows.append([f"audit writer keeps up ({sid}, {TARGET_LABELS[t]})",
                             f"{fmt_num(a['rows_per_s'])} rows/s, peak queue "
                             f"{fmt_num(a['queue_depth_max'])}, drained in {a['drain_s']:.1f} s, "
                             f"lost {fmt_num(lost)}", "—",
                             verdict(lost == 0 and a["drain_s"] < 5)])
        return rows

    def render_audit_cost(self, w):
        rows = []
        for sid in ("a32", "a128", "f"):
            for on, off in AUDIT_OFF.items():
                r_on, r_off = self.get(sid, on), self.get(sid, off)
                if r_on and r_off:
                    rows.append(self.audit_cost_row(sid, on, r_on, r_off))
        if not rows:
            return
        w("## What the audit costs")
        w("")
        w("The same FastGate configuration with `audit: { enabled: false }` (no audit queue, "
          "writer or SQLite rows; limits, metrics and routes unchanged), in the same scenario. "
          "CPU/req counts all of the proxy's threads, the audit writer's included; in (f) the "
          "audit-on run also captures request and response bodies.")
        w("")
        w("| scenario | target | CPU/req audit on | CPU/req audit off | audit's CPU/req | "
          "req/s audit on | req/s audit off | on ÷ off |")
        w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        write_rows(w, rows)

    def audit_cost_row(self, sid, target, r_on, r_off):
        c_on, c_off = self.cpu_per_req(r_on), self.cpu_per_req(r_off)
        diff = "—"
        if c_on and c_off:
            diff = f"{c_on - c_off:+.1f} µs ({100 * (c_on - c_off) / c_on:.0f} % of on)"
        return [sid, TARGET_LABELS[target], fmt_cpu(c_on), fmt_cpu(c_off), diff,
                fmt_num(r_on.get("rps")), fmt_num(r_off.get("rps")),
                fmt_ratio(r_on.get("rps"), r_off.get("rps"))]

    def machine_cells(self, r):
        other = r.get("other_cpu_s", 0.0)
        noisy = other / max(1e-9, r.get("wall_s", 1.0)) > NOISY_CORES
        return [", ".join(r.get("loadavg_before", ["?"])[:1]),
                f"{r.get('machine_busy_cores', 0):.2f}",
                f"{other:.2f} s" + (" ⚠" if noisy else "")]

    @staticmethod
    def write_list(w, title, lines):
        if lines:
            w(title)
            w("")
            for line in lines:
                w(line)
            w("")

    def vs_nginx_text(self, sid, t, field, p, what):
        """"added <what> +x vs nginx +y", or None when a run is missing."""
        af, an = self.added(sid, t, field, p), self.added(sid, "nginx", field, p)
        if af is None or an is None:
            return None
        return f"added {what} {fmt_signed_us(af)} vs nginx {fmt_signed_us(an)}"

    def render_oha(self, w, sid, sc):
        d = self.get(sid, "direct")
        n = self.get(sid, "nginx")
        w("| target | req/s | p50 | p90 | p99 | p99.9 | added p50 / p99 | errors | proxy CPU | "
          "proxy cores | CPU/req | mock CPU/req | RSS end | load1 | busy | other |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for t in self.targets:
            r = self.get(sid, t)
            if not r:
                w(f"| {TARGET_LABELS[t]} | failed | | | | | | | | | | | | | | |")
                continue
            lat = r["lat_us"]
            added = "—"
            if d and t != "direct":
                added = f"{fmt_signed_us(lat['p50'] - d['lat_us']['p50'])} / " \
                        f"{fmt_signed_us(lat['p99'] - d['lat_us']['p99'])}"
            mock_per = r["mock_cpu_s"] / r["requests"] * 1e6 if r.get("requests") else None
            cells = [TARGET_LABELS[t], fmt_num(r["rps"]), fmt_us(lat.get("p50")),
                     fmt_us(lat.get("p90")), fmt_us(lat.get("p99")), fmt_us(lat.get("p99.9")),
                     added, fmt_num(r["errors"] + r["non2xx"]),
                     "—" if r.get("proxy_cpu_s") is None else f"{r['proxy_cpu_s']:.2f} s",
                     "—" if r.get("proxy_cpu_s") is None else f"{r['proxy_cpu_s'] / r['wall_s']:.2f}",
                     fmt_cpu(self.cpu_per_req(r)), fmt_cpu(mock_per),
                     fmt_mb(r.get("rss_kb"))] + self.machine_cells(r)
            w("| " + " | ".join(cells) + " |")
        w("")
        lines = []
        for t in self.fastgate_targets():
            f = self.get(sid, t)
            if not f:
                continue
            parts = [f"throughput {fmt_ratio(f['rps'], n['rps'] if n else None)} nginx, "
                     f"{fmt_ratio(f['rps'], d['rps'] if d else None)} direct",
                     f"CPU/req {fmt_ratio(self.cpu_per_req(f), self.cpu_per_req(n))} nginx"]
            parts += [x for x in (self.vs_nginx_text(sid, t, "lat_us", p, p) for p in ("p50", "p99"))
                      if x]
            lines.append(f"- {TARGET_LABELS[t]}: " + "; ".join(parts) + ".")
        self.write_list(w, "Ratios:", lines)

    def render_stream(self, w, sid, sc):
        d = self.get(sid, "direct")
        n = self.get(sid, "nginx")
        memory = sc.get("memory")
        w(f"Each stream: {sc['chunks']} SSE events {sc['delay_ms']} ms apart "
          f"({'one stream per connection, connections opened at ' + str(sc['ramp']) + '/s' if memory else 'closed loop for ' + str(sc['duration']) + ' s per connection'}). "
          "Gaps are measured between SSE event arrivals at the client.")
        w("")
        if memory:
            w("| target | streams | peak open | errors | proxy RSS peak | RSS per stream | "
              "proxy idle RSS | mock RSS peak | TTFB p50 / p99 | gap p99 | proxy CPU | load1 | busy | other |")
            w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        else:
            w("| target | streams | TTFB p50 | TTFB p99 | added TTFB p50 / p99 | total p50 | "
              "total p99 | gap p50 | gap p99 | gap max | added gap p50 / p99 | errors | proxy CPU | RSS end | load1 | busy | other |")
            w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for t in self.targets:
            r = self.get(sid, t)
            if not r:
                w(f"| {TARGET_LABELS[t]} | failed |" + " |" * (12 if memory else 15))
                continue
            tt, gp, tot = r["ttfb_us"], r["gap_us"], r["total_us"]
            cpu = "—" if r.get("proxy_cpu_s") is None else f"{r['proxy_cpu_s']:.2f} s"
            errs = fmt_num(r["errors"] + r["non2xx"])
            if memory:
                rss = r.get("stream_rss", {})
                peak = rss.get("proxy", {}).get("peak_kb")
                per = None
                if peak and r.get("peak_open"):
                    per = (peak - (r.get("idle_rss_kb") or 0)) / r["peak_open"]
                cells = [TARGET_LABELS[t], fmt_num(r["requests"]), fmt_num(r.get("peak_open")), errs,
                         fmt_mb(peak), "—" if per is None else f"{per:.1f} kB",
                         fmt_mb(r.get("idle_rss_kb")), fmt_mb(rss.get("mock", {}).get("peak_kb")),
                         f"{fmt_us(tt.get('p50'))} / {fmt_us(tt.get('p99'))}", fmt_us(gp.get("p99")),
                         cpu] + self.machine_cells(r)
            else:
                added_t = added_g = "—"
                if d and t != "direct":
                    added_t = f"{fmt_signed_us(tt['p50'] - d['ttfb_us']['p50'])} / " \
                              f"{fmt_signed_us(tt['p99'] - d['ttfb_us']['p99'])}"
                    added_g = f"{fmt_signed_us(gp['p50'] - d['gap_us']['p50'])} / " \
                              f"{fmt_signed_us(gp['p99'] - d['gap_us']['p99'])}"
                cells = [TARGET_LABELS[t], fmt_num(r["requests"]), fmt_us(tt.get("p50")),
                         fmt_us(tt.get("p99")), added_t, fmt_us(tot.get("p50")),
                         fmt_us(tot.get("p99")), fmt_us(gp.get("p50")), fmt_us(gp.get("p99")),
                         fmt_us(gp.get("max")), added_g, errs, cpu,
                         fmt_mb(r.get("rss_kb"))] + self.machine_cells(r)
            w("| " + " | ".join(cells) + " |")
        w("")
        if memory or not d or not n:
            return
        lines = []
        for t in self.fastgate_targets():
            f = self.get(sid, t)
            if not f:
                continue
            parts = [self.vs_nginx_text(sid, t, "ttfb_us", "p50", "TTFB p50"),
                     self.vs_nginx_text(sid, t, "gap_us", "p99", "gap p99"),
                     f"proxy CPU {fmt_ratio(f.get('proxy_cpu_s'), n.get('proxy_cpu_s'))} nginx"]
            lines.append(f"- {TARGET_LABELS[t]}: " + "; ".join(x for x in parts if x) + ".")
        self.write_list(w, "Ratios:", lines)

    def render_fastgate_extra(self, w, sid):
        rows = []
        for t in self.fastgate_targets():
            r = self.get(sid, t)
            if not r or "overhead_us" not in r:
                continue
            o = r["overhead_us"]
            rows.append([TARGET_LABELS[t], fmt_num(o.get("count")), fmt_us(o.get("p50")),
                         fmt_us(o.get("p99"))] + audit_cells(t, r.get("audit")))
        if not rows:
            return
        w("FastGate's own view (`/metrics`, difference between scrapes before and after the run): "
          "`fastgate_gateway_overhead_seconds` estimated p50/p99 (histogram buckets 5, 10, 25, 50, "
          "100, 250, 500 µs, 1 ms…, linear inside a bucket), and the audit writer (\"off\" for "
          "the audit-off variants, which have none). The peak queue depth is FastGate's "
          "`fastgate_audit_queue_depth_peak` after the run (since the start, warm-up included); "
          "nothing polls `/metrics` during a run.")
        w("")
        w("| target | requests seen | overhead p50 | overhead p99 | audit rows in run | rows/s | "
          "peak queue depth | depth at end | drain | dropped+overflow | spilled | sink errors |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        write_rows(w, rows)

    def render_commands(self, w, sid):
        hide = list(self.b.keys.values())
        lines = []
        for t in self.targets:
            r = self.by.get((sid, t))
            if r and r.get("argv"):
                lines.append(f"# {TARGET_LABELS[t]}")
                lines.append(shell_join(r["argv"], hide))
        if lines:
            w("<details><summary>Exact load commands</summary>")
            w("")
            w("```sh")
            for line in lines:
                w(line)
            w("```")
            w("")
            w("</details>")
            w("")

    def render_failures(self, w):
        failed = [r for r in self.b.results if not r.get("ok")]
        errs = [r for r in self.b.results if r.get("ok") and (r.get("errors") or r.get("non2xx"))]
        w("## Processes")
        w("")
        w("```sh")
        for name in ("mock", "nginx", *FASTGATE_TARGETS):
            if name in self.b.commands:
                w(f"# {name}")
                w(shell_join(self.b.commands[name]))
        w("```")
        w("")
        w("The generated nginx and FastGate configurations are in the run's work directory "
          "(`target/fastgate-bench/run-*/`), with every raw result in `results.json`.")
        w("")
        retried = [r for r in self.b.results if r.get("attempts", 1) > 1]
        if retried:
            w("Runs repeated because other processes loaded the machine (the least noisy "
              "attempt is reported): " + ", ".join(
                  f"{r['scenario']} / {TARGET_LABELS[r['target']]} (attempt {r['attempt']} "
                  f"of {r['attempts']} kept)"
                  for r in retried) + ".")
            w("")
        if failed or errs:
            w("## Failed runs and errors")
            w("")
            for r in failed:
                w(f"- {r['scenario']} / {TARGET_LABELS[r['target']]}: {r.get('error')}")
            for r in errs:
                w(f"- {r['scenario']} / {TARGET_LABELS[r['target']]}: {r.get('errors')} errors, "
                  f"{r.get('non2xx')} non-2xx; e.g. {r.get('error_kinds')}")
            w("")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short smoke run")
    p.add_argument("--health-load", action="store_true",
                   help="configure ten credentials and five credential-health rules on the benchmarked upstream")
    p.add_argument("--redis", metavar="URL", default="",
                   help="share the bench key's limits through this Redis (e.g. redis://127.0.0.1:6379)")
    p.add_argument("--scenarios", default="", help="comma list among a32,a128,b,c,d,e,f (default all)")
    p.add_argument("--targets", default=DEFAULT_TARGETS,
                   help=f"comma list among {', '.join(TARGET_LABELS)} (default all)")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument("--output", default=os.path.join(ROOT, "docs", "performance.md"))
    p.add_argument("--quiet-wait", type=float, default=20.0,
                   help="longest wait (s) before each run for other processes to go quiet")
    p.add_argument("--keep-data", action="store_true",
                   help="keep FastGate's data directories (audit databases) after the run")
    p.add_argument("--report-only", metavar="RESULTS_JSON",
                   help="only re-render the report from a saved results.json")
    p.add_argument("--retries", type=int, default=2,
                   help="extra attempts for a run marked noisy or failed (the least noisy is kept)")
    p.add_argument("--quiet-threshold", type=float, default=0.3,
                   help="CPU cores other processes may use before a run starts anyway")
    args = p.parse_args()
    if args.report_only:
        report_only(args.report_only, args.output)
        return
    for path in (FASTGATE, MOCK, STREAM):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"missing {path}: build with `cargo build --release -p fastgate -p fastgate-bench`")
    for tool in ("oha", "nginx"):
        if not shutil.which(tool):
            raise SystemExit(f"missing tool `{tool}` (bench/run.sh installs it)")
    Bench(args).run()


if __name__ == "__main__":
    main()
