"""make soak: DAWN as `make run` serves it, for --minutes under a few hundred clients, with one kill -9 of
runtick in the middle and a restart.

runtick embedded at config.yaml's 10 Hz, processes on with their tick rules, writes open to local play,
on a SQLite database of its own; the clients (bench.soak_swarm) join and leave, some never read, some send
stimuli, and all of the well-behaved ones reconnect and resume across the restart. Prints, every --report
seconds, runtick's memory and the clients' figures; at the end the errors, the ticks the well-behaved
clients missed, and the database against what the stream delivered; then a verdict line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import psutil
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bench.common import ROOT, free_port, site_env, wait_http
from bench.soak_swarm import tick_digest

# the hub's ring (3,000 ticks at 10 Hz: 5 min) and the caches fill first: a life of runtick reaches its
# working set about 10 min after it starts (both lives, in every soak so far); memory is judged after that
WARM_UP_S = 600
FLAT_MB_PER_MIN = 0.5  # memory counts as flat while it grows slower than this after the warm-up
FINISHED = {"completed", "failed", "timeout", "cancelled", "abandoned"}


def config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


class Runtick:
    """`make run`'s runtick on a port and database of the soak's own, started again after a kill."""

    def __init__(self, env: dict, port: int, logs: Path) -> None:
        self.env, self.port, self.logs, self.lives = env, port, logs, 0
        self.process: subprocess.Popen | None = None

    def start(self) -> float:
        """Start it; returns the seconds until /health/ answers."""
        self.lives += 1
        started = time.monotonic()
        with open(self.logs / f"runtick-{self.lives}.log", "w") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "runtick", "--port", str(self.port), "--progress", "60"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        wait_http(f"http://127.0.0.1:{self.port}/health/")
        return time.monotonic() - started

    def memory(self) -> tuple[float, float]:
        """RSS of runtick and of its children (the launcher, the scripts), in MB."""
        me = psutil.Process(self.process.pid)
        children = 0
        for child in me.children(recursive=True):
            try:
                children += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return me.memory_info().rss / 1e6, children / 1e6

    def kill(self) -> list[psutil.Process]:
        """kill -9; returns what of its process tree outlived it by 5 s."""
        tree = psutil.Process(self.process.pid).children(recursive=True)
        self.process.kill()
        self.process.wait(10)
        deadline = time.monotonic() + 5
        while (left := [p for p in tree if _alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left

    def stop(self) -> tuple[int, float]:
        """SIGTERM; returns the exit code and the seconds it took."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        return code, time.monotonic() - started


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def server_metrics(port: int) -> dict[str, float]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    figures: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            figures[sample.name] = figures.get(sample.name, 0.0) + sample.value
    return figures


class Swarm:
    """One bench.soak_swarm process; its status lines are read as they come."""

    def __init__(self, url: str, clients: int, seed: int, report: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.soak_swarm", "--url", url, "--clients", str(clients),
             "--seed", str(seed), "--report", str(report)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        self.status: dict = {}
        self.summary: dict | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            message = json.loads(line)
            if "status" in message:
                self.status = message["status"]
            else:
                self.summary = message["summary"]

    def stop(self) -> dict:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(120)
        self._reader.join(30)
        if self.summary is None:
            raise SystemExit(f"a client swarm ended without a summary (exit {self.process.returncode})")
        return self.summary


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float | None:
    if len(samples) < 3 or samples[-1][0] - samples[0][0] < 120:
        return None
    t, rss = np.array(samples).T
    return float(np.polyfit(t / 60, rss, 1)[0])


def database(path: Path) -> dict:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        one = lambda sql: db.execute(sql).fetchall()  # noqa: E731
        ticks, low, high = one("SELECT COUNT(*), MIN(tick_number), MAX(tick_number) FROM consciousness_tick")[0]
        runs = dict(one("SELECT status, COUNT(*) FROM processes_processrun GROUP BY status"))
        superseded = one("SELECT COUNT(*) FROM processes_processrun WHERE reason LIKE 'superseded%'")[0][0]
        consolidations = one("SELECT COUNT(*) FROM processes_memoryconsolidation")[0][0]
        duplicates = one(
            "SELECT COUNT(*) FROM (SELECT 1 FROM processes_memoryconsolidation GROUP BY source_tick_start, "
            "source_tick_end HAVING COUNT(DISTINCT run_id) > 1)"
        )[0][0]
        expected = sum(
            int(json.loads(output)["metrics"]["patterns"]) for (output,) in one(
                "SELECT output FROM processes_processrun "
                "WHERE script = 'memory_consolidator' AND status = 'completed'"
            )
        )
        rows = {
            run: (status, reason, tick) for run, status, reason, tick in one(
                "SELECT id, status, reason, tick_number FROM processes_processrun"
            )
        }
        integrity = one("PRAGMA integrity_check")[0][0]
    return {
        "ticks": ticks, "low": low, "high": high, "runs": runs, "superseded": superseded,
        "consolidations": consolidations, "consolidations_expected": expected, "duplicate_ranges": duplicates,
        "rows": rows, "integrity": integrity,
    }


def exported_digests(env: dict) -> dict[int, str]:
    export = subprocess.run(
        [sys.executable, "manage.py", "exportticks"], cwd=ROOT, env=env, capture_output=True, text=True,
        check=True,
    )
    return {tick["tick_number"]: tick_digest(tick) for tick in map(json.loads, export.stdout.splitlines())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--procs", type=int, default=2, help="client swarm processes")
    parser.add_argument("--report", type=float, default=60.0, help="seconds between lines")
    args = parser.parse_args()
    shipped = config()
    rate, flush = shipped["consciousness"]["tick_rate"], shipped["persistence"]["flush_interval"]
    lost_max = math.ceil(rate * flush) + 1  # what a kill may cost: one flush interval of ticks

    tmp = Path(tempfile.mkdtemp(prefix="dawn-soak-"))
    env = site_env(str(tmp), DAWN_OPEN_WRITES="1")  # as `make run`: local play
    db_path = tmp / "bench.sqlite3"
    port = free_port()
    runtick = Runtick(env, port, tmp)
    up = runtick.start()
    print(f"soak: {args.minutes:g} min, {args.clients} clients, runtick embedded at {rate:g} Hz with processes "
          f"(up in {up:.1f} s), flush every {flush:g} s; logs in {tmp}", flush=True)
    per = [args.clients // args.procs + (1 if i < args.clients % args.procs else 0) for i in range(args.procs)]
    swarms = [Swarm(f"ws://127.0.0.1:{port}/ws", n, i, min(10.0, args.report)) for i, n in enumerate(per)]

    started = time.monotonic()
    end, kill_at = started + args.minutes * 60, started + args.minutes * 30
    halves: list[list[tuple[float, float]]] = [[], []]
    kill: dict | None = None
    evictions = 0.0  # of the runtick before the kill
    print(f"{'min':>5} {'runtick MB':>10} {'children MB':>11} {'tick':>6} {'server clients':>14} {'evicted':>7} "
          f"{'steady/churn/slow':>17} {'delivered':>9} {'missed':>6} {'errors':>6} {'load':>5}", flush=True)
    next_line = started
    while (now := time.monotonic()) < end:
        if kill is None and now >= kill_at:
            before = server_metrics(port)
            evictions = before.get("dawn_stream_evictions_total", 0.0)
            with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
                persisted = db.execute("SELECT MAX(tick_number) FROM consciousness_tick").fetchone()[0]
            left = runtick.kill()
            killed_at = time.time()
            with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
                snapshot = db.execute("SELECT tick_number FROM consciousness_enginesnapshot").fetchone()[0]
            up = runtick.start()
            kill = {"at": killed_at, "up": time.time(), "tick": before.get("dawn_tick_number", 0),
                    "persisted": persisted, "snapshot": snapshot, "restart_s": up, "survivors": [p.pid for p in left]}
            print(f"kill -9 at tick {kill['tick']:.0f} (persisted {persisted}, snapshot {snapshot}); "
                  f"{len(left)} of its processes outlived it; up again in {up:.1f} s", flush=True)
            continue
        try:
            rss, children = runtick.memory()
        except psutil.NoSuchProcess:
            raise SystemExit("runtick died by itself: see the logs in " + str(tmp)) from None
        halves[kill is not None].append((now - started, rss))
        if now >= next_line:
            figures = server_metrics(port)
            status = [s.status for s in swarms]
            connected = Counter()
            for s in status:
                connected.update(s.get("connected", {}))
            kinds = (f"{connected['steady']}/{connected['churn']}/"
                     f"{connected['never_reads'] + connected['rarely_reads']}")
            print(f"{(now - started) / 60:5.1f} {rss:10.1f} {children:11.1f} "
                  f"{figures.get('dawn_tick_number', 0):6.0f} "
                  f"{figures.get('dawn_stream_clients', 0):14.0f} "
                  f"{evictions + figures.get('dawn_stream_evictions_total', 0):7.0f} {kinds:>17} "
                  f"{sum(s.get('ticks', 0) for s in status):9d} {sum(s.get('missing', 0) for s in status):6d} "
                  f"{sum(s.get('errors', 0) + s.get('exceptions', 0) for s in status):6d} "
                  f"{os.getloadavg()[0]:5.2f}",
                  flush=True)
            next_line += args.report
        time.sleep(min(10.0, max(0.0, min(next_line, end) - time.monotonic())))
    evictions += server_metrics(port).get("dawn_stream_evictions_total", 0.0)

    summaries = [s.stop() for s in swarms]
    (tmp / "clients.json").write_text(json.dumps(summaries))  # for a look afterwards
    code, stop_s = runtick.stop()
    report(summaries, database(db_path), exported_digests(env), kill, halves, code, stop_s, evictions, lost_max,
           tmp)


def report(summaries, db, exported, kill, halves, code, stop_s, evictions, lost_max, tmp) -> None:
    problems = []
    total = Counter()
    for s in summaries:
        total.update({k: s[k] for k in ("ticks", "gaps", "missing", "resumes", "resume_failures")})
    errors = Counter()
    exceptions = Counter()
    closes = Counter()
    stimuli = Counter()
    for s in summaries:
        errors.update(s["error_codes"])
        exceptions.update(s["exception_kinds"])
        closes.update({f"{kind} {code}": n for kind, code, n in s["closes"]})
        stimuli.update(s["stimuli"])
    print(f"clients: {total['ticks']} ticks delivered to the well-behaved; {total['missing']} missed in "
          f"{total['gaps']} gaps; {total['resumes']} resumes, {total['resume_failures']} refused")
    pauses = sorted((p for s in summaries for p in s["pauses"]), reverse=True)
    if pauses:
        print(f"  longest pauses of a steady client's stream (s): {pauses[:5]}")
    print(f"  closes and failed connects, by kind and code: {dict(sorted(closes.items()))}; "
          f"evicted by the server: {evictions:.0f}")
    print(f"  error frames: {dict(errors) or 'none'}; client crashes: {dict(exceptions) or 'none'}")
    if total["missing"] or total["resume_failures"]:
        problems.append("well-behaved clients missed ticks")
    if errors or exceptions:
        problems.append("errors")

    # stimuli: every one sent is answered, but those the killed runtick took with it
    unacked = [t for s in summaries for t in s["unacked"]]
    lost_at_kill = [t for t in unacked if kill and kill["at"] - 2 <= t <= kill["up"]]
    print(f"stimuli: {stimuli['sent']} sent, {stimuli['acked']} applied, {stimuli['refused']} refused, "
          f"{len(lost_at_kill)} lost with the killed runtick, "
          f"{len(unacked) - len(lost_at_kill)} unanswered otherwise, "
          f"{stimuli['unsent']} not sent (no connection)")
    if len(unacked) - len(lost_at_kill) > len(summaries) * 3:  # at most a few sent in the last seconds
        problems.append("stimuli unanswered")

    # the database against the stream
    streamed = set()
    for s in summaries:
        for first, last in s["numbers"]:
            streamed.update(range(first, last + 1))
    record = {int(n): d for s in summaries for n, d in s["record"].items()}
    regenerated = sorted(n for n, d in record.items() if exported.get(n) != d)
    print(f"database: {db['ticks']} ticks ({db['low']}..{db['high']}), integrity {db['integrity']}; "
          f"the stream carried "
          f"{len(streamed)} ({min(streamed, default=0)}..{max(streamed, default=0)}), "
          f"{len(streamed - set(exported))} of them not in the database")
    consecutive = db["ticks"] == db["high"] - db["low"] + 1 if db["ticks"] else False
    if db["integrity"] != "ok" or not consecutive or streamed - set(exported):
        problems.append("ticks lost or not consecutive")
    if kill:
        window = range(kill["snapshot"] + 1, kill["snapshot"] + lost_max + 1)
        outside = [n for n in regenerated if n not in window]
        print(f"  at the kill: snapshot at tick {kill['snapshot']}; {len(regenerated)} ticks streamed before it were "
              f"regenerated ({regenerated[0] if regenerated else '-'}..{regenerated[-1] if regenerated else '-'}; "
              f"at most {lost_max}: one flush interval); {len(outside)} differ elsewhere")
        if outside or kill["survivors"] or kill["persisted"] > kill["snapshot"]:
            problems.append("more than one flush interval lost at the kill, or processes outlived it")
    elif regenerated:
        problems.append("streamed ticks differ from the database")

    seen = {int(k): v for s in summaries for k, v in s["runs"].items()}
    disagree, superseded = [], 0
    for run, last in seen.items():
        row = db["rows"].get(run)
        if row is None:
            disagree.append(run)
        elif last["status"] in FINISHED and row[0] != last["status"]:
            if row[1].startswith("superseded") and kill and last["tick"] > kill["snapshot"]:
                superseded += 1
            else:
                disagree.append(run)
    print(f"runs: {sum(db['runs'].values())} in the database {dict(sorted(db['runs'].items()))}, "
          f"{db['superseded']} superseded at the restart; the stream reported {len(seen)}, "
          f"{superseded} of them finished before the kill and superseded, {len(disagree)} disagreeing")
    print(f"consolidations: {db['consolidations']} (the completed consolidations' patterns: "
          f"{db['consolidations_expected']}), {db['duplicate_ranges']} tick ranges consolidated twice")
    if disagree or db["runs"].get("running") or db["duplicate_ranges"] \
            or db["consolidations"] != db["consolidations_expected"]:
        problems.append("runs or consolidations disagree")

    # memory by the age of the runtick process: the two lives run the same program under the same load, so
    # their samples after the warm-up are pooled into one slope (each life alone has only 5 minutes of them)
    pooled = []
    for name, samples in zip(("before the kill", "after the restart"), halves):
        born = samples[0][0] if samples else 0.0
        judged = [(t - born, rss) for t, rss in samples if t - born >= WARM_UP_S]
        pooled += judged
        slope = slope_mb_per_min(judged)
        first, last = (samples[0][1], samples[-1][1]) if samples else (0, 0)
        verdict = "too short to judge" if slope is None else f"{slope:+.2f} MB/min after {WARM_UP_S // 60} min"
        print(f"memory {name}: runtick {first:.0f} -> {last:.0f} MB ({verdict})")
    slope = slope_mb_per_min(sorted(pooled))
    print(f"memory by runtick's age, both lives after {WARM_UP_S // 60} min: "
          + ("too short to judge" if slope is None else f"{slope:+.2f} MB/min (flat below {FLAT_MB_PER_MIN})"))
    if slope is not None and slope > FLAT_MB_PER_MIN:
        problems.append("memory grows")
    print(f"runtick stopped with exit {code} in {stop_s:.1f} s")
    if code != 0 or stop_s > 5:
        problems.append("unclean stop")
    print(f"VERDICT: {'PASS' if not problems else 'FAIL: ' + '; '.join(problems)} (logs in {tmp})", flush=True)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
