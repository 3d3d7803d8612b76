"""Run every benchmark in bench/ in one go and regenerate the top of docs/benchmarks.md.

Each ``bench/bench_*.py``, then ``bench/load.py`` (the whole system under load) and the
fault benches ``bench/faults*.py`` (``fuzz.py`` is not a benchmark) runs as its own
subprocess, one after another, with the quick arguments in ``BENCHES`` (sized so the whole run stays under
30 minutes on a 2-core machine), in its own process group and with its own time limit.
For each: the exit code, the wall time, the load average before and after, the tail of
its stdout/stderr, and the JSON it wrote (the path in ``BENCHES``; a JSON file older than
the bench's start is ignored, never reported as this run's). Then the figures are taken
out of each JSON into rows (figure, measured, goal, met, ratio to the same run's
baseline) and written, with the machine's details, to ``bench/results/run_all.json``; the
generated section of docs/benchmarks.md (between ``<!-- run_all:begin -->`` and
``<!-- run_all:end -->``) is rewritten from it. A bench that fails or times out is a
"failed" row with its output's tail; the run goes on.

Goals: where a bench writes its goals into its JSON they are used; otherwise they come
from ``GOALS`` below (one place, each with the bench or doc it comes from).

Usage::

    .venv/bin/python bench/run_all.py               # everything (< 30 min), docs updated
    .venv/bin/python bench/run_all.py --list        # the benches and their arguments
    .venv/bin/python bench/run_all.py --dry-run     # what would run, nothing run
    .venv/bin/python bench/run_all.py --only upload_baseline --only cli
    .venv/bin/python bench/run_all.py --no-docs     # results only
    .venv/bin/python bench/run_all.py --docs-only   # regenerate docs from run_all.json

``--only`` merges into the previous ``run_all.json``: the other benches keep their last
figures (each with its own date) so the docs always show every bench.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
RUN_ALL_JSON = RESULTS / "run_all.json"
DOCS = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- run_all:begin -->", "<!-- run_all:end -->"
PYTHON = ROOT / ".venv" / "bin" / "python"

#: Goals for the benches that do not write theirs into their JSON; the source of each.
GOALS: dict[str, dict[str, float]] = {
    # bench_backup.GOALS
    "backup": {"tar_over_backup_min": 0.5},
    # bench_bambu.GOAL_P99_MS (docs/printers.md "Benchmark")
    "bambu": {"p99_ms_max": 200.0},
    # bench_cli docstring: `queue status` <= 12 x `python3 -c pass` (issue 14)
    "cli": {"queue_status_ratio_to_pass_max": 12.0},
    # bench_live.GOAL_MEDIAN_S / GOAL_P99_S (also in its JSON)
    "live": {"all_streams_median_s": 0.2, "all_streams_p99_s": 1.0},
    # bench_opener.GOALS (seconds, median)
    "opener": {"script": 0.5, "frozen": 1.5},
    # bench_outbox.GOALS (also in its JSON)
    "outbox": {"throughput_msg_per_s_min": 100.0, "idle_latency_median_s_max": 1.0},
    # bench_print_requests.GOALS (also in its JSON)
    "print_requests": {"upload_ratio_to_cp_min": 0.5, "server_rss_growth_mb_max": 50.0,
                       "listing_p95_ms_max": 100.0},
    # bench_queue: COMMAND_P99_GOAL_MS, ETA_GOAL_MS, SWEEP_GOAL_S (also in its JSON)
    "queue": {"command_p99_ms_max_1000": 50.0, "command_p99_ms_max_10000": 100.0,
              "eta_ms_max": 50.0, "sweep_s_max": 1.0},
    # bench_reports: printed goals (docs/reports.md "Speed")
    "reports": {"report_p95_ms_max": 300.0, "xlsx_s_max": 3.0},
    # bench_search: printed goal (docs/benchmarks.md "Job search")
    "search": {"search_p95_ms_max": 100.0},
    # bench_thumbnails.GOAL_SECONDS
    "thumbnails": {"median_s_max": 2.0},
    # issue 16 "Upload throughput" (also in bench_upload_baseline's JSON)
    "upload_baseline": {"receive_ratio_to_bare_min": 0.8, "server_rss_growth_mb_max": 50.0},
}


@dataclass
class Row:
    """One figure of one bench, as it goes into the table."""

    figure: str
    measured: str
    goal: str = ""
    met: bool | None = None
    ratio: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"figure": self.figure, "measured": self.measured, "goal": self.goal,
                "met": self.met, "ratio": self.ratio}


Extract = Callable[[dict[str, Any], dict[str, float]], list[Row]]


@dataclass
class Bench:
    name: str
    script: str
    args: list[str]
    json: Path
    timeout_s: int
    extract: Extract
    what: str
    notes: str = ""
    env: dict[str, str] = field(default_factory=dict)

    def argv(self) -> list[str]:
        return [str(PYTHON if PYTHON.exists() else Path(sys.executable)),
                str(BENCH / self.script), *self.args]

    def command(self) -> str:
        return " ".join(["bench/" + self.script, *map(shlex.quote, self.args)])


# --- figures out of each bench's JSON -------------------------------------------------------


def _ms(x: float) -> str:
    return f"{x:.1f} ms"


def _s(x: float) -> str:
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


def _x(x: float) -> str:
    return f"{x:.2f} ×"


def from_backup(j: dict[str, Any], g: dict[str, float]) -> list[Row]:
    goal = j.get("goals", g)["tar_over_backup_min"]
    mb = j["lab"]["storage_bytes"] / 1e6
    m = j["median_s"]
    return [
        Row(f"`tar -cf` of the storage ({mb:.0f} MB), median of {j['rounds']}",
            f"{_s(m['tar'])} = {mb / m['tar']:.0f} MB/s", ratio="baseline"),
        Row("`tar -cf` + `sync`", _s(m["tar+sync"])),
        Row("`printcore backup` of the same storage", f"{_s(m['backup'])} = "
            f"{mb / m['backup']:.0f} MB/s", f"tar / backup ≥ {goal}",
            j["tar_over_backup"] >= goal, f"tar / backup = {j['tar_over_backup']:.2f}"),
    ]


def from_bambu(j: dict[str, Any], g: dict[str, float]) -> list[Row]:
    rows = []
    by_sink = {r["sink"]: r for r in j["results"]}
    base = by_sink.get("recording")
    for sink, r in by_sink.items():
        ratio = ("baseline (no queue)" if sink == "recording" else
                 f"p99 {r['p99_ms'] / base['p99_ms']:.1f} × recording" if base else "")
        rows.append(Row(f"report → {sink} sink, {r['printers']} printers × {r['seconds']} s "
                        f"({r['matched']} reports, {r['missing']} missing)",
                        f"p50 {_ms(r['p50_ms'])}, p95 {_ms(r['p95_ms'])}, p99 "
                        f"{_ms(r['p99_ms'])}; watcher CPU {r['cpu_ms_per_report']:.2f} ms/report",
                        f"p99 < {g['p99_ms_max']:.0f} ms, none missing",
                        r["p99_ms"] < g["p99_ms_max"] and r["missing"] == 0, ratio))
    return rows


def from_cli(j: dict[str, Any], g: dict[str, float]) -> list[Row]:
    rows = []
    for r in j["rows"]:
        is_base = r["command"].startswith("python3 -c pass")
        goal = met = None
        if r["command"].startswith("printcore queue status"):
            goal = f"≤ {g['queue_status_ratio_to_pass_max']:.0f} × `python3 -c pass`"
            met = r["ratio"] <= g["queue_status_ratio_to_pass_max"]
        rows.append(Row(f"`{r['command']}`, median of {j['rounds']}",
                        f"{_ms(r['median_ms'])} (min {_ms(r['min_ms'])})", goal or "", met,
                        "baseline" if is_base else f"{r['ratio']:.1f} × python3 -c pass"))
    return rows


def from_live(j: dict[str, Any], g: dict[str, float]) -> list[Row]:
    goals = j.get("goals", g)
    rows = []
    for kind, run in j["runs"].items():
        pc, base = run["printcore"], run["baseline"]
        s, b = pc["all_streams_from_start"], base["all_streams_from_start"]
        rows.append(Row(f"{kind}: bare SSE endpoint, all {pc['streams']} streams have the "
                        f"change (from request start)",
                        f"median {_ms(1000 * b['median_s'])}, p99 {_ms(1000 * b['p99_s'])}",
                        ratio="baseline"))
        met = (bool(s) and pc["incomplete_changes"] == 0
               and s["median_s"] < goals["all_streams_median_s"]
               and s["p99_s"] < goals["all_streams_p99_s"])
        rows.append(Row(f"{kind}: printcore, all {pc['streams']} streams have the change "
                        f"({pc['changes']} changes, {pc['incomplete_changes']} incomplete)",
                        f"median {_ms(1000 * s['median_s'])}, p99 {_ms(1000 * s['p99_s'])}",
                        f"median < {1000 * goals['all_streams_median_s']:.0f} ms, p99 < "
                        f"{goals['all_streams_p99_s']:.0f} s, none incomplete", met,
                        f"{s['median_s'] / b['median_s']:.1f} × / {s['p99_s'] / b['p99_s']:.1f} ×"
                        " baseline (median / p99)"))
    return rows


def from_opener(j: dict[str, Any], g: dict[str, float]) -> list[Row]:
    rows = []
    base = next((r for r in j["rows"] if r["name"].startswith("baseline: python")), None)
    for r in j["rows"]:
        goal = g.get(r["name"])
        name = r["name"] + (f" ({r['how']})" if "how" in r else "")
        ratio = ("baseline" if r["name"].startswith("baseline")
                 else f"{r['median'] / base['median']:.1f} × python -c pass + slicer"
                 if base else "")
        rows.append(Row(f"opener: {name}, median of {len(r['launched'])}",
                        f"{_s(r['median'])} (p90 {_s(r['p90'])})",
                        f"< {goal} s" if goal else "", None if goal is None
                        else r["median"] < goal, ratio))
    return rows


def from_outbox(j: dict[str, Any], g: dict[str, float]) -> list[Row]:
    goals = j.get("goals", g)
    base = j["baseline_smtplib"]
    rows = [Row(f"bare smtplib loop, one connection, {base['rows']} messages",
                f"{base['msg_per_s']:.0f} msg/s", ratio="baseline")]
    for r in j["throughput"]:
        rows.append(Row(f"outbox → Redis → worker --threads {r['threads']}, hand-over by "
                        f"{r['hand_over']} ({r['rows']} rows, {r['duplicates']} duplicates)",
                        f"{r['msg_per_s']:.0f} msg/s",
                        f"≥ {goals['throughput_msg_per_s_min']:.0f} msg/s, 0 duplicates",
                        r["msg_per_s"] >= goals["throughput_msg_per_s_min"]
                        and r["duplicates"] == 0, f"{r['ratio_to_baseline']:.2f} × smtplib"))
    lat = j["idle_latency"]["from_commit"]
    rows.append(Row(f"idle latency, commit → accepted by SMTP ({j['idle_latency']['changes']} "
                    "changes)", f"median {_ms(1000 * lat['median_s'])}, p90 "
                    f"{_ms(1000 * lat['p90_s'])}",
                    f"median < {goals['idle_latency_median_s_max']:.0f} s",
                    lat["median_s"] < goals["idle_latency_median_s_max"]))
    return rows


def from_print_requests(j: dict[str, Any], g: dict[str, float]) -> list[Row]:
    goals = j.get("goals", g)
    rows = []
    up = j.get("upload", {})
    if "error" in up:
        rows.append(Row("upload part", "failed: " + up["error"][:200], met=False))
    if "full" in up:
        rows.append(Row(f"`cp` of the {up['file_mb']:.0f} MB STL (page cache), median of "
                        f"{len(up['cp']['runs'])}", f"{up['cp_mb_per_s']:.0f} MB/s",
                        ratio="baseline"))
        for kind in ("receive-only", "full"):
            k = up[kind]
            # Issue 16 replaced this bench's "≥ 0.5 × cp" (a page-cache copy at 2-3 GB/s,
            # no HTTP) with "≥ 0.8 × a bare streaming endpoint": see upload_baseline.
            rows.append(Row(f"upload {kind}, median", f"{_s(k['median_s'])} = "
                            f"{k['mb_per_s']:.0f} MB/s",
                            "was ≥ 0.5 × cp; now upload_baseline's ≥ 0.8 × bare endpoint",
                            None, f"{k['ratio_to_cp']:.2f} × cp"))
            gm = goals["server_rss_growth_mb_max"]
            rows.append(Row(f"web process peak RSS growth, {kind}",
                            f"{k['server_growth_mb_max']:.1f} MB", f"< {gm:.0f} MB",
                            k["server_growth_mb_max"] < gm))
    pg = j.get("pg", {})
    if "error" in pg:
        rows.append(Row("PostgreSQL listings part", "failed: " + pg["error"][:200], met=False))
    for name, s in pg.get("endpoints_ms", {}).items():
        is_base = name == "health"
        goal = goals["listing_p95_ms_max"]
        rows.append(Row(f"`GET {s['path']}`, {pg.get('jobs', 0):,} jobs in PostgreSQL",
                        f"median {_ms(s['median'])}, p95 {_ms(s['p95'])}",
                        "" if is_base else f"p95 < {goal:.0f} ms",
                        None if is_base else s["p95"] < goal,
                        "baseline" if is_base else f"p95 {s['ratio_p95_to_health']:.1f} × health"))
    return rows


def from_queue(j: dict[str, Any], g: dict[str, float]) -> list[Row]:
    member = ("join", "claim", "close", "report_started", "notdone", "cancel",
              "update_time", "status", "status_page (15 shown)", "placement", "myjobs",
              "history", "predict")  # bench_queue.MEMBER_COMMANDS
    goals = j.get("goals", {})
    p99_goals = {int(k): v for k, v in goals.get("command_p99_ms_max", {}).items()} or {
        1000: g["command_p99_ms_max_1000"], 10_000: g["command_p99_ms_max_10000"]}
    rows = []
    for key, v in j.items():
        if not key.startswith("commands_"):
            continue
        cmds = v["commands"]
        base = cmds.get("baseline SELECT 1")
        if base:
            rows.append(Row(f"{v['backend']}, {v['queued']:,} queued: baseline `SELECT 1`",
                            f"p50 {_ms(base['p50_ms'])}, p99 {_ms(base['p99_ms'])}",
                            ratio="baseline"))
        mine = {k: r for k, r in cmds.items() if k in member}
        if not mine:
            continue
        worst = max(mine, key=lambda k: mine[k]["p99_ms"])
        goal = p99_goals.get(v["queued"], 100.0)
        r = mine[worst]
        rows.append(Row(f"{v['backend']}, {v['queued']:,} queued: worst member command p99 "
                        f"(`{worst}`), {len(mine)} commands",
                        f"p50 {_ms(r['p50_ms'])}, p99 {_ms(r['p99_ms'])}",
                        f"p99 < {goal:.0f} ms", r["p99_ms"] < goal,
                        f"p99 {r['p99_vs_baseline']:.0f} × SELECT 1 p50"))
    if "eta" in j:
        eta_goal = goals.get("eta_ms_max", g["eta_ms_max"])
        for when in ("quiet", "under_load"):
            r = j["eta"][when]
            sim = r["simulation"]
            rows.append(Row(f"ETA of {j['eta']['tickets']:,} tickets, {j['eta']['printers']} "
                            f"printers, {when.replace('_', ' ')}",
                            f"p50 {_ms(sim['p50_ms'])}, p95 {_ms(sim['p95_ms'])}",
                            f"p95 < {eta_goal:.0f} ms", sim["p95_ms"] < eta_goal,
                            f"{r['simulation_vs_reference_p50']} × reference p50"))
    sweep_goal = goals.get("sweep_s_max", g["sweep_s_max"])
    for key, runs in j.items():
        if key.startswith("sweep_"):
            for v in runs:
                rows.append(Row(f"sweep, {v['due_deadlines']:,} due, {key[6:]}",
                                f"{_s(v['sweep_s'])} (then {_s(v['second_sweep_s'])} with "
                                "nothing due)", f"< {sweep_goal:.0f} s",
                                v["sweep_s"] < sweep_goal))
    return rows


def _http_rows(http: dict[str, Any], goal: float, what: str) -> list[Row]:
    base_key = next((k for k in http if k.startswith("baseline")), None)
    base = http.get(base_key) if base_key else None
    rows = []
    for k, s in http.items():
        is_base = k == base_key
        rows.append(Row(f"{what}{k}", f"p50 {_ms(s['p50'])}, p95 {_ms(s['p95'])}",
                        "" if is_base else f"p95 < {goal:.0f} ms",
                        None if is_base else s["p95"] < goal,
                        "baseline" if is_base else
                        f"p95 {s['p95'] / base['p95']:.1f} × baseline" if base else ""))
    return rows


def from_reports(j: dict[str, Any], g: dict[str, float]) -> list[Row]:
    rows = _http_rows(j["http_ms"], g["report_p95_ms_max"],
                      f"{j['jobs']:,} jobs, {j['events']:,} events: ")
    xs = j["xlsx_s"]
    rows.append(Row(f"payments export, xlsx of the year ({j['xlsx_bytes']:,} bytes), "
                    f"{len(xs)} runs", f"median {_s(statistics.median(xs))}, max {_s(max(xs))}",
                    f"max < {g['xlsx_s_max']:.0f} s", max(xs) < g["xlsx_s_max"]))
    return rows


def from_search(j: dict[str, Any], g: dict[str, float]) -> list[Row]:
    return _http_rows(j["http_ms"], g["search_p95_ms_max"],
                      f"over HTTP, {j['jobs']:,} jobs: ")


def from_thumbnails(j: dict[str, Any], g: dict[str, float]) -> list[Row]:
    rows = []
    for label, samples in j["samples"].items():
        med = statistics.median(samples)
        rows.append(Row(f"thumbnail: {label} ({len(samples)} runs)",
                        f"median {_s(med)}, max {_s(max(samples))}",
                        f"median < {g['median_s_max']:.0f} s", med < g["median_s_max"]))
    return rows


def from_upload_baseline(j: dict[str, Any], g: dict[str, float]) -> list[Row]:
    goals = j.get("goals", g)
    if "error" in j and "summary" not in j:
        return [Row("upload baseline", "failed: " + j["error"][:300], met=False)]
    s = j["summary"]
    mb = j["file_mb"]
    labels = {
        "bare-raw": "bare Starlette endpoint: body streamed to a file",
        "bare-sha256": "bare endpoint + SHA-256 of each chunk",
        "bare-multipart": "bare endpoint + python-multipart + SHA-256",
        "bare-multipart-thread": "bare endpoint + python-multipart, SHA-256 and writes in a "
                                 "thread (candidate fix)",
        "receive-only": "printcore receive path (POST /api/v1/submissions, refused email)",
        "full": "printcore full submission (receive + inspection + DB + rename)",
    }
    rows = [Row(f"`cp` of the {mb:.0f} MB STL (page cache), median of "
                f"{len(j['cp']['runs'])}", f"{_s(j['cp']['cp_median_s'])} = "
                f"{j['cp_mb_per_s']:.0f} MB/s", ratio="for reference")]
    recv_goal = goals["receive_ratio_to_bare_min"]
    gm = goals["server_rss_growth_mb_max"]
    bare_cpu = s["bare-raw"]["server_cpu_s_median"] or float("nan")
    for kind, v in s.items():
        goal, met = "", None
        if kind == "receive-only":  # on the per-round ratio, as bench_upload_baseline checks
            paired = v.get("paired_ratio_to_bare_raw_median", v["ratio_to_bare_raw"])
            goal, met = f"≥ {recv_goal} × bare (per-round ratio)", paired >= recv_goal
        rows.append(Row(f"{labels.get(kind, kind)}, median of {v['n']}",
                        f"{_s(v['median_s'])} = {v['mb_per_s']:.0f} MB/s (server CPU "
                        f"{v['server_cpu_s_median']:.2f} s)", goal, met,
                        "baseline" if kind == "bare-raw"
                        else f"{v['ratio_to_bare_raw']:.2f} × bare ({v['ratio_to_cp']:.2f} × cp);"
                        + (f" paired per round {v['paired_ratio_to_bare_raw_median']:.2f} ×;"
                           if "paired_ratio_to_bare_raw_median" in v else "")
                        + f" server CPU {v['server_cpu_s_median'] / bare_cpu:.2f} × bare's"))
    for kind in ("bare-raw", "receive-only", "full"):
        if kind in s:
            v = s[kind]
            is_pc = kind != "bare-raw"
            rows.append(Row(f"server peak RSS growth during one {mb:.0f} MB upload: {kind}",
                            f"{v['server_growth_mb_max']:.1f} MB (max of {v['n']})",
                            f"< {gm:.0f} MB" if is_pc else "",
                            v["server_growth_mb_max"] < gm if is_pc else None))
    return rows


def from_load(j: dict[str, Any], g: dict[str, float]) -> list[Row]:
    """The last run of ``bench/load.py`` (it keeps its last 10 in ``runs``)."""
    r = j["runs"][-1]
    goals = r.get("goals", g)
    st = r["settings"]
    subs, mail, rss = r["submissions"], r["mail"], r["rss_mb"]
    dash = r["routes"].get("GET /staff (dashboard)", {})
    queue = r["queue_all_commands"]
    lost = (len(subs["missing"]) + len(subs["file_missing"]) + len(subs["file_wrong_size"])
            + len(mail["sent_without_file"]))
    doubled = (len(subs["doubled"]) + len(subs["in_database_without_2xx"])
               + len(mail["file_more_than_once"]) + len(mail["file_without_sent_row"]))
    transport = sum(sum(v.values()) for v in r["transport_errors"].values())
    who = (f"{st['students']} students (+{st['big']} × 200 MB), {st['staff']} staff desks, "
           f"{st['members']} queue members, {st['duration']:.0f} s")
    return [
        Row(f"load: {who}: HTTP requests", f"{r['http_requests']:,} = "
            f"{r['requests_per_second']:.1f} req/s; {transport} client-side transport errors"),
        Row("load: server errors (5xx)", str(r["server_error_count"]),
            f"{goals['server_errors_max']:.0f}",
            r["server_error_count"] <= goals["server_errors_max"]),
        Row(f"load: dashboard `GET /staff` p95 (n {dash.get('count', 0)})",
            _ms(r["dashboard_p95_ms"]), f"< {goals['dashboard_p95_ms_max']:.0f} ms",
            r["dashboard_p95_ms"] < goals["dashboard_p95_ms_max"]),
        Row(f"load: queue commands p99 (n {queue['count']:,})",
            f"{_ms(queue['p99_ms'])} (p50 {_ms(queue['p50_ms'])})",
            f"< {goals['queue_p99_ms_max']:.0f} ms", queue["p99_ms"] < goals["queue_p99_ms_max"]),
        Row("load: submissions answered 2xx → in the database once, file at its size",
            f"{subs['accepted_2xx']} → {subs['in_database']}; lost {lost}, doubled {doubled}",
            "lost 0, doubled 0", lost == 0 and doubled == 0),
        Row("load: emails (outbox rows sent → `.eml` once by Message-ID)",
            f"{mail['by_status'].get('sent', 0)} of {mail['outbox_rows']} sent → "
            f"{mail['eml_files']} files"),
        Row("load: web process RSS before / max during / after the load",
            f"{rss['before']:.0f} / {rss['load_max']:.0f} / {rss['after_max']:.0f} MB",
            "no growth after the load", r["verdict"]["rss_no_growth_after"]),
    ]


def _fault_rows(summary: dict[str, Any], where: str) -> Row:
    """One row per fault: what went wrong over its runs, against lost 0 / doubled 0."""
    bad_keys = [k for k in ("lost", "doubled", "half_written", "server_errors", "early",
                            "emails_missing", "audit_findings_after_repair") if k in summary]
    bad = {k: summary[k] if isinstance(summary[k], int) else len(summary[k]) for k in bad_keys}
    # Figures that qualify a bad count first (e.g. doubled_in_known_window), then the rest.
    keys = sorted((k for k, v in summary.items()
                   if k not in bad_keys and k not in ("fault", "runs")
                   and isinstance(v, int | float) and not isinstance(v, bool)),
                  key=lambda k: not any(k.startswith(b) for b in bad_keys))
    extra = [f"{k.replace('_', ' ')} {summary[k]}" for k in keys][:7]
    runs = int(summary.get("runs", 0))
    return Row(f"fault `{summary.get('fault', '?')}` × {runs} ({where})",
               ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in bad.items())
               + (f"; {', '.join(extra)}" if extra else ""),
               "≥ 20 runs; " + ", ".join(f"{k.replace('_', ' ')} 0" for k in bad_keys),
               runs >= 20 and not any(bad.values()))


def _summaries(j: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-fault summaries of a fault bench's JSON: ``results`` (bench/faults.py) or
    ``summary`` (one summary, a list of them, or a dict of them by fault)."""
    if "results" in j:
        return list(j["results"])
    s = j["summary"]
    if isinstance(s, list):
        return s
    if "fault" in s or "runs" in s:
        return [s]
    return [dict(v, fault=v.get("fault", k)) for k, v in s.items() if isinstance(v, dict)]


def from_faults(j: dict[str, Any], g: dict[str, float]) -> list[Row]:
    where = j.get("command", "").split(" ")[0] or "fault bench"
    return [_fault_rows(s, where) for s in _summaries(j)]


BENCHES: list[Bench] = [
    Bench("upload_baseline", "bench_upload_baseline.py", [],
          RESULTS / "upload_baseline.json", 600, from_upload_baseline,
          "upload receive path vs a bare Starlette streaming endpoint (issue 16)"),
    Bench("print_requests", "bench_print_requests.py",
          ["--repeats", "2", "--requests", "100", "--warmup", "10", "--max-seconds", "900"],
          RESULTS / "print_requests.json", 960, from_print_requests,
          "uploads vs cp, dashboard and API listings with 10,000 jobs in PostgreSQL"),
    Bench("queue", "bench_queue.py",
          ["--samples", "30", "--eta-repeats", "10"],
          RESULTS / "queue.json", 900, from_queue,
          "self-service queue commands at 1,000 and 10,000 queued, ETA, sweep",
          "quick: 30 rounds instead of 100, 10 ETA repeats instead of 40"),
    Bench("outbox", "bench_outbox.py",
          ["--rows", "1000", "--threads", "8", "1", "--hand-over", "commit", "--changes", "20",
           "--json", "bench/results/outbox.json"],
          RESULTS / "outbox.json", 600, from_outbox,
          "outbox → Redis → one worker → SMTP, against a bare smtplib loop",
          "quick: 1,000 rows, threads 8 and 1, commit hand-over only, 20 idle changes"),
    Bench("live", "bench_live.py", ["--streams", "20", "--changes", "25"],
          RESULTS / "live.json", 600, from_live,
          "live updates: SSE fan-out to 20 staff pages, against a bare SSE endpoint",
          "quick: 25 changes instead of 50"),
    Bench("search", "bench_search.py", ["--reps", "50", "--http-reps", "40"],
          RESULTS / "search.json", 600, from_search,
          "job search over HTTP with 10,000 jobs in PostgreSQL",
          "quick: 50 in-process and 40 HTTP rounds"),
    Bench("reports", "bench_reports.py", ["--reps", "10", "--export-reps", "3"],
          RESULTS / "reports.json", 900, from_reports,
          "reports and payments export, 20,000 jobs and 100,000 events in PostgreSQL",
          "quick: 10 rounds, 3 exports"),
    Bench("thumbnails", "bench_thumbnails.py", ["--runs", "3"],
          RESULTS / "thumbnails.json", 600, from_thumbnails,
          "model thumbnails: Benchy 3MF and a 1 M-face STL"),
    Bench("bambu", "bench_bambu.py", ["--seconds", "15"],
          RESULTS / "bambu.json", 300, from_bambu,
          "Bambu watcher: MQTT report → queue latency, 30 simulated printers",
          "quick: 15 s per sink instead of 30"),
    Bench("backup", "bench_backup.py",
          ["--gb", "0.5", "--rounds", "3", "--json", "bench/results/backup.json"],
          RESULTS / "backup.json", 600, from_backup,
          "`printcore backup` against `tar -cf` of the same storage",
          "quick: 0.5 GB instead of 1 GB"),
    Bench("cli", "bench_cli.py", ["--rounds", "10", "--json", "bench/results/cli.json"],
          RESULTS / "cli.json", 300, from_cli,
          "start-up time of the printcore command against `python3 -c pass`",
          "quick: 10 rounds instead of 20"),
    Bench("opener", "bench_opener.py", ["--runs", "10"],
          RESULTS / "opener.json", 900, from_opener,
          "slicer opener: link → slicer started, script and PyInstaller one-file build",
          "quick: 10 runs instead of 20; the frozen build is made in the run"),
    # Last: the whole system at once, then the faults (faults.py restarts PostgreSQL).
    Bench("load", "load.py",
          ["--students", "200", "--staff", "2", "--members", "50", "--duration", "90",
           "--big", "2", "--grace", "45", "--after", "20"],
          RESULTS / "load.json", 900, from_load,
          "the first week of term: students, staff desks, queue members, worker and sweep "
          "at once on PostgreSQL + Redis (issue 16)",
          "quick: 90 s of load instead of 120"),
    Bench("faults", "faults.py", ["--runs", "20"],
          RESULTS / "faults.json", 900, from_faults,
          "PostgreSQL restarted and the storage disk filled mid-load, 20 times each"),
    Bench("faults_web_kill", "faults_web_kill.py", ["--runs", "20"],
          RESULTS / "faults_web_kill.json", 600, from_faults,
          "the web process SIGKILLed mid-upload and mid-transition, 20 times"),
    Bench("faults_mail", "faults_mail.py", ["--runs", "20"],
          RESULTS / "faults_mail.json", 600, from_faults,
          "the worker and Redis SIGKILLed and restarted: every email once by Message-ID"),
    Bench("faults_sweep", "faults_sweep.py", ["--runs", "20"],
          RESULTS / "faults_sweep.json", 900, from_faults,
          "the sweeper killed between a deadline and its offer; the clock stepped (NTP, DST)"),
]


# --- machine -------------------------------------------------------------------------------


def unlisted() -> list[str]:
    """Benchmarks in bench/ (``bench_*.py``, ``load*.py``, ``faults*.py``) that ``BENCHES``
    does not run (a new bench to add)."""
    known = {b.script for b in BENCHES}
    return sorted(p.name for pattern in ("bench_*.py", "load*.py", "faults*.py")
                  for p in BENCH.glob(pattern) if p.name not in known)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(),
                            "affinity_cpus": len(os.sched_getaffinity(0)),
                            "python": platform.python_version(),
                            "kernel": platform.release(), "platform": platform.platform()}
    try:
        with open("/proc/cpuinfo") as handle:
            models = {ln.split(":", 1)[1].strip() for ln in handle
                      if ln.startswith("model name")}
        info["cpu_model"] = ", ".join(sorted(models))
        with open("/proc/meminfo") as handle:
            for ln in handle:
                if ln.startswith("MemTotal:"):
                    info["mem_total_gb"] = round(int(ln.split()[1]) * 1024 / 1e9, 1)
    except OSError:
        pass
    try:
        info["commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short",
                                         "HEAD"], capture_output=True, text=True,
                                        timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


# --- running -------------------------------------------------------------------------------


def run_bench(bench: Bench) -> dict[str, Any]:
    """Run one bench in its own process group; never raises for the bench's own failure."""
    log_dir = RESULTS / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{bench.name}.log"
    rec: dict[str, Any] = {"name": bench.name, "command": bench.command(),
                           "what": bench.what, "notes": bench.notes,
                           "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                           "loadavg_before": loadavg(), "timeout_s": bench.timeout_s}
    started = time.time()
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **bench.env}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(bench.argv(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
        try:
            rec["exit_code"] = proc.wait(timeout=bench.timeout_s)
        except subprocess.TimeoutExpired:
            rec["timed_out"] = True
            # the bench's own group (its servers, workers): SIGTERM, then SIGKILL
            for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
            rec["exit_code"] = proc.returncode
    rec["wall_s"] = round(time.perf_counter() - t0, 1)
    rec["loadavg_after"] = loadavg()
    text = log_path.read_text(errors="replace")
    rec["output_tail"] = text[-3000:]
    rec["log"] = str(log_path.relative_to(ROOT))
    data: dict[str, Any] | None = None
    if bench.json.exists() and bench.json.stat().st_mtime >= started - 1:
        try:
            data = json.loads(bench.json.read_text())
        except ValueError as err:
            rec["json_error"] = repr(err)
    elif bench.json.exists():
        rec["json_error"] = f"{bench.json.name} is older than this run (not written)"
    else:
        rec["json_error"] = f"{bench.json.name} not written"
    rec["json_path"] = str(bench.json.relative_to(ROOT))
    rec["result"] = data
    extract_rows(bench, rec)
    return rec


def extract_rows(bench: Bench, rec: dict[str, Any]) -> None:
    """``rec["rows"]`` from ``rec["result"]`` (again, with ``--docs-only``)."""
    rows: list[Row] = []
    rec.pop("extract_error", None)
    if rec.get("result") is not None:
        try:
            rows = bench.extract(rec["result"], GOALS.get(bench.name, {}))
        except Exception as err:  # a JSON of another shape: reported, the run goes on
            rec["extract_error"] = f"{type(err).__name__}: {err!r}"
    rec["rows"] = [r.as_dict() for r in rows]
    rec["status"] = status(rec)


def status(rec: dict[str, Any]) -> str:
    """"ok"; "exit N" when the bench wrote this run's figures but exited non-zero (e.g.
    bench_backup exits 1 below its goal; bench_print_requests when one part failed, shown
    as a failed row); "failed" without figures; "timed out"."""
    if rec.get("timed_out"):
        return "timed out"
    if rec.get("result") is None or rec.get("extract_error"):
        return "failed"
    return "ok" if rec.get("exit_code") == 0 else f"exit {rec.get('exit_code')}"


# --- docs ----------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _verdict(met: bool | None) -> str:
    return "" if met is None else "met" if met else "**NOT met**"


def split_paragraph(result: dict[str, Any]) -> list[str]:
    p = result.get("profile")
    if not p or not p.get("split_percent"):
        return []
    pct = p["split_percent"]

    def get(key: str) -> float:
        return sum(v for k, v in pct.items() if k.startswith(key))

    s = result["summary"]
    lines = [
        "",
        f"**Where the receive path's time goes** (`py-spy record --format raw --nonblocking "
        f"--rate {p['rate_hz']}` on the `printcore serve` process during {p['uploads']} "
        f"receive-only uploads of {result['file_mb']:.0f} MB, {p['samples']:,} samples; "
        "each sample counted once, by its innermost frame in a known layer):",
        "",
        "| layer | share of the web process's samples |",
        "|---|---|",
    ]
    for k, v in pct.items():
        lines.append(f"| {_cell(k)} | {v:.1f} % |")
    recv, bare = s["receive-only"], s["bare-raw"]
    sha = s.get("bare-sha256")
    mp = s.get("bare-multipart")
    lines += [
        "",
        f"The four parts the issue names: HTTP parsing {get('HTTP parsing'):.1f} %, multipart "
        f"parsing {get('multipart'):.1f} %, hashing {get('hashing'):.1f} %, writing "
        f"{get('writing'):.1f} %; the rest is the socket reads (`sock.recv`, the kernel's "
        f"copy out of loopback, {get('socket reads'):.1f} %), the event loop "
        f"({get('event loop'):.1f} %), and opening/closing/removing the staged file "
        f"({get('staging'):.1f} %). The bare endpoint pays the socket reads, the event loop "
        f"and the writes too; what the real path adds is mostly SHA-256, then "
        f"python-multipart, which puts it at {recv['ratio_to_bare_raw']:.2f} × the bare "
        f"endpoint (per-round ratio {recv.get('paired_ratio_to_bare_raw_median', 0):.2f} ×; "
        f"server CPU {recv['server_cpu_s_median']:.2f} s vs "
        f"{bare['server_cpu_s_median']:.2f} s per upload)"
        + (f"; by subtraction, SHA-256 alone costs the bare endpoint "
           f"{sha['ratio_to_bare_raw']:.2f} × and python-multipart + SHA-256 "
           f"{mp['ratio_to_bare_raw']:.2f} ×" if sha and mp else "")
        + ". On this shared machine one request's time varies by up to 2-3 × between "
        "rounds (see `seconds` per kind in the JSON), so the wall-time ratios move from run "
        "to run; the server's CPU seconds per upload move much less.",
    ]
    th = s.get("bare-multipart-thread")
    if th and mp:
        lines += ["", f"Moving SHA-256 and the writes into a thread per upload (bounded queue "
                  f"of 16 chunks; hashlib and file writes release the GIL) took the bare "
                  f"multipart endpoint from {mp['ratio_to_bare_raw']:.2f} × to "
                  f"{th['ratio_to_bare_raw']:.2f} × bare (per-round "
                  f"{mp['paired_ratio_to_bare_raw_median']:.2f} → "
                  f"{th['paired_ratio_to_bare_raw_median']:.2f} ×) for "
                  f"{th['server_growth_mb_max'] - mp['server_growth_mb_max']:.1f} MB more peak "
                  "memory: the figure for the same change in `StagedUpload` (not made here). "
                  "In every run so far the bare hashing routes cost more server CPU than "
                  f"printcore's own path doing the same work ({mp['server_cpu_s_median']:.2f} s "
                  f"vs {recv['server_cpu_s_median']:.2f} s here), which is not explained yet; "
                  "the in-process split below does not depend on it."]
    sp = result.get("in_process_split")
    if sp:
        med = sp["cpu_s_median"]
        whole = med["printcore receive_form (all of it, incl. unlink)"]
        lines += [
            "",
            f"The same parts without HTTP, in the bench's own process (CPU time, median of "
            f"{sp['repeats']}; the same {sp['body_bytes'] / 1e6:.0f} MB multipart body fed in "
            f"{sp['chunk_bytes'] // 1024} KiB chunks to each part alone and to printcore's "
            "`receive_form`):",
            "",
            "| part | CPU s | share of `receive_form` |",
            "|---|---|---|",
        ]
        for k, v in med.items():
            share = sp["percent_of_receive_form"].get(k)
            lines.append(f"| {_cell(k)} | {v:.3f} s | "
                         f"{'' if share is None else f'{share:.1f} %'} |")
        rest = sp["collector_and_rest_s"]
        lines.append("| collector, `asyncio.run` and the rest (by difference) | "
                     + (f"{rest:.3f} s | {100 * rest / whole:.1f} % |" if rest > 0 else
                        f"{rest:.3f} s | below the noise of the parts |"))
        lines += ["", f"So `receive_form` costs {whole:.2f} s of CPU per "
                  f"{result['file_mb']:.0f} MB before any HTTP; the bare endpoint's whole "
                  f"server CPU per upload is {bare['server_cpu_s_median']:.2f} s."]
    return lines


def render(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        BEGIN,
        "<!-- generated by bench/run_all.py from bench/results/run_all.json: edit the "
        "script, not this section -->",
        "",
        "## All benchmarks in one run (`bench/run_all.py`)",
        "",
        f"Last full run: {doc.get('started_at', '?')} → {doc.get('finished_at', '?')} UTC "
        f"(wall {doc.get('wall_s', 0) / 60:.1f} min), commit `{m.get('commit', '?')}`, "
        f"`{doc.get('command', 'bench/run_all.py')}`. Machine: {m.get('cpu_model', '?')}, "
        f"{m.get('nproc')} CPUs, {m.get('mem_total_gb', '?')} GB RAM, Python {m.get('python')}, "
        f"Linux {m.get('kernel')}; load average at start {m.get('loadavg_start')}, at end "
        f"{m.get('loadavg_end')} (other work shares these cores: compare ratios, not "
        "absolute times). Each bench ran with the quick arguments shown; its raw figures "
        "are in `bench/results/<name>.json`, its output in `bench/results/logs/<name>.log`.",
        "",
        "| bench | status | wall | load before → after | what |",
        "|---|---|---|---|---|",
    ]
    for rec in doc["benches"]:
        lines.append(f"| [{rec['name']}](#run-all-{rec['name']}) | {rec['status']} | "
                     f"{rec['wall_s']:.0f} s | {rec['loadavg_before'][0]} → "
                     f"{rec['loadavg_after'][0]} | {_cell(rec['what'])} |")
    for rec in doc["benches"]:
        lines += ["", f'<a id="run-all-{rec["name"]}"></a>',
                  f"### {rec['name']}: `{_cell(rec['command'])}`", ""]
        extra = f" {rec['notes']}." if rec.get("notes") else ""
        lines.append(f"{rec['what'][0].upper() + rec['what'][1:]}. Ran "
                     f"{rec['started_at']} UTC, {rec['wall_s']:.0f} s, load average "
                     f"{rec['loadavg_before']} → {rec['loadavg_after']}.{extra}")
        lines.append("")
        if rec["status"] in ("failed", "timed out"):
            why = (f"timed out after {rec['timeout_s']} s" if rec.get("timed_out")
                   else f"exit code {rec.get('exit_code')}")
            problems = "; ".join(x for x in (rec.get("json_error"), rec.get("extract_error"))
                                 if x)
            lines += [f"**Failed** ({why}{'; ' + problems if problems else ''}). "
                      "Last lines of its output:", "", "```",
                      *rec["output_tail"].rstrip().splitlines()[-15:], "```", ""]
        if rec["rows"]:
            lines += ["| figure | measured | goal | met | ratio to baseline (same run) |",
                      "|---|---|---|---|---|"]
            for r in rec["rows"]:
                lines.append(f"| {_cell(r['figure'])} | {_cell(r['measured'])} | "
                             f"{_cell(r['goal'])} | {_verdict(r['met'])} | "
                             f"{_cell(r['ratio'])} |")
        if rec["name"] == "upload_baseline" and rec.get("result"):
            lines += split_paragraph(rec["result"])
    if doc.get("unlisted"):
        lines += ["", "Not run (in bench/ but not yet in `run_all.BENCHES`): "
                  + ", ".join(f"`{n}`" for n in doc["unlisted"]) + "."]
    lines += ["", END]
    return "\n".join(lines)


HOW_TO_RUN_LINE = (".venv/bin/python bench/run_all.py                  # every bench, "
                   "quick settings (~10-15 min); rewrites the section above")


def update_docs(doc: dict[str, Any]) -> None:
    """Replace the generated section (or insert it before "## How to run"), and name
    run_all in "## How to run" once."""
    text = DOCS.read_text()
    section = render(doc)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = head + section + tail
    else:
        marker = "\n## How to run\n"
        if marker not in text:
            raise SystemExit(f"{DOCS}: no '## How to run' heading to put the section before")
        text = text.replace(marker, "\n" + section + "\n" + marker, 1)
    if "bench/run_all.py  " not in text.split("## How to run", 1)[1].split("\n## ", 1)[0]:
        text = text.replace("## How to run\n\n```sh\n",
                            "## How to run\n\n```sh\n" + HOW_TO_RUN_LINE + "\n", 1)
    DOCS.write_text(text)


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", metavar="NAME",
                        help="run only this bench (repeatable); others keep their last figures")
    parser.add_argument("--list", action="store_true", help="list the benches and stop")
    parser.add_argument("--dry-run", action="store_true", help="print what would run")
    parser.add_argument("--no-docs", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--docs-only", action="store_true",
                        help="regenerate the docs section from bench/results/run_all.json")
    args = parser.parse_args(argv)
    names = [b.name for b in BENCHES]
    for name in args.only or []:
        if name not in names:
            parser.error(f"unknown bench {name!r}; one of: {', '.join(names)}")
    chosen = [b for b in BENCHES if not args.only or b.name in args.only]
    if unlisted():
        print(f"not in run_all.BENCHES (not run): {', '.join(unlisted())}", file=sys.stderr)
    if args.list or args.dry_run:
        for b in chosen:
            print(f"{b.name:16} {b.command()}" if args.dry_run else
                  f"{b.name:16} {b.what} (limit {b.timeout_s} s){'; ' + b.notes if b.notes else ''}")
            if args.dry_run:
                print(f"{'':16}   → {b.json.relative_to(ROOT)}, limit {b.timeout_s} s")
        if args.dry_run:
            print(f"then: {RUN_ALL_JSON.relative_to(ROOT)}"
                  + ("" if args.no_docs else f", {DOCS.relative_to(ROOT)} section"))
        return 0
    if args.docs_only:
        doc = json.loads(RUN_ALL_JSON.read_text())
        by_name = {b.name: b for b in BENCHES}
        for rec in doc["benches"]:
            if rec["name"] in by_name:
                extract_rows(by_name[rec["name"]], rec)
        RUN_ALL_JSON.write_text(json.dumps(doc, indent=1, default=str) + "\n")
        update_docs(doc)
        print(f"{DOCS.relative_to(ROOT)} regenerated from {RUN_ALL_JSON.relative_to(ROOT)}")
        return 0

    RESULTS.mkdir(parents=True, exist_ok=True)
    previous: dict[str, Any] = {}
    if args.only and RUN_ALL_JSON.exists():
        previous = json.loads(RUN_ALL_JSON.read_text())
    doc: dict[str, Any] = {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["bench/run_all.py", *(argv if argv is not None else sys.argv[1:])]),
        "machine": {**machine(), "loadavg_start": loadavg()},
        "goals": GOALS,
    }
    t0 = time.perf_counter()
    records = []
    for bench in chosen:
        print(f"[{time.strftime('%H:%M:%S')}] {bench.name}: {bench.command()}", flush=True)
        rec = run_bench(bench)
        records.append(rec)
        failed = sum(1 for r in rec["rows"] if r["met"] is False)
        print(f"[{time.strftime('%H:%M:%S')}]   {rec['status']} in {rec['wall_s']} s, "
              f"{len(rec['rows'])} figures, {failed} goal(s) not met; load "
              f"{rec['loadavg_before']} → {rec['loadavg_after']}", flush=True)
        if rec["status"] in ("failed", "timed out"):
            print("    " + "\n    ".join(rec["output_tail"].rstrip().splitlines()[-8:]))
    doc["wall_s"] = round(time.perf_counter() - t0, 1)
    doc["unlisted"] = unlisted()
    doc["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    doc["machine"]["loadavg_end"] = loadavg()
    if previous:  # --only: keep the other benches' last records, in BENCHES order
        kept = {r["name"]: r for r in previous.get("benches", [])}
        kept.update({r["name"]: r for r in records})
        records = [kept[n] for n in names if n in kept]
        doc = {**previous, "benches": records, "unlisted": unlisted(),
               "partial_runs": [*previous.get("partial_runs", []),
                                {"at": doc["started_at"], "only": args.only,
                                 "wall_s": doc["wall_s"]}]}
    else:
        doc["benches"] = records
    RUN_ALL_JSON.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(f"wall {doc.get('wall_s', 0):.0f} s; {RUN_ALL_JSON.relative_to(ROOT)} written")
    if not args.no_docs:
        update_docs(doc)
        print(f"{DOCS.relative_to(ROOT)} section regenerated")
    return 0 if all(r["status"] not in ("failed", "timed out") for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
