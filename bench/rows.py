"""The scenarios' figures as table rows (scenario, metric, value, target, ok?)."""

from __future__ import annotations

from typing import Any

from report import Row, fmt

CAPACITY_TARGET = 20_000  # results/s the master must sustain
SCALE_RSS_TARGET = 300  # MB, master with 10M URLs
WORKER_RSS_TARGET = 150  # MB, one worker at 32 threads
NO_SLOWDOWN = 0.8  # last-10% rate / first-10% rate
PROBE_MARGIN = 4  # the delay server must serve this many times the needed rate
IMG2DATASET_TARGET = 2.0  # the crawler's throughput over img2dataset's, at least
LATENCY_TARGETS = {"1000": ">= 0.9", "4000": ">= 0.95"}  # achieved / Little's-law limit
FIRST_ROW_TARGET = 0.3  # s, launch -> first row (issue 15, "no fixed overhead")
FIXED_RATIO_TARGET = 1.3  # crawler wall / baseline-verify wall on the fixed-cost list


def build_rows(s: dict[str, Any]) -> list[Row]:
    """Every scenario's rows, in a fixed order; one 'skipped' row for those not run."""
    rows = corpus_rows(s["corpus"]) + server_rows(s["server"])
    names = s.get("contenders") or [
        "crawler",
        "baseline",
        "baseline-draft",
        "baseline-verify",
        "wget",
    ]
    for name in names:
        rows += download_rows(name, s.get(name, {"status": "skipped (--only)"}))
    if "crawler" in s:
        rows += ratio_rows(s, names)
    makers = {"latency": latency_rows, "fixed": fixed_rows, "capacity": capacity_rows}
    makers["scale"] = scale_rows
    makers["worker-rss"] = worker_rows
    for name, make in makers.items():
        rows += make(s[name]) if name in s else [Row(name, "status", "skipped (--only)")]
    return rows


def _pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def corpus_rows(c: dict[str, Any]) -> list[Row]:
    made = "cached" if c["generated_s"] is None else f"{c['generated_s']:.1f} s"
    mix = ", ".join(f"{k} {v}" for k, v in c["mix"].items())
    return [
        Row("corpus", "images", c["images"]),
        Row("corpus", "MB", c["megabytes"]),
        Row("corpus", "mix", mix),
        Row("corpus", "generated", made),
    ]


def server_rows(s: dict[str, Any]) -> list[Row]:
    return [Row("server", "static files served by", s["name"], "nginx", s["fallback"] is None)]


def download_rows(name: str, d: dict[str, Any]) -> list[Row]:
    if "wall_s" not in d:
        return [Row(name, "status", d.get("status", "not run"))]
    valid = "exit 0, N ok rows" if name.startswith("crawler") else "exit 0, all fetched"
    rows = [
        Row(name, "wall s (median)", d["wall_s"]),
        Row(name, "wall spread % (max-min)/median", _pct(d.get("wall_s_spread"))),
        Row(name, "images/s (median)", d["images_per_s"]),
        Row(name, "images/s spread %", _pct(d.get("images_per_s_spread"))),
        Row(name, "MB/s (median)", d["mb_per_s"]),
        Row(name, "CPU ms/image (all its processes)", d.get("cpu_ms_per_image")),
    ]
    if d.get("steady_images_per_s") is not None:
        rows.append(Row(name, "images/s steady (rows 10%-90%)", d["steady_images_per_s"]))
    if d.get("startup_s") is not None:
        rows.append(Row(name, "s launch -> 'serving run' (median)", d["startup_s"]))
        rows.append(Row(name, "s launch -> first row (median)", d.get("first_row_s")))
        rows.append(Row(name, "s last row -> exit (median)", d.get("teardown_s")))
    rows.append(Row(name, "runs valid", f"{d['rounds']} of {d['rounds']}" if d["valid"]
                    else d.get("note", "no"), valid, d["valid"]))  # fmt: skip
    return rows


def ratio_rows(s: dict[str, Any], names: list[str]) -> list[Row]:
    """Every contender's median wall time over the crawler's: > 1, the crawler is faster.
    The targets: >= 2 x img2dataset's throughput, <= 1.0 x the like-for-like baseline."""
    crawler = s["crawler"].get("wall_s")
    rows = []
    for other in names:
        theirs = s[other].get("wall_s")
        if not crawler or not theirs or other == "crawler":
            continue
        ratio = theirs / crawler
        target, ok = "", None
        if other == "img2dataset":
            target, ok = ">= 2", ratio >= IMG2DATASET_TARGET
        elif other == "baseline-verify":  # like for like: the crawler's own verification
            target, ok = ">= 1.0", ratio >= 1.0
        rows.append(Row("vs crawler", f"{other} wall / crawler wall", ratio, target, ok))
    return rows


def latency_rows(d: dict[str, Any]) -> list[Row]:
    """Per list size, the crawler and the baseline against Little's law's limit."""
    sizes = [k for k in d if k.isdigit()]
    limit = d[sizes[0]]["limit_images_per_s"] if sizes else 0.0
    served = d["delay_server_requests_per_s"]
    rows = [
        Row("latency", "delay server requests/s (256 clients)", served,
            f">= {PROBE_MARGIN} x {limit:.0f}", served >= PROBE_MARGIN * limit),
        Row("latency", f"Little's-law limit images/s ({d['in_flight']} / {d['latency_s']} s)",
            limit),
    ]  # fmt: skip
    for size in sizes:
        for name in [k for k in d[size] if k != "limit_images_per_s"]:
            r = d[size][name]
            target = LATENCY_TARGETS.get(size, "") if name == "crawler" else ""
            ok = r["achieved_over_limit"] >= float(target[3:]) if target else None
            rows.append(Row(f"latency {size}", f"{name}: achieved/limit end to end",
                            r["achieved_over_limit"], target, ok))  # fmt: skip
            rows.append(Row(f"latency {size}", f"{name}: achieved/limit steady (10%-90%)",
                            r.get("steady_over_limit")))  # fmt: skip
            if name.startswith("crawler"):
                rows.append(Row(f"latency {size}", f"{name}: s launch -> first row",
                                r.get("first_row_s")))  # fmt: skip
                rows.append(Row(f"latency {size}", f"{name}: s last row -> exit",
                                r.get("teardown_s")))  # fmt: skip
            rows.append(Row(f"latency {size}", f"{name}: run valid",
                            "yes" if r["valid"] else r.get("note"), "yes", r["valid"]))  # fmt: skip
    return rows


def fixed_rows(d: dict[str, Any]) -> list[Row]:
    """Per crawler: start-up, first row, end, rerun; every wall over the baseline's."""
    base, draft = d.get("baseline-verify", {}), d.get("baseline-draft", {})
    rows = [Row("fixed", "URLs (corpus mix) / rounds", f"{d['urls']} / {d['rounds']}"),
            Row("fixed", "baseline-draft: wall s (median)", draft.get("wall_s")),
            Row("fixed", "baseline-verify: wall s (median)", base.get("wall_s"))]  # fmt: skip
    for name in [k for k in d if k.startswith("crawler")]:
        r = d[name]
        first = r.get("first_row_s")
        rows += [
            Row("fixed", f"{name}: s launch -> 'serving run'", r.get("startup_s")),
            Row("fixed", f"{name}: s launch -> first row", first, f"<= {FIRST_ROW_TARGET}",
                first is not None and first <= FIRST_ROW_TARGET),
            Row("fixed", f"{name}: s last row -> exit", r.get("teardown_s")),
            Row("fixed", f"{name}: wall s (median)", r.get("wall_s")),
            Row("fixed", f"{name}: wall s, rerun with nothing to do", r.get("rerun_wall_s")),
        ]  # fmt: skip
        if r.get("wall_s") and base.get("wall_s"):
            ratio = r["wall_s"] / base["wall_s"]
            rows.append(Row("fixed", f"{name} wall / baseline-verify wall", ratio,
                            f"<= {FIXED_RATIO_TARGET}", ratio <= FIXED_RATIO_TARGET))  # fmt: skip
        valid = r.get("valid") and base.get("valid")
        rows.append(Row("fixed", f"{name}: runs valid", "yes" if valid else
                        r.get("note") or base.get("note") or "no", "yes", bool(valid)))  # fmt: skip
    return rows


def capacity_rows(d: dict[str, Any]) -> list[Row]:
    rate = d.get("results_per_s")
    return [
        Row("capacity", "status", d["status"] if d["status"] == "completed"
            else f"{d['status']}: {d.get('note')}"),
        Row("capacity", "URLs / simulated workers", f"{d['urls']:,} / {d['sim_workers']}"),
        Row("capacity", "results/s (first get -> master exit)", rate,
            f">= {CAPACITY_TARGET:,}", rate is not None and rate >= CAPACITY_TARGET),
        Row("capacity", "results/s (first get -> last row)", d.get("results_per_s_to_last_row")),
        Row("capacity", "journal lag s (last put -> last row)", d.get("journal_lag_s")),
        Row("capacity", "s last row -> exit (compaction, summary)", d.get("tail_s")),
        Row("capacity", "master CPU s", d["master_cpu_s"]),
        Row("capacity", "master CPU us/result", d.get("cpu_us_per_result")),
        Row("capacity", "master start-up s", d.get("startup_s")),
        Row("capacity", "master peak RSS MB", d["peak_rss_mb"]),
        *_small_batch_rows(d),
    ]  # fmt: skip


def _small_batch_rows(d: dict[str, Any]) -> list[Row]:
    """The same load in calls of a few tasks, as real workers make them, and what one
    call (a get and a put) costs the master beyond its results."""
    small = d.get("small_batches")
    if not small:
        return []
    big_us, small_us = d.get("cpu_us_per_result"), small.get("cpu_us_per_result")
    per_call = None
    if big_us and small_us:  # the same URLs: the difference is the calls
        per_call = (small_us - big_us) / (1 / small["batch"] - 1 / d["batch"])
    return [
        Row("capacity", f"{small['batch']} tasks a call: results/s", small.get("results_per_s")),
        Row("capacity", f"{small['batch']} tasks a call: master CPU us/result", small_us),
        Row("capacity", "master CPU us per call (a get and a put)", per_call),
    ]


def scale_rows(d: dict[str, Any]) -> list[Row]:
    if "urls" not in d:
        return [Row("scale", "status", d["status"])]
    rss = d["peak_rss_mb"]
    ratio = d.get("rows_last_over_first")
    status = d["status"] if d["status"] == "completed" else f"{d['status']}: {d.get('note')}"
    return [
        Row("scale", "status", status, "completed", d["status"] == "completed"),
        Row("scale", "URLs / rows journaled", f"{d['urls']:,} / {d['rows']:,}"),
        Row("scale", "master peak RSS MB", rss, f"< {SCALE_RSS_TARGET}", rss < SCALE_RSS_TARGET),
        Row("scale", "master RSS MB once serving", d.get("rss_serving_mb")),
        Row("scale", "master RSS MB at last row (pre-compaction)", d.get("rss_last_row_mb")),
        Row("scale", "s after launch: last row / RSS peak",
            f"{fmt(d.get('last_row_at_s'))} / {fmt(d.get('rss_peak_at_s'))}"),
        Row("scale", "master start-up s (to 'serving run')", d.get("startup_s")),
        Row("scale", "master total s", d["total_s"]),
        Row("scale", "master CPU s", d["master_cpu_s"]),
        Row("scale", "results/s (first get -> master exit)", d.get("results_per_s")),
        Row("scale", "journal lag s (last put -> last row)", d.get("journal_lag_s")),
        Row("scale", "s last row -> exit (compaction, summary)", d.get("tail_s")),
        Row("scale", "rows journaled/s, first 10%", d.get("rows_first10_per_s")),
        Row("scale", "rows journaled/s, last 10%", d.get("rows_last10_per_s")),
        Row("scale", "rows: last 10% / first 10%", ratio, f">= {NO_SLOWDOWN}",
            ratio is not None and ratio >= NO_SLOWDOWN),
        Row("scale", "results accepted/s, first 10% (puts)", d.get("puts_first10_per_s")),
        Row("scale", "results accepted/s, last 10% (puts)", d.get("puts_last10_per_s")),
    ]  # fmt: skip


def worker_rows(d: dict[str, Any]) -> list[Row]:
    hwm = d.get("hwm_mb_32_threads")
    return [
        Row("worker-rss", "peak RSS MB, 1 worker x 32 threads", hwm, f"< {WORKER_RSS_TARGET}",
            hwm is not None and hwm < WORKER_RSS_TARGET),
        Row("worker-rss", "peak RSS MB, 2 workers x 16 threads (run a)",
            d.get("hwm_mb_16_threads")),
        Row("worker-rss", "images/s, 1 worker x 32 threads", d.get("images_per_s_1x32")),
    ]  # fmt: skip
