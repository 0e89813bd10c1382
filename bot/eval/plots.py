"""PNG plots for `duplexbot eval turns`: latency histograms and recall vs false-positive curves."""
from __future__ import annotations

from pathlib import Path


def draw(results: dict, out: Path, title: str = "") -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pols = results["policies"]
    written = []

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, r in pols.items():
        axes[0].hist(r["eot_latencies"], bins=40, range=(-0.25, 3.0), histtype="step", label=name, lw=1.5)
        axes[1].hist(r["stop_latencies"], bins=40, range=(-0.25, 3.0), histtype="step", label=name, lw=1.5)
    axes[0].set(title="end-of-turn latency", xlabel="seconds after the caller finished", ylabel="turns")
    axes[1].set(title="stop latency (interruptions)", xlabel="seconds after interruption onset", ylabel="count")
    for a in axes:
        a.legend()
    fig.suptitle(title)
    fig.tight_layout()
    p = out / "latency.png"
    fig.savefig(p, dpi=90)
    plt.close(fig)
    written.append(p)

    if any("curve" in r for r in pols.values()):
        fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
        for name, r in pols.items():
            c = r.get("curve")
            if not c:
                continue
            fp = [x["eot_fp_rate"] or 0 for x in c]
            rec = [x["eot_recall"] or 0 for x in c]
            lat = [x["eot_latency_p50"] if x["eot_latency_p50"] is not None else float("nan") for x in c]
            axes[0].plot(fp, rec, marker="o", label=name)
            axes[1].plot(fp, lat, marker="o", label=name)
            axes[2].plot([x["false_stop_rate"] or 0 for x in c], [x["interruption_recall"] or 0 for x in c],
                         marker="o", label=name)
            axes[0].scatter([r["eot_fp_rate"] or 0], [r["eot_recall"] or 0], s=120, marker="*", zorder=5)
            axes[2].scatter([r["false_stop_rate"] or 0], [r["interruption_recall"] or 0], s=120, marker="*",
                            zorder=5)
        axes[0].set(title="end of turn: recall vs FP rate over holds", xlabel="false-positive rate (holds)",
                    ylabel="recall")
        axes[1].set(title="end of turn: median latency vs FP rate", xlabel="false-positive rate (holds)",
                    ylabel="p50 latency (s)")
        axes[2].set(title="barge-in: recall vs false stops", xlabel="false-stop rate (backchannels)",
                    ylabel="interruption recall")
        for a in axes:
            a.grid(alpha=0.3)
            a.legend()
        fig.suptitle(title + "  (stars: default operating points)")
        fig.tight_layout()
        p = out / "curves.png"
        fig.savefig(p, dpi=90)
        plt.close(fig)
        written.append(p)
    return written
