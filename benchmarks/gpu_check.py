"""Portable bitstreams across devices (issue #20): files written with ``--device cuda`` decode on
the CPU and the reverse, on the bundled models, and the integer network gives the same integers
on the GPU as on the CPU on every kernel path.

    BFN_FMNIST_DIR=DIR python3 benchmarks/gpu_check.py --out DIR [--limit 64] [--budget 480]

Run on a machine with a CUDA GPU (CI has none: there the CPU paths of tests/test_portable.py are
the proof; this script checks that the GPU agrees by construction). Steps, each recorded with
its result or its error, in order of importance, stopping when ``--budget`` seconds are spent:

1. ``integers``: every bundled model's integer network on random inputs at several batch sizes
   and times, CPU against CUDA, for the default kernel and each other one (float64 conv2d,
   unfold + matmul, float32 pieces with TF32 off); the CUDA kernels that ran are listed from the
   profiler (so the record says which algorithms ran, not which we assumed).
2. ``images``: ``--limit`` Fashion-MNIST test images per image model (fmnist-binary, fmnist)
   compressed on each device at the defaults; the two payloads must be identical (the header
   differs only in the 4-byte environment digest, which names the device); each file decoded on
   the other device and checked against the images. Speeds per side and device.
3. ``bytes``: the same for a text file through text-bytes and a text8-style one through
   text8-chars, and an RGB array through photo-rgb.
4. ``rate``: if the time left allows, ``--rate-images`` binarised test images encoded with the
   GPU (one stream at the defaults) and written to the output folder, to be decoded elsewhere
   (``benchmarks/codec_bench.py --decode-from``-style: the file and the images' checksum).

Writes DIR/gpu-check.json and the files it encoded (DIR/*.bfn) so they can be decoded on
another machine.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
import traceback

import numpy as np

# cuBLAS is deterministic under torch.use_deterministic_algorithms only with a fixed workspace,
# which must be set before CUDA starts (the unfold kernel's float64 products)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bfn_codec import api, container  # noqa: E402
from bfn_codec.data import binarise, load_fmnist  # noqa: E402
from bfn_codec.models import load_model, portable_model  # noqa: E402

OTHER = "cuda"  # the device checked against the CPU (--other cpu: a dry run of this script)


def _tag(dev: str) -> str:
    return "cuda" if dev == OTHER and dev != "cpu" else ("other" if dev == OTHER else "cpu")


MODELS = ("fmnist-binary", "fmnist", "text-bytes", "text8-chars", "photo-rgb")


def _digest(out: torch.Tensor) -> str:
    return hashlib.sha256(out.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def integers(record: dict) -> None:
    """CPU against CUDA, every kernel, on each bundled model's integer network."""
    torch.backends.cudnn.allow_tf32 = False  # the float32 pieces need full float32 products
    torch.backends.cuda.matmul.allow_tf32 = False
    g = torch.Generator().manual_seed(0)
    for name in MODELS:
        cpu, gpu = portable_model(load_model(name)), portable_model(load_model(name, device=OTHER))
        net = cpu.inet.net
        channels = net.conv_in.in_channels // net.unshuffle ** 2
        _, H, W = cpu.shape
        rows = []
        for batch in (1, 7, 64):
            x = torch.rand(batch, channels, H, W, generator=g, dtype=torch.float64) * 2 - 1
            t = torch.rand(batch, generator=g, dtype=torch.float64)
            with torch.inference_mode():
                ref = cpu.inet(x, t)
                row = {"batch": batch, "cpu": _digest(ref)}
                for kernel in ("auto", "conv2d", "unfold", "split", "float32"):
                    gpu.inet.kernel = kernel
                    out = gpu.inet(x.to(OTHER), t)
                    row[kernel] = bool(torch.equal(out.cpu(), ref))
                gpu.inet.kernel = "auto"
            rows.append(row)
        kernels = []
        if OTHER == "cuda":
            from torch.profiler import ProfilerActivity, profile

            x = torch.rand(32, channels, H, W, generator=g, dtype=torch.float64) * 2 - 1
            with torch.inference_mode(), profile(activities=[ProfilerActivity.CUDA]) as prof:
                gpu.inet(x.cuda(), torch.rand(32, generator=g, dtype=torch.float64))
                torch.cuda.synchronize()
            kernels = sorted({e.key for e in prof.key_averages() if any(
                w in e.key.lower() for w in ("conv", "gemm", "cudnn", "cutlass", "winograd", "fft"))})
        record[name] = {"rows": rows, "all_equal": all(all(v for k, v in r.items() if isinstance(v, bool)) for r in rows),
                        "conv_kernels_default": kernels[:40]}
        print(name, "integers equal on every kernel:", record[name]["all_equal"], flush=True)


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _payload(blob: bytes) -> bytes:
    return container.read(blob)[1]


def _differing_bytes(a: bytes, b: bytes) -> int | None:
    """How many bytes two files of one length differ in (None: lengths differ). Files of the
    same data from two devices differ only in the environment digest (4 bytes, it names the
    device) and the checksums over the header that hold it."""
    if len(a) != len(b):
        return None
    return int(np.count_nonzero(np.frombuffer(a, np.uint8) != np.frombuffer(b, np.uint8)))


def _both_ways(row: dict, encode, decode, same, size: int = 0, unit: str = "") -> dict:
    """Encode on the CPU and on the other device (``encode(device)`` -> file), decode each file on
    the other one (``decode(file, device)``, checked by ``same``); records sizes, differing bytes
    and, with a ``unit``, ``size`` / seconds per side and device. Returns the files by device."""
    blobs = {}
    for dev in ("cpu", OTHER):
        blobs[dev], sec = _timed(lambda: encode(dev))
        if unit:
            row[f"encode_{_tag(dev)}_{unit}_per_s"] = size / sec
    row["bytes"] = {d: len(b) for d, b in blobs.items()}
    row["differing_bytes"] = _differing_bytes(blobs["cpu"], blobs[OTHER])
    for written, read in ((OTHER, "cpu"), ("cpu", OTHER)):
        y, sec = _timed(lambda: decode(blobs[written], read))
        row[f"{_tag(written)}_file_decoded_on_{_tag(read)}"] = bool(same(y))
        if unit:
            row[f"decode_{_tag(read)}_{unit}_per_s"] = size / sec
    return blobs


def _decode_array(blob: bytes, device: str) -> np.ndarray:
    return api.decompress(blob, device=device)


def images(record: dict, limit: int, out_dir: str) -> None:
    x8 = load_fmnist("test")[:limit]
    for name, x in (("fmnist-binary", binarise(x8)), ("fmnist", x8)):
        row = {"images": len(x)}
        blobs = _both_ways(row, lambda dev: api.compress(x, name, mode="bfn", device=dev), _decode_array,
                           lambda y: np.array_equal(y, x), len(x), "images")
        row["coder_revision"] = api.read_header(blobs[OTHER]).coder_revision
        row["payloads_identical"] = _payload(blobs["cpu"]) == _payload(blobs[OTHER])
        with open(os.path.join(out_dir, f"gpu-{name}-{len(x)}.bfn"), "wb") as f:
            f.write(blobs[OTHER])
        record[name] = row
        print(name, row, flush=True)


def _bytes_case(name: str, data: bytes, record: dict, out_dir: str) -> None:
    row = {"bytes_in": len(data)}

    def encode(dev):
        blob, info = api.compress_bytes(data, name, mode="bfn", device=dev)
        row["stream"] = {k: v for k, v in info.items() if isinstance(v, (int, float, str))}
        return blob

    blobs = _both_ways(row, encode, lambda blob, dev: api.decompress_bytes(blob, device=dev)[1],
                       lambda y: y == data, len(data), "bytes")
    with open(os.path.join(out_dir, f"gpu-{name}.bfn"), "wb") as f:
        f.write(blobs[OTHER])
    record[name] = row
    print(name, row, flush=True)


def _text() -> bytes:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    text = b""
    for doc in ("design.md", "format.md", "training.md"):  # 32 KB: enough windows for the chain
        with open(os.path.join(root, "docs", doc), "rb") as f:
            text += f.read()
    return text[:32768]


def _text8(text: bytes) -> bytes:
    return bytes(c if (97 <= c <= 122 or c == 32) else 32 for c in text.lower())


def byte_models(record: dict, out_dir: str) -> None:
    text = _text()
    record["text_sha256"] = hashlib.sha256(text).hexdigest()
    _bytes_case("text-bytes", text, record, out_dir)
    _bytes_case("text8-chars", _text8(text), record, out_dir)
    rgb = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    rgb = np.sort(rgb, axis=2)  # some structure
    row = {}
    _both_ways(row, lambda dev: api.compress(rgb, "photo-rgb", mode="bfn", device=dev), _decode_array,
               lambda y: np.array_equal(y, rgb))
    record["photo-rgb"] = row
    print("photo-rgb", row, flush=True)


def photo_speed(record: dict, size: int) -> None:
    """One RGB photograph of size x size through photo-rgb (mode bfn) on each device: values/s
    per side, each file decoded on the other device. scikit-image's astronaut where it is
    installed (a speed measurement: the colour model is evaluated on other photographs)."""
    try:
        from skimage import data as skdata

        rgb, source = np.ascontiguousarray(skdata.astronaut()[:size, :size]), "skimage astronaut"
    except ImportError:
        yy, xx = np.mgrid[:size, :size]
        rgb = np.stack([(xx + yy) % 256, (2 * xx) % 256, (3 * yy) % 256], -1).astype(np.uint8)
        source = "synthetic ramps"
    record.update({"image": f"{source}, {rgb.shape[0]}x{rgb.shape[1]} RGB", "values": int(rgb.size)})
    blobs = _both_ways(record, lambda dev: api.compress(rgb, "photo-rgb", mode="bfn", device=dev),
                       _decode_array, lambda y: np.array_equal(y, rgb), rgb.size, "values")
    record["bits_per_value"] = 8 * len(blobs["cpu"]) / rgb.size
    print("photo speed", record, flush=True)


def rate(record: dict, images: int, out_dir: str, seconds_left: float, gpu_speed: float | None) -> None:
    if not gpu_speed or images / gpu_speed > 0.9 * seconds_left:
        record["skipped"] = f"{images} images at {gpu_speed} images/s do not fit {seconds_left:.0f} s"
        return
    x = binarise(load_fmnist("test")[:images])
    (blob, stats), sec = _timed(lambda: api.compress_with_stats(x, "fmnist-binary", mode="bfn", device=OTHER))
    path = os.path.join(out_dir, f"gpu-rate-binary-{images}.bfn")
    with open(path, "wb") as f:
        f.write(blob)
    record.update({"images": images, "bytes": len(blob), "bits_per_pixel": 8 * len(blob) / x.size,
                   "encode_seconds": sec, "images_sha256": hashlib.sha256(x.tobytes()).hexdigest(),
                   "file": os.path.basename(path)})
    print("rate", record, flush=True)


def decode_here(folder: str, threads: int) -> dict:
    """Decode the files a device run wrote into ``folder`` on this machine (its CPU, its package
    versions) and check them: the images against the test set, the texts against their SHA-256
    and the check's own text (every file also carries its data's checksum)."""
    torch.set_num_threads(threads)
    with open(os.path.join(folder, "gpu-check.json")) as f:
        run = json.load(f)
    res = {"written_with": {k: v for k, v in run.items() if k != "steps"}, "torch": torch.__version__,
           "numpy": np.__version__, "python": platform.python_version(), "threads": threads, "files": {}}
    x8 = load_fmnist("test")
    texts = {"text-bytes": _text(), "text8-chars": _text8(_text())}
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".bfn"):
            continue
        with open(os.path.join(folder, name), "rb") as f:
            blob = f.read()
        t0 = time.perf_counter()
        if name.startswith("gpu-text"):
            key = name[len("gpu-"):-len(".bfn")]
            _, y = api.decompress_bytes(blob)
            recorded = run["steps"]["bytes"].get("text_sha256")
            if y == texts[key]:
                ok = True
            elif recorded not in (None, hashlib.sha256(texts[key]).hexdigest()):
                ok = "decoded (checksum verified); the check's text changed since"
            else:
                ok = False
        else:
            y = api.decompress(blob)
            x = x8[:len(y)]
            ok = bool(np.array_equal(y, binarise(x) if "binary" in name else x))
        res["files"][name] = {"bytes": len(blob), "identical": ok, "seconds": time.perf_counter() - t0}
        print(name, res["files"][name], flush=True)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder of the check's JSON and files (with --decode-here: a JSON file)")
    ap.add_argument("--limit", type=int, default=64, help="test images per image model")
    ap.add_argument("--budget", type=float, default=480.0, help="seconds; later steps are skipped past it")
    ap.add_argument("--rate-images", type=int, default=10000)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (the coder's side)")
    ap.add_argument("--only", default=None, help="comma-separated steps to run (integers, images, bytes, "
                    "photo_speed, rate); default all but photo_speed")
    ap.add_argument("--photo-size", type=int, default=256)
    ap.add_argument("--other", default="cuda", help="the device checked against the CPU (cpu: a dry run)")
    ap.add_argument("--decode-here", metavar="DIR", help="decode a device run's files on this machine; "
                    "writes --out as JSON")
    args = ap.parse_args(argv)
    if args.decode_here:
        res = decode_here(args.decode_here, args.threads)
        from result_names import write_result

        write_result(args.out, res)
        return
    global OTHER
    OTHER = args.other
    if OTHER == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.monotonic()
    res = {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
           "numpy": np.__version__, "python": platform.python_version(), "cpu": platform.processor(),
           "gpu": torch.cuda.get_device_name(0) if OTHER == "cuda" else None,
           "cpu_threads": args.threads, "steps": {}}

    def save():
        with open(os.path.join(args.out, "gpu-check.json"), "w") as f:
            json.dump(res, f, indent=1)

    steps = [("integers", lambda r: integers(r)),
             ("images", lambda r: images(r, args.limit, args.out)),
             ("bytes", lambda r: byte_models(r, args.out)),
             ("photo_speed", lambda r: photo_speed(r, args.photo_size)),
             ("rate", lambda r: rate(r, args.rate_images, args.out, args.budget - (time.monotonic() - t0),
                                     res["steps"].get("images", {}).get("fmnist-binary", {})
                                     .get(f"encode_{_tag(OTHER)}_images_per_s")))]
    only = args.only.split(",") if args.only else [n for n, _ in steps if n != "photo_speed"]
    for name, step in steps:
        if name not in only:
            continue
        if time.monotonic() - t0 > args.budget:
            res["steps"][name] = {"skipped": "out of time"}
            continue
        rec = res["steps"][name] = {}
        s0 = time.monotonic()
        try:
            step(rec)
        except Exception as e:  # record and go on: the later steps are independent
            rec["error"] = f"{type(e).__name__}: {e}"
            rec["traceback"] = traceback.format_exc()[-3000:]
            print(rec["traceback"], flush=True)
        rec["seconds"] = time.monotonic() - s0
        save()
    save()
    print(json.dumps({k: v for k, v in res.items() if k != "steps"}))


if __name__ == "__main__":
    main()
