"""Turns a bench result into the ratios printed at the end of a run, the
table in BENCHMARKS.md (between the bench:table markers) and two charts."""
from __future__ import annotations

import math
from pathlib import Path

REFERENCE_PUBLISHED = 41_700   # the reference system's delivered msgs per vCPU-second (other hardware)
START, END = "<!-- bench:table:start -->", "<!-- bench:table:end -->"


def _fmt(value, digits=0) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def ratios(results: dict) -> dict:
    t = results["scenarios"].get("throughput", {})
    sg = (t.get("streamgate") or {}).get("msgs_per_cpu_second")
    out = {}
    if sg:
        for name, r in t.items():
            if not name.startswith("streamgate") and r.get("msgs_per_cpu_second"):
                out[name] = sg / r["msgs_per_cpu_second"]
        out["reference system (published, other hardware)"] = sg / REFERENCE_PUBLISHED
    return out


# What each Streamgate row of the throughput table is, in its notes column.
THROUGHPUT_NOTES = {
    "streamgate": "defaults: one loop; a saturated loop holds writes (`max_write_delay_ms`), see latency",
    "streamgate, no write delay": "`max_write_delay_ms: 0`: writes every loop turn",
    "streamgate, 2 loops": "one loop per core",
}


def variant_ratios(results: dict) -> dict:
    """Each other Streamgate row of the throughput table (the headline row is
    in ratios()) as a multiple of bare-send and uWebSockets."""
    t = results["scenarios"].get("throughput", {})
    out = {}
    for name, r in t.items():
        if name.startswith("streamgate") and name != "streamgate" and r.get("msgs_per_cpu_second"):
            out[name] = {peer: r["msgs_per_cpu_second"] / t[peer]["msgs_per_cpu_second"]
                         for peer in ("bare-send", "uwebsockets") if (t.get(peer) or {}).get("msgs_per_cpu_second")}
    return out


def ratios_text(results: dict) -> str:
    lines = ["Streamgate's delivered messages per server CPU-second, as a multiple of:"]
    for name, ratio in ratios(results).items():
        lines.append(f"  {name:<48} {ratio:5.2f}x")
    for name, multiples in variant_ratios(results).items():
        lines.append(f"  ({name}: " + ", ".join(f"{peer} {m:.2f}x" for peer, m in multiples.items()) + ")")
    return "\n".join(lines)


def _row(system: str, r: dict, note: str = "") -> str:
    if "error" in r:
        return f"| {system} | – | – | – | – | – | – | – | could not run: {r['error']} |"
    flags = []
    if r.get("lost"):
        flags.append(f"**lost {r['lost']}**")
    if r.get("reordered"):
        flags.append(f"**reordered {r['reordered']}**")
    if r.get("closed"):
        flags.append(f"closed {r['closed']}")
    expected = r.get("expected_per_second")
    if expected and r["delivered_per_second"] < 0.95 * expected:
        flags.append(f"**fell behind: delivered {r['delivered_per_second'] / expected:.0%} of the published rate**")
    if note:
        flags.append(note)
    return (f"| {system} | {_fmt(r['clients'])} | {_fmt(r['delivered_per_second'])} | "
            f"**{_fmt(r.get('msgs_per_cpu_second'))}** | {r['server_cpu_utilization']:.2f} | "
            f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} / {r['p999_ms']:.2f} / {r['max_ms']:.1f} | "
            f"{r['load_generator_cpu_seconds']:.1f} | {'ok' if not (r.get('lost') or r.get('reordered')) else 'NO'} | "
            f"{', '.join(flags)} |")


def table(results: dict) -> str:
    s = results["scenarios"]
    head = ("| system | clients | delivered/s | msgs per server CPU-s | server CPU (cores) | "
            "latency p50 / p99 / p99.9 / max (ms) | load-gen CPU-s | exact | notes |\n"
            "|---|---|---|---|---|---|---|---|---|")
    out = [f"Run `{results['command']}` on {results['date']} ({results['machine']['cpus']} cores, "
           f"kernel {results['machine']['kernel']}), {results['payload_bytes']}-byte payloads."]
    if "throughput" in s:
        t = s["throughput"]
        any_r = next((r for r in t.values() if "clients" in r), None)
        out.append("\n**Same workload for every system** "
                   + (f"({any_r['clients']:,} clients, each subscribed to one random channel):" if any_r else ":"))
        out.append(head)
        out.extend(_row(name, r, THROUGHPUT_NOTES.get(name, "")) for name, r in t.items())
        out.append("")
        out.append("Streamgate as a multiple of each: "
                   + ", ".join(f"{name} **{ratio:.2f}x**" for name, ratio in ratios(results).items()) + ".")
        variants = [f"{name}: " + ", ".join(f"{peer} {m:.2f}x" for peer, m in multiples.items())
                    for name, multiples in variant_ratios(results).items() if multiples]
        if variants:
            out.append("Each Streamgate row: " + "; ".join(variants) + ".")
    if "reference" in s:
        out.append("\n**Reference shape** (every endpoint updated once per second, publishes spread in time):")
        out.append(head)
        out.extend(_row(name, r, "end-to-end through Tansu" if "kafka" in name
                        else "gateway only" if name.startswith("streamgate")
                        else "this machine's floor" if name == "bare-send" else "")
                   for name, r in s["reference"].items())
        broker = s["reference"].get("streamgate (kafka)", {}).get("broker_only")
        if broker:
            out.append(f"\nKafka alone, measured in the same window by a plain consumer of the same records "
                       f"(`bench/tools/benchconsume.py`): p50 / p99 / p99.9 / max "
                       f"{broker['p50_ms']:.2f} / {broker['p99_ms']:.2f} / {broker['p999_ms']:.2f} / "
                       f"{broker['max_ms']:.1f} ms. The end-to-end row minus this is what the gateway adds.")
        processes = {r.get("client_processes") for r in s["reference"].values() if "clients" in r}
        if processes == {1}:
            out.append("\nOne client process holds every connection here (fewer busy processes, smaller scheduling tail).")
    if "saturation" in s:
        out.append("\n**Saturation** (rate per endpoint raised step by step):")
        out.append(head)
        out.extend(_row(f"streamgate @ {r['rate_per_endpoint']}/s per endpoint", r) for r in s["saturation"])
    if "connections" in s:
        out.append("\n**Connections** (idle, subscribed):\n\n| clients | gateway RSS per idle connection | connections accepted/s |\n|---|---|---|")
        out.extend(f"| {_fmt(r['clients'])} | {_fmt(r['bytes_per_idle_connection'])} bytes | "
                   f"{_fmt(r['connections_per_second'])} |" for r in s["connections"])
    return "\n".join(out)


def update_benchmarks_md(results: dict, path: Path) -> None:
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text:
        text += f"\n{START}\n{END}\n"
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    path.write_text(before + START + "\n" + table(results) + "\n" + END + after)


def draw_charts(results: dict, folder: Path) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no charts")
        return
    from bench import hist_value  # same histogram layout as benchsub
    t = {k: v for k, v in results["scenarios"].get("throughput", {}).items() if v.get("msgs_per_cpu_second")}
    if t:
        fig, ax = plt.subplots(figsize=(8, 3.8))
        names = list(t)
        values = [t[n]["msgs_per_cpu_second"] for n in names]
        colors = ["#2563eb" if n.startswith("streamgate") else "#9ca3af" if n == "bare-send" else "#f59e0b" for n in names]
        ax.barh(names[::-1], values[::-1], color=colors[::-1])
        # Each bar's median latency beside it: CPU per delivery is only half the story
        # at a saturated point (Streamgate's write pacing trades one for the other).
        for y, name in enumerate(names[::-1]):
            v = t[name]["msgs_per_cpu_second"]
            ax.text(v, y, f" {v:,.0f}  (p50 {t[name]['p50_ms']:,.1f} ms)", va="center", fontsize=8)
        ax.set_xlabel("delivered messages per server CPU-second (higher is better)")
        any_r = next(iter(t.values()))
        ax.set_title(f"Fan-out efficiency: {any_r['clients']:,} clients, same workload, same run", fontsize=10)
        ax.set_xlim(0, max(values) * 1.45)
        fig.tight_layout()
        fig.savefig(folder / "throughput.png", dpi=110)
        plt.close(fig)
    panels = [("Reference shape: every endpoint once per second (light load)",
               {k: v for k, v in results["scenarios"].get("reference", {}).items() if v.get("histogram")}),
              ("Throughput workload (this 2-core machine saturated: queueing)",
               {k: v for k, v in t.items() if v.get("histogram")})]
    panels = [(title, series) for title, series in panels if series]
    if panels:
        fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.6 * len(panels)), squeeze=False)
        for ax, (title, series) in zip(axes[:, 0], panels):
            for name, r in series.items():
                total = sum(c for _, c in r["histogram"])
                xs, ys, seen = [], [], 0
                for index, count in r["histogram"]:
                    seen += count
                    q = min(seen / total, 1 - 0.5 / total)
                    xs.append(1 / (1 - q))
                    ys.append(hist_value(index) / 1e6)
                ax.plot(xs, ys, label=name, linewidth=1.4)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ticks = [2, 10, 100, 1000, 10000, 100000]
            ax.set_xticks(ticks, ["p50", "p90", "p99", "p99.9", "p99.99", "p99.999"])
            ax.set_xlim(1, None)
            ax.set_ylabel("latency (ms)")
            ax.set_title(title, fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / "latency.png", dpi=110)
        plt.close(fig)
