"""The results of one `make bench` run as JSON, a Markdown table and a PNG plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

SECTIONS = ("kafka_limit", "consumer", "relay", "end_to_end", "matching")


def _fmt(v: Any, digits: int = 0) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "met" if v else "**not met**"
    if isinstance(v, float | int):
        return f"{v:,.{digits}f}"
    return str(v)


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# Pearls benchmarks — {m['date']}",
        "",
        f"Machine: {m['cpus']} CPUs, Python {m['python']}; load average (1/5/15 min) at the"
        f" start {m['loadavg_1_5_15']}, at the end {results['machine_end']['loadavg_1_5_15']}."
        f" Mode: {'quick (smoke sizes, numbers not meaningful)' if results['quick'] else 'full'}."
        f" {results.get('note', '')}",
        "",
        "| # | What | Measured | Reference / ratio | Target | |",
        "|---|---|---|---|---|---|",
    ]
    k = results.get("kafka_limit")
    c = results.get("consumer")
    if k:
        lines.append(
            f"| 1 | Raw producer (acks=all, idempotent, linger 5 ms), {k['record_bytes_avg']} B"
            f" records | {_fmt(k['produce_msgs_per_s'])} msg/s | the limit | | |"
        )
        lines.append(
            f"| 1 | Raw consume-and-commit loop | {_fmt(k['consume_commit_msgs_per_s'])} msg/s"
            " | the limit | | |"
        )
        lines.append(
            f"| 1 | Raw consume, one offset commit per record (what per-message consumers pay) |"
            f" {_fmt(k['consume_commit_each_msgs_per_s'])} msg/s | | | |"
        )
    if c:
        for key, label in (
            ("per_message", "per-message transactions (default)"),
            ("batched", f"batched, up to {c['batched']['batch_size']} per transaction"),
            ("batched_many", "batched, and the handler writes each run in one INSERT"),
        ):
            r = c.get(key)
            if r is None:  # results from before that variant
                continue
            target = "≥ 0.5 of (1)" if key != "per_message" else ""
            met = "" if key == "per_message" else _fmt(r["ratio_to_raw_consume"] >= 0.5)
            lines.append(
                f"| 2 | Pearls consumer, inbox + 1 DB effect, {label} | {_fmt(r['msgs_per_s'])}"
                f" msg/s | {r['ratio_to_raw_consume']:.3f} x raw consume | {target} | {met} |"
            )
    r = results.get("relay")
    if r:
        lag = r["lag"]
        lines.append(
            f"| 3 | Outbox relay, commit → acknowledged publish | {_fmt(r['rows_per_s'])} rows/s"
            f" | {r['ratio']:.2f} x bare producer ({_fmt(r['baseline_msgs_per_s'])}/s) |"
            f" ≥ {r['target_rows_per_s']:,} rows/s | {_fmt(r['target_met'])} |"
        )
        lines.append(
            f"| 3 | Relay lag at {_fmt(lag['offered_rows_per_s'])} rows/s offered | p50"
            f" {_fmt(lag['p50_ms'], 1)} ms, p99 {_fmt(lag['p99_ms'], 1)} ms | | | |"
        )
    e = results.get("end_to_end")
    if e:
        h = e["half_load"]
        lines.append(
            f"| 4 | End to end: submission → receipt e-mail, saturating rate |"
            f" {_fmt(e['saturating_rate_per_s'], 1)} submissions/s | open loop, steps x1.5 |"
            f" ≥ {e['target_rate_per_s']:,}/s |"
            f" {_fmt(e['saturating_rate_per_s'] >= e['target_rate_per_s'])} |"
        )
        rl = h["receipt_latency"]
        lines.append(
            f"| 4 | … at half load ({_fmt(h['offered_per_s'], 1)}/s, {h['sent']} sent):"
            f" receipt latency | p50 {_fmt(rl['p50_ms'], 1)} / p95 {_fmt(rl['p95_ms'], 1)} /"
            f" p99 {_fmt(rl['p99_ms'], 1)} ms | HTTP p99 {_fmt(h['http_latency']['p99_ms'], 1)} ms"
            f" | p99 < {e['target_p99_ms']} ms |"
            f" {_fmt((rl['p99_ms'] or 1e9) < e['target_p99_ms'])} |"
        )
    mt = results.get("matching")
    if mt:
        lines.append(
            f"| 5 | Matching {mt['participants']:,} participants x {mt['mentors']} mentors |"
            f" {mt['match']['median_s']:.3f} s (median of {mt['rounds']}) |"
            f" {mt['ratio']:.2f} x bare solver | < {mt['target_s']:.0f} s |"
            f" {_fmt(mt['target_met'])} |"
        )
    if e:
        lines += [
            "",
            "## End to end: the steps",
            "",
            "| offered/s | in call before | sent | receipts | in time | receipt rate/s"
            " | receipt p50 / p99 ms | HTTP p99 ms | statuses | followed |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for s in e["steps"] + [e["half_load"]]:
            rl = s["receipt_latency"]
            lines.append(
                f"| {_fmt(s['offered_per_s'], 1)} | {s['applications_in_call_before']} |"
                f" {s['sent']} | {s['receipts']} |"
                f" {s['receipts_within_1s_of_end']} | {_fmt(s['receipt_rate_per_s'], 1)} |"
                f" {_fmt(rl['p50_ms'], 1)} / {_fmt(rl['p99_ms'], 1)} |"
                f" {_fmt(s['http_latency']['p99_ms'], 1)} | {s['statuses']} | {s['followed']} |"
            )
        lines += [
            "",
            "## Processes at half load",
            "",
            "| process | CPU (% of one core) | peak RSS (MB) |",
            "|---|---|---|",
        ]
        for name, v in e["resources_at_half_load"].items():
            lines.append(f"| {name} | {v['cpu_percent_of_one_core']} | {v['peak_rss_mb']} |")
        for name, p in e.get("profiles", {}).items():
            lines += ["", f"## Profile of {name} at half load (py-spy)", ""]
            if "error" in p:
                lines.append(f"not available: {p['error']}")
                continue
            lines.append(
                "Top self time: " + "; ".join(f"`{f}` {pct} %" for f, pct in p["top_self"])
            )
            lines.append("")
            lines.append(
                "Innermost own frame: "
                + "; ".join(f"`{f}` {pct} %" for f, pct in p["top_own_code"])
            )
    missing = [s for s in SECTIONS if s not in results]
    if missing:
        lines += ["", f"Sections not run: {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    ax = axes[0][0]
    bars: list[tuple[str, float]] = []
    if k := results.get("kafka_limit"):
        bars += [
            ("raw produce", k["produce_msgs_per_s"]),
            ("raw consume+commit", k["consume_commit_msgs_per_s"]),
        ]
    if c := results.get("consumer"):
        bars += [
            ("Pearls per-message", c["per_message"]["msgs_per_s"]),
            ("Pearls batched", c["batched"]["msgs_per_s"]),
        ]
        if "batched_many" in c:
            bars.append(("Pearls batched, batch handler", c["batched_many"]["msgs_per_s"]))
    if r := results.get("relay"):
        bars += [("relay baseline", r["baseline_msgs_per_s"]), ("outbox relay", r["rows_per_s"])]
    if bars:
        ax.barh([b[0] for b in bars], [b[1] for b in bars], color="tab:blue")
        for i, (_, v) in enumerate(bars):
            ax.text(v, i, f" {v:,.0f}", va="center")
        ax.set_xscale("log")
    ax.set_title("(1)-(3) messages or rows per second (log scale)")

    ax = axes[0][1]
    if e := results.get("end_to_end"):
        steps = e["steps"]
        x = [s["offered_per_s"] for s in steps]
        ax.plot(x, x, "k:", label="offered")
        ax.plot(x, [s["receipt_rate_per_s"] for s in steps], "o-", label="receipts/s (in window)")
        ax.set_xlabel("offered submissions/s")
        ax.set_ylabel("per second")
        ax2 = ax.twinx()
        ax2.plot(
            x, [s["receipt_latency"]["p99_ms"] or 0 for s in steps], "rs--", label="receipt p99 ms"
        )
        ax2.set_ylabel("receipt p99 latency (ms)", color="tab:red")
        ax2.set_yscale("log")
        ax.legend(loc="upper left")
    ax.set_title("(4) end to end: rate steps (open loop)")

    ax = axes[1][0]
    if e:
        h = e["half_load"]
        names = ["p50_ms", "p95_ms", "p99_ms"]
        ax.bar([n[:3] + "\nreceipt" for n in names], [h["receipt_latency"][n] or 0 for n in names])
        ax.bar([n[:3] + "\nHTTP" for n in names], [h["http_latency"][n] or 0 for n in names])
        ax.axhline(e["target_p99_ms"], color="r", ls=":", label="p99 target")
        ax.legend()
        ax.set_ylabel("ms")
        ax.set_title(f"(4) latency at half load ({h['offered_per_s']}/s)")
    if r:
        lag = r["lag"]
        ax.set_title(ax.get_title() + f"; relay lag p50 {lag['p50_ms']} / p99 {lag['p99_ms']} ms")

    ax = axes[1][1]
    if mt := results.get("matching"):
        ax.bar(["bare solver", "match()"], [mt["baseline"]["median_s"], mt["match"]["median_s"]])
        ax.axhline(mt["target_s"], color="r", ls=":", label="target")
        ax.set_ylabel("seconds (median)")
        ax.legend()
    ax.set_title("(5) matching 1,000 x 200" if not results["quick"] else "(5) matching (quick)")
    m = results["machine"]
    fig.suptitle(
        f"Pearls benchmarks {m['date']} — {m['cpus']} CPUs, load {m['loadavg_1_5_15']}"
        + (" — QUICK" if results["quick"] else "")
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> None:
    """Rewrite results.md and results.png from a results.json (e.g. after a report change)."""
    import sys

    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "results"
    write(json.loads((out_dir / "results.json").read_text()), out_dir)


def write(results: dict[str, Any], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "results.json", out_dir / "results.md", out_dir / "results.png"]
    paths[0].write_text(json.dumps(results, indent=2) + "\n")
    paths[1].write_text(markdown(results))
    plot(results, paths[2])
    return paths


if __name__ == "__main__":
    main()
