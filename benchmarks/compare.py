"""bfn-codec against the classical lossless codecs on Fashion-MNIST: one JSON, one table, plots.

    python3 benchmarks/compare.py                       # from the JSON already in results/
    python3 benchmarks/compare.py --run-classical       # re-run benchmarks/classical.py first
    python3 benchmarks/compare.py --run-bfn --bfn-limit 10000   # re-run the bfn-codec files too

Inputs (benchmarks/results/): classical-both.json (benchmarks/classical.py: PNG, WebP, JPEG XL,
JPEG-LS, JBIG, xz, zstd, bzip2, brotli, zpaq; per image, mosaic, raw and bit-packed streams),
codec-*.json (benchmarks/codec_bench.py: bfn-codec files, everything in the file counted; the
run report.current_runs picks per bundled model) and curve-<data>-<weights8>.json
(benchmarks/steps_curve.py: L^n + L^r against n with the coder's bits; the bundled weights' curve).
Outputs, derived and so without weights in their names: compare-both.json, compare-both.md (the
table), compare-both-bits-per-pixel.png and compare-both-loss-vs-steps.png.
A codec that was missing when classical.py ran is listed with its note, never silently dropped.
bfn-codec rows on fewer than all 10,000 test images say so in the "items" column.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
VARIANTS = {"binary": "fmnist-binary", "8bit": "fmnist"}
CLASSICAL = "classical-both.json"
OUTPUTS = {"json": "compare-both.json", "table": "compare-both.md",
           "bits": "compare-both-bits-per-pixel.png", "curves": "compare-both-loss-vs-steps.png"}


def _load(path):
    with open(path) as f:
        return json.load(f)


def bfn_rows() -> list[dict]:
    """Per bundled model, the codec_bench run that describes what ships (report.current_runs:
    same weights and default n / grid first, then the most images)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from report import current_runs, largest_runs_of_shipped_weights

    name = {v: k for k, v in VARIANTS.items()}
    current, largest = current_runs(), largest_runs_of_shipped_weights()
    runs = [(name[d], r) for d, r in current.items()]
    # and the shipped weights' run on the most images, where that is another run (other grid)
    runs += [(name[d], largest[d]) for d, r in current.items()
             if d in largest and largest[d]["items"] > r["items"]]
    rows = []
    for variant, r in runs:
        rows.append({"variant": variant, "codec": f"bfn-codec ({r['model']})", "mode": f"n={r['steps']}, r={r['r']:g}, grid p={r.get('grid_power', 1.0):g}, {r.get('threads', '?')} thread(s)",
                     "items": r["items"], "bits_per_pixel": r["achieved_bits_per_dim"],
                     # without the trajectory recording codec_bench adds (a plain compress skips it)
                     "encode_s_per_image": (r["encode_seconds"] - r.get("encode_trajectory_seconds", 0.0)) / r["items"],
                     "decode_s_per_image": r["decode_seconds"] / r["items"],
                     "lossless": True, "source": r["source"]})
    return rows


def classical_rows(data: dict) -> list[dict]:
    rows = []
    for r in data["results"]:
        row = {"variant": r["variant"], "codec": r["codec"], "mode": r["mode"], "items": r.get("n_images"),
               "source": CLASSICAL}
        if "bits_per_pixel" in r:
            row.update(bits_per_pixel=r["bits_per_pixel"], lossless=r.get("lossless"),
                       encode_s_per_image=r["encode_s"] / r["n_images"],
                       decode_s_per_image=r["decode_s"] / r["n_images"])
        else:
            row["note"] = r.get("note") or r.get("skipped") or r.get("error") or "not run"
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    out = ["| data | codec | mode | images | bits/pixel | encode ms/image | decode ms/image |",
           "|---|---|---|---|---|---|---|"]
    for variant in VARIANTS:
        done = sorted((r for r in rows if r["variant"] == variant and "bits_per_pixel" in r),
                      key=lambda r: r["bits_per_pixel"])
        for r in done:
            name = f"**{r['codec']}**" if r["codec"].startswith("bfn-codec") else r["codec"]
            out.append(f"| {variant} | {name} | {r['mode']} | {r['items']} | {r['bits_per_pixel']:.4f} | "
                       f"{1000 * r['encode_s_per_image']:.2f} | {1000 * r['decode_s_per_image']:.2f} |")
        for r in (r for r in rows if r["variant"] == variant and "bits_per_pixel" not in r):
            out.append(f"| {variant} | {r['codec']} | {r['mode']} | – | skipped: {r['note']} | | |")
    return "\n".join(out) + "\n"


def plot_bits(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
    for ax, variant in zip(axes, VARIANTS):
        best = {}  # best mode per codec
        for r in rows:
            if r["variant"] == variant and "bits_per_pixel" in r:
                if r["codec"] not in best or r["bits_per_pixel"] < best[r["codec"]]["bits_per_pixel"]:
                    best[r["codec"]] = r
        items = sorted(best.values(), key=lambda r: r["bits_per_pixel"], reverse=True)
        labels = [f"{r['codec']} ({r['mode']}" + (f", {r['items']} images)" if r["items"] and r["items"] < 10000 else ")")
                  for r in items]
        colours = ["tab:red" if r["codec"].startswith("bfn-codec") else "tab:gray" for r in items]
        ax.barh(labels, [r["bits_per_pixel"] for r in items], color=colours)
        for i, r in enumerate(items):
            ax.text(r["bits_per_pixel"], i, f" {r['bits_per_pixel']:.3f}", va="center", fontsize=8)
        ax.set_xlabel("bits per pixel (lower is better)")
        ax.set_title(f"Fashion-MNIST test, {variant}")
        ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(curves: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(6 * len(curves), 4.5), squeeze=False)
    for ax, (variant, c) in zip(axes[0], curves.items()):
        n = [r["steps"] for r in c["curve"]]
        ax.errorbar(n, [r["loss_bits_per_dim"] for r in c["curve"]],
                    yerr=[2 * r["loss_stderr"] for r in c["curve"]], marker="o",
                    label=f"model L^n + L^r, {c['items']} images (±2 SE)"
                    + (f", grid p={c['grid_power']:g}" if "grid_power" in c else ", uniform grid"))
        coded = [r for r in c["curve"] if r.get("chain_items")]
        if coded:
            ax.plot([r["steps"] for r in coded], [r["chain_bits_per_dim"] for r in coded], "s", color="tab:red",
                    label=f"coder: chain bits/dim (first {c['code_items']} images)")
            ax.plot([r["steps"] for r in coded], [r["trajectory_bits_per_dim"] for r in coded], "x", color="k",
                    label="ideal cost of the coded trajectories (same images)")
        ax.axhline(c["infinity_bits_per_dim"], color="tab:green", ls="--",
                   label=f"L^inf = {c['infinity_bits_per_dim']:.3f}")
        ax.set_xscale("log")
        ax.set_xlabel("steps n")
        ax.set_ylabel("bits per pixel")
        ax.set_title(f"{c['model']} ({c['items']} test images)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-classical", action="store_true", help="run benchmarks/classical.py first")
    ap.add_argument("--run-bfn", action="store_true", help="run benchmarks/codec_bench.py for both models first")
    ap.add_argument("--bfn-limit", type=int, default=10000)
    args = ap.parse_args(argv)
    classical = os.path.join(RESULTS, CLASSICAL)
    if args.run_classical:
        subprocess.run([sys.executable, os.path.join(HERE, "classical.py"), "--out", classical], check=True)
    if args.run_bfn:
        for variant, model in VARIANTS.items():
            subprocess.run([sys.executable, os.path.join(HERE, "codec_bench.py"), "--model", model,
                            "--dataset", model, "--limit", str(args.bfn_limit), "--threads", "1"],
                           check=True)  # codec_bench names the file: codec-<data>-<weights8>-<images>-n<steps>-p<grid>.json
    rows = bfn_rows()
    if os.path.exists(classical):
        rows += classical_rows(_load(classical))
    else:
        print(f"note: benchmarks/results/{CLASSICAL} is missing; run with --run-classical "
              "(see benchmarks/classical.py for how to install the codecs)", file=sys.stderr)
    from report import _shipped_weights
    from result_names import pick

    curves = {}
    for variant, model in VARIANTS.items():
        path = pick("curve", variant, _shipped_weights(model))
        if path:
            curves[variant] = _load(path)
    out = {"rows": rows, "curves": {k: {"infinity_bits_per_dim": v["infinity_bits_per_dim"],
                                        "curve": v["curve"], "grid": v.get("grid", [])}
                                    for k, v in curves.items()}}
    with open(os.path.join(RESULTS, OUTPUTS["json"]), "w") as f:
        json.dump(out, f, indent=2)
    table = markdown(rows)
    with open(os.path.join(RESULTS, OUTPUTS["table"]), "w") as f:
        f.write(table)
    try:
        plot_bits(rows, os.path.join(RESULTS, OUTPUTS["bits"]))
        if curves:
            plot_curves(curves, os.path.join(RESULTS, OUTPUTS["curves"]))
    except ImportError:
        print("note: matplotlib is not installed (pip install matplotlib); no plots written", file=sys.stderr)
    print(table)


if __name__ == "__main__":
    main()
