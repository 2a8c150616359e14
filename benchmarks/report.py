"""Regenerate benchmarks/results/REPORT.md and the README's headline from the JSON files in
benchmarks/results/.

    python3 benchmarks/report.py

* benchmarks/results/REPORT.md, the whole file: every section (headline, small files, small files
  against n, against the classical codecs, steps curves, fine-tuning, the coder against the
  model's loss, grid ratio, support width, throughput, classical codecs, fuzzing);
* README.md, only between the result markers: the headline table, the small-files table, the
  bits-per-pixel plot and links to REPORT.md and benchmarks/README.md;
* benchmarks/README.md, the whole file: benchmarks/readme_template.md with the table of committed
  results and their commands and the archive's table filled in from benchmarks/commands.json
  (which the scripts update when they write a result).

``--check`` writes nothing and exits 1 if any of the three differs from what it would write.

Nothing in either is typed by hand: every number comes from a JSON file written by
codec_bench.py, steps_curve.py, finetune_compare.py, r_scan.py, tail_scan.py, test_throughput.py,
fuzz.py, compare.py, classical.py or small_inputs.py (benchmarks/README.md has the commands), and
nothing depends on file times or the machine, so both regenerate byte for byte from the committed
JSON. benchmarks/results/archive/ is not read.
"""
from __future__ import annotations

import glob
import json
import os
import posixpath
import re

from result_names import pick, results_of, weights8

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
README = os.path.join(HERE, "..", "README.md")
REPORT = os.path.join(RESULTS, "REPORT.md")
BENCH_README = os.path.join(HERE, "README.md")
BENCH_TEMPLATE = os.path.join(HERE, "readme_template.md")
COMMANDS = os.path.join(HERE, "commands.json")
START, END = "<!-- results:start -->", "<!-- results:end -->"
CLASSICAL = "classical-both.json"  # benchmarks/classical.py
COMPARE_TABLE = "compare-both.md"  # benchmarks/compare.py, with the two plots below
BITS_PLOT, CURVES_PLOT = "compare-both-bits-per-pixel.png", "compare-both-loss-vs-steps.png"
VARIANT = {"fmnist-binary": "binary", "fmnist": "8bit"}


def link(path: str, doc: str) -> str:
    """``path`` (relative to the repository root) as a link from a document in directory ``doc``."""
    return posixpath.relpath(path, doc or ".")


def load(name):
    path = os.path.join(HERE, "results", name)
    return json.load(open(path)) if os.path.exists(path) else None

TARGETS = {"fmnist-binary": 0.16, "fmnist": 2.95}  # issue #5: bits/pixel, all 10,000 test images
TARGET_IMAGES_PER_SECOND = 5.6  # issue #5: 10,000 images within 30 minutes per side


def _bundled(name: str) -> dict:
    path = os.path.join(HERE, "..", "bfn_codec", "zoo", name, "config.json")
    return json.load(open(path)) if os.path.exists(path) else {}


def _shipped_weights(name: str) -> str | None:
    return _bundled(name).get("weights_sha256")


def _shipped_codec(name: str) -> dict:
    """The codec defaults the bundled model ships with (steps, r, grid_power)."""
    return _bundled(name).get("info", {}).get("codec", {})


def _weights_label(sha: str | None, name: str) -> str:
    """A weights hash as the tables show it, flagged when it is not what the package ships."""
    if not sha:
        return "unknown"
    return sha[:8] + ("" if sha == _shipped_weights(name) else ", not the shipped weights")


def _bundled_model_runs():
    """(file name, result) of every codec_bench run of a bundled model in bfn mode, by file name
    (not file time, which a fresh clone resets)."""
    for path in sorted(glob.glob(os.path.join(HERE, "results", "codec-*.json"))):
        r = json.load(open(path))
        if r.get("mode") == "bfn" and r.get("dataset") in TARGETS:
            yield os.path.basename(path), r


def _current_coder(r: dict) -> bool:
    """Whether a run used the coder revision this checkout ships (older files are refused by it)."""
    from bfn_codec.environment import CODER_REVISION
    return r.get("coder_revision", 1) == CODER_REVISION


def _best_run_per_model(rank) -> dict:
    """Per bundled model, the codec_bench run with the highest ``rank(r)`` (runs ranked None are
    left out; on a tie the first file name wins)."""
    best = {}
    for source, r in _bundled_model_runs():
        key = rank(r)
        if key is not None and (r["dataset"] not in best or key > best[r["dataset"]][0]):
            best[r["dataset"]] = (key, dict(r, source=source))
    return {k: v[1] for k, v in best.items()}


def largest_runs_of_shipped_weights() -> dict:
    """Per bundled model, among the runs of its shipped weights: those of the shipped coder
    revision first, then the most images."""
    return _best_run_per_model(lambda r: (_current_coder(r), r["items"])
                               if r.get("model_sha256") == _shipped_weights(r["dataset"]) else None)


def current_runs() -> dict:
    """Per bundled model, the codec_bench run that describes what ships: the same weights, the
    model's default n and time grid, the shipped coder revision, then the most images (file names
    break ties)."""
    def rank(r):
        codec = _shipped_codec(r["dataset"])
        return (r.get("model_sha256") == _shipped_weights(r["dataset"]),
                r.get("steps") == codec.get("steps") and r.get("grid_power", 1.0) == codec.get("grid_power", 1.0),
                _current_coder(r), r["items"])
    return _best_run_per_model(rank)


def headline_section() -> list[str]:
    """One row per bundled model: its largest codec_bench run against the targets."""
    best = current_runs()
    if not best:
        return []
    classical = load(CLASSICAL) or {"results": []}
    variant = VARIANT
    out = ["### Headline", "",
           f"Each bundled model's largest `codec_bench.py` run (shipped weights, default n and grid, whole "
           f"files) against issue #5's targets (bits/pixel; >= {TARGET_IMAGES_PER_SECOND} images/s per side, "
           "encoding without the benchmark's trajectory recording), in the float arithmetic (coder "
           "revision 5); the next table compares the portable default with it.", "",
           "| data | model | run | n | grid p | images | bits/pixel | target | best classical | encode images/s | decode images/s | threads | source |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rows = []
    largest = largest_runs_of_shipped_weights()
    for dataset, r in sorted(best.items(), key=lambda kv: list(TARGETS).index(kv[0])):
        rows.append((dataset, r, "default n and grid"))
        big = largest.get(dataset)
        if big is not None and big["items"] > r["items"]:
            rows.append((dataset, big, f"grid p={big.get('grid_power', 1.0):g}, most images"))
    for dataset, r, what in rows:
        known = [c for c in classical["results"] if c.get("variant") == variant[dataset] and "bits_per_pixel" in c]
        top = min(known, key=lambda c: c["bits_per_pixel"]) if known else None
        top_s = f"{top['bits_per_pixel']:.4f} ({top['codec']}, {top['mode']})" if top else "–"
        enc = r.get("encode_items_per_second_without_trajectory", r["encode_items_per_second"])
        weights = _weights_label(r.get("model_sha256"), dataset)
        out.append(f"| {dataset} | {r['model']} ({weights}) | {what} | {r['steps']} | {r.get('grid_power', 1.0):g} | {r['items']} | "
                   f"**{r['achieved_bits_per_dim']:.4f}** | {TARGETS[dataset]} | {top_s} | {enc:.2f} | "
                   f"{r['decode_items_per_second']:.2f} | {r.get('threads', '?')} | {r['source']} |")
    out.append("")
    return out


def _shipped_run(what: str, model: str) -> tuple[str, object] | None:
    """(file name, contents) of the ``what`` run of the bundled model's shipped weights (the last
    file of that measurement by name where there is none for them), or None."""
    path = pick(what, VARIANT[model], _shipped_weights(model))
    return (os.path.basename(path), load(os.path.basename(path))) if path else None


def small_files_section(doc: str = "") -> list[str]:
    """Whole-file bytes for a handful of images, per bundled model, against xz and zstd on the
    same images saved as .npy (benchmarks/small_inputs.py --yardsticks): a short file must not
    cost more than the tools a user would otherwise reach for."""
    found = [(label, _shipped_run("small-files", label)) for label in ("fmnist-binary", "fmnist")]
    found = [(label, run) for label, run in found if run and run[1]]
    runs = [(label, {r["images"]: r for r in rows}) for label, (_, rows) in found]
    if not runs:
        return []
    counts = sorted({n for _, rows in runs for n in rows})
    head = "| images | " + " | ".join(f"{label}: bfn-codec (mode) | xz -9e | zstd -19 | bfn − best"
                                      for label, _ in runs) + " |"
    out = ["### Small files (`benchmarks/small_inputs.py --yardsticks`)", "",
           "Whole files in bytes for the first images of the test set, each model at its default "
           "settings (mode auto: the smallest of the BFN chain, plain LZMA2 and a PNG / lossless WebP "
           "picture of the images; the mode column says which was kept), against "
           "xz -9e and zstd -19 on the same images as a .npy file (`np.save` of the (N, 28, 28) "
           "uint8 array). *bfn − best*: bfn-codec minus the smaller of xz and zstd (negative: "
           "bfn-codec is smaller). Files: " + ", ".join(f"`{name}`" for _, (name, _) in found) + ".", "",
           head, "|---|" + "---|---|---|---|" * len(runs)]
    for n in counts:
        cells = []
        for _, rows in runs:
            r = rows.get(n)
            cells.append(f"{r['bytes']} ({r['mode']}) | {r['xz_bytes']} | {r['zstd_bytes'] if r['zstd_bytes'] is not None else '–'} | "
                         f"{r['minus_best_classical']:+d}" if r else "– | – | – | –")  # a count one run left out
        out.append(f"| {n} | " + " | ".join(cells) + " |")
    out.append("")
    if doc:  # the README's block ends with the same link
        out += [f"The commands are in [benchmarks/README.md]({link('benchmarks/README.md', doc)}).", ""]
    return out


def small_files_steps_section() -> list[str]:
    """Whole-file bytes against the number of images for several n (benchmarks/small_inputs.py
    without --yardsticks): where a larger n starts to pay for its deeper seed."""
    out = []
    for model in ("fmnist-binary", "fmnist"):
        run = _shipped_run("small-files-steps", model)
        if not run or not run[1]:
            continue
        name, rows = run
        steps = sorted({r["steps"] for r in rows})
        cells = {(r["images"], r["steps"]): r for r in rows}
        out += [f"### Small files against n: {model} (`benchmarks/small_inputs.py`, `{name}`)", "",
                "Whole files in bytes (mode auto, everything counted) for the first images of the test "
                "set at each n, and the number of seed items the LZMA2 fallback codes before the chain "
                "can start.", "",
                "| images | " + " | ".join(f"n = {n}: bytes (seed items)" for n in steps) + " |",
                "|---|" + "---|" * len(steps)]
        for count in sorted({r["images"] for r in rows}):
            out.append(f"| {count} | " + " | ".join(
                f"{cells[count, n]['bytes']} ({cells[count, n]['seed_items']})" if (count, n) in cells else "–"
                for n in steps) + " |")
        out.append("")
    return out


def codec_section() -> list[str]:
    rows = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(HERE, "results", "codec-*.json")))]
    if not rows:
        return []
    out = ["### Coder against the model's own loss (`benchmarks/codec_bench.py`)", "",
           "Everything in the file counted (header, LZMA2 seed, ANS words, CRC). *Model*: an independent "
           "Monte-Carlo estimate of L^n + L^r of the same model on the same items (all n steps). "
           "*Trajectory*: the ideal code length of the message trajectories the encoder actually "
           "popped (one exact sample of L^n + L^r per item, seed items at their estimate); the file "
           "against it isolates the coder's own overhead without the estimate's noise. Encode seconds "
           "include recording that trajectory; where a third figure is given it is that recording's "
           "share (not part of a plain compress).", "",
           "| model | weights | coder rev. | items | n | r | grid p | file bits/dim | model bits/dim | overhead | trajectory bits/dim | overhead vs trajectory | encode s (network / coder [/ trajectory]) | decode s (network / coder) | batches (largest) |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        model = (f"{r['model_bits_per_dim']:.4f} ± {r['model_stderr_bits_per_dim']:.4f}"
                 if r.get("model_bits_per_dim") is not None else "–")
        overhead = f"{r['overhead_percent']:+.2f}%" if r.get("overhead_percent") is not None else "–"
        traj = (f"{r['trajectory_bits_per_dim']:.4f}", f"{r['overhead_vs_trajectory_percent']:+.3f}%") \
            if r.get("overhead_vs_trajectory_percent") is not None else ("–", "–")
        out.append(f"| {r['model']} | {r['model_sha256'][:8]} | {r.get('coder_revision', 1)} | {r['items']} | {r['steps']} | {r['r']:g} | {r.get('grid_power', 1.0):g} | "
                   f"{r['achieved_bits_per_dim']:.4f} | {model} | {overhead} | {traj[0]} | {traj[1]} | "
                   f"{r['encode_seconds']:.0f} ({r['encode_network_seconds']:.0f} / "
                   f"{r['encode_coder_seconds']:.0f}"
                   + (f" / {r['encode_trajectory_seconds']:.0f}" if "encode_trajectory_seconds" in r else "")
                   + ") | "
                   f"{r['decode_seconds']:.0f} ({r['decode_network_seconds']:.0f} / "
                   f"{r['decode_coder_seconds']:.0f}) | {r['batches']} ({r['largest_batch']}) |")
    out.append("")
    return out


def compare_section(doc: str = "") -> list[str]:
    path = os.path.join(RESULTS, COMPARE_TABLE)
    if not os.path.exists(path):
        return []
    out = ["### bfn-codec against classical codecs (`benchmarks/compare.py`)", "",
           "All 10,000 Fashion-MNIST test images unless the images column says otherwise. bfn-codec "
           "times are from codec_bench.py with the torch threads given in the mode column, without "
           "the time it spends recording the trajectory cost (a plain compress does not record it); "
           "the throughput table below has the benchmark suite's numbers.", "",
           open(path).read(), f"![bits per pixel]({link('benchmarks/results/' + BITS_PLOT, doc)})", ""]
    if os.path.exists(os.path.join(RESULTS, CURVES_PLOT)):
        out += [f"![loss against steps]({link('benchmarks/results/' + CURVES_PLOT, doc)})", ""]
    return out


def r_scan_section() -> list[str]:
    out = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "r-scan-*.json"))):
        out += _r_scan_table(os.path.basename(path))
    return out


def _r_scan_table(name: str) -> list[str]:
    rows = load(name)
    if not rows:
        return []
    out = [f"### Grid ratio r (`benchmarks/r_scan.py`, oracle source, chain bits only, `{name}`)", "",
           "| data | n | " + " | ".join(f"r={r:g}" for r in sorted({x['r'] for x in rows})) + " |",
           "|---|---|" + "---|" * len({x['r'] for x in rows})]
    for kind in sorted({x["kind"] for x in rows}):
        for n in sorted({x["steps"] for x in rows if x["kind"] == kind}):
            cells = {x["r"]: x["overhead_percent"] for x in rows if x["kind"] == kind and x["steps"] == n}
            out.append(f"| {kind} | {n} | " + " | ".join(f"{cells[r]:+.2f}%" if r in cells else "" for r in sorted({x['r'] for x in rows})) + " |")
    out.append("")
    return out


def tail_scan_section() -> list[str]:
    out = []
    for name in sorted(os.path.basename(p) for p in glob.glob(os.path.join(RESULTS, "tail-scan-*.json"))):
        rows = load(name)
        if not rows:
            continue
        r0 = rows[0]
        weights = _weights_label(r0.get("model_sha256"), r0["model"])
        out += [f"### Support width (`benchmarks/tail_scan.py`, {r0['model']} weights {weights}, one batch of "
                f"{r0['items']} test images, n = {r0['steps']}, r = {r0['r']:g}, grid p = {r0['grid_power']:g})", "",
                "Every support covers ±tail std of the distribution it codes (the codec uses 5). Chain bits "
                "against the ideal cost of the trajectories coded; no header or seed.", "",
                "| tail (std) | chain bits | trajectory bits | overhead | bits per image |", "|---|---|---|---|---|"]
        for r in rows:
            out.append(f"| {r['tail']:g} | {r['net_bits']:.0f} | {r['trajectory_bits']:.0f} | "
                       f"{r['overhead_percent']:+.3f}% | {r['overhead_bits_per_item']:.3f} |")
        out.append("")
    return out


def classical_section() -> list[str]:
    data = load(CLASSICAL)
    if not data:
        return []
    out = [f"### Classical codecs on all {data['n_images']} Fashion-MNIST test images (`benchmarks/classical.py`)", "",
           "| variant | codec | mode | bits/pixel |", "|---|---|---|---|"]
    for variant in ("binary", "8bit"):
        rows = sorted((r for r in data["results"] if r.get("variant") == variant and "bits_per_pixel" in r),
                      key=lambda r: r["bits_per_pixel"])
        for r in rows[:5]:
            out.append(f"| {variant} | {r['codec']} | {r['mode']} | {r['bits_per_pixel']:.4f} |")
    out.append("")
    return out


def curve_section() -> list[str]:
    out = []
    for path in [p for variant in ("binary", "8bit") for p in results_of("curve", variant)]:
        c = load(os.path.basename(path))
        if not c:
            continue
        weights = _weights_label(c.get("model_sha256"), c["model"])
        shipped_grid = _shipped_codec(c["model"]).get("grid_power", 1.0)
        if "grid_power" not in c:
            grid = "on the uniform grid (older run; its coder used the model's grid)"
        elif c["grid_power"] == shipped_grid:
            grid = f"on the time grid p = {c['grid_power']:g} the coder uses"
        else:  # the model's default grid changed after this curve ran; say so rather than imply it
            grid = (f"on the time grid p = {c['grid_power']:g} (the coder's default when this curve ran; "
                    f"it is now p = {shipped_grid:g}, see the time-grid table below)")
        out += [f"### Steps n: {c['model']} (`benchmarks/steps_curve.py`, {c['items']} test images, weights {weights})", "",
                f"L^inf = {c['infinity_bits_per_dim']:.4f} ± {c['infinity_stderr']:.4f} bits/dim; L^n + L^r "
                f"{grid}, on all {c['items']} images. The coder columns: the chain's bits on the first "
                f"{c['code_items']} images minus the LZMA2 seed items (what a long file converges to), "
                "against the ideal cost of the trajectories it coded (the same images and grid; those "
                "images are not a random sample, so compare the chain with its trajectory).", "",
                "| n | L^n + L^r bits/dim | coder chain bits/dim | trajectory bits/dim | chain overhead | encode images/s |",
                "|---|---|---|---|---|---|"]
        for r in c["curve"]:
            coder = (f"{r['chain_bits_per_dim']:.4f} | {r['trajectory_bits_per_dim']:.4f} | "
                     f"{r['chain_overhead_percent']:+.2f}% | {r['encode_items_per_second']:.2f}") \
                if r.get("chain_items") else "– | – | – | –"
            out.append(f"| {r['steps']} | {r['loss_bits_per_dim']:.4f} ± {r['loss_stderr']:.4f} | {coder} |")
        out.append("")
        if c.get("grid"):
            out += ["Time grid t_i = (i/n)^p (p = 1: the paper's uniform grid); L^n + L^r with every step "
                    "evaluated, difference to p = 1 paired over the same images:", "",
                    "| n | p | L^n + L^r bits/dim | vs uniform |", "|---|---|---|---|"]
            for r in c["grid"]:
                out.append(f"| {r['steps']} | {r['power']:g} | {r['loss_bits_per_dim']:.4f} ± {r['loss_stderr']:.4f} | "
                           f"{r.get('vs_uniform_bits_per_dim', 0.0):+.4f} ± {r.get('vs_uniform_stderr', 0.0):.4f} |")
            out.append("")
    return out


def finetune_section() -> list[str]:
    """One row per (fine-tuning stage, n): L^n + L^r of the weights before and after, paired over
    the same test images (benchmarks/finetune_compare.py), per model in the order of training (the
    tuned weights' total training steps, from the training command the file records)."""
    def order(path):
        f = json.load(open(path))
        total = re.search(r"--steps (\d+)", f.get("training") or "")
        return f["dataset"], int(total.group(1)) if total else 0, os.path.basename(path)

    rows = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "finetune-*.json")), key=order):
        f = json.load(open(path))
        shipped = _shipped_weights(f["dataset"])
        label = lambda sha: sha[:8] + (" (shipped)" if sha == shipped else "")
        for r in f["steps"]:
            rows.append(f"| {f['dataset']} | {label(f['sha256']['base'])} | {label(f['sha256']['tuned'])} | "
                        f"{f['items']} | {r['steps']} | {r.get('grid_power', f.get('grid_power', 1.0)):g} | "
                        f"{r['base_bits_per_dim']:.4f} | {r['tuned_bits_per_dim']:.4f} | "
                        f"{r['tuned_minus_base']:+.4f} ± {r['stderr']:.4f} ({r['relative_percent']:+.2f}%) | "
                        f"{f['base_infinity_bits_per_dim']:.4f} → {f['tuned_infinity_bits_per_dim']:.4f} | "
                        f"`{os.path.basename(path)}` |")
    if not rows:
        return []
    return ["### Fine-tuning with L^n + L^r (`benchmarks/finetune_compare.py`)", "",
            "Each training stage against the weights it started from (the training commands are in "
            "the README's Use section): L^n + L^r in bits/dim with every step evaluated, on the same test images and "
            "time grid t_i = (i/n)^p for both, the difference paired per image; L^inf for "
            "reference.", "",
            "| model | base weights | tuned weights | images | n | p | base L^n + L^r | tuned | tuned − base | "
            "L^inf base → tuned | file |",
            "|---|---|---|---|---|---|---|---|---|---|---|", *rows, ""]


def throughput_section() -> list[str]:
    path = pick("throughput", "both", _shipped_weights("fmnist-binary"), _shipped_weights("fmnist"))
    data = load(os.path.basename(path)) if path else None
    if not data:
        return []
    out = [f"### Throughput (`benchmarks/test_throughput.py`, pytest-benchmark, 1 torch thread, `{os.path.basename(path)}`)", "",
           "Default n and r of each model; shares of the time: the network itself, its output table "
           "p_O, and the coder (posteriors, ANS, seeding, batching).", "",
           "| test | weights | images | images/s | network | output table | coder | bits/pixel |",
           "|---|---|---|---|---|---|---|---|"]
    for b in data["benchmarks"]:
        e = b["extra_info"]
        weights = _weights_label(e.get("model_sha256"), b["params"]["name"])
        out.append(f"| {b['name']} | {weights} | {e['items']} ({e['source']}) | {e['images_per_second']:.2f} | "
                   f"{100 * e['network_share']:.0f}% | {100 * e['output_table_share']:.0f}% | "
                   f"{100 * e['coder_share']:.0f}% | {e['bits_per_pixel']:.4f} |")
    cpu = data.get("machine_info", {}).get("cpu", {}).get("brand_raw", "")
    out += ["", f"Machine: {cpu}, {data.get('machine_info', {}).get('cpu', {}).get('count', '?')} cores.", ""]
    return out


def _forward_ratio(data: dict, row: dict) -> str:
    fwd, base = row.get("forward_seconds"), data.get("forward", {}).get("float_seconds")
    if not fwd or not base:
        return "-"
    if isinstance(base, list):  # per batch size, with the codec's own kernel choice ("auto")
        batches = data["forward"]["batches"]
        ratios = ", ".join(f"{b}: {a / f:.2f}x" for b, a, f in zip(batches, fwd["auto"], base))
        pieces = row.get("auto_pieces")
        return f"auto, by batch {ratios}" + (f" (float32 pieces: {'-'.join(map(str, pieces))})" if pieces else "")
    return f"{fwd['float32'] / base:.1f}x / {fwd['conv2d'] / base:.1f}x"


def support_floor_section() -> list[str]:
    rows = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "support-floor-*.json"))):
        for r in load(os.path.basename(path)):
            measured = (f"{r['overhead_bits_per_item']:.3f} ({r['overhead_percent']:+.3f}%)"
                        if "overhead_bits_per_item" in r else f"failed: {r['failed']}")
            support = (f"{r['receiver_support_max']}" if r["receiver_support_max"] == r["planned_support_max"]
                       else f"capped at {r['receiver_support_max']} (planned {r['planned_support_max']})")
            rows.append(f"| {r['steps']} | {support} | {r['bridge_support_max']} | {r['items']} | "
                        f"{r['ideal_bits_per_item']:.1f} | {measured} | {r['predicted_floor_bits_per_item']:.3f} | "
                        f"`{os.path.basename(path)}` |")
    if not rows:
        return []
    return ["### Where the per-step overhead comes from (`benchmarks/support_floor.py`)", "",
            "Oracle source (per-pixel binarised Fashion-MNIST marginals: the ideal is exactly -log2 pi(x)), "
            "exact net chain bits per item against it. constriction gives every symbol of a support at "
            "least 2^-24, so each step costs about (receiver support - bridge support) x 2^-24 nats per "
            "variable (the prediction column). Capping the receiver support breaks the coder's range "
            "invariant and is only a diagnosis.", "",
            "| n | receiver support (bins, ±) | bridge support | items | ideal bits/item | overhead bits/item | predicted floor bits/item | file |",
            "|---|---|---|---|---|---|---|---|", *rows, ""]


def integer_ptq_section() -> list[str]:
    rows = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "integer-ptq-*.json"))):
        data = load(os.path.basename(path))
        weights = _weights_label(data.get("model_sha256"), data["model"])
        for r in data["rows"]:
            rows.append(f"| {data['model']} | {weights} | {data['images']} | {data['steps']} | "
                        f"{r['weight_bits']} | {r['act_bits']} | {data['float_bits_per_dim']:.5f} | "
                        f"{r['bits_per_dim']:.5f} | {r['change_percent']:+.3f}% ± {r['paired_stderr_percent']:.3f}% | "
                        f"{_forward_ratio(data, r)} | `{os.path.basename(path)}` |")
    if not rows:
        return []
    return ["### Integer inference: the rate cost of quantisation (`benchmarks/integer_ptq.py`)", "",
            "The bundled U-Nets run on integers (`bfn_codec/integer_net.py`: power-of-two scales "
            "calibrated on training images, integer GroupNorm, SiLU tables), which gives the same "
            "outputs on every kernel path; the portable coder runs them at 10-bit weights and 12-bit "
            "activations. L^n + L^r in bits/dim on test "
            "images at each model's default n and grid, paired per image with the float network "
            "(same message noise); ± is the paired standard error. Forward time against the float network's "
            "on the same inputs: older files, one batch of 64 with float32 kernels on split activations / "
            "float64 kernels; newer ones, each batch size with the codec's kernel choice, whose 3x3 "
            "convolutions take one float32 call per piece of the activations (the same integers).", "",
            "| model | weights | images | n | weight bits | activation bits | float | integer | change | forward time | file |",
            "|---|---|---|---|---|---|---|---|---|---|---|", *rows, ""]


def _whole_test_set_pairs() -> list[str]:
    """Lines pairing a float (revision 5) and a portable codec_bench run of the same weights,
    items, n and grid (the issue's rate goal is on all 10,000 test images)."""
    runs = [(name, r) for name, r in _bundled_model_runs()]
    out = []
    for name, f in runs:
        if f.get("coder_revision") != 5:
            continue
        for pname, p in runs:
            same = all(p.get(k) == f.get(k) for k in ("model_sha256", "items", "steps", "grid_power", "r", "dataset"))
            if same and p.get("coder_revision", 0) > 5:
                change = 100.0 * (p["achieved_bits_per_dim"] / f["achieved_bits_per_dim"] - 1.0)
                # encoding without the benchmark's trajectory recording where both runs have it (the
                # issue's baseline; the recording's own cost differed between runs by 5x)
                enc = "encode_items_per_second_without_trajectory"
                enc = enc if enc in p and enc in f else "encode_items_per_second"
                speed = " / ".join(f"{p[k] / f[k]:.2f}x" for k in (enc, "decode_items_per_second"))
                # runs from before the calibration was recorded used 10-bit weights, 12-bit activations
                bits = p.get("integer") or {"weight_bits": 10, "act_bits": 12}
                out.append(f"All {f['items']:,} test images, {f['dataset']}, n = {f['steps']} (`codec_bench.py`, "
                           f"all decoded): float {f['achieved_bits_per_dim']:.5f}, portable revision "
                           f"{p['coder_revision']} (w{bits['weight_bits']}/a{bits['act_bits']}) "
                           f"**{p['achieved_bits_per_dim']:.5f}** bits/pixel ({change:+.2f}%); images/s "
                           f"{p[enc]:.2f} / {p['decode_items_per_second']:.2f} (encode"
                           f"{' without trajectory' if enc.endswith('trajectory') else ''} / decode), "
                           f"{speed} of float's ({p.get('threads')} threads, separate runs); `{name}`, `{pname}`.")
                out.append("")
    return out


def integer_speed_section() -> list[str]:
    """The integer network's forward pass against the float one's, per batch size (integer_speed.py)."""
    out = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "integer-speed-*.json"))):
        data = load(os.path.basename(path))
        bits = data["integer"]
        out += [f"### Integer network forward pass, {data['model']} "
                f"({_weights_label(data.get('model_sha256'), data['model'])}, w{bits['weight_bits']}/a{bits['act_bits']})", "",
                f"Milliseconds per item of one pass on network inputs of real coding steps, {data['threads']} threads, "
                "median of 7 (`benchmarks/integer_speed.py`); fused: the CPU default (compiled kernels, batch "
                "parts per torch thread), torch steps: the same integers without numba. "
                f"File: `{os.path.basename(path)}`.", "",
                "| batch | float | fused | torch steps | fused / float | torch steps / float |",
                "|---|---|---|---|---|---|"]
        for r in data["rows"]:
            out.append(f"| {r['batch']} | {r['float_ms_per_item']:.2f} | **{r['fused_ms_per_item']:.2f}** | "
                       f"{r['torch_steps_ms_per_item']:.2f} | {r['fused_over_float']:.2f}x | "
                       f"{r['torch_steps_over_float']:.2f}x |")
        out.append("")
    return out


def piece_bounds_section() -> list[str]:
    """How often a convolution runs an item as one float32 piece, per bound (piece_bounds.py)."""
    out = []
    names = {"cauchy_schwarz": "Cauchy-Schwarz (the codec's)", "per_channel": "per channel", "halves": "per half"}
    for path in sorted(glob.glob(os.path.join(RESULTS, "piece-bounds-*.json"))):
        data = load(os.path.basename(path))
        work = data["work_vs_worst_case"]
        out += [f"### One float32 piece per item, {data['model']} ({_weights_label(data.get('model_sha256'), data['model'])})",
                "",
                f"Share of items that a convolution with two or more worst-case pieces runs as one piece, per "
                f"bound on its partial sums (docs/design.md §15), on the activations of real coding steps "
                f"({data['items']} test images compressed at the defaults, every call; "
                f"`benchmarks/piece_bounds.py`, `{os.path.basename(path)}`). Last row: the float32 "
                "convolution work against the worst-case pieces for every item.", "",
                "| convolution | " + " | ".join(names[k] for k in work) + " |", "|---|" + "---|" * len(work)]
        for name, row in data["layers"].items():
            out.append(f"| {name} | " + " | ".join(f"{row[k]:.2f}" for k in work) + " |")
        out.append("| **work** | " + " | ".join(f"**{work[k]:.3f}x**" for k in work) + " |")
        out.append("")
    return out


def portable_section(full: bool = True) -> list[str]:
    """Portable (coder revision 6) against float (revision 5) arithmetic, same images, one run;
    ``full`` adds the overhead-against-n table and the package-version checks (REPORT.md only)."""
    rows = []
    runs = [(path, load(os.path.basename(path))) for path in sorted(glob.glob(os.path.join(RESULTS, "portable-*.json")))]
    runs = [(path, data) for path, data in runs if "float" in data]
    if not full:  # the README: per model, the runs of the newest code paths (compiled twins, fused network)
        def generation(data):
            return tuple(bool(data.get(k)) for k in ("compiled_twins", "fused_network", "fused_kept_tables",
                                                     "channels_last_network", "kept_summaries", "one_piece_items"))
        newest = {}
        for _, data in runs:
            newest[data["model"]] = max(newest.get(data["model"], (False,) * 6), generation(data))
        runs = [(path, data) for path, data in runs if generation(data) == newest[data["model"]]]
    for path, data in runs:
        weights = _weights_label(data.get("model_sha256"), data["model"])
        f, p, q = data["float"], data["portable"], data["ratios_portable_over_float"]
        # the integer calibration (weight / activation bits); files before it was recorded: 10 / 12
        bits = data.get("integer", {"weight_bits": 10, "act_bits": 12})
        # (the README shows only each model's newest code paths: no label needed there)
        compiled = ((", compiled twins" if data.get("compiled_twins") else "") +
                    (", fused network" if data.get("fused_network") else "") +
                    (", fused kept tables" if data.get("fused_kept_tables") else "") +
                    (", channels-last network, kept summaries" if data.get("kept_summaries") else "") +
                    (", one-piece items" if data.get("one_piece_items") else "")) if full else ""
        rows.append(f"| {data['model']} ({weights}) | {data['images']} | {p['coder_revision']}, "
                    f"w{bits['weight_bits']}/a{bits['act_bits']}{compiled} | {f['bits_per_value']:.4f} | "
                    f"**{p['bits_per_value']:.4f}** | {100 * (q['bytes'] - 1):+.2f}% | "
                    f"{f['encode_images_per_s']:.2f} / {f['decode_images_per_s']:.2f} | "
                    f"**{p['encode_images_per_s']:.2f} / {p['decode_images_per_s']:.2f}** | "
                    f"{q['encode_speed']:.2f}x / {q['decode_speed']:.2f}x | {data['threads']} | `{os.path.basename(path)}` |")
        extra = [dict(e, label=f"w{e['integer']['weight_bits']}/a{e['integer']['act_bits']} (earlier calibration, same run)")
                 for e in data.get("portable_earlier", [])]  # the model's earlier calibrations, same run
        if "portable_numpy" in data and full:  # the same portable arithmetic without the compiled twins
            extra.append(dict(data["portable_numpy"], label=f"w{bits['weight_bits']}/a{bits['act_bits']}, "
                                                             "numpy originals (same run, same bytes)"))
        for e in extra:
            rows.append(f"| {data['model']} ({weights}) | {data['images']} | {e['coder_revision']}, {e['label']} | "
                        f"{f['bits_per_value']:.4f} | {e['bits_per_value']:.4f} | "
                        f"{100 * (e['bytes'] / f['bytes'] - 1):+.2f}% | "
                        f"{f['encode_images_per_s']:.2f} / {f['decode_images_per_s']:.2f} | "
                        f"{e['encode_images_per_s']:.2f} / {e['decode_images_per_s']:.2f} | "
                        f"{e['encode_images_per_s'] / f['encode_images_per_s']:.2f}x / "
                        f"{e['decode_images_per_s'] / f['decode_images_per_s']:.2f}x | {data['threads']} | "
                        f"`{os.path.basename(path)}` |")
    revs = sorted({str(load(os.path.basename(p))["portable"]["coder_revision"])
                   for p in glob.glob(os.path.join(RESULTS, "portable-*.json")) if "float" in load(os.path.basename(p))})
    whole = _whole_test_set_pairs()
    steps = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "portable-steps-*.json"))):
        data = load(os.path.basename(path))
        by_n = {}
        for r in data["rows"]:
            by_n.setdefault(r["steps"], {})[r["arithmetic"]] = r
        for n, pair in sorted(by_n.items()):
            cells = [f"{pair[a]['overhead_percent']:+.2f}%" if a in pair else "–" for a in ("float", "portable")]
            steps.append(f"| {data['model']} | {data['images']} | {n} | {cells[0]} | **{cells[1]}** | `{os.path.basename(path)}` |")
    envs = [(os.path.basename(p), load(os.path.basename(p)))
            for p in sorted(glob.glob(os.path.join(RESULTS, "portable-envs-*.json")))]
    if not rows and not envs and not steps:
        return []
    out = ["### Portable files (`benchmarks/portable_bench.py`)", "",
           f"Coder revision {'/'.join(revs) or 6} (portable: files decode on any machine, "
           f"docs/design.md §15-17) against "
           "revision 5 (`--arithmetic float`: files decode only in the writer's environment), same first "
           "test images, one run; whole files, images/s per side (encode / decode). wW/aA: the integer "
           "network's weight / activation bits. " +
           ("Compiled twins, fused network, fused kept tables: the exact arithmetic's, the integer network's "
            "and the kept tables' compiled kernels (`bfn_codec/kernels.py`, the same bits as without them), "
            "whose speed the rows marked so show." if full else
            "The newest code paths (compiled kernels, `bfn_codec/kernels.py`: the same bits as without them); "
            "REPORT.md has the others."), "",
           "| model | images | portable revision, integer bits | float bits/pixel | portable bits/pixel | size change | "
           "float images/s | portable images/s | speed ratio | threads | file |",
           "|---|---|---|---|---|---|---|---|---|---|---|", *rows, "", *whole]
    if not full:
        return out + ["Earlier runs, the overhead against n and the checks across package versions are in "
                      "[benchmarks/results/REPORT.md](benchmarks/results/REPORT.md).", ""]
    if steps:
        out += ["The chain's bits (payload without the seed) over the trajectory cost the encoder recorded, "
                "against n, same images per row (`benchmarks/portable_steps.py`; a handful of chain items, "
                "so read the differences between n, not the last digit):", "",
                "| model | images | n | float overhead | portable (revision 6) overhead | file |",
                "|---|---|---|---|---|---|", *steps, ""]
    for name, data in envs:
        for run in data["runs"]:
            ok = all(v["decoded"] and v["same_stream"] for v in run["files"].values())
            kernels = {True: " (compiled kernels)", False: " (numpy originals)"}.get(run.get("compiled_kernels"), "")
            out.append(f"* numpy {run['numpy']}, torch {run['torch']}, constriction {run['constriction']}{kernels}: "
                       f"golden files {', '.join(sorted(run['files']))} "
                       f"{'decoded and re-encoded to the same streams' if ok else 'DIFFER: ' + json.dumps(run['files'])} "
                       f"(`benchmarks/portable_envs.py`, `{name}`)")
        out.append("")
    return out


def coder_overhead_section() -> list[str]:
    """The coder's own overhead against n per portable revision and grid ratio r
    (coder_overhead.py): exact stack growth over the ideal cost of the popped trajectories."""
    out = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "coder-overhead-*.json"))):
        data = load(os.path.basename(path))
        configs = list(dict.fromkeys((r["coder_revision"], r["r"]) for r in data["rows"]))
        cell = {(r["steps"], r["coder_revision"], r["r"]): r for r in data["rows"]}
        if not out:
            out += ["### The coder's own overhead against n (`benchmarks/coder_overhead.py`)", "",
                    "One batch of test images pushed through the chain onto a stack that already holds "
                    "enough bits: the stack's exact growth against the ideal cost of the message "
                    "trajectories the encoder popped (no header, seed or flush), per coder revision and "
                    "grid ratio r; percent, and bits per image in brackets. Revision 7 codes posteriors and "
                    "weights on their kept entries and Gaussians on +-5 std tables (docs/design.md §16); "
                    "revision 8 also gives the receiver the transition of the encoder's own paths on the "
                    "grids (§17). The same images and stack for every revision of a model, so the tables "
                    "of one model compare row by row.", ""]
        head = " | ".join(f"rev {rev}, r = {r:g}" for rev, r in configs)
        if data.get("source") == "oracle":  # its trajectories' ideal is exactly -log2 pi(x) (§13)
            who = (f"{data['data']} data, oracle source (per-pixel marginals of the training images: "
                   f"every trajectory's ideal cost is exactly -log2 pi(x))")
        else:  # the integer calibration; files before it was recorded were all at w10/a12
            bits = data.get("integer", {"weight_bits": 10, "act_bits": 12})
            who = (f"{data['model']} ({_weights_label(data.get('model_sha256'), data['model'])}, "
                   f"w{bits['weight_bits']}/a{bits['act_bits']})")
        out += [f"{who}, {data['items']} images, `{os.path.basename(path)}`:", "",
                f"| n | {head} |", "|---|" + "---|" * len(configs)]
        for n in sorted({r["steps"] for r in data["rows"]}):
            cells = []
            for rev, r in configs:
                row = cell.get((n, rev, r))
                cells.append("–" if row is None else
                             f"{row['overhead_percent']:+.3f}% ({row['overhead_bits_per_item']:.3f})")
            out.append(f"| {n} | " + " | ".join(cells) + " |")
        out.append("")
    return out


def _per_side(row: dict, key: str) -> str:
    dec = row.get(f"decode_{key}")
    return f"{row[f'encode_{key}']:.2f} / " + ("–" if dec is None else f"{dec:.2f}")


def pipelines_section() -> list[str]:
    """compress --jobs N against one process (jobs_bench.py), the chunking cost against the chunk
    size (jobs_bench.py --sweep) and Dask workers (dask_bench.py)."""
    jobs, sweep, dask, single_bytes = [], [], [], {}
    for path in sorted(glob.glob(os.path.join(RESULTS, "jobs-*.json"))):
        if os.path.basename(path).startswith("jobs-sweep-"):
            continue
        data = load(os.path.basename(path))
        s, c, q = data["single"], data["chunked"], data["ratios_chunked_over_single"]
        single_bytes[(data["model"], data["images"])] = s["bytes"]
        name = f"`{os.path.basename(path)}`"
        ratio = f"{q['encode_speed']:.2f}x / " + (f"{q['decode_speed']:.2f}x" if "decode_speed" in q else "–")
        threads = s.get("threads", data["threads"])
        jobs.append(f"| {data['model']} | {data['images']} | --jobs 1: 1 process, {threads} "
                    f"thread{'s' if threads > 1 else ''}, one file | "
                    f"{s['bits_per_value']:.4f} | {_per_side(s, 'images_per_s')} | – | {name} |")
        jobs.append(f"| {data['model']} | {data['images']} | **--jobs {c['jobs']}**: {c['chunks']} chunks of "
                    f"{c['chunk_items']}, 1 thread each | {c['bits_per_value']:.4f} "
                    f"({data['chunking_cost_percent']:+.2f}%) | "
                    f"**{_per_side(c, 'images_per_s')}** | **{ratio}** | {name} |")
        one = data.get("single_chunk_decode", {})
        if "images_per_s" in one:
            jobs.append(f"| | | chunk {one['chunk']} alone ({one['items']} items), decoded by 1 process, "
                        f"{one['threads']} thread{'s' if one['threads'] > 1 else ''} | | – / {one['images_per_s']:.2f} "
                        f"| | |")
        sweep.append((data["model"], data["images"], c, name))
    for path in sorted(glob.glob(os.path.join(RESULTS, "jobs-sweep-*.json"))):
        data = load(os.path.basename(path))
        sweep += [(data["model"], data["images"], r, f"`{os.path.basename(path)}`") for r in data["sweep"]]
    sweep_rows = []
    for model, images, r, name in sorted(sweep, key=lambda e: (e[0], e[1], e[2]["chunk_items"])):
        modes = ", ".join(f"{n} {m}" for m, n in r["chunk_modes"].items())
        base = single_bytes.get((model, images))
        cost = f"{100.0 * (r['bytes'] / base - 1.0):+.2f}%" if base else "–"
        sweep_rows.append(f"| {model} | {images} | {r['chunk_items']} | {r['chunks']} ({modes}) | "
                          f"{r['bits_per_value']:.4f} | {cost} | {name} |")
    for path in sorted(glob.glob(os.path.join(RESULTS, "dask-*.json"))):
        data = load(os.path.basename(path))
        for r in data["runs"]:
            dask.append(f"| {data['model']} | {data['images']} | {r['workers']} × 1 thread | {r['chunks']} of {r['chunk_items']} | "
                        f"{r['write_images_per_s']:.2f} / {r['read_images_per_s']:.2f} | `{os.path.basename(path)}` |")
        q = data["ratio_2_over_1_workers"]
        dask.append(f"| | | **2 over 1 worker** | | **{q['write']:.2f}x / {q['read']:.2f}x** | |")
    scaling = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "thread-scaling-*.json"))):
        data = load(os.path.basename(path))
        for model, m in data["models"].items():
            by = {}
            for row in m["calls"]:
                by.setdefault(row["batch"], {})[row["threads"]] = row["ms_per_item"]
            counts = sorted({row["threads"] for row in m["calls"]})
            for i, (B, ms) in enumerate(sorted(by.items())):
                cells = " | ".join(f"{ms[t]:.1f}" for t in counts)
                name = "" if i else f"`{os.path.basename(path)}`"  # once per model
                scaling.append((counts, f"| {model if not i else ''} | {B} | {cells} | "
                                        f"{ms[counts[0]] / ms[counts[-1]]:.2f}x | {name} |"))
    if not (jobs or dask or sweep_rows or scaling):
        return []
    out = ["### Parallel coding (`benchmarks/jobs_bench.py`, `benchmarks/dask_bench.py`)", ""]
    if jobs:
        out += ["`bfn-codec compress --jobs N` (independent chunks in N worker processes of 1 thread) against "
                "today's single file from one process, same test images, one run, the model's defaults; "
                "bits per pixel of the whole files (in brackets: the chunking cost) and images/s per side "
                "(encode / decode; – : not measured in that run), every decoded file compared.", "",
                "| model | images | how | bits/pixel | images/s | speed ratio | file |",
                "|---|---|---|---|---|---|---|", *jobs, ""]
    if scaling:
        counts = scaling[0][0]
        out += ["Why --jobs N gains little over the default single process on few cores "
                "(`benchmarks/thread_scaling.py`): milliseconds of one network call per item, against the batch "
                f"size and torch threads. The last column is what {counts[-1]} threads already give one process; "
                f"--jobs {counts[-1]} can add at most {counts[-1]} / that on {counts[-1]} cores.", "",
                "| model | batch | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}" for t in counts) +
                f" | {counts[-1]} over {counts[0]} | file |",
                "|---|---|" + "---|" * len(counts) + "---|---|", *(row for _, row in scaling), ""]
    if sweep_rows:
        out += ["What chunking costs against the chunk size (each chunk pays its own LZMA2 seed), same images, "
                "against the single file of the run above:", "",
                "| model | images | chunk items | chunks | bits/pixel | cost | file |",
                "|---|---|---|---|---|---|---|", *sweep_rows, ""]
    if dask:
        out += ["Zarr through Dask (`bfn_codec.pipelines.write_zarr` / `read_zarr`) on a `LocalCluster`, "
                "the bundled sample images; images/s written / read:", "",
                "| model | images | workers | chunks | images/s | file |", "|---|---|---|---|---|---|", *dask, ""]
    return out


def chain_speed_lines() -> list[str]:
    """The chain's speed on photographs (image_bench.py --mode bfn: every tile through the BFN
    stream) and what a 12-megapixel RGB photograph costs at that speed."""
    out = []
    for path in results_of("images", "photos"):
        d = load(os.path.basename(path))
        if d["mode"] != "bfn":
            continue
        rows = d["images"]
        values = sum(r["width"] * r["height"] * r["channels"] for r in rows)
        enc = values / sum(r["encode_s"] for r in rows)
        dec = values / sum(r["decode_s"] for r in rows)
        hours = [36e6 / v / 3600 for v in (enc, dec)]
        names = ", ".join(r["file"] for r in rows)
        out += [f"Speed of the BFN stream at the default n (bundled 8-bit model, each channel a grey image; "
                f"{d['threads']} threads, mode bfn: every tile through the chain, {names}): "
                f"**{enc:,.0f} values/s encoding, {dec:,.0f} decoding**, peak RSS "
                f"{d['peak_rss_mb']:,.0f} MB; so a 12-megapixel RGB photograph (36 M values) takes about "
                f"{hours[0]:.0f} h to encode and {hours[1]:.0f} h to decode on this CPU "
                f"(`{os.path.basename(path)}`; docs/images.md says what would bring it down).", ""]
    return out


def images_section(full: bool = True) -> list[str]:
    """Held-out photographs against the classical image codecs (image_bench.py), 28x28 tiles of
    them with the bundled 8-bit model (image_bench.py --tiles), and in the report the tiling
    comparison (tiling_vs_conv.py) and large-image memory (image_memory.py)."""
    out = []
    for path in results_of("images", "photos"):
        data = load(os.path.basename(path))
        if not full and data["mode"] != "auto":  # the README: what users get; speed runs below
            continue
        codecs = list(next(iter(data["summary"].values()))["classical_bits_per_value"])
        shown = codecs if full else [c for c in codecs if c.startswith(("PNG", "WebP")) or "max" in c]
        used = {}  # model -> kinds of image it coded (the rows record it; older files do not)
        for r in data["images"]:
            if "model" in r:
                used.setdefault(r["model"], set()).add("colour" if r["channels"] == 3 else "grey")
        model = (", ".join(f"{m} ({' and '.join(sorted(k))})" for m, k in sorted(used.items())) if used else
                 data.get("rgb_model") or data.get("model") or "the bundled (Fashion-MNIST) models")
        out += [f"### Photographs (`benchmarks/image_bench.py`, mode {data['mode']})", "",
                "Bits per value (pixel × channel) of whole files, 15 held-out photographs of "
                "`lomiri-wallpapers-16.04` (`benchmarks/photo_data.py`; large: the 1024×768 centre), every "
                f"stream decoded and compared; bfn-codec with {model} at their default n, and how many "
                "images kept each of its streams. "
                + ("" if full else "Every codec's column is in REPORT.md. ") + f"File: `{os.path.basename(path)}`.", "",
                "| images | bfn-codec (kept: bfn / png / webp) | " + " | ".join(shown) + " |",
                "|---|---|" + "---|" * len(shown)]
        for key, g in data["summary"].items():
            best = min(g["classical_bits_per_value"].values())
            cells = [f"**{g['classical_bits_per_value'][c]:.3f}**" if g["classical_bits_per_value"][c] == best
                     else f"{g['classical_bits_per_value'][c]:.3f}" for c in shown]
            kept = " / ".join(str(g["streams"].get(k, 0)) for k in ("bfn", "png", "webp"))
            out.append(f"| {g['images']} × {key} | {g['bfn_bits_per_value']:.3f} ({kept}) | " + " | ".join(cells) + " |")
        out.append("")
        if full:
            speeds = "; ".join(f"{key} {g['encode_values_per_s']:,.0f} / {g['decode_values_per_s']:,.0f}"
                               for key, g in data["summary"].items())
            out += [f"bfn-codec values/s per side (encode / decode, {data['threads']} threads, the classical "
                    f"streams' time included): {speeds}.", ""]
    if full:  # the README keeps the table; speed and memory are in REPORT.md
        out += chain_speed_lines()
    for path in results_of("images", "tiles") if full else []:  # REPORT.md only
        t = load(os.path.basename(path))
        out += [f"28×28 grey tiles of the same photographs, {t['tiles']} of them as one array, bundled "
                f"`{t['model']}` model, mode {t['mode']}: **{t['bytes']:,} bytes** (kept: {t['kept']}) against "
                f"{t['png_bytes']:,} for one optimised PNG and {t['webp_bytes']:,} for lossless WebP of the "
                f"same tiles: {t['over_best_fallback_bytes']:+,} bytes over the better one (`{os.path.basename(path)}`).", ""]
    if not full:
        return out
    for path in results_of("tiling-vs-conv", "8bit"):
        d = load(os.path.basename(path))
        out += ["### Tiles or one convolutional pass (`benchmarks/tiling_vs_conv.py`)", "",
                f"The bundled 8-bit U-Net (n = {d['steps']}, p = {d['grid_power']:g}) on the same pixels: as 28×28 "
                "tiles (what bfn-codec codes) or as one whole-image item; L^n + L^r in bits/pixel (every step, "
                f"two message draws). File: `{os.path.basename(path)}`.", "",
                "| images | tiles | whole image | whole − tiles (± s.e.) |", "|---|---|---|---|"]
        for key in ("fmnist", "photos"):
            if key in d:
                r = d[key]
                se = f" ± {r['stderr']:.3f}" if r.get("stderr") is not None else ""
                out.append(f"| {r['images']} × {r['height']}×{r['width']} {key} | {r['tiles_bits_per_pixel']:.3f} | "
                           f"{r['whole_bits_per_pixel']:.3f} | {r['whole_minus_tiles_bits_per_pixel']:+.3f}{se} |")
        calls = "; ".join(f"{k}: {v * 1000:.0f} ms" for k, v in d["call_seconds"].items())
        out += ["", f"One network call on the same 50,176 pixels: {calls}.", ""]
    for path in results_of("image-memory", "8bit"):
        d = load(os.path.basename(path))
        batch = f", effective batch {d['effective_batch']}" if "effective_batch" in d else ""
        out += [f"### Large images (`benchmarks/image_memory.py`, n = {d['steps']}, --batch-size {d['batch_size']}"
                f"{batch}, {d['threads']} threads)", "",
                "Each side a child process, mode bfn (the chain over every tile), the decoded image compared. "
                f"File: `{os.path.basename(path)}`.", "",
                "| image | values | bits/value | encode s | decode s | encode peak RSS | decode peak RSS |",
                "|---|---|---|---|---|---|---|"]
        for name, r in d["cases"].items():
            out.append(f"| {name} | {r['values']:,} | {r['bits_per_value']:.3f} | {r['encode_s']:.0f} | "
                       f"{r['decode_s']:.0f} | {r['encode_peak_rss_mb']:,.0f} MB | {r['decode_peak_rss_mb']:,.0f} MB |")
        out.append("")
    return out


TEXT_TOOLS = ["gzip -9", "bzip2 -9", "xz -9e", "zstd --ultra -22", "brotli -q 11", "PPMd (7z -m0=PPMd -mx=9)",
              "zpaq -m5"]


def _text_row(r: dict, tools: list, full: bool, label: str) -> str:
    vals = {t: r["classical"][t].get("bits_per_byte") for t in tools}
    best = min(v for v in vals.values() if v is not None)
    cells = ["-" if vals[t] is None else (f"**{vals[t]:.3f}**" if vals[t] == best else f"{vals[t]:.3f}") for t in tools]
    head = r["classical_head"]
    return (f"| {label} | {r['bytes']:,} | {r['auto']['bits_per_byte']:.3f} ({r['auto']['stream']}) | " + " | ".join(cells)
            + f" | {r['bfn_head']['bits_per_byte']:.3f} / {r['model_head']['Ln_plus_Lr_bits_per_byte']:.3f}"
            f" / {head['gzip -9']['bits_per_byte']:.3f} / {head['xz -9e']['bits_per_byte']:.3f} |"
            + (f" {r['bfn_head']['encode_bytes_per_s']:,.0f} / {r['bfn_head']['decode_bytes_per_s']:,.0f} |" if full else ""))


def text_section(full: bool = True) -> list[str]:
    """Any file (text_bench.py): bfn-codec at defaults and the byte model's (or the text8-style
    model's) own stream and loss against the general-purpose compressors; in the report also L^n
    against n (steps_curve.py on held-out text) for both models and the two byte alphabets
    (byte_alphabets.py). The README gets one table of every model's rows."""
    out = []
    tools = TEXT_TOOLS if full else TEXT_TOOLS[:3]
    results = [load(os.path.basename(path)) | {"_file": os.path.basename(path)} for path in results_of("text", "files")]
    results.sort(key=lambda d: d["model"] != "text-bytes")  # the byte model first
    groups = [[d] for d in results] if full else ([results] if results else [])
    for group in groups:
        head_kb = group[0]["rows"][0]["head_bytes"] // 1024 if group[0]["rows"] else 0
        models = ", ".join(f"{d['model']} {d.get('weights8', '')}" for d in group)
        files = ", ".join(f"`{d['_file']}`" for d in group)
        caption = ("Bits per byte (one character is one byte), every byte of each compressed file counted, every "
                   "result decoded and compared. bfn-codec at defaults keeps the smallest of the model's BFN stream, "
                   "LZMA2 and the stored bytes; the model's own stream (mode bfn) and its L^n + L^r are on each "
                   f"file's first {head_kb} KB, next to gzip -9 and xz -9e on the same bytes. " if full else
                   f"Bits per byte of held-out files; the model's own stream on the first {head_kb} KB. "
                   "Every tool, and speeds, in REPORT.md. ")
        out += [f"### Text and any file (`benchmarks/text_bench.py`, model {models})", "",
                caption + f"File{'s' if len(group) > 1 else ''}: {files}.", "",
                "| file | bytes | bfn-codec (stream) | " + " | ".join(tools) +
                f" | first {head_kb} KB: bfn stream / L^n+L^r / gzip / xz |" + (" bfn stream B/s enc / dec |" if full else ""),
                "|---|---|---|" + "---|" * len(tools) + "---|" + ("---|" if full else "")]
        for d in group:
            for r in d["rows"]:
                label = os.path.basename(r["file"]) + (f" ({d['model']})" if len(group) > 1 else "")
                out.append(_text_row(r, tools, full, label))
        out.append("")
    if not full:
        return out
    # curve-text-*: the byte model (bits/dim x 8 = bits/byte); curve-text8-*: the text8-style model (bits/char)
    for data, per_unit, what, unit in (("text", 8, "The byte model", "byte"), ("text8", 1, "The text8-style model", "character")):
        for path in results_of("curve", data):
            d = load(os.path.basename(path))
            k = per_unit
            rows = [f"| {r['steps']} | {k * r['loss_bits_per_dim']:.3f} ± {k * r['loss_stderr']:.3f} | "
                    + (f"{r['chain_items']} | {k * r['chain_bits_per_dim']:.3f} | {k * r['trajectory_bits_per_dim']:.3f} | "
                       f"{r['chain_overhead_percent']:+.2f}% |" if r.get("chain_overhead_percent") is not None
                       else "- | - | - | - |")
                    for r in d["curve"]]
            out += [f"### {what} against n (`benchmarks/steps_curve.py`, {d['items']} held-out windows)", "",
                    f"L^n + L^r in bits per {unit} on the time grid t_i = (i/n)^{d['grid_power']:g}; the chain on the first "
                    f"{d['code_items']} windows" + (f" (for n up to {d['code_max_steps']})" if d.get("code_max_steps") else "")
                    + f": its bits per {unit} and the ideal cost of the trajectories it coded, leaving out the windows "
                    "of its LZMA2 seed. "
                    f"L^inf: {k * d['infinity_bits_per_dim']:.3f} ± {k * d['infinity_stderr']:.3f}. File: `{os.path.basename(path)}`.", "",
                    "| n | L^n + L^r | windows in the chain | chain | trajectories | chain overhead |",
                    "|---|---|---|---|---|---|", *rows, ""]
    for path in results_of("roundtrip", "text"):
        d = load(os.path.basename(path))
        out += [f"### A large file through the chain (`benchmarks/big_roundtrip.py`, model {d['model']} {d['weights8']})", "",
                f"{d['bytes']:,} bytes of held-out text in mode bfn, decoded and compared: "
                f"{'exact' if d['round_trip_exact'] else 'WRONG'}; {d['file_bytes']:,} bytes ({d['bits_per_byte']:.3f} bits/byte), "
                f"{d['seed_windows']:,} of its {d['windows']:,} windows in the LZMA2 seed; encode {d['encode_bytes_per_s']:,.0f} B/s, "
                f"decode {d['decode_bytes_per_s']:,.0f} B/s on {d['threads']} threads. File: `{os.path.basename(path)}`.", ""]
    if os.path.exists(os.path.join(RESULTS, "byte-alphabets.json")):
        d = load("byte-alphabets.json")
        rows = [f"| {r['alphabet']} | {r['chain_encode_bytes_per_s']:,.0f} | {r['deficit_bits_per_window']:,.0f} | "
                f"{r['net_bits_per_byte']:.3f} |" for r in d["rows"]]
        out += [f"### Bytes as one K = 256 variable or 8 binary ones (`benchmarks/byte_alphabets.py`, n = {d['steps']})", "",
                "The chain alone (no network: each alphabet's oracle model), on the same held-out bytes: encode speed, "
                "the bits the chain borrows per 256-byte window before bits-back returns them (what its LZMA2 seed "
                "must hold), and each oracle's rate (different models: not a comparison of alphabets).", "",
                "| alphabet | chain encode B/s | seed bits per window | oracle bits/byte |", "|---|---|---|---|", *rows, ""]
    if os.path.exists(os.path.join(RESULTS, "byte-alphabet-rates-text.json")):
        d = load("byte-alphabet-rates-text.json")
        rows = [f"| {r['alphabet']} (K = {r['flow']['K']}, beta(1) = {r['flow']['beta1']:g}) | {r['parameters']:,} | "
                f"{r['steps']:,} | {r['linf_bits_per_byte']:.3f} ± {r['linf_stderr']:.3f} | "
                f"{r['ln_plus_lr_bits_per_byte']:.3f} ± {r['ln_plus_lr_stderr']:.3f} |" for r in d["rows"]]
        n = d["rows"][0]
        out += ["### Bytes as one K = 256 variable or 8 binary ones: trained networks (`benchmarks/byte_alphabet_rates.py`)", "",
                f"Each alphabet trained from scratch with L^inf for {d['minutes']:g} minutes on {d['threads']} thread(s) "
                f"(batch {d['batch_size']}, lr {d['lr']:g}, the bundled byte model's U-Net trunk) on the byte model's "
                f"training split, then evaluated on the first {n['heldout_windows']} windows of the held-out manual: "
                f"bits per byte, L^n + L^r at n = {n['n']} on the grid t_i = (i/n)^{n['grid_power']:g}. "
                f"Per window: L^inf over {d['linf_repeats']} draws of t, L^n + L^r over {d['repeats']} draws; ± is the "
                "standard error over windows. A short run: which parametrisation learns faster on the CPU, not where "
                "either ends. File: `byte-alphabet-rates-text.json`.", "",
                "| alphabet | parameters | optimiser steps | L^inf | L^n + L^r |", "|---|---|---|---|---|", *rows, ""]
        if "byte256_minus_binary" in d:
            diff = d["byte256_minus_binary"]
            out += [f"K = 256 minus binary, window by window (paired): L^inf {diff['linf']['bits_per_byte']:+.3f} ± "
                    f"{diff['linf']['stderr']:.3f}, L^n + L^r {diff['ln_plus_lr']['bits_per_byte']:+.3f} ± "
                    f"{diff['ln_plus_lr']['stderr']:.3f} bits/byte.", ""]
    for path in results_of("context-reach", "text"):
        d = load(os.path.basename(path))
        rows = [f"| {r['context_bytes']:,} | {r['bits_per_byte']:.3f} |" for r in d["rows"]]
        out += [f"### What a compressor gains from the bytes before a window (`benchmarks/context_reach.py`)", "",
                f"{d['compressor']} on the first {d['bytes']:,} bytes of `{os.path.basename(d['file'])}`, each "
                f"{d['window']}-byte window coded with the bytes before it as a preset dictionary (known to the "
                f"decoder); the whole prefix in one stream: {d['whole_bits_per_byte']:.3f} bits/byte. A window coded "
                "alone pays deflate's block overhead: read the differences between rows. The byte model codes "
                f"each window alone (the first row's setting). File: `{os.path.basename(path)}`.", "",
                "| context (bytes) | bits/byte |", "|---|---|", *rows, ""]
    return out


def fuzz_section() -> list[str]:
    lines = []
    for path in sorted(glob.glob(os.path.join(RESULTS, "fuzz-*.json"))):
        data = load(os.path.basename(path))
        lines.append(f"`{os.path.basename(path)}`: {data['cases']} mutated files (seed {data['seed']}), "
                     f"{data['failures']} failures, {data['cases_per_second']:.0f} cases/s.")
    if not lines:
        return []
    return ["### Decoder fuzzing (`benchmarks/fuzz.py`)", "", *lines, ""]


def report_text() -> str:
    """benchmarks/results/REPORT.md: every section."""
    doc = "benchmarks/results"
    shipped = ", ".join(f"{m} {weights8(_shipped_weights(m) or 'unknown')}" for m in TARGETS)
    head = ["# Benchmark results", "",
            "<!-- generated by benchmarks/report.py from the JSON files in this folder; do not edit -->", "",
            "Generated by `benchmarks/report.py` from the JSON files in this folder (not from `archive/`); "
            f"the commands that wrote each file are in [benchmarks/README.md]({link('benchmarks/README.md', doc)}). "
            f"The bundled weights: {shipped}. Tables of other weights say so.", ""]
    sections = [*headline_section(), *portable_section(), *integer_speed_section(), *piece_bounds_section(), *coder_overhead_section(), *small_files_section(doc), *small_files_steps_section(),
                *compare_section(doc), *curve_section(), *finetune_section(), *codec_section(),
                *r_scan_section(), *tail_scan_section(), *support_floor_section(), *integer_ptq_section(), *throughput_section(), *classical_section(),
                *pipelines_section(), *images_section(), *text_section(), *fuzz_section()]
    sections = ["## " + line[4:] if line.startswith("### ") else line for line in sections]  # ## in its own file
    return "\n".join(head + sections).rstrip("\n") + "\n"


def readme_block() -> str:
    """README.md between the markers: the headline, the small-files table, one plot, links."""
    body = [START, "", *headline_section(), *portable_section(full=False), *images_section(full=False),
            *text_section(full=False)]
    if os.path.exists(os.path.join(RESULTS, BITS_PLOT)):
        body += [f"![bits per pixel](benchmarks/results/{BITS_PLOT})", ""]
    body += ["Everything else (every classical codec, steps curves, the coder against the model's loss, "
             "speeds, memory, fuzzing) is in [benchmarks/results/REPORT.md](benchmarks/results/REPORT.md).", "", END]
    return "\n".join(body)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def benchmarks_readme() -> str:
    """benchmarks/README.md: the template with the provenance tables of results/ and archive/.
    A file in results/ without a recorded command is listed as such, never silently left out."""
    book = json.load(open(COMMANDS))
    rows = ["| file | weights / coder | command |", "|---|---|---|"]
    listed = set()
    for key, e in book["results"].items():
        files = [f.strip() for f in key.split(",")]
        if not any(os.path.exists(os.path.join(RESULTS, f)) for f in files):
            continue  # moved to the archive or deleted since
        listed.update(files)
        how = f"`{e['command']}`" if "command" in e else e.get("note", "")
        if "command" in e and "note" in e:
            how += " " + e["note"]
        rows.append(f"| {', '.join(f'`{f}`' for f in files)} | {_cell(e.get('weights', '-'))} | {how} |")
    for f in sorted(os.listdir(RESULTS)):
        if f not in listed and not os.path.isdir(os.path.join(RESULTS, f)):
            rows.append(f"| `{f}` | - | no command recorded in benchmarks/commands.json |")
    archive_dir = os.path.join(RESULTS, "archive")
    arows = ["| file | what | weights, coder revision | replaced by |", "|---|---|---|---|"]
    for key, e in book.get("archive", {}).items():
        files = [f.strip() for f in key.split(",")]
        if any(os.path.exists(os.path.join(archive_dir, f)) for f in files):
            arows.append(f"| {', '.join(f'`{f}`' for f in files)} | {e['what']} | {e['weights']} | {e['replaced_by']} |")
    bundled = " and ".join(f"**{m} {weights8(_shipped_weights(m) or 'unknown')}**" for m in TARGETS)
    text = open(BENCH_TEMPLATE).read()
    text = text[text.index("-->") + 4:] if text.startswith("<!--") else text
    text = text.replace("{results_table}", "\n".join(rows)).replace("{archive_table}", "\n".join(arows))
    return text.replace("{bundled_weights}", bundled)


def outputs() -> dict:
    """Every file report.py writes, with its new content."""
    block = readme_block()
    text = open(README).read()
    if START in text:
        text = text[: text.index(START)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    return {REPORT: report_text(), README: text, BENCH_README: benchmarks_readme()}


def main(argv=None):
    import sys

    check = "--check" in (sys.argv[1:] if argv is None else argv)
    stale = []
    for path, text in outputs().items():
        old = open(path).read() if os.path.exists(path) else None
        if check:
            if old != text:
                stale.append(os.path.relpath(path))
            continue
        with open(path, "w") as f:
            f.write(text)
        print(f"{os.path.relpath(path)}: {len(text.encode())} bytes")
    if stale:
        print("out of date (run python3 benchmarks/report.py): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
