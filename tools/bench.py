"""./workbook bench: speed figures, measured, never asserted by a test.

Four questions, one table each, then a picture (issue 11):
  1. throughput at delay 0: the ladder serial -> pool -> event loop -> nginx,
     loaded by wrk (keep-alive) and ab (a connection per request); the figure
     to beat is the server's CPU time per request;
  2. ten thousand clients at once with D = 1 s: completion percentiles;
  3. what a connection costs: server memory per idle keep-alive connection,
     and what a thread pool of 1 000 or 10 000 workers costs;
  4. step 4's add loop against one cycle.

Shared machines drift, so each figure is a median over several rounds that
alternate what is compared (A B A B ...), given with its spread (min-max),
and compared as a ratio to its peer measured in the same rounds.

Every process started here is stopped by its pid, also on failure or Ctrl-C.
Network traffic goes to 127.0.0.1 only (the load client's source addresses
are spread over 127.0.0.x).
"""
import contextlib
import dataclasses
import os
import pathlib
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time

from project import BUILD, ROOT, Server, build, say, written_steps

OUT = BUILD / "bench"
ROUNDS = 5                 # every row: the median of this many alternating rounds
CLIENT_CPU, SERVER_CPU = 0, 1
LOAD_SECONDS = 1           # one wrk or ab run
LOAD_CONNECTIONS = 32
C10K = 10_000
C10K_DELAY_MS = 1000
POOL_SIZES = (1, 1000, 10_000)
STEP4_ROUNDS = 7
THREAD_COST_REQUESTS = 10_000  # bench/thread_cost's own default is 20 000

# Goals (issue 11): targets printed beside the figures, never tests.
CPU_GOAL = 1.0             # step 3's CPU per request, in nginx's
P99_GOAL = 1.3             # p99 of 10 000 clients at once, in D
IDLE_BYTES_GOAL = 512      # server memory per idle keep-alive connection
STEP4_TARGET = 1.2         # optimised ns per addition, in cycles (issue 5)


# ------------------------------------------------------------ processes

def pinned(cpu):
    """The command prefix that runs a program on one CPU only (none on a
    machine with a single CPU)."""
    return ("taskset", "-c", str(cpu)) if (os.cpu_count() or 1) >= 2 else ()


def cpu_ns(pid):
    """CPU time (user + system) of every thread of a process so far, in ns:
    the scheduler's own count (schedstat) where the kernel keeps one, else
    utime + stime from /proc/PID/stat (in clock ticks)."""
    total, seen = 0, False
    try:
        for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
                seen = True
            except (OSError, ValueError, IndexError):
                pass  # a thread that ended meanwhile
    except OSError:
        return 0
    return total if seen else stat_cpu_ns(pid)


def stat_cpu_ns(pid):
    """utime + stime of the whole process (ended threads included)."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def status_field(pid, name):
    """A number from /proc/PID/status (VmRSS and the like in KiB, Threads), or 0."""
    try:
        match = re.search(rf"^{name}:\s+(\d+)", pathlib.Path(f"/proc/{pid}/status").read_text(),
                          re.M)
    except OSError:
        return 0
    return int(match.group(1)) if match else 0


def start_time(pid):
    """When a process started (clock ticks since boot), or None if it is gone:
    with its pid, it names one process, never a later one that got the pid."""
    if pid is None:
        return None
    try:
        return int(pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def meminfo_kib(name):
    match = re.search(rf"^{name}:\s+(\d+)", pathlib.Path("/proc/meminfo").read_text(), re.M)
    return int(match.group(1)) if match else 0


def read_number(path, default=None):
    try:
        text = pathlib.Path(path).read_text().split()[0]
        return text if text == "max" else int(text)
    except (OSError, ValueError, IndexError):
        return default


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answering(port, seconds=10):
    give_up = time.monotonic() + seconds
    while time.monotonic() < give_up:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return True
        time.sleep(0.02)
    return False


def one_request(port, path="/"):
    """A GET on its own connection; returns the response's bytes."""
    with socket.create_connection(("127.0.0.1", port), 5) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def raise_descriptor_limit():
    """Raises this process's soft descriptor limit to the hard one (at most
    65 536): every server and client started from here inherits it.
    Returns (before, after)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if wanted > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------- servers

@dataclasses.dataclass
class Contender:
    """Something measured: one of our reference servers, or nginx."""
    key: str               # step3, nginx, ...
    label: str             # what the tables call it
    program: str = ""      # our meson target; empty for nginx
    flags: tuple = ()


@dataclasses.dataclass
class Running:
    contender: Contender
    port: int
    pid: int               # the process that serves: for nginx, its one worker
    path: str              # what to ask for
    stop: object           # stops it (and waits)
    base_kib: int = 0      # resident memory when it started


class Nginx:
    """nginx with one worker process, its own configuration written into
    build/bench/nginx/ (prefix -p), in the foreground (daemon off), access
    log off, on a free port of 127.0.0.1, stopped by its pid. Any other
    nginx on this machine (Debian's package starts one on port 80) is never
    touched."""

    MODULES = "/usr/lib/nginx/modules"

    def __init__(self, delay_ms, connections):
        self.directory = OUT / "nginx"
        (self.directory / "temp").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = self.directory / "nginx.conf"
        config.write_text(self.configuration(delay_ms, connections))
        self.log = open(self.directory / "output.txt", "w")
        self.process = subprocess.Popen(
            [*pinned(SERVER_CPU), "nginx", "-p", str(self.directory), "-c", str(config),
             "-e", str(self.directory / "error.log")],
            cwd=self.directory, stdout=self.log, stderr=subprocess.STDOUT)
        self.worker, self.worker_started = None, None
        try:
            self.worker = self.find_worker()
            self.worker_started = start_time(self.worker)
            if self.worker is None or not wait_until_answering(self.port):
                raise RuntimeError("nginx did not start; see " + str(self.directory / "error.log"))
        except BaseException:
            self.stop()
            raise

    @classmethod
    def modules_path(cls):
        """Where Debian's nginx keeps its dynamic modules (nginx -V says)."""
        result = subprocess.run(["nginx", "-V"], capture_output=True, text=True)
        match = re.search(r"--modules-path=(\S+)", result.stderr + result.stdout)
        return pathlib.Path(match.group(1) if match else cls.MODULES)

    @classmethod
    def echo_module(cls):
        module = cls.modules_path() / "ngx_http_echo_module.so"
        return module if module.exists() else None

    def configuration(self, delay_ms, connections):
        module = self.echo_module()
        temp = self.directory / "temp"
        sleep = (f"location = /sleep {{ default_type text/plain; echo_sleep {delay_ms / 1000:g}; "
                 f"echo -n Hello; }}" if module else "")
        return "\n".join([
            "# Written by ./workbook bench (tools/bench.py) for each run.",
            f"load_module {module};" if module else "# no echo module: no /sleep",
            "daemon off;", "master_process on;", "worker_processes 1;",
            f"worker_rlimit_nofile {connections};", f"pid {self.directory / 'nginx.pid'};",
            f"error_log {self.directory / 'error.log'} warn;",
            f"events {{ worker_connections {connections}; }}",
            "http {",
            "  access_log off;",
            *(f"  {kind}_temp_path {temp / kind};" for kind in
              ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
            "  # The same work as our event loop: no limit on requests per connection",
            "  # (nginx's default closes after 1000), idle connections kept 2 minutes.",
            "  keepalive_requests 1000000;", "  keepalive_timeout 120s;",
            "  server {",
            # Our servers' listen backlog is 4096 (common/listener.c); nginx's is 511.
            f"    listen 127.0.0.1:{self.port} backlog=4096;",
            '    location = / { default_type text/plain; return 200 "Hello"; }',
            f"    {sleep}",
            "  }",
            "}", ""])

    def find_worker(self, seconds=10):
        """The worker's pid: the master's one child."""
        children = pathlib.Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        give_up = time.monotonic() + seconds
        while time.monotonic() < give_up and self.process.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                pids = [int(p) for p in children.read_text().split()]
                if pids:
                    return pids[0]
            time.sleep(0.02)
        return None

    def stop(self):
        """SIGTERM to the master (nginx's fast shutdown), which stops its
        worker; if either is still there after 10 s, SIGKILL by pid."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        # A worker whose master was killed lives on: the same pid with the
        # same start time is still ours.
        if self.worker is not None and start_time(self.worker) == self.worker_started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.worker, signal.SIGKILL)
        self.log.close()


def start(contender, stack, delay_ms=0, extra=()):
    """Starts a contender on a free port, pinned to the server's CPU; the
    ExitStack stops it, whatever happens."""
    if contender.key == "nginx":
        server = Nginx(delay_ms, connections=resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        stack.callback(server.stop)
        return Running(contender, server.port, server.worker,
                       "/sleep" if delay_ms else "/", server.stop,
                       status_field(server.worker, "VmRSS"))
    server = Server(contender.program, "--quiet", "--delay-ms", str(delay_ms), *contender.flags,
                    *extra, wrapper=pinned(SERVER_CPU))
    stack.callback(server.stop)
    if "--workers" in contender.flags:
        wait_for_threads(server, int(contender.flags[contender.flags.index("--workers") + 1]) + 1)
    return Running(contender, server.port, server.process.pid, "/", server.stop,
                   status_field(server.process.pid, "VmRSS"))


def wait_for_threads(server, threads, seconds=60):
    """A pool's workers start after its listening line: wait for them all,
    or say why they did not come."""
    give_up = time.monotonic() + seconds
    while status_field(server.process.pid, "Threads") < threads:
        if server.process.poll() is not None or time.monotonic() > give_up:
            server.stop()
            last = (server.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"{threads - 1} workers did not start: {last}")
        time.sleep(0.01)


# ------------------------------------------------------------ statistics

def median(values):
    return statistics.median(values) if values else float("nan")


def spread(values, form="{:.1f}"):
    """'(min-max)' of a row's rounds."""
    if not values:
        return ""
    return "(" + form.format(min(values)) + "-" + form.format(max(values)) + ")"


def ratio_of_rounds(mine, peers):
    """The median of the per-round ratios: each round compared with the
    peer's round that ran right beside it."""
    return median([a / b for a, b in zip(mine, peers) if b])


def goal_line(what, value, goal, unit="x", form="{:.2f}"):
    """A target (lower is better) with its verdict: met, or missed by how much."""
    if value != value:  # NaN: not measured
        return f"   goal: {what} at most {goal:g}{unit}: not measured"
    shown = form.format(value) + unit
    if value <= goal:
        return f"   goal: {what} at most {goal:g}{unit}: {shown}, met"
    return (f"   goal: {what} at most {goal:g}{unit}: {shown}, MISSED by "
            f"{form.format(value - goal)}{unit} ({(value - goal) / goal * 100:.0f}%)")


def column(rows, name):
    return [float(row[name]) for row in rows if name in row]


# ------------------------------------------------------------- question 1

def run_wrk(port):
    """(requests, requests per second, errors) of one wrk run (keep-alive)."""
    result = subprocess.run([*pinned(CLIENT_CPU), "wrk", "-t1", f"-c{LOAD_CONNECTIONS}",
                             f"-d{LOAD_SECONDS}s", f"http://127.0.0.1:{port}/"],
                            capture_output=True, text=True, timeout=LOAD_SECONDS + 30)
    match = re.search(r"(\d+) requests in", result.stdout)
    if result.returncode != 0 or not match:
        raise RuntimeError("wrk failed:\n" + result.stdout + result.stderr)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)",
                                            result.stdout))
    errors += sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", result.stdout))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", result.stdout).group(1))
    return int(match.group(1)), rate, errors


def run_ab(port):
    """(requests, requests per second, errors) of one ab run: a new
    connection per request (HTTP/1.0, no keep-alive)."""
    # -n after -t: -t alone stops at 50 000 requests.
    result = subprocess.run([*pinned(CLIENT_CPU), "ab", "-q", "-r", "-s", "10",
                             "-c", str(LOAD_CONNECTIONS), "-t", str(LOAD_SECONDS),
                             "-n", "10000000", f"http://127.0.0.1:{port}/"],
                            capture_output=True, text=True, timeout=LOAD_SECONDS + 60)
    match = re.search(r"Complete requests:\s+(\d+)", result.stdout)
    if result.returncode != 0 or not match:
        raise RuntimeError("ab failed:\n" + result.stdout[-1500:] + result.stderr[-1500:])
    errors = int(re.search(r"Failed requests:\s+(\d+)", result.stdout).group(1))
    non_2xx = re.search(r"Non-2xx responses:\s+(\d+)", result.stdout)
    errors += int(non_2xx.group(1)) if non_2xx else 0
    rate = float(re.search(r"Requests per second:\s+([\d.]+)", result.stdout).group(1))
    return int(match.group(1)), rate, errors


# (key, what the table says, how to run it)
LOADS = [("wrk", f"wrk -t1 -c{LOAD_CONNECTIONS} -d{LOAD_SECONDS}s (keep-alive)", run_wrk),
         ("ab", f"ab -c{LOAD_CONNECTIONS} -t{LOAD_SECONDS} (a new connection per request)", run_ab)]


def measure_load(server, load):
    """One run: (server CPU us per request, requests per second, errors)."""
    before = cpu_ns(server.pid)
    requests, rate, errors = load(server.port)
    used = cpu_ns(server.pid) - before
    return used / 1000 / max(requests, 1), rate, errors


def question_throughput(contenders, figures, write):
    """Every contender runs throughout, idle but the one under load; the
    rounds go A B C D A B C D for each load."""
    results = {(c.key, load): [] for c in contenders for load, _, _ in LOADS}
    with contextlib.ExitStack() as stack:
        servers = [start(c, stack) for c in contenders]
        for server in servers:  # warm up: first pages, caches, connections
            run_wrk(server.port)
        for _ in range(ROUNDS):
            for load, _, function in LOADS:
                for server in servers:
                    results[server.contender.key, load].append(measure_load(server, function))
    figures["throughput"] = results
    print_throughput(contenders, results, write)


def print_throughput(contenders, results, write):
    keys = [c.key for c in contenders]
    write(f"1. Throughput at delay 0. The server is pinned to CPU {SERVER_CPU}, the load to CPU "
          f"{CLIENT_CPU}; {ROUNDS} rounds")
    write("   alternating servers; medians (min-max). CPU per request: the server's user + system")
    write("   time over the run (/proc/PID/task/*/schedstat) / requests completed. x nginx:")
    write("   the median of the rounds' ratios to nginx's figure in the same round.")
    for load, title, _ in LOADS:
        peer = [r[0] for r in results.get(("nginx", load), [])]
        write()
        write(f"   {title}")
        write(f"   {'server':<24} {'requests/s':>21} {'CPU us per request':>24} {'x nginx':>8}"
              f" {'errors':>7}")
        for contender in contenders:
            rows = results[contender.key, load]
            cpu, rate = [r[0] for r in rows], [r[1] for r in rows]
            ratio = ratio_of_rounds(cpu, peer) if peer else float("nan")
            write(f"   {contender.label:<24} {median(rate):>8.0f} {spread(rate, '{:.0f}'):>12}"
                  f" {median(cpu):>7.2f} {spread(cpu, '{:.2f}'):>16} {ratio:>7.2f}x"
                  f" {sum(r[2] for r in rows):>7}")
    if "nginx" not in keys:
        return
    write()
    for key in ("step3", "step5"):
        if key not in keys:
            continue
        for load, _, _ in LOADS:
            ratio = ratio_of_rounds([r[0] for r in results[key, load]],
                                    [r[0] for r in results["nginx", load]])
            if key == "step3":
                write(goal_line(f"step 3's CPU per request with {load}", ratio, CPU_GOAL,
                                "x nginx's"))
            else:
                write(f"   step 5's CPU per request with {load}: {ratio:.2f}x nginx's")


# ------------------------------------------------------------- question 2

def client_command(mode, port, path, times=None, connections=C10K):
    """The load client (bench/c10k_client.c), pinned to the client's CPU."""
    command = [*pinned(CLIENT_CPU), str(BUILD / "c10k_client"), "--port", str(port),
               "--path", path, "--connections", str(connections), "--timeout-ms", "30000"]
    if times is not None:
        command += ["--times", str(times)]
    return command + [mode]


def parse_figures(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def c10k_round(server, times_file):
    before = cpu_ns(server.pid)
    result = subprocess.run(client_command("wave", server.port, server.path, times_file),
                            capture_output=True, text=True, timeout=120)
    used = cpu_ns(server.pid) - before
    if result.returncode != 0:
        raise RuntimeError("the load client failed:\n" + result.stdout + result.stderr)
    figures = parse_figures(result.stdout)
    figures["cpu_ms"] = used / 1e6
    return figures


def question_c10k(contenders, figures, write):
    results, peaks, started = {}, {}, []
    with contextlib.ExitStack() as stack:
        for contender in contenders:
            try:
                started.append(start(contender, stack, C10K_DELAY_MS))
            except RuntimeError as error:
                write(f"   {contender.label}: left out: {error}")
        for round_number in range(ROUNDS):
            for server in started:
                times = OUT / f"c10k-{server.contender.key}-{round_number}.txt"
                results.setdefault(server.contender.key, []).append(c10k_round(server, times))
        for server in started:
            peaks[server.contender.key] = status_field(server.pid, "VmHWM") - server.base_kib
    figures["c10k"] = results
    print_c10k([s.contender for s in started], results, peaks, write)


def print_c10k(contenders, results, peaks, write):
    write(f"2. {C10K} clients at once, D = {C10K_DELAY_MS} ms. The load client (bench/c10k_client)"
          f" opens the")
    write(f"   {C10K} connections, then sends one request on each in one sweep; each request is")
    write("   timed from its own send to its last byte. Step 1 (10 000 s) and a pool of 10")
    write(f"   (1 000 s) are left out. {ROUNDS} rounds alternating; medians (min-max); errors"
          f" summed.")
    write()
    write(f"   {'server':<24} {'p50 ms':>7} {'p99 ms':>18} {'max ms':>7} {'wall ms':>8}"
          f" {'errors':>7} {'CPU ms':>7} {'peak MiB':>9} {'p99 x nginx':>12}")
    peer = column(results.get("nginx", []), "p99_ms")
    for contender in contenders:
        rows = results[contender.key]
        p99 = column(rows, "p99_ms")
        ratio = ratio_of_rounds(p99, peer) if peer else float("nan")
        write(f"   {contender.label:<24} {median(column(rows, 'p50_ms')):>7.0f}"
              f" {median(p99):>6.0f} {spread(p99, '{:.0f}'):>11}"
              f" {median(column(rows, 'max_ms')):>7.0f} {median(column(rows, 'wall_ms')):>8.0f}"
              f" {sum(int(r['failed']) for r in rows):>7} {median(column(rows, 'cpu_ms')):>7.0f}"
              f" {peaks[contender.key] / 1024:>9.1f} {ratio:>11.2f}x")
    every = [row for rows in results.values() for row in rows]
    write(f"   The sweep of {C10K} sends took {median(column(every, 'sweep_ms')):.0f} ms "
          f"{spread(column(every, 'sweep_ms'), '{:.0f}')}; opening the connections before it, "
          f"{median(column(every, 'connect_ms')):.0f} ms.")
    write("   CPU ms: the server's, per round. Peak MiB: its peak resident memory (VmHWM) over")
    write("   the rounds, above its size at start.")
    kinds = sorted({row["first_error"] for row in every if row.get("first_error") != "none"})
    if kinds:
        write("   errors seen: " + "; ".join(kinds))
    if "step3" not in results:
        return
    rows = results["step3"]
    write()
    write(goal_line("step 3's p99", median(column(rows, "p99_ms")) / C10K_DELAY_MS, P99_GOAL,
                    " D"))
    errors = sum(int(r["failed"]) for r in rows)
    write(f"   goal: no errors for step 3: {errors}, {'met' if errors == 0 else 'MISSED'}")
    if peer:
        write(goal_line("step 3's p99", ratio_of_rounds(column(rows, "p99_ms"), peer), 1.0,
                        "x nginx's (same rounds)"))


# ------------------------------------------------------------- question 3

def idle_round(contender):
    """A fresh server: its resident memory before, and with, C10K idle
    keep-alive connections (each made one request first), per connection."""
    with contextlib.ExitStack() as stack:
        # Our servers close an idle connection after --idle-ms (10 s by default).
        extra = () if contender.key == "nginx" else ("--idle-ms", "120000")
        server = start(contender, stack, 0, extra)
        one_request(server.port)  # the first request's own allocations are not per connection
        time.sleep(0.05)
        before = status_field(server.pid, "VmRSS")
        client = subprocess.Popen(client_command("idle", server.port, "/"), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        stack.callback(stop_client, client)
        output = []
        for line in client.stdout:
            if line.strip() == "ready":
                break
            output.append(line)
        time.sleep(0.1)  # whatever the server still had to do
        after = status_field(server.pid, "VmRSS")
        rest, errors = client.communicate("done\n", timeout=60)  # closes them all
    figures = parse_figures("".join(output) + rest)
    still_open = int(figures.get("completed", 0)) - int(figures.get("closed_by_server", 0))
    if client.returncode != 0 or still_open <= 0:
        raise RuntimeError(f"the idle load client failed: {figures} {errors}")
    return {"bytes": (after - before) * 1024 / still_open, "open": still_open}


def stop_client(client):
    if client.poll() is None:
        client.kill()
        client.wait()


def pool_round(workers):
    """The thread pool started with this many workers and no client: the
    time until every thread exists, the CPU spent by then, the memory; or
    the error that stopped it."""
    kernel_before = meminfo_kib("KernelStack")
    started_at = time.monotonic()
    server = Server("step2_threadpool_reference", "--quiet", "--delay-ms", "0",
                    "--workers", str(workers))
    pid = server.process.pid
    try:
        give_up = started_at + 60
        while (time.monotonic() < give_up and server.process.poll() is None
               and status_field(pid, "Threads") < workers + 1):
            time.sleep(0.005)
        figures = {"seconds": time.monotonic() - started_at, "threads": status_field(pid, "Threads"),
                   "rss_kib": status_field(pid, "VmRSS"), "virtual_kib": status_field(pid, "VmSize"),
                   "cpu_ms": stat_cpu_ns(pid) / 1e6,
                   "kernel_stack_kib": meminfo_kib("KernelStack") - kernel_before}
    finally:
        # Killed by its pid rather than stopped: joining ten thousand idle
        # workers takes seconds and tells nothing asked here.
        if server.process.poll() is None:
            server.process.kill()
        status = server.stop(60)
    if figures["threads"] < workers + 1:
        figures["error"] = (server.stderr.strip().splitlines() or [f"exit status {status}"])[-1]
    return figures


def thread_limits():
    """What limits the number of threads a process may make here."""
    limits = {"kernel.threads-max": read_number("/proc/sys/kernel/threads-max"),
              "ulimit -u": resource.getrlimit(resource.RLIMIT_NPROC)[0],
              "vm.max_map_count/2": (read_number("/proc/sys/vm/max_map_count") or 0) // 2,
              "kernel.pid_max": read_number("/proc/sys/kernel/pid_max")}
    cgroup = pathlib.Path("/proc/self/cgroup").read_text()
    v1 = re.search(r"^\d+:pids:(\S+)$", cgroup, re.M)
    v2 = re.search(r"^0::(\S+)$", cgroup, re.M)
    folder = f"/sys/fs/cgroup/pids{v1.group(1)}" if v1 else f"/sys/fs/cgroup{v2.group(1)}"
    limits["cgroup pids.max"] = read_number(folder.rstrip("/") + "/pids.max", "none")
    return limits


def likely_limit(limits, threads_made):
    """The lowest count limit at or above the number of threads made."""
    above = {name: value for name, value in limits.items()
             if isinstance(value, int) and value != resource.RLIM_INFINITY
             and value >= threads_made}
    if not above:
        return "memory, it seems: no count limit is that low"
    name = min(above, key=above.get)
    return f"{name} = {above[name]}"


def question_costs(contenders, with_pools, figures, write):
    idle = {c.key: [] for c in contenders}
    for _ in range(ROUNDS):
        for contender in contenders:
            idle[contender.key].append(idle_round(contender))
    figures["idle"] = idle
    print_idle(contenders, idle, write)
    if not with_pools:
        return
    pools = {n: [] for n in POOL_SIZES}
    for _ in range(ROUNDS):
        for workers in POOL_SIZES:
            pools[workers].append(pool_round(workers))
    figures["pools"] = pools
    print_pools(pools, idle, write)


def print_idle(contenders, idle, write):
    write(f"3. What a connection costs. {C10K} idle keep-alive connections, each of which made one")
    write("   request first; a fresh server each round: its resident memory (VmRSS) with them,")
    write(f"   less before them, per connection. {ROUNDS} rounds alternating; medians (min-max).")
    write("   The kernel's memory for each socket (outside the process) is not counted.")
    write()
    write(f"   {'server':<24} {'bytes per idle connection':>30} {'x nginx':>8} {'open':>7}")
    peer = [r["bytes"] for r in idle.get("nginx", [])]
    for contender in contenders:
        rows = idle[contender.key]
        values = [r["bytes"] for r in rows]
        ratio = ratio_of_rounds(values, peer) if peer else float("nan")
        write(f"   {contender.label:<24} {median(values):>14.0f} {spread(values, '{:.0f}'):>15}"
              f" {ratio:>7.2f}x {min(r['open'] for r in rows):>7}")
    if "step3" in idle:
        write()
        write(goal_line("step 3's memory per idle connection",
                        median([r["bytes"] for r in idle["step3"]]), IDLE_BYTES_GOAL, " bytes",
                        "{:.0f}"))


def pool_per_worker(pools):
    """(resident bytes, kernel stack bytes, CPU us) per worker of the largest
    pool that started, above the smallest; None if none did."""
    base = [r for r in pools[POOL_SIZES[0]] if "error" not in r]
    for size in reversed(POOL_SIZES[1:]):
        rows = [r for r in pools[size] if "error" not in r]
        if rows and base:
            extra = size - POOL_SIZES[0]
            return (size,
                    (median(column(rows, "rss_kib")) - median(column(base, "rss_kib")))
                    * 1024 / extra,
                    median(column(rows, "kernel_stack_kib")) * 1024 / size,
                    (median(column(rows, "cpu_ms")) - median(column(base, "cpu_ms")))
                    * 1000 / extra)
    return None


def print_pools(pools, idle, write):
    write()
    write("   The thread pool (step 2) started with N workers and no client, until every thread")
    write(f"   exists; {ROUNDS} rounds alternating N; medians. Kernel stacks: KernelStack in")
    write("   /proc/meminfo before and after (machine-wide).")
    write()
    write(f"   {'workers':>8} {'threads':>8} {'start s':>8} {'CPU ms':>7} {'resident MiB':>13}"
          f" {'virtual GiB':>12} {'kernel stacks MiB':>18}")
    limits = thread_limits()
    for workers in POOL_SIZES:
        rows = [r for r in pools[workers] if "error" not in r]
        failed = [r for r in pools[workers] if "error" in r]
        if rows:
            write(f"   {workers:>8} {median(column(rows, 'threads')):>8.0f}"
                  f" {median(column(rows, 'seconds')):>8.2f} {median(column(rows, 'cpu_ms')):>7.0f}"
                  f" {median(column(rows, 'rss_kib')) / 1024:>13.1f}"
                  f" {median(column(rows, 'virtual_kib')) / 1024 / 1024:>12.2f}"
                  f" {median(column(rows, 'kernel_stack_kib')) / 1024:>18.1f}")
        if failed:
            made = int(median(column(failed, "threads")))
            write(f"   {workers:>8} workers did not start in {len(failed)} of {ROUNDS} rounds: "
                  f"\"{failed[0]['error']}\"; about {made} threads existed: the limit met is "
                  f"likely {likely_limit(limits, made)}")
    per_worker = pool_per_worker(pools)
    if per_worker:
        size, resident, kernel, cpu = per_worker
        loop = median([r["bytes"] for r in idle["step3"]]) if idle.get("step3") else None
        write()
        write(f"   Per worker (pool of {size}): {resident / 1024:.1f} KiB resident in the process, "
              f"{kernel / 1024:.1f} KiB of kernel stack,")
        write(f"   {cpu:.0f} us of CPU to start"
              + (f"; the resident part alone is {resident / loop:.0f}x step 3's idle connection."
                 if loop else "."))
    write("   Limits on threads here: " + ", ".join(f"{k} {v}" for k, v in limits.items()))


def thread_cost(write):
    result = subprocess.run([str(BUILD / "thread_cost"), str(THREAD_COST_REQUESTS)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    write("   What one thread costs on its own (build/thread_cost, NOTES.md 2.9):")
    write()
    for line in (result.stdout or result.stderr).rstrip().splitlines():
        write("   " + line if line else "")


# ------------------------------------------------------------- question 4

def machine_figures(program, *flags):
    result = subprocess.run([str(BUILD / program), "--machine", *flags], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"{program} failed:\n{result.stdout}{result.stderr}")
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def question_step4(figures, write):
    """-O2 ns per addition against one cycle; -O0 alongside."""
    optimised, unoptimised, cycles = [], [], []
    for _ in range(STEP4_ROUNDS):
        a = machine_figures("step4_reference_O2", "--no-round-trip")
        b = machine_figures("step4_reference_O0", "--no-round-trip")
        optimised.append(float(a["ns_per_addition"]))
        cycles.append(float(a["ns_per_cycle"]))
        unoptimised.append(float(b["ns_per_addition"]))
    cycle = median(cycles)
    ratio = median(optimised) / cycle
    figures["step4"] = ratio
    write(f"4. Step 4 against one cycle: {STEP4_ROUNDS} rounds alternating -O2 and -O0; medians"
          f" (min-max).")
    write()
    write(f"   one cycle (dependent add chain)   {cycle:.3f} ns {spread(cycles, '{:.3f}')}"
          f", about {1 / cycle:.2f} GHz")
    write(f"   -O2 with the barrier              {median(optimised):.3f} ns per addition "
          f"{spread(optimised, '{:.3f}')} = {ratio:.2f} cycles")
    write(f"   -O0                               {median(unoptimised):.3f} ns per addition "
          f"{spread(unoptimised, '{:.3f}')} = {median(unoptimised) / cycle:.2f} cycles")
    write("   the article (Rust, unoptimised)   13.50 ns per addition")
    write()
    write(goal_line("-O2's time per addition", ratio, STEP4_TARGET, " cycles"))


# ---------------------------------------------------------------- picture

COLOURS = ["#3b6fb6", "#c0392b", "#2e8b57", "#8e44ad", "#7f7f7f"]


def cpu_panel(figures, contenders):
    results = figures.get("throughput")
    if not results:
        return []
    data = OUT / "cpu-per-request.dat"
    rows = [(c.label, median([r[0] for r in results[c.key, "wrk"]]),
             median([r[0] for r in results[c.key, "ab"]])) for c in contenders]
    data.write_text("".join(f'"{label}" {wrk:.3f} {ab:.3f}\n' for label, wrk, ab in rows))
    top = max(max(wrk, ab) for _, wrk, ab in rows) * 1.3  # room for the key above the bars
    return ["set title 'Server CPU time per request at delay 0 (lower is better)'",
            "set style data histograms", "set style histogram clustered gap 1",
            "set style fill solid 0.85 border -1", "set boxwidth 0.9", f"set yrange [0:{top:.1f}]",
            "set ylabel 'microseconds of server CPU per request'", "set xtics rotate by 25 right",
            "set key top right", "set grid ytics",
            f"plot '{data}' using 2:xtic(1) title 'wrk (keep-alive)' lc rgb '{COLOURS[0]}', "
            f"'' using 3 title 'ab (a connection per request)' lc rgb '#e08a2c'",
            "unset grid", "set xtics norotate", "set yrange [*:*]", "unset ylabel"]


def curve_panel(figures, contenders):
    results = figures.get("c10k")
    if not results:
        return []
    plots, last = [], 0.0
    for i, contender in enumerate(c for c in contenders if c.key in results):
        rows = results[contender.key]
        ordered = sorted(range(len(rows)), key=lambda k: float(rows[k].get("p99_ms", 0)))
        chosen = ordered[len(ordered) // 2]  # the round whose p99 is the median
        times = (OUT / f"c10k-{contender.key}-{chosen}.txt").read_text().split()
        last = max([last] + [float(t) / 1000 for t in times[-1:]])
        curve = OUT / f"c10k-{contender.key}-curve.dat"
        curve.write_text("0 0\n" + "".join(f"{float(t) / 1000:.4f} {(k + 1) / C10K:.5f}\n"
                                           for k, t in enumerate(times)))
        plots.append(f"'{curve}' using 1:2 with lines lw 2 lc rgb '{COLOURS[i % len(COLOURS)]}'"
                     f" title '{contender.label}'")
    d = C10K_DELAY_MS / 1000
    return [f"set title '{C10K} clients at once, D = {d:g} s (the round with the median p99)'",
            "set xlabel 'seconds since the first request was sent'",
            "set ylabel 'share of the requests answered'", "set yrange [0:1.12]",
            # Room right of the goal's line for its label; the key where no curve goes.
            "set ytics 0,0.2,1", f"set xrange [0:{max(last * 1.05, d * P99_GOAL * 1.45):.2f}]",
            "set key top left", "set grid",
            f"set arrow 1 from {d},0 to {d},1.05 nohead dt 2 lc rgb 'black'",
            f"set arrow 2 from {d * P99_GOAL},0 to {d * P99_GOAL},1.05 nohead dt 3 lc rgb '#c0392b'",
            f"set label 1 'D' at {d},1.08 right offset -0.3,0",
            f"set label 2 'goal: p99 by {P99_GOAL:g} D' at {d * P99_GOAL},1.08 left offset 0.3,0 "
            "tc rgb '#c0392b'",
            "plot " + ", ".join(plots),
            "unset arrow", "unset label", "unset xlabel", "unset ylabel", "unset grid",
            "set xrange [*:*]", "set yrange [*:*]", "set ytics autofreq"]


def memory_panel(figures, contenders):
    idle = figures.get("idle")
    if not idle:
        return []
    bars = [(c.label, median([r["bytes"] for r in idle[c.key]])) for c in contenders]
    per_worker = pool_per_worker(figures.get("pools", {}))
    if per_worker:
        bars.append(("a pool thread: resident", per_worker[1]))
        bars.append(("a pool thread: kernel stack", per_worker[2]))
    data = OUT / "memory-per-connection.dat"
    data.write_text("".join(f'{i} "{label}" {max(value, 1):.1f}\n'
                            for i, (label, value) in enumerate(bars)))
    right = len(bars) - 0.4
    return [f"set title 'Memory per idle connection ({C10K} open; log scale)'",
            "set ylabel 'bytes'", "set logscale y", "set yrange [10:100000]", "set key top left",
            "set style fill solid 0.85 border -1", "set boxwidth 0.6", "set grid ytics",
            "set xtics rotate by 25 right", f"set xrange [-0.6:{right}]",
            f"plot '{data}' using 1:3:xtic(2) with boxes lc rgb '{COLOURS[2]}' notitle, "
            "'' using 1:3:(sprintf('%.0f', $3)) with labels offset 0,0.7 notitle, "
            f"{IDLE_BYTES_GOAL} with lines dt 2 lw 1.5 lc rgb '#c0392b' "
            f"title 'goal for step 3: {IDLE_BYTES_GOAL} bytes'",
            "unset logscale y"]


def draw(figures, by_question, png):
    """CPU per request as bars; the C10K completion curves; memory per idle
    connection beside a thread's. False if there is nothing to draw."""
    panels = [panel for panel in (cpu_panel(figures, by_question.get("throughput", [])),
                                  curve_panel(figures, by_question.get("c10k", [])),
                                  memory_panel(figures, by_question.get("idle", [])))
              if panel]
    if not panels:
        return False
    script = [f'set terminal pngcairo size {600 * len(panels)},560 font "sans,10"',
              f'set output "{png}"', f"set multiplot layout 1,{len(panels)}", "set bmargin 7"]
    for panel in panels:
        script += panel
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True,
                   capture_output=True)
    return True


# ---------------------------------------------------------------- driving

def contenders_present(names):
    """Our servers that this workbook builds, in the ladder's order, and
    nginx if it is installed (None if not)."""
    ladder = []
    if "step1" in names:
        ladder.append(Contender("step1", "step 1, serial", "step1_serial_reference"))
    if "step2" in names:
        ladder.append(Contender("step2", "step 2, pool of 10", "step2_threadpool_reference",
                                ("--workers", "10")))
    if "step3" in names:
        ladder.append(Contender("step3", "step 3, event loop", "step3_epoll_reference"))
    if "step5" in names:
        ladder.append(Contender("step5", "step 5, coroutines", "step5_coroutines_reference"))
    have_nginx = subprocess.run(["sh", "-c", "command -v nginx"], capture_output=True)
    nginx = Contender("nginx", "nginx, 1 worker") if have_nginx.returncode == 0 else None
    return ladder, nginx


def estimate_seconds(throughput, c10k, idle, pools):
    """Seconds on a quiet 2-CPU machine (2:07 from a clean clone with steps
    1 to 5); about twice that while other programs keep the CPUs busy."""
    seconds = 15  # building from a clean clone; starting servers
    seconds += len(throughput) * (len(LOADS) * ROUNDS * (LOAD_SECONDS + 0.15) + 1)
    seconds += len(c10k) * ROUNDS * 2
    seconds += len(idle) * ROUNDS * 1.5 + (12 if pools else 0)
    return seconds + 5


class Stages:
    """The progress lines: '[2/4 at 0:48] what is being measured ...'."""

    def __init__(self):
        self.started = time.monotonic()

    def elapsed(self):
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60}:{seconds % 60:02d}"

    def begin(self, number, text):
        say(f"[{number}/4 at {self.elapsed()}] {text} ...")


def measured(question, *args):
    """A question's table as lines: what it wrote, or why it could not."""
    lines = []

    def write(text=""):
        lines.append(text)

    try:
        question(*args, write)
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        lines.append(f"   could not measure: {error}")
    return lines


def main(args):
    if args:
        sys.exit("usage: ./workbook bench")
    # Ctrl-C raises KeyboardInterrupt; a SIGTERM does the same, so that every
    # `finally` stops what it started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return run_bench()
    except KeyboardInterrupt:
        say("workbook bench: interrupted; every process it started has been stopped.")
        return 130


def built(steps):
    """The names of the steps whose programs build; one that does not is left
    out with a line (its compiler messages are shown)."""
    names = set()
    for step in steps:
        if build([step.reference, *step.also_build]):
            names.add(step.name)
        else:
            say(f"{step.name} ({step.title}) does not build: left out")
    return names


@dataclasses.dataclass
class Plan:
    """Who is measured in which question."""
    throughput: list
    c10k: list
    idle: list
    names: set

    @classmethod
    def of(cls, names):
        ladder, nginx = contenders_present(names)
        peers = [nginx] if nginx else []
        loops = [c for c in ladder if c.key in ("step3", "step5")]
        echo = nginx is not None and Nginx.echo_module() is not None
        return cls(ladder + peers, loops + (peers if echo else []) if loops else [],
                   loops + peers if loops else [], names)

    def seconds(self):
        return estimate_seconds(self.throughput, self.c10k, self.idle, "step2" in self.names)


def notes_on(plan):
    """What is left out, and why."""
    notes = []
    if not any(c.key == "nginx" for c in plan.throughput):
        notes.append("nginx is not installed: its rows are left out (./workbook bench installs it).")
    elif plan.c10k and not any(c.key == "nginx" for c in plan.c10k):
        notes.append("nginx's echo module (libnginx-mod-http-echo) is missing: no nginx in "
                     "question 2.")
    if "step5" not in plan.names:
        notes.append("step 5 (coroutines) is not yet in this workbook: left out.")
    if "step3" not in plan.names:
        notes.append("step 3 (the event loop) is not yet in this workbook: questions 2 and 3 "
                     "are left out.")
    return notes


def run_bench():
    stages = Stages()
    steps = written_steps()
    minutes = max(1, round(Plan.of({s.name for s in steps}).seconds() / 60))
    say(f"workbook bench: about {minutes} minutes on a quiet machine, up to twice that on a busy "
        f"one. Each row: the median of {ROUNDS} rounds, alternating.")
    plan = Plan.of(built(steps))
    if not build(["c10k_client"] + (["thread_cost"] if "step2" in plan.names else [])):
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    for stale in OUT.glob("c10k-*"):
        stale.unlink()
    notes = notes_on(plan)
    before, after = raise_descriptor_limit()
    notes.append(f"Descriptor limit (ulimit -n) raised for this run and what it starts: {before} "
                 f"-> {after} (hard limit {resource.getrlimit(resource.RLIMIT_NOFILE)[1]}).")
    if after < C10K + 100 and plan.c10k:
        notes.append(f"{C10K} connections need {C10K + 100} descriptors: questions 2 and 3 are "
                     "left out.")
        plan.c10k, plan.idle = [], []
    for note in notes:
        say(note)
    load_at_start = os.getloadavg()[0]

    figures, by_question, tables = {}, {}, []
    if plan.throughput:
        stages.begin(1, "throughput at delay 0, wrk and ab: "
                     + ", ".join(c.label for c in plan.throughput))
        by_question["throughput"] = plan.throughput
        tables.append(measured(question_throughput, plan.throughput, figures))
    if plan.c10k:
        stages.begin(2, f"{C10K} clients at once: " + ", ".join(c.label for c in plan.c10k))
        by_question["c10k"] = plan.c10k
        tables.append(measured(question_c10k, plan.c10k, figures))
    if plan.idle:
        stages.begin(3, f"{C10K} idle connections: {', '.join(c.label for c in plan.idle)}"
                     + (f"; pools of {' and '.join(str(n) for n in POOL_SIZES[1:])} workers"
                        if "step2" in plan.names else ""))
        by_question["idle"] = plan.idle
        tables.append(measured(question_costs, plan.idle, "step2" in plan.names, figures))
    if "step2" in plan.names:
        tables.append(measured(thread_cost))
    if "step4" in plan.names:
        stages.begin(4, "step 4 against one cycle")
        tables.append(measured(question_step4, figures))
    say(f"measured in {stages.elapsed()}; load average {load_at_start:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} CPUs")
    if load_at_start > 1.5:  # the bench itself keeps both CPUs busy: only the start tells
        say("(other programs were running: absolute figures drift up; the ratios of each row to "
            "its peer in the same rounds hold better)")
    for table in tables:
        say()
        say("\n".join(str(line) for line in table).rstrip())
    say()
    png = OUT / "bench.png"
    if draw(figures, by_question, png):
        say(f"picture: {png.relative_to(ROOT)}")
    return 0
