"""./workbook demo: the article's measurements, reproduced, with a picture.

Each server step of project.STEPS that is built gets its column in the
`ab -n 30 -c 10` table and a panel in the picture; the waves below say how
its panel is made. A server step that is not listed there (the event loop,
and later steps like it) gets DEFAULT_WAVE: many clients at once, one block.
"""
import dataclasses
import re
import selectors
import socket
import subprocess
import sys
import time

from project import BUILD, ROOT, STEPS, Server, build, say, written_steps


ARTICLE_PERCENTILES = ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "100%"]
ARTICLE_FIGURES = {  # the article's ab table, ms at a 5000 ms delay
    "step1": [50037, 50039, 50044, 50045, 196920, 196923, 196926, 196926, 196926],
    "step2": [5005, 5006, 5006, 5006, 5007, 5007, 5008, 5008, 5008],
}
ARTICLE_DELAY_MS = 5000
SHORT_NAMES = {"step1": "serial", "step2": "pool", "step3": "loop", "step5": "coroutines"}
KEEP_ALIVE_REQUESTS, KEEP_ALIVE_CLIENTS = 1000, 100


@dataclasses.dataclass
class Wave:
    clients: int       # how many connect at once for the picture
    flags: tuple       # the server's flags beside --delay-ms
    shows: str         # what the panel shows


WAVES = {"step1": Wave(10, (), "one after another: a staircase of waits"),
         "step2": Wave(20, ("--workers", "10"), "10 workers: the second wave waits D")}
DEFAULT_WAVE = Wave(100, (), "all served at once: one block, no waiting")


def wave_of(step):
    return WAVES.get(step.name, DEFAULT_WAVE)


def is_event_loop(step):
    """Steps that serve every client at once keep connections alive: ab -k."""
    return step.name not in WAVES


# ------------------------------------------------------------------- ab

def run_ab(server, requests, concurrency, delay_ms, extra=(), tsv=None):
    """ab's output, checked: every request complete, none failed."""
    # The serial server makes the last request wait for all the others.
    timeout_s = requests * delay_ms // 1000 * 2 + 30
    command = ["ab", *extra, "-n", str(requests), "-c", str(concurrency), "-s", str(timeout_s)]
    if tsv is not None:
        command += ["-g", str(tsv)]
    result = subprocess.run(command + [server.url()], capture_output=True, text=True,
                            timeout=timeout_s + 30)
    if result.returncode != 0 or not re.search(r"^Failed requests:\s+0$", result.stdout, re.M):
        raise RuntimeError("ab failed:\n" + result.stdout[-1500:] + result.stderr[-1500:])
    return result.stdout


def percentile_table(output):
    """ab's table of the time within which each share was served {percent: ms}."""
    return {percent: int(ms) for percent, ms in
            re.findall(r"^\s*(\d+%)\s+(\d+)", output, re.M)}


def keep_alive_line(output):
    figure = lambda name: re.search(rf"^{name}:\s+([\d.]+)", output, re.M).group(1)
    return (f"{figure('Complete requests')} requests in {float(figure('Time taken for tests')):.2f} s, "
            f"{figure('Failed requests')} failed, {figure('Keep-Alive requests')} "
            f"keep-alive requests")


# --------------------------------------------------------------- the wave

REQUEST = b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n"


def timed_wave(port, clients, timeout_s):
    """[(start, end, the client's port)] of one GET per client, in seconds
    since the first connect. The clients connect and send one after
    another, as fast as Python can (about 100 us each): blocking connects
    to 127.0.0.1 complete in the kernel's backlog, whether or not the server
    accepts. Then every response is read to its end as it comes."""
    selector = selectors.DefaultSelector()
    started_at = time.monotonic()
    done = []
    try:
        for _ in range(clients):
            start = time.monotonic() - started_at
            conn = socket.create_connection(("127.0.0.1", port), timeout_s)
            selector.register(conn, selectors.EVENT_READ, (start, conn.getsockname()[1]))
            conn.sendall(REQUEST)
            conn.setblocking(False)
        give_up = started_at + timeout_s
        while len(done) < clients:
            events = selector.select(timeout=max(0.0, give_up - time.monotonic()))
            if not events:
                raise RuntimeError(f"only {len(done)} of {clients} responses within {timeout_s} s")
            for key, _ in events:
                if key.fileobj.recv(65536):
                    continue
                # The end of the stream: the response is whole (Connection: close).
                done.append((key.data[0], time.monotonic() - started_at, key.data[1]))
                selector.unregister(key.fileobj)
                key.fileobj.close()
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()
        selector.close()
    return done


LOG_LINE = re.compile(r'^[\d.]+:(\d+) ".*" (\d+) \d+ bytes in (\d+) ms$')


def service_by_port(log):
    """{client port: milliseconds the server spent on its request}, from the
    server's log (common/log.c): the time since it took the request."""
    services = {}
    for line in log.splitlines():
        match = LOG_LINE.match(line)
        if match and match.group(2) == "200":
            services[int(match.group(1))] = int(match.group(3)) / 1000
    return services


def wave_bars(step, delay_ms):
    """One wave of clients at once, against a server that logs: for each
    request (start, taken, end) in seconds, where taken is when the server
    took it (its end less the time the server's log says it spent)."""
    wave = wave_of(step)
    server = Server(step.reference, "--delay-ms", str(delay_ms), *wave.flags)
    try:
        requests = timed_wave(server.port, wave.clients, wave.clients * delay_ms / 1000 + 30)
    finally:
        server.stop()
    services = service_by_port(server.stdout)
    bars, unmatched = [], 0
    for start, end, port in requests:
        if port not in services:
            unmatched += 1
        # Never before the start: the log counts whole milliseconds.
        taken = max(start, end - services.get(port, end - start))
        bars.append((start, taken, end))
    if unmatched:
        say(f"  ({unmatched} of {len(requests)} requests had no line in the server's log: drawn "
            f"as served throughout)")
    return sorted(bars, key=lambda bar: (bar[2], bar[0]))


def demo_server(step, delay_ms, out):
    """ab's table for the article's load; ab -k for an event loop; then the
    wave for the picture."""
    server = Server(step.reference, "--delay-ms", str(delay_ms), "--quiet", *wave_of(step).flags)
    try:
        table = percentile_table(run_ab(server, 30, 10, delay_ms, tsv=out / f"{step.name}-ab.tsv"))
        keep_alive = None
        if is_event_loop(step):
            keep_alive = keep_alive_line(run_ab(server, KEEP_ALIVE_REQUESTS, KEEP_ALIVE_CLIENTS,
                                                delay_ms, extra=("-k",)))
    finally:
        server.stop()
    return table, keep_alive, wave_bars(step, delay_ms)


# -------------------------------------------------------------- the table

def print_demo_table(delay_ms, tables):
    scale = delay_ms / ARTICLE_DELAY_MS
    say("ab -n 30 -c 10: time within which each share of the requests was served (ms)")
    say(f"The article ran at a 5000 ms delay; 'scaled' multiplies its figures by "
        f"{delay_ms}/5000 to compare with ours at {delay_ms} ms.")
    say("It printed no figures for the event loop: ours only.")
    say()
    groups = []  # per server: [(header, [a cell per percentile])]
    for name, table in tables.items():
        short = SHORT_NAMES.get(name, name)
        ours = [str(table.get(percent, "-")) for percent in ARTICLE_PERCENTILES]
        if name in ARTICLE_FIGURES:
            article = ARTICLE_FIGURES[name]
            groups.append([(f"{short}: article", [str(a) for a in article]),
                           ("scaled", [str(round(a * scale)) for a in article]), ("ours", ours)])
        else:
            groups.append([(f"{short}: ours", ours)])

    def row(first, cell):
        return f"{first:>5} | " + " | ".join(
            " ".join(f"{cell(column):>{max(len(column[0]), 7)}}" for column in group)
            for group in groups)

    header = row("", lambda column: column[0])
    say(header)
    say("-" * len(header))
    for i, percent in enumerate(ARTICLE_PERCENTILES):
        say(row(percent, lambda column: column[1][i]))


# ------------------------------------------------------------ the picture

WAIT_COLOUR, SERVICE_COLOUR = "#f0a030", "#2f5f9f"


def draw_timeline(panels, png):
    """One panel per server; each request a bar from its connect to its last
    byte, in two tones: waiting in the queue, then being served. The panels
    share one time axis, so that their lengths compare."""
    end = max(bar_end for _, data, bar_end, _ in panels)
    height = max(260, min(420, 200 + max(n for _, _, _, n in panels) * 2))
    script = [f'set terminal pngcairo size 1200,{height * len(panels) + 40} font "sans,11"',
              f'set output "{png}"', f"set multiplot layout {len(panels)},1",
              "set xlabel 'seconds since the clients connected'",
              "set ylabel 'request (by when it ended)'", "set grid xtics",
              f"set xrange [0:{end * 1.04:.3f}]", "set style fill solid 1.0 noborder",
              "set key bottom right box opaque"]
    for number, (title, data, _, count) in enumerate(panels):
        if number == 1:
            script.append("unset key")  # the first panel's legend says it for all
        script += [f"set title '{title}'", f"set yrange [0:{count + 1}]",
                   # boxxyerror: x y xlow xhigh ylow yhigh
                   f"plot '{data}' using (($2+$3)/2):1:2:3:($1-0.4):($1+0.4) with boxxyerror "
                   f"lc rgb '{WAIT_COLOUR}' title 'waiting in the queue (connect until the "
                   f"server takes it)', "
                   f"'' using (($3+$4)/2):1:3:4:($1-0.4):($1+0.4) with boxxyerror "
                   f"lc rgb '{SERVICE_COLOUR}' title 'being served (until the last byte)'"]
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)


def write_bars(bars, data):
    data.write_text("".join(f"{i + 1} {start:.4f} {taken:.4f} {end:.4f}\n"
                            for i, (start, taken, end) in enumerate(bars)))


def panel_title(step, delay_ms, bars):
    wave = wave_of(step)
    waits = sorted(taken - start for start, taken, _ in bars)
    return (f"{step.name}, {step.title}: {wave.clients} clients at once, {delay_ms} ms of work "
            f"each: {wave.shows} (longest wait {waits[-1]:.2f} s)")


# ------------------------------------------------------------------- main

def parse_args(args):
    if not args:
        return 500
    if args[:1] == ["--delay-ms"] and len(args) == 2 and args[1].isdigit() and int(args[1]) > 0:
        return int(args[1])
    sys.exit("usage: ./workbook demo [--delay-ms MS]")


def built_steps():
    """The steps whose programs build; a step that does not is left out with
    a line (its compiler messages are shown), never failing the demo."""
    built = []
    for step in written_steps():
        if build([step.reference, *step.also_build]):
            built.append(step)
        else:
            say(f"{step.name} ({step.title}) does not build: left out")
    return built


def main(args):
    delay_ms = parse_args(args)
    steps = built_steps()
    out = BUILD / "demo"
    out.mkdir(parents=True, exist_ok=True)
    tables, keep_alive, panels, programs = {}, {}, [], []
    for step in STEPS:
        if step not in steps:
            say(f"{step.name} ({step.title}): not yet in this workbook")
            continue
        if not step.is_server:
            say(f"{step.name} ({step.title}): measuring ...")
            programs.append(subprocess.run([str(BUILD / step.reference)], cwd=ROOT,
                                           capture_output=True, text=True, timeout=120))
            continue
        wave = wave_of(step)
        say(f"{step.name} ({step.title}): ab -n 30 -c 10"
            + (f", ab -k -n {KEEP_ALIVE_REQUESTS} -c {KEEP_ALIVE_CLIENTS}" if is_event_loop(step)
               else "") + f", then {wave.clients} clients at once ...")
        tables[step.name], keep_alive[step.name], bars = demo_server(step, delay_ms, out)
        data = out / f"{step.name}-bars.dat"
        write_bars(bars, data)
        panels.append((panel_title(step, delay_ms, bars), data, bars[-1][2], len(bars)))
    say()
    print_demo_table(delay_ms, tables)
    for name, line in keep_alive.items():
        if line:
            say()
            say(f"{name}, ab -k -n {KEEP_ALIVE_REQUESTS} -c {KEEP_ALIVE_CLIENTS} (keep-alive) at "
                f"{delay_ms} ms: {line}")
    for program in programs:
        say()
        say(program.stdout.rstrip() if program.returncode == 0 else
            f"the step 4 program failed:\n{program.stdout}{program.stderr}")
    say()
    png = out / "timeline.png"
    draw_timeline(panels, png)
    say(f"picture of every request: {png.relative_to(ROOT)}")
    return 0
