"""Regenerate the README's Results section from the JSON files in benchmarks/results/.

    python benchmarks/report.py            # rewrites README.md between the result markers

Nothing in the section is typed by hand: every number comes from a JSON file written by
codec_bench.py, r_scan.py, fuzz.py or classical.py.
"""
from __future__ import annotations

import glob
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
README = os.path.join(HERE, "..", "README.md")
START, END = "<!-- results:start -->", "<!-- results:end -->"


def load(name):
    path = os.path.join(HERE, "results", name)
    return json.load(open(path)) if os.path.exists(path) else None


def codec_section() -> list[str]:
    rows = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(HERE, "results", "codec-*.json")))]
    if not rows:
        return []
    out = ["### Coder against the model's own loss (`benchmarks/codec_bench.py`)", "",
           "Everything in the file counted (header, LZMA2 seed, ANS words, CRC). Model = L^n + L^r "
           "of the same model on the same items, all n steps evaluated.", "",
           "| model | items | n | r | file bits/dim | model bits/dim | overhead | encode s (network / coder) | decode s (network / coder) | batches (largest) |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['model']} | {r['items']} | {r['steps']} | {r['r']:g} | {r['achieved_bits_per_dim']:.4f} | "
                   f"{r['model_bits_per_dim']:.4f} ± {r['model_stderr_bits_per_dim']:.4f} | "
                   f"{r['overhead_percent']:+.2f}% | {r['encode_seconds']:.0f} ({r['encode_network_seconds']:.0f} / "
                   f"{r['encode_coder_seconds']:.0f}) | {r['decode_seconds']:.0f} ({r['decode_network_seconds']:.0f} / "
                   f"{r['decode_coder_seconds']:.0f}) | {r['batches']} ({r['largest_batch']}) |")
    out.append("")
    return out


def r_scan_section() -> list[str]:
    rows = load("r_scan.json")
    if not rows:
        return []
    out = ["### Grid ratio r (`benchmarks/r_scan.py`, oracle source, chain bits only)", "",
           "| data | n | " + " | ".join(f"r={r:g}" for r in sorted({x['r'] for x in rows})) + " |",
           "|---|---|" + "---|" * len({x['r'] for x in rows})]
    for kind in sorted({x["kind"] for x in rows}):
        for n in sorted({x["steps"] for x in rows if x["kind"] == kind}):
            cells = {x["r"]: x["overhead_percent"] for x in rows if x["kind"] == kind and x["steps"] == n}
            out.append(f"| {kind} | {n} | " + " | ".join(f"{cells[r]:+.2f}%" if r in cells else "" for r in sorted({x['r'] for x in rows})) + " |")
    out.append("")
    return out


def classical_section() -> list[str]:
    data = load("classical.json")
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


def fuzz_section() -> list[str]:
    data = load("fuzz.json")
    if not data:
        return []
    return ["### Decoder fuzzing (`benchmarks/fuzz.py`)", "",
            f"{data['cases']} mutated files, {data['failures']} failures, {data['cases_per_second']:.0f} cases/s.", ""]


def main():
    body = [START, "", *codec_section(), *r_scan_section(), *classical_section(), *fuzz_section(), END]
    text = open(README).read()
    if START in text:
        text = text[: text.index(START)] + "\n".join(body) + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + "\n".join(body) + "\n"
    open(README, "w").write(text)
    print("\n".join(body))


if __name__ == "__main__":
    main()
