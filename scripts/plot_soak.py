#!/usr/bin/env python3
"""Plots a soak's samples (scripts/soak.sh writes them): RSS, open fds and disk use over time.

    python3 scripts/plot_soak.py docs/soak/soak.csv docs/soak/soak.png   # needs: pip install matplotlib
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(source, target):
    with open(source) as f:
        rows = list(csv.DictReader(f))
    minutes = [int(r["elapsed_s"]) / 60 for r in rows]
    mib = 1024 * 1024
    panels = [
        ("RSS (MiB)", [int(r["rss_kib"]) / 1024 for r in rows]),
        ("open fds", [int(r["fds"]) for r in rows]),
        ("data dir on disk (MiB)", [int(r["data_dir_bytes"]) / mib for r in rows]),
    ]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 6), sharex=True)
    for ax, (label, values) in zip(axes, panels):
        ax.plot(minutes, values, linewidth=1.2)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0, top=max(values) * 1.3 + 1)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("minutes")
    done = int(rows[-1]["jobs_done"])
    fig.suptitle(f"wharf soak: {done:,} jobs through enqueue, poll, ack and retention")
    fig.tight_layout()
    fig.savefig(target, dpi=90)
    print(f"wrote {target}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
