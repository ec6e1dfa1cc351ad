"""./workbook demo: the article's measurements, reproduced, with a picture."""
import asyncio
import re
import subprocess
import sys
import time

from project import BUILD, ROOT, STEPS, Server, build, say, written_steps


ARTICLE_PERCENTILES = ["50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "100%"]
ARTICLE_SERIAL = [50037, 50039, 50044, 50045, 196920, 196923, 196926, 196926, 196926]
ARTICLE_POOL = [5005, 5006, 5006, 5006, 5007, 5007, 5008, 5008, 5008]
ARTICLE_DELAY_MS = 5000


def run_ab(server, requests, concurrency, delay_ms, tsv):
    """ab's percentile table {percent: ms}; tsv receives ab's -g table."""
    timeout_s = requests * delay_ms // 1000 * 2 + 30
    result = subprocess.run(["ab", "-n", str(requests), "-c", str(concurrency), "-s",
                             str(timeout_s), "-g", str(tsv), server.url()],
                            capture_output=True, text=True, timeout=timeout_s + 30)
    if result.returncode != 0 or "Failed requests:        0" not in result.stdout:
        raise RuntimeError("ab failed:\n" + result.stdout[-1500:] + result.stderr[-1500:])
    table = dict(re.findall(r"^\s*(\d+%)\s+(\d+)", result.stdout, re.M))
    return {percent: int(ms) for percent, ms in table.items()}


async def one_request(port, started_at):
    """(start, end) of one GET, in seconds since started_at."""
    start = time.monotonic() - started_at
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: demo\r\n\r\n")
    await writer.drain()
    while await reader.read(65536):
        pass
    writer.close()
    return start, time.monotonic() - started_at


async def timed_wave(port, clients):
    started_at = time.monotonic()
    return await asyncio.gather(*(one_request(port, started_at) for _ in range(clients)))


def demo_server(step, delay_ms, wave_clients, out, extra_flags=()):
    """The article's load with ab, then one wave of clients for the picture.

    The picture needs each request's start and end to the millisecond. ab's
    -g table gives its start in whole seconds only, and ab sends its first
    request alone before the others, so the wave is timed here instead."""
    server = Server(step.reference, "--delay-ms", str(delay_ms), "--quiet", *extra_flags)
    try:
        table = run_ab(server, 30, 10, delay_ms, out / f"{step.name}-ab.tsv")
        bars = sorted(asyncio.run(asyncio.wait_for(
            timed_wave(server.port, wave_clients), timeout=wave_clients * delay_ms / 1000 + 30)),
            key=lambda bar: bar[1])
    finally:
        server.stop()
    return table, bars


def print_demo_table(delay_ms, tables):
    scale = delay_ms / ARTICLE_DELAY_MS
    say(f"ab -n 30 -c 10: time within which each share of the requests was served (ms)")
    say(f"The article ran at a 5000 ms delay; 'scaled' multiplies its figures by "
        f"{delay_ms}/5000 to compare with ours at {delay_ms} ms.")
    say()
    header = f"{'':>5} | {'serial: article':>15} {'scaled':>8} {'ours':>8} |" \
             f" {'pool: article':>13} {'scaled':>8} {'ours':>8}"
    say(header)
    say("-" * len(header))
    for i, percent in enumerate(ARTICLE_PERCENTILES):
        ours = [str(tables[name][percent]) if name in tables else "-"
                for name in ("step1", "step2")]
        say(f"{percent:>5} | {ARTICLE_SERIAL[i]:>15} {round(ARTICLE_SERIAL[i] * scale):>8} "
            f"{ours[0]:>8} | {ARTICLE_POOL[i]:>13} {round(ARTICLE_POOL[i] * scale):>8} "
            f"{ours[1]:>8}")


def draw_timeline(panels, delay_ms, png):
    """One panel per server; one bar per request, from its start to its end."""
    script = [f'set terminal pngcairo size 1200,{330 * len(panels)} font "sans,11"',
              f'set output "{png}"', f"set multiplot layout {len(panels)},1",
              "set xlabel 'seconds since the clients connected'", "set ylabel 'request'",
              "set grid xtics", "unset key", "set offsets 0, 0, 1, 1"]
    for title, data in panels:
        script += [f"set title '{title}'",
                   f"plot '{data}' using 2:1:($3-$2):(0) with vectors nohead lw 5"]
    script.append("unset multiplot")
    subprocess.run(["gnuplot"], input="\n".join(script), text=True, check=True)


def main(args):
    delay_ms = 500
    if args[:1] == ["--delay-ms"] and len(args) == 2 and args[1].isdigit():
        delay_ms = int(args[1])
    elif args:
        sys.exit("usage: ./workbook demo [--delay-ms MS]")
    steps = written_steps()
    if not build([t for s in steps for t in (s.reference, *s.also_build)]):
        return 1
    out = BUILD / "demo"
    out.mkdir(parents=True, exist_ok=True)
    tables, panels, programs = {}, [], []
    for step in STEPS:
        if step not in steps or not step.reference:
            say(f"{step.name} ({step.title}): not yet in this workbook")
            continue
        if not step.is_server:
            say(f"{step.name} ({step.title}): measuring ...")
            programs.append(subprocess.run([str(BUILD / step.reference)], cwd=ROOT,
                                           capture_output=True, text=True, timeout=120))
            continue
        if step.name == "step1":
            clients, flags, what = 10, (), "one after another: the staircase"
        else:
            clients, flags, what = 20, ("--workers", "10"), "10 workers: two waves"
        say(f"{step.name} ({step.title}): ab -n 30 -c 10, then {clients} clients at once ...")
        table, bars = demo_server(step, delay_ms, clients, out, flags)
        tables[step.name] = table
        data = out / f"{step.name}-bars.dat"
        data.write_text("".join(f"{i + 1} {start:.4f} {end:.4f}\n"
                                for i, (start, end) in enumerate(bars)))
        panels.append((f"{step.name}, {step.title}: {clients} clients at once, "
                       f"{delay_ms} ms of work each ({what})", data))
    say()
    print_demo_table(delay_ms, tables)
    for program in programs:
        say()
        say(program.stdout.rstrip() if program.returncode == 0 else
            f"the step 4 program failed:\n{program.stdout}{program.stderr}")
    say()
    png = out / "timeline.png"
    draw_timeline(panels, delay_ms, png)
    say(f"picture of every request: {png.relative_to(ROOT)}")
    return 0
