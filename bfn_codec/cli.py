"""Command-line interface: a thin layer of click commands over the library.

Errors the user can fix (missing files, bad input, unknown models) end with a one-line
message on stderr and exit code 1, never a traceback.
"""
from __future__ import annotations

import functools
import json
import math
import os
import shlex
import sys

import click

from .version import __version__
from .limits import DEFAULT_CHUNK_ITEMS, GRID_POWER_RANGE, MAX_STEPS, R_RANGE


class UserError(click.ClickException):
    exit_code = 1


def _user_errors() -> tuple:
    """The exceptions whose message is for the user (a file the command reads or writes: OSError)."""
    from .container import FormatError
    from .data import DataError
    from .parallel import WorkerError
    from .zoo import ModelError

    return DataError, ModelError, FormatError, WorkerError, OSError


def _one_line(e: Exception) -> str:
    if isinstance(e, click.ClickException):
        return e.format_message()
    if isinstance(e, OSError) and e.strerror:
        return f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    return str(e)


def friendly_errors(fn):
    """Turn the library's user-facing exceptions into one-line errors with exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _user_errors() as e:
            raise UserError(_one_line(e)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def _set_threads(threads):
    if threads:
        import torch

        torch.set_num_threads(threads)


def _check_device(device: str) -> None:
    """A device this torch cannot use is a one-line error before any work, not a traceback."""
    if device == "cpu":
        return
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        why = ("is a CPU-only build" if torch.version.cuda is None
               else f"is built for CUDA {torch.version.cuda} but finds no CUDA device")
        raise UserError(f"--device cuda: the installed torch {torch.__version__} {why}; install a CUDA "
                        "build of torch (PyTorch's 'Get started' page gives the pip command for your "
                        "CUDA version) or use --device cpu")
    if device == "mps":
        if not torch.backends.mps.is_available():
            raise UserError(f"--device mps: the installed torch {torch.__version__} finds no Apple MPS "
                            "device; use --device cpu")
        raise UserError("--device mps: not supported, the coder's float64 arithmetic has no MPS "
                        "kernels; use --device cpu")


class ZstdLikeGroup(click.Group):
    """``bfn-codec FILE...`` means ``bfn-codec compress FILE...``, as ``zstd FILE`` does, so
    ``bfn-codec -d FILE.bfn``, ``-l``, ``-t`` and ``-c`` work as zstd users type them."""

    def parse_args(self, ctx, args):
        import os

        if args and args[0] not in self.commands and args[0] not in ("-h", "--help", "--version") \
                and (args[0].startswith("-") or os.path.exists(args[0])):
            args = ["compress", *args]
        return super().parse_args(ctx, args)


@click.group(cls=ZstdLikeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bfn-codec")
def main():
    """bfn-codec: lossless compression with Bayesian Flow Networks and bits-back ANS coding.

    \b
    Like zstd (compress is the default command):
      bfn-codec images.npy               -> images.npy.bfn (input kept)
      bfn-codec a.npy b.npy c.npy        each to its own .bfn, a summary line each
      bfn-codec -d images.npy.bfn        decompress -> images.npy
      bfn-codec -c images.npy > x.bfn    to standard output
      bfn-codec -l images.npy.bfn        list: header and bits/value, at once (info --estimate: vs the model's loss)
      bfn-codec -t images.npy.bfn        test: decode and verify the checksum
      -f overwrite, -k keep (default), --rm delete input, -q quiet, -v verbose
    Models:
      bfn-codec train --dataset fmnist-binary --out runs/bin
      bfn-codec loss --model runs/bin --dataset fmnist-binary --steps 25
      bfn-codec sample --model runs/bin -n 64 -o grid.png
      bfn-codec models                   list the bundled models
      bfn-codec demo                     code the bundled sample, compare with xz and zstd
    """


DATASET_HELP = ("fmnist (8-bit, 256 bins), fmnist-binary (pixel >= 128 -> 1), npy:PATH (a uint8 array "
                "(N, H, W), (N, H, W, C), (N, C, H, W), (H, W) or (H, W, C)) or images:DIR (every image "
                "file in a folder). @P after PATH or DIR cuts the images into whole P x P patches "
                "(images:photos@32). Values <= 1 are treated as binary. bytes:PATH: the bytes of a file, "
                "or of every file in a folder, as 256-byte windows of 8 binary variables per byte (a byte model). "
                "text8:PATH: the same files in text8 style (a-z and space), 256 characters of K = 27 "
                "classes per window.")


@main.command()
@click.option("--dataset", required=True, help=DATASET_HELP)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Checkpoint directory (model.safetensors, config.json, train_state.safetensors).")
@click.option("--steps", default=1000, show_default=True, help="Total optimiser steps to reach.")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--lr", default=2e-4, show_default=True, help="AdamW learning rate.")
@click.option("--lr-final", type=click.FloatRange(min=0.0), default=None,
              help="Anneal the learning rate from --lr to this value on a half cosine between "
                   "the step the run starts (or resumes) from and --steps. Default: constant --lr.")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--seed", default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run in --out (weights, EMA, optimiser).")
@click.option("--channels", default=64, show_default=True, help="U-Net base width.")
@click.option("--channel-mult", default="1,1", show_default=True, help="Width multipliers per level.")
@click.option("--res-blocks", default=1, show_default=True, help="Residual blocks per level.")
@click.option("--unshuffle", default=2, show_default=True, help="Pixel-unshuffle factor of the input.")
@click.option("--attention/--no-attention", default=False, show_default=True,
              help="Self-attention at the lowest resolution.")
@click.option("--validate-every", default=500, show_default=True)
@click.option("--checkpoint-every", default=200, show_default=True)
@click.option("--ema-decay", default=0.999, show_default=True)
@click.option("--data-dir", default=None, help="Fashion-MNIST directory (default $BFN_FMNIST_DIR or "
              "/usr/share/datasets/fashion-mnist).")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
@click.option("--loss-steps", type=click.IntRange(1, MAX_STEPS), default=None,
              help="Train with the discrete-time loss L^n + L^r for this n instead of L^inf "
                   "(fine-tune a model for the n the codec uses; combine with --resume).")
@click.option("--grid-power", type=click.FloatRange(*GRID_POWER_RANGE), default=1.0, show_default=True,
              help="With --loss-steps: the time grid t_i = (i/n)^p of that loss (use the one the "
                   "model codes with, see `bfn-codec models`).")
@click.option("--amp", type=click.Choice(["bf16"]), default=None,
              help="Run the network under bfloat16 autocast (for GPUs; the losses stay float64).")
@click.option("--compile", "compile_net", is_flag=True, help="torch.compile the network (for GPUs).")
@click.option("--max-minutes", type=click.FloatRange(min=0.0, min_open=True), default=None,
              help="Stop after this much wall-clock time (with a checkpoint), even before --steps.")
@friendly_errors
def train(dataset, out_dir, steps, batch_size, lr, lr_final, device, seed, resume, channels, channel_mult,
          res_blocks, unshuffle, attention, validate_every, checkpoint_every, ema_decay, data_dir, threads,
          loss_steps, grid_power, amp, compile_net, max_minutes):
    """Train a BFN with the continuous-time loss L^inf (AdamW, EMA, gradient clipping), or
    with L^n + L^r (--loss-steps n).

    Shows a progress bar with the loss, it/s and ETA; validates the same loss (bits/dim) every
    --validate-every steps and writes a checkpoint every --checkpoint-every steps.

    Under torchrun (`torchrun --nproc_per_node N -m bfn_codec train ...`) the same command trains
    data-parallel (DistributedDataParallel: gloo on the CPU, NCCL with --device cuda); --batch-size
    is then the global batch, and rank 0 writes the checkpoints (docs/training.md)."""
    from .data import train_validation
    from .train import DEFAULT_NETWORK, train as run

    _check_device(device)
    _set_threads(threads)
    train_data, val_data = train_validation(dataset, data_dir)
    network = dict(DEFAULT_NETWORK, channels=channels, num_res_blocks=res_blocks, unshuffle=unshuffle,
                   attention=attention,
                   channel_mult=[int(c) for c in channel_mult.split(",")])
    args = sys.argv[1:] if sys.argv[1:2] == ["train"] else ["train", *sys.argv[1:]]  # python -m bfn_codec train
    command = "bfn-codec " + " ".join(shlex.quote(a) for a in args)
    run(train_data, val_data, out_dir, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
        resume=resume, network=network, validate_every=validate_every,
        checkpoint_every=checkpoint_every, ema_decay=ema_decay, device=device, command=command,
        log=lambda m: click.echo(m, err=True), loss_steps=loss_steps, grid_power=grid_power,
        lr_final=lr_final, amp=amp, compile=compile_net, max_minutes=max_minutes)
    click.echo(f"checkpoint written to {out_dir}", err=True)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Under torchrun, DDP holds the gloo backend past destroy_process_group (gloo has no
        # shutdown), so its C++ worker and I/O threads are still alive when the interpreter
        # finalizes; one touching Python or static state then aborts the rank ("terminate called
        # without an active exception") after a complete run. Every file is written and closed
        # by now (train() ends with a barrier after rank 0's checkpoint): flush and leave
        # without finalization.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


@main.command()
@click.option("--model", "model_spec", required=True, help="Checkpoint directory or bundled model name.")
@click.option("--dataset", required=True, help=DATASET_HELP)
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "test", "validation"]))
@click.option("--steps", "-n", type=click.IntRange(min=1), default=100, show_default=True,
              help="Number of transmission steps n.")
@click.option("--limit", default=1000, show_default=True, help="Evaluate the first N items (0 = all).")
@click.option("--repeats", default=1, show_default=True, help="Monte-Carlo passes over the items.")
@click.option("--all-steps", is_flag=True, help="Sum all n steps exactly instead of one random step per item.")
@click.option("--grid-power", type=click.FloatRange(0.125, 8.0), default=None,
              help="The time grid t_i = (i/n)^p of L^n. Default: the model's own (the grid the codec "
                   "codes with, `bfn-codec models`; 1, uniform, for a checkpoint never bundled).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--data-dir", default=None)
@click.option("--threads", type=int, default=None)
@friendly_errors
def loss(model_spec, dataset, split, steps, limit, repeats, all_steps, grid_power, as_json, data_dir, threads):
    """Print L^n + L^r (the n-step code length) and L^inf in bits/dim with standard errors."""
    from .api import model_defaults
    from .data import load_dataset
    from .evaluate import evaluate_loss
    from .models import load_model
    from .portable import power_times

    _set_threads(threads)
    model = load_model(model_spec)
    data = load_dataset(dataset, split, data_dir)
    _check_match(model, data)
    items = data.images[:limit] if limit else data.images
    grid_power = model_defaults(model)["grid_power"] if grid_power is None else grid_power
    res = evaluate_loss(model, items, steps=steps, repeats=repeats, all_steps=all_steps,
                        times=power_times(steps, grid_power), progress=not as_json)
    res.update({"model": model.name, "dataset": data.name, "grid_power": grid_power})
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    tot, inf = res["n_step_plus_reconstruction_bits_per_dim"], res["infinity_bits_per_dim"]
    click.echo(f"{data.name}, {len(items)} items x {repeats}, model {model.name}")
    click.echo(f"L^n + L^r (n={steps}, grid p={grid_power:g}): {tot['mean']:.4f} ± {tot['stderr']:.4f} bits/dim")
    click.echo(f"  L^n {res['n_step_bits_per_dim']['mean']:.4f}, L^r {res['reconstruction_bits_per_dim']['mean']:.4f}")
    click.echo(f"L^inf:              {inf['mean']:.4f} ± {inf['stderr']:.4f} bits/dim")


def _check_match(model, data):
    from .zoo import ModelError

    if model.flow.data_type != data.data_type or model.flow.K != data.K:
        raise ModelError(f"model {model.name} is for {model.flow.data_type} data with K={model.flow.K}, "
                         f"but {data.name} is {data.data_type} with K={data.K}")
    if tuple(data.images.shape[1:]) != model.shape:
        raise ModelError(f"model {model.name} expects items of shape {model.shape}, got {data.images.shape[1:]}")


@main.command()
@click.option("--model", "model_spec", required=True, help="Checkpoint directory or bundled model name.")
@click.option("-n", "--count", default=64, show_default=True, help="Number of samples.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--steps", type=click.IntRange(min=1), default=100, show_default=True, help="Generation steps.")
@click.option("--seed", default=0, show_default=True)
@friendly_errors
def sample(model_spec, count, output, steps, seed):
    """Generate samples and write them as a PNG grid."""
    import torch

    from .models import load_model
    from .sample import grid, sample as draw, to_grayscale, write_png

    model = load_model(model_spec)
    if len(model.shape) != 3 or model.shape[0] > 4:
        raise UserError("sampling to PNG needs an image model of 1 to 4 channels")
    items = draw(model, count, steps, generator=torch.Generator().manual_seed(seed))
    write_png(output, grid(to_grayscale(items.transpose(0, 2, 3, 1), model.flow.K)))
    click.echo(f"wrote {count} samples to {output}", err=True)


def _output_path(input_path: str, output: str | None, to_stdout: bool, compressing: bool) -> str:
    if to_stdout:
        return "-"
    if output:
        return output
    if input_path == "-":
        return "-"
    if compressing:
        return input_path + ".bfn"
    if input_path.endswith(".bfn"):
        return input_path[:-4]
    return input_path + ".out"


def _for_each_file(inputs, work) -> None:
    """Run ``work(path)`` on every input; a failure is one line on stderr and the rest still
    run; the exit code is 1 if any failed (zstd's habit)."""
    failed = 0
    for path in inputs:
        try:
            work(path)
        except (click.ClickException, ValueError, *_user_errors()) as e:
            msg = _one_line(e)
            prefix = "" if path != "-" and path in msg else f"{'(stdin)' if path == '-' else path}: "
            click.echo(f"Error: {prefix}{msg}", err=True)
            failed += 1
    if failed:
        if len(inputs) > 1:
            click.echo(f"{failed} of {len(inputs)} files failed", err=True)
        sys.exit(1)


def _remove_input(path: str) -> None:
    import os

    if path != "-":
        os.unlink(path)


def _check_output_options(ctx, inputs, output, to_stdout, remove=False):
    if to_stdout and remove:
        raise click.UsageError("--rm with -c: the input is kept when the output goes to standard output", ctx)
    if to_stdout and output:
        raise click.UsageError("-c and -o both say where the output goes: give one", ctx)
    if len(inputs) > 1 and output:
        raise click.UsageError("-o names one output: with several inputs each goes to its own file", ctx)
    if len(inputs) > 1 and to_stdout:
        raise click.UsageError("-c takes one input (bfn-codec cannot decode concatenated files)", ctx)


def _options(*decorators):
    def apply(fn):
        for d in reversed(decorators):
            fn = d(fn)
        return fn
    return apply


# options shared by compress and decompress (compress also accepts them with -d, -l, -t)
_FILE_OPTIONS = _options(
    click.argument("inputs", nargs=-1, metavar="[FILE]..."),
    click.option("-c", "--stdout", "to_stdout", is_flag=True,
                 help="Write to standard output (one input); the input is kept."),
    click.option("-o", "--output", default=None, help="Output file (one input; - for standard output)."),
    click.option("--model", "model_spec", default=None,
                 help="Bundled model name or checkpoint directory (compressing: default fmnist-binary for "
                      "0/1 data, photo-rgb for RGB images, fmnist otherwise, text-bytes for any other file; decompressing: the one the file names)."),
    click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda", "mps"]),
                 help="Where the network runs."),
    click.option("-f", "--force", is_flag=True,
                 help="Overwrite existing outputs; write binary data to a terminal."),
    click.option("-k", "--keep", is_flag=True, help="Keep the input files (the default; cancels --rm)."),
    click.option("--rm", "remove", is_flag=True, help="Delete each input after its output is written."),
    click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line (errors only)."),
    click.option("-v", "--verbose", is_flag=True, help="Also print the coding details of each file."),
    click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads."),
    click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
                 help="Worker processes (1 torch thread each). Compressing: above 1, the items are "
                      "coded in independent chunks (--chunk-items) into one chunked file; "
                      "decompressing a chunked file: chunks decoded in parallel."),
)
ENCODE_ONLY = ("steps", "grid_ratio", "grid_power", "batch_size", "mode", "arithmetic", "chunk_items")


@main.command()
@_FILE_OPTIONS
@click.option("-d", "--decompress", "action", flag_value="decompress",
              help="Decompress instead (the same as the decompress command).")
@click.option("-l", "--list", "action", flag_value="list",
              help="List each file's header and achieved bits at once (info; info --estimate adds the model's loss).")
@click.option("-t", "--test", "action", flag_value="test", help="Decode each file and verify it (test).")
@click.option("--steps", "-n", type=click.IntRange(1, MAX_STEPS), default=None,
              help="Transmission steps n (default: the model's).")
@click.option("-r", "grid_ratio", type=click.FloatRange(*R_RANGE), default=None,
              help="Grid ratio r: delta_i = sigma_i / r (default: the model's; stored to 1/1024).")
@click.option("--grid-power", type=click.FloatRange(*GRID_POWER_RANGE), default=None,
              help="Time grid t_i = (i/n)^p (default: the model's; 1 is the paper's uniform grid).")
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True,
              help="Largest lockstep batch (items coded together); the coder also caps it at 2^23 "
                   "table entries (items x values x K: 41 8-bit 28x28 images), which bounds memory.")
@click.option("--mode", default="auto", show_default=True, type=click.Choice(["auto", "bfn", "fallback"]),
              help="auto: the smaller of the BFN chain and the plain LZMA2 fallback coder.")
@click.option("--arithmetic", default=None, type=click.Choice(["portable", "float"]),
              help="portable (coder revision 8, the default for models with an integer calibration, "
                   "as the bundled ones): the file decodes on any machine; float (revision 5): faster, "
                   "but the file decodes only with this machine's kernels and package versions.")
@click.option("--chunk-items", type=click.IntRange(min=1), default=None,
              help=f"Items per independent chunk of a chunked file (default with --jobs above 1: "
                   f"{DEFAULT_CHUNK_ITEMS}); each chunk decodes alone (decompress --chunk) and pays its "
                   "own LZMA2 seed (docs/pipelines.md).")
@click.option("--chunk", "chunk", type=click.IntRange(min=0), default=None,
              help="With -d: decode only chunk I of a chunked file (see decompress --help).")
@click.pass_context
@friendly_errors
def compress(ctx, inputs, to_stdout, output, model_spec, device, force, keep, remove, quiet, verbose, threads,
             jobs, action, steps, grid_ratio, grid_power, batch_size, mode, arithmetic, chunk_items, chunk):
    """Compress each FILE to FILE.bfn: image files (PNG, PGM/PPM, TIFF, BMP; grey, RGB, RGBA, any
    size), folders of them (FOLDER to FOLDER.bfn; other files are skipped with a warning), uint8
    .npy arrays (N, H, W), (H, W), (H, W, C), (N, H, W, C) or (N, C, H, W), or Fashion-MNIST IDX
    files (.gz too); any other file as its bytes (text, source code, PDFs, binaries, JPEGs:
    the byte model's stream, for text of only a-z and spaces also the text8-style model's, LZMA2
    or the bytes stored, whichever is smallest; decompress restores them under the same name). No FILE, or -, reads standard input and writes standard
    output. The default command: `bfn-codec FILE` is `bfn-codec compress FILE`."""
    if action:
        from click.core import ParameterSource

        given = [n for n in ENCODE_ONLY if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"--{given[0].replace('_', '-')} is for compressing; not with -d, -l or -t", ctx)
    if chunk is not None and action != "decompress":
        raise click.UsageError("--chunk is for decompressing (with -d)", ctx)
    if chunk is not None and remove and not keep:
        raise click.UsageError("--rm with --chunk: the file holds more than the chunk written", ctx)
    if action == "list":
        return _info_files(inputs or ("-",), False, False, model_spec, threads)  # header only, at once
    if action == "test":
        return _test_files(inputs or ("-",), model_spec, quiet, threads, device, jobs)
    if action == "decompress":
        return _decompress_files(ctx, inputs or ("-",), to_stdout, output, model_spec, device, force, keep,
                                 remove, quiet, verbose, threads, jobs, chunk)
    import time

    from .api import compress_bytes, compress_images, compress_with_stats
    from .files import Output, install_cleanup_on_term
    from .inputs import read_input

    inputs = inputs or ("-",)
    _check_output_options(ctx, inputs, output, to_stdout, remove and not keep)
    _check_device(device)
    _set_threads(threads)
    install_cleanup_on_term()
    settings = dict(steps=steps, r=grid_ratio, grid_power=grid_power, mode=mode, batch_size=batch_size,
                    device=device, progress=not quiet, jobs=jobs, chunk_items=chunk_items,
                    portable=None if arithmetic is None else arithmetic == "portable")

    def one(path):
        folder = path != "-" and os.path.isdir(path)
        if folder and remove and not keep:
            raise click.UsageError("--rm with a folder: bfn-codec does not delete folders (remove it "
                                   "yourself after `bfn-codec -t`)")
        out_path = _output_path(path.rstrip("/") if folder else path, output, to_stdout, True)
        with Output(out_path, force, like=None if folder else path, what="compressed data") as out:
            source = read_input(path)
            for name, why in source.skipped:
                click.echo(f"Warning: {path}: skipped {name} ({why})", err=True)
            t0 = time.perf_counter()
            if source.kind == "images":
                def on_file(i, f):
                    if not quiet and len(source.files) > 1:
                        click.echo(f"  [{i + 1}/{len(source.files)}] {f.name} ({f.pixels.shape[2]}x"
                                   f"{f.pixels.shape[1]}, {f.mode})", err=True)

                blob, stats = compress_images(source.files, model_spec, folder=source.folder, on_file=on_file,
                                              **settings)
            elif source.kind == "bytes":
                if source.note and not quiet:
                    click.echo(f"Note: {source.note}; coded as a file of bytes instead", err=True)
                blob, stats = compress_bytes(source.data, model_spec, name=source.name, **settings)
            else:
                blob, stats = compress_with_stats(source.array, model_spec, layout=source.layout, **settings)
            out.commit(blob)
        if not quiet:
            n = source.values
            unit = "byte" if source.kind == "bytes" else "value"
            bits = f"{8 * len(blob) / n:.4f} bits/{unit}, " if n else ""
            what = (f"{len(source.files)} images" if source.folder else f"{n:,} {unit}s")
            click.echo(f"{path}: {what} -> {len(blob):,} bytes ({bits}{_mode_summary(stats)}, "
                       f"{time.perf_counter() - t0:.1f} s) -> {'(stdout)' if out_path == '-' else out_path}",
                       err=True)
            if verbose:
                click.echo("  " + _describe_stats(stats), err=True)
        if remove and not keep:
            _remove_input(path)

    _for_each_file(inputs, one)


def _mode_summary(stats: dict) -> str:
    if stats.get("mode") == "bytes":
        return f"stream {stats['stream']}" + (f", model {stats['model']} ({stats['alphabet']})"
                                              if stats["stream"] == "bfn" else "")
    if stats.get("mode") == "images":
        counts = {}
        for f in stats["files"]:
            counts[f["stream"]] = counts.get(f["stream"], 0) + 1
        return "streams " + ", ".join(f"{s} {n}" for s, n in sorted(counts.items()))
    return f"mode {stats.get('mode')}"


def _describe_stats(stats: dict) -> str:
    if stats.get("mode") == "bytes":
        line = "candidates: " + ", ".join(f"{k} {v:,}" for k, v in stats["candidates"].items())
        for alphabet, probe in stats.get("probes", {}).items():
            line += (f"; {probe['model']}'s estimate on {probe['windows']} {alphabet} windows: "
                     f"{probe['estimate_bytes']:,} bytes for the file against {probe['classical_bytes']:,}"
                     + ("" if f"bfn:{alphabet}" in stats["candidates"] else ", so its chain was not run"))
        if "items" in stats and stats["items"].get("mode") == "bfn":
            line += "\n  " + _describe_stats(stats["items"])
        return line
    if stats.get("mode") == "images":
        pool = stats.get("pool")
        head = ([f"pool of the small images: {pool['images']} images, {pool['tiles']} tiles, {pool['bytes']:,} bytes"
                 + (f" against {pool['classical_bytes']:,} for their best classical streams"
                    if pool["classical_bytes"] is not None else "")
                 + ("" if pool["used"] else ": not used")] if pool else [])
        return "\n  ".join(head + [f"{f['name']}: {f['stream']} {f['bytes']:,} bytes (candidates: " +
                            ", ".join(f"{s} {b:,}" for s, b in f["candidates"].items()) +
                            (f"; {f['tiles']} tiles" if "tiles" in f else "") + (
                                f"; BFN stream not coded: the model's estimate on {f['probe']['tiles']} tiles, "
                                f"{f['probe']['estimate_bits_per_value']:.3f} bits/value, is not below "
                                f"{f['probe']['classical_bits_per_value']:.3f}" if "probe" in f and "bfn" not in
                                f["candidates"] else "") + ")" for f in stats["files"]])
    if stats.get("mode") in ("png", "webp"):
        return f"a classical {stats['mode']} picture of the images: smaller than the BFN stream and LZMA2"
    if stats.get("mode") == "chunked":
        modes = ", ".join(f"{n} {m}" for m, n in stats.get("chunk_modes", {}).items())
        return (f"{stats['chunks']} chunks of up to {stats['chunk_items']} items ({modes}), "
                f"{stats['jobs']} worker processes")
    if stats.get("mode") != "bfn":
        return "fallback: every item in the LZMA2 stream, no network"
    batches = stats.get("batches", [])
    return (f"seed {stats.get('seed_items')} items ({stats.get('seed_bytes')} bytes); {len(batches)} batches "
            f"of up to {max(batches, default=0)}; network {stats.get('network_seconds', 0):.1f} s in "
            f"{stats.get('network_calls', 0)} calls, coder {stats.get('coder_seconds', 0):.1f} s")


@main.command()
@_FILE_OPTIONS
@click.option("--chunk", "chunk", type=click.IntRange(min=0), default=None,
              help="Decode only chunk I of a chunked file (random access; `bfn-codec info` lists the "
                   "chunks); the output holds that chunk's items.")
@click.pass_context
@friendly_errors
def decompress(ctx, inputs, to_stdout, output, model_spec, device, force, keep, remove, quiet, verbose, threads,
               jobs, chunk):
    """Decompress .bfn files, each FILE.bfn to FILE: image files and folders as they were (same
    names, formats and pixels), arrays as .npy (or IDX if the input was IDX), any other file as
    its exact bytes (a renamed .bfn goes back under the name it was compressed from). No FILE,
    or -, reads standard input and writes standard output. `bfn-codec -d` is the same."""
    if chunk is not None and remove and not keep:
        raise click.UsageError("--rm with --chunk: the file holds more than the chunk written", ctx)
    _decompress_files(ctx, inputs or ("-",), to_stdout, output, model_spec, device, force, keep, remove,
                      quiet, verbose, threads, jobs, chunk)


def _decompress_files(ctx, inputs, to_stdout, output, model_spec, device, force, keep, remove, quiet,
                      verbose, threads, jobs=1, chunk=None):
    import time

    from .api import decompress_chunk, decompress_images, decompress_with_stats, from_items, read_header
    from .container import FormatError, is_archive, read_archive
    from .data import DataError
    from .files import Output, array_to_bytes, install_cleanup_on_term, read_input_bytes, write_folder
    from .api import decompress_bytes
    from .bytefile import is_bytefile, read_bytefile
    from .images import write_image
    from .imageset import is_imageset, read_imageset

    _check_output_options(ctx, inputs, output, to_stdout, remove and not keep)
    _check_device(device)
    _set_threads(threads)
    install_cleanup_on_term()

    def one(path):
        out_path = _output_path(path, output, to_stdout, False)
        blob = read_input_bytes(path)
        if is_bytefile(blob):
            if chunk is not None:
                raise FormatError("--chunk needs a chunked file (compress --jobs N or --chunk-items)")
            return _write_bytes(path, blob, out_path)
        if is_imageset(blob) and read_imageset(blob).kind == "files":
            if chunk is not None:
                raise FormatError("--chunk needs a chunked file (compress --jobs N or --chunk-items)")
            return _write_image_files(path, blob, out_path)
        with Output(out_path, force, like=path, what="decompressed binary data") as out:
            if is_imageset(blob):
                layout, what = read_imageset(blob).layout, f"{read_imageset(blob).entries[0].stream} stream"
            elif is_archive(blob):
                archive = read_archive(blob)
                layout, what = archive.layout, f"{len(archive.chunks)} chunks"
            else:
                header = read_header(blob)
                layout, what = header.layout, header.mode
            t0 = time.perf_counter()
            if chunk is not None:
                if not is_archive(blob):
                    raise FormatError("--chunk needs a chunked file (compress --jobs N or --chunk-items)")
                array, stats = from_items(decompress_chunk(blob, chunk, model_spec), layout), {}
                first = archive.chunks[chunk].first
                what = f"chunk {chunk} of {len(archive.chunks)}: items {first}..{first + len(array) - 1}"
            else:
                array, stats = decompress_with_stats(blob, model_spec, device=device, progress=not quiet, jobs=jobs)
            out.commit(array_to_bytes(array, layout))
        if not quiet:
            click.echo(f"{path}: {len(blob):,} bytes -> {array.shape} uint8 ({what}, "
                       f"{time.perf_counter() - t0:.1f} s, checksum verified) -> "
                       f"{'(stdout)' if out_path == '-' else out_path}", err=True)
            if verbose and not is_archive(blob) and not is_imageset(blob) and header.batches:
                click.echo(f"  n={header.steps} r={header.r:g} p={header.grid_power:g}; {len(header.batches)} "
                           f"batches; network {stats.get('network_seconds', 0):.1f} s in "
                           f"{stats.get('network_calls', 0)} calls", err=True)
        if remove and not keep:
            _remove_input(path)

    def _write_bytes(path, blob, out_path):
        index = read_bytefile(blob)
        if index.name and not (output or to_stdout or path == "-" or path.endswith(".bfn")):
            out_path = os.path.join(os.path.dirname(path), index.name)  # the name it was compressed from
        t0 = time.perf_counter()
        with Output(out_path, force, like=path, what="decompressed data") as out:
            _, data = decompress_bytes(blob, model_spec, device=device, progress=not quiet, jobs=jobs)
            out.commit(data)
        if not quiet:
            click.echo(f"{path}: {len(blob):,} bytes -> {len(data):,} bytes ({index.stream} stream, "
                       f"{time.perf_counter() - t0:.1f} s, checksum verified) -> "
                       f"{'(stdout)' if out_path == '-' else out_path}", err=True)
        if remove and not keep:
            _remove_input(path)

    def _write_image_files(path, blob, out_path):
        index = read_imageset(blob)
        t0 = time.perf_counter()

        def on_file(i, e):
            if not quiet and len(index.entries) > 1:
                click.echo(f"  [{i + 1}/{len(index.entries)}] {e.name}", err=True)

        def decoded():
            folder, files = decompress_images(blob, model_spec, device=device, progress=not quiet, jobs=jobs,
                                              on_file=on_file)
            return files, [(f.name, write_image(f.pixels[0], f.mode, f.file_format)) for f in files]

        if index.folder:  # everything that can be checked before decoding is
            if out_path == "-":
                raise DataError("the file holds a folder of images: it cannot go to standard output (use -o DIR)")
            if os.path.exists(out_path) and not (force and os.path.isdir(out_path)):
                raise DataError(f"{out_path} already exists" + ("; use -f to write into it" if os.path.isdir(out_path)
                                                               else " and is not a folder"))
            files, written = decoded()
            write_folder(out_path, written, force)
        else:
            with Output(out_path, force, like=path, what="image data") as out:
                files, written = decoded()
                out.commit(written[0][1])
        if not quiet:
            f = files[0].pixels
            what = f"{len(files)} images" if index.folder else f"{f.shape[2]}x{f.shape[1]} {files[0].mode} image"
            click.echo(f"{path}: {len(blob):,} bytes -> {what} ({time.perf_counter() - t0:.1f} s, checksums "
                       f"verified) -> {'(stdout)' if out_path == '-' else out_path}", err=True)
        if remove and not keep:
            _remove_input(path)

    _for_each_file(inputs, one)


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="FILE...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object per file).")
@click.option("--estimate", is_flag=True,
              help="Also decode the file and estimate the model's L^n + L^r on the same items "
                   "(n + 1 network calls per item: as long as decoding), with the overhead in %.")
@click.option("--model", "model_spec", default=None, help="Model to decode with (default: the file's).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads.")
@friendly_errors
def info(inputs, as_json, estimate, model_spec, threads):
    """The header and the achieved bits/dim, at once (like xz -l); --estimate adds the model's
    own L^n + L^r on the same items. `bfn-codec -l FILE` is the same without --estimate."""
    _info_files(inputs, as_json, estimate, model_spec, threads)


def _echo_fields(res: dict, as_json: bool) -> None:
    """``info``'s fields: one JSON object, or one line per field."""
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    for k, v in res.items():
        click.echo(f"{k:>30}: {v:.5f}" if isinstance(v, float) else f"{k:>30}: {'-' if v is None else v}")


def _print_fields(res: dict, table: str, rows: list, as_json: bool) -> bool:
    """``info``'s summary of a file: JSON with its table (True: nothing more to print), or one
    line per field, the caller's table lines to follow (False)."""
    if as_json:
        click.echo(json.dumps({**res, table: rows}, indent=2))
        return True
    for k, v in res.items():
        click.echo(f"{k:>30}: {v:.5f}" if isinstance(v, float) else f"{k:>30}: {v}")
    return False


def _archive_info(path: str, blob: bytes, as_json: bool) -> None:
    """``info`` of a chunked file: the whole array, then one line per chunk (its own header)."""
    from .container import chunk_bytes, read, read_archive
    from .zoo import bundled_model_for

    a = read_archive(blob)
    dims = a.count * math.prod(a.item_shape)
    rows = []
    for i, c in enumerate(a.chunks):
        h, _ = read(chunk_bytes(blob, a, i))
        row = {"chunk": i, "first_item": c.first, "items": c.count, "bytes": c.length, "mode": h.mode,
               "bits_per_dim": 8 * c.length / (c.count * h.dims)}
        if h.batches:
            row.update(model=h.model_id or bundled_model_for(h.model_hash) or "?", steps=h.steps,
                       coder_revision=h.coder_revision, seed_items=h.seed_items)
        rows.append(row)
    res = {"file": path, "bytes": len(blob), "format_version": 4, "items": a.count,
           "item_shape": list(a.item_shape), "layout": a.layout, "mode": "chunked", "chunks": len(a.chunks),
           "index_bytes": a.header_bytes, "achieved_bits_per_dim": 8 * len(blob) / dims if dims else None}
    if _print_fields(res, "chunk_table", rows, as_json):
        return
    for row in rows:
        extra = (f", {row['model']} n={row['steps']} rev {row['coder_revision']}, seed {row['seed_items']} items"
                 if "model" in row else "")
        click.echo(f"{'chunk ' + str(row['chunk']):>30}: items {row['first_item']}..{row['first_item'] + row['items'] - 1}, "
                   f"{row['bytes']:,} bytes, {row['bits_per_dim']:.4f} bits/dim, {row['mode']}{extra}")


def _imageset_info(path: str, blob: bytes, as_json: bool) -> None:
    """``info`` of a version-5 file: one line per entry (its stream, and the BFN stream's header)."""
    from .container import is_archive, read
    from .imageset import pool_bytes, read_imageset, stream_bytes
    from .zoo import bundled_model_for

    def bfn_fields(data):
        if is_archive(data):
            return {"bfn_mode": "chunked"}
        h, _ = read(data)
        fields = {"tiles": h.count, "tile_shape": list(h.item_shape), "bfn_mode": h.mode}
        if h.batches:
            fields.update(model=h.model_id or bundled_model_for(h.model_hash) or "?", steps=h.steps,
                          coder_revision=h.coder_revision)
        return fields

    index = read_imageset(blob)
    rows = []
    for e in index.entries:
        row = {"name": e.name or "(array)", "images": e.count, "height": e.height, "width": e.width,
               "channels": e.channels, "stream": e.stream, "bytes": e.length,
               "bits_per_value": 8 * e.length / (e.count * e.height * e.width * e.channels)}
        if e.file_format:
            row.update(file_format=e.file_format, mode=e.mode)
        if e.stream == "bfn":
            row.update(bfn_fields(stream_bytes(blob, e)))
        rows.append(row)
    values = sum(e.count * e.height * e.width * e.channels for e in index.entries)
    pooled = [e for e in index.entries if e.stream == "pool"]
    res = {"file": path, "bytes": len(blob), "format_version": 5, "kind": index.kind,
           "folder": index.folder, "entries": len(rows),
           "index_bytes": len(blob) - index.pool_length - sum(e.length for e in index.entries),
           "achieved_bits_per_value": 8 * len(blob) / values}
    if pooled:
        pool_values = sum(e.count * e.height * e.width * e.channels for e in pooled)
        res["pool"] = {"images": len(pooled), "bytes": index.pool_length,
                       "bits_per_value": 8 * index.pool_length / pool_values, **bfn_fields(pool_bytes(blob, index))}
    if index.kind == "array":
        res.update(array_shape=list(index.array_shape), layout=index.layout)
    if _print_fields(res, "entry_table", rows, as_json):
        return
    for row in rows:
        if row["stream"] == "pool":
            click.echo(f"{row['name'][:30]:>30}: {row['width']}x{row['height']}x{row['channels']}, in the pool")
            continue
        extra = (f", {row['tiles']} tiles of {tuple(row['tile_shape'])} ({row['bfn_mode']}"
                 + (f", {row['model']} n={row['steps']} rev {row['coder_revision']}" if "model" in row else "")
                 + ")" if "tiles" in row else "")
        click.echo(f"{row['name'][:30]:>30}: {row['width']}x{row['height']}x{row['channels']}"
                   f"{' x ' + str(row['images']) if row['images'] > 1 else ''}, {row['stream']} {row['bytes']:,} "
                   f"bytes, {row['bits_per_value']:.4f} bits/value{extra}")


def _bytefile_info(path: str, blob: bytes, as_json: bool, estimate: bool = False, model_spec=None) -> None:
    """``info`` of a version-6 file: the stored file, its stream, and the BFN stream's header;
    with ``estimate`` also the model's (byte or text8) L^n + L^r on the file's windows."""
    from .bytefile import read_bytefile, stream_bytes
    from .container import is_archive, read
    from .zoo import bundled_model_for

    index = read_bytefile(blob)
    res = {"file": path, "bytes": len(blob), "format_version": 6, "name": index.name or "(standard input)",
           "length": index.length, "alphabet": index.alphabet, "stream": index.stream,
           "stream_bytes": index.stream_length, "header_bytes": len(blob) - index.stream_length,
           "achieved_bits_per_byte": 8 * len(blob) / index.length if index.length else None}
    if index.stream == "bfn":
        data = stream_bytes(blob, index)
        if is_archive(data):
            res["bfn_mode"] = "chunked"
        else:
            h, _ = read(data)
            res.update(windows=h.count, bfn_mode=h.mode)
            if h.batches:
                res.update(model=h.model_id or bundled_model_for(h.model_hash) or "?", steps=h.steps,
                           r=h.r, grid_power=h.grid_power, coder_revision=h.coder_revision, seed_windows=h.seed_items)
    if estimate and index.length:
        from .api import BYTE_MODELS, decompress_bytes, estimate_loss
        from .bytecodec import ALPHABETS

        if not as_json:
            click.echo(f"{path}: decoding, then estimating the model's L^n + L^r on the same windows "
                       "(n + 1 network calls per window each)", err=True)
        _, data = decompress_bytes(blob, model_spec, progress=not as_json)
        model = model_spec or (res["model"] if res.get("model", "?") != "?" else BYTE_MODELS[index.alphabet])
        est = estimate_loss(ALPHABETS[index.alphabet].to_items(data), model=model, steps=res.get("steps"), grid_power=res.get("grid_power"),
                            progress=not as_json)
        res["model"], res["model_bits_per_byte"] = str(model), est["total_bits"] / index.length
        res["overhead_percent"] = 100.0 * (res["achieved_bits_per_byte"] / res["model_bits_per_byte"] - 1.0)
    _echo_fields(res, as_json)


def _info_files(inputs, as_json, estimate, model_spec, threads):
    from .bytefile import is_bytefile
    from .container import is_archive, read
    from .imageset import is_imageset
    from .files import read_input_bytes
    from .revisions import PORTABLE_REVISIONS
    from .zoo import bundled_model_for

    _set_threads(threads)

    def one(path):
        blob = read_input_bytes(path)
        if is_bytefile(blob):
            return _bytefile_info(path, blob, as_json, estimate, model_spec)
        if is_imageset(blob):
            return _imageset_info(path, blob, as_json)
        if is_archive(blob):
            return _archive_info(path, blob, as_json)
        h, payload = read(blob)
        dims = h.count * h.dims
        res = {"file": path, "bytes": len(blob), "format_version": h.version, "data_type": h.data_type,
               "K": h.K, "items": h.count, "item_shape": list(h.item_shape), "mode": h.mode,
               "seed_items": h.seed_items, "seed_bytes": h.seed_bytes}
        if h.batches:
            res.update(steps=h.steps, r=h.r, grid_power=h.grid_power,
                       model=h.model_id or bundled_model_for(h.model_hash) or "?",
                       model_sha256_prefix=h.model_hash.hex(), coder_revision=h.coder_revision,
                       arithmetic=("portable: decodes on any machine" if h.coder_revision in PORTABLE_REVISIONS
                                   else "float: decodes only in the writer's environment"),
                       threads=h.threads, environment=h.environment or h.environment_digest.hex(),
                       batches=len(h.batches), largest_batch=max(h.batches))
            if h.coder_revision in PORTABLE_REVISIONS:  # the hash covers weights and calibration
                res["model_sha256_prefix"] += " (weights + integer calibration)"
                res["environment"] += " (the writer's, for information)"
        res["achieved_bits_per_dim"] = 8 * len(blob) / dims if dims else None
        if h.batches:
            # The chain items against the ideal cost of the trajectories the encoder coded (the
            # header's estimate of their L^n + L^r): the stack ends as the seed plus each chain
            # item's net cost, so the chain's share of the payload is everything but the seed.
            chain_dims = (h.count - h.seed_items) * h.dims
            chain_bits = 8 * (len(payload) - h.seed_bytes)
            res["chain_bits_per_dim"] = chain_bits / chain_dims
            if h.trajectory_bits is None:
                res["trajectory_bits_per_dim"] = ("not recorded (a file from before the field was "
                                                  "added; --estimate measures the model's loss)")
            else:
                res["trajectory_bits_per_dim"] = h.trajectory_bits / chain_dims
                res["overhead_vs_trajectory_percent"] = (100.0 * (chain_bits / h.trajectory_bits - 1.0)
                                                         if h.trajectory_bits else None)
        if estimate and h.count:
            from .api import decompress as run, estimate_loss  # torch: only for the estimate

            if not as_json:
                click.echo(f"{path}: decoding, then estimating the model's L^n + L^r on the same items "
                           "(n + 1 network calls per item each)", err=True)
            array = run(blob, model=model_spec, progress=not as_json)
            model = model_spec or (res["model"] if h.batches else None)
            # a fallback-mode file records no codec settings: the model's own defaults then
            est = estimate_loss(array, model=model, steps=h.steps if h.batches else None,
                                grid_power=h.grid_power if h.batches else None, progress=not as_json)
            res["model_bits_per_dim"] = est["bits_per_dim"]
            res["model_stderr_bits_per_dim"] = est["stderr_bits_per_dim"]
            res["overhead_percent"] = 100.0 * (res["achieved_bits_per_dim"] / est["bits_per_dim"] - 1.0)
        _echo_fields(res, as_json)

    _for_each_file(inputs, one)


@main.command(name="test")
@click.argument("inputs", nargs=-1, required=True, metavar="FILE...")
@click.option("--model", "model_spec", default=None, help="Model to decode with (default: the file's).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar (the OK line is still printed).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads.")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda", "mps"]),
              help="Where the network runs.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes for the chunks of a chunked file.")
@friendly_errors
def test_file(inputs, model_spec, quiet, threads, device, jobs):
    """Decode each FILE and verify its checksum without writing anything. `bfn-codec -t` is the same."""
    _test_files(inputs, model_spec, quiet, threads, device, jobs)


def _test_files(inputs, model_spec, quiet, threads, device, jobs=1):
    from .api import decompress as run
    from .api import decompress_bytes, decompress_images
    from .bytefile import is_bytefile
    from .imageset import is_imageset, read_imageset
    from .files import read_input_bytes

    _check_device(device)
    _set_threads(threads)

    def one(path):
        blob = read_input_bytes(path)
        if is_bytefile(blob):
            _, data = decompress_bytes(blob, model_spec, device=device, progress=not quiet, jobs=jobs)
            click.echo(f"{path}: OK ({len(data):,} bytes, checksum verified)")
            return
        if is_imageset(blob) and read_imageset(blob).kind == "files":
            _, files = decompress_images(blob, model_spec, device=device, progress=not quiet, jobs=jobs)
            click.echo(f"{path}: OK ({len(files)} image{'s' if len(files) > 1 else ''}, checksums verified)")
            return
        array = run(blob, model=model_spec, device=device, progress=not quiet, jobs=jobs)
        click.echo(f"{path}: OK ({array.shape} uint8, checksum verified)")

    _for_each_file(inputs, one)


@main.command()
@click.option("--limit", default=64, show_default=True, help="Images of the bundled sample to code (max 256).")
@click.option("--steps", "-n", type=click.IntRange(1, MAX_STEPS), default=None,
              help="Transmission steps (default: each model's).")
@click.option("--threads", type=int, default=1, show_default=True,
              help="torch threads (1: the ramp-up batches are small, and extra threads only help "
                   "on an idle machine; on a busy one they can slow torch down many times).")
@friendly_errors
def demo(limit, steps, threads):
    """Compress and decompress the bundled Fashion-MNIST sample (first 256 test images,
    8-bit and binarised) with the bundled models, verify, and compare with xz and zstd on the
    same images (as a .npy file) and with the model's own loss."""
    import io
    import time

    import numpy as np

    from .api import compress_with_stats, decompress, estimate_loss
    from .baselines import classical_sizes
    from .data import binarise, sample_images

    _set_threads(threads)
    sample = sample_images()[:limit]
    for name, data in (("fmnist-binary", binarise(sample)), ("fmnist", sample)):
        click.echo(f"{name}: coding {len(data)} images", err=True)
        t0 = time.perf_counter()
        blob, stats = compress_with_stats(data, name, steps=steps, progress=True)
        t1 = time.perf_counter()
        back = decompress(blob, name, progress=True)
        t2 = time.perf_counter()
        if not np.array_equal(back, data):  # pragma: no cover - decompress verifies a checksum
            raise UserError("round trip failed")
        click.echo(f"{name}: estimating the model's L^n + L^r on the same images (the loss the coder "
                   "aims at)", err=True)
        loss = estimate_loss(data, model=name, steps=steps, progress=True)
        npy = io.BytesIO()
        np.save(npy, data)
        sizes = classical_sizes(npy.getvalue())
        bpp = lambda size: f"{8 * size / data.size:.4f}"  # noqa: E731
        yardsticks = f"xz -9e {sizes['xz']:,} bytes = {bpp(sizes['xz'])} bits/pixel"
        if sizes["zstd"] is not None:
            yardsticks += f", zstd -19 {sizes['zstd']:,} bytes = {bpp(sizes['zstd'])} bits/pixel"
        else:
            yardsticks += "; zstd: not installed (pip install zstandard to compare)"
        click.echo(f"{name}: {len(data)} images -> {len(blob):,} bytes = {bpp(len(blob))} bits/pixel "
                   f"(mode {stats['mode']}, round trip verified; encode {t1 - t0:.1f} s, decode {t2 - t1:.1f} s)\n"
                   f"  same images as .npy: {yardsticks}\n"
                   f"  model's L^n + L^r (n={loss['steps']}): {loss['bits_per_dim']:.4f} bits/pixel")


@main.command()
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False))
@click.argument("name")
@click.option("--steps", "-n", type=click.IntRange(1, MAX_STEPS), default=25, show_default=True,
              help="Default n for this model.")
@click.option("-r", "grid_ratio", type=click.FloatRange(*R_RANGE), default=2.0, show_default=True,
              help="Default grid ratio r.")
@click.option("--grid-power", type=click.FloatRange(*GRID_POWER_RANGE), default=1.0, show_default=True,
              help="Default time-grid power p.")
@click.option("--half", is_flag=True,
              help="Store the weights as float16 (half the size). The model is then the rounded weights: "
                   "the checkpoint's integer calibration is dropped, so run `bfn-codec calibrate` on the "
                   "bundled copy.")
@friendly_errors
def bundle(checkpoint, name, steps, grid_ratio, grid_power, half):
    """Copy a checkpoint's EMA weights into the package's model zoo under NAME."""
    import shutil

    from .models import ZOO_DIR, load_model, sha256_file, write_json_atomic

    model = load_model(checkpoint)
    dest = ZOO_DIR / name
    dest.mkdir(parents=True, exist_ok=True)
    if half:
        from safetensors.torch import load_file, save_file

        state = load_file(f"{checkpoint}/model.safetensors")
        largest = max(float(v.abs().max()) for v in state.values() if v.is_floating_point() and v.numel())
        if largest >= 65504.0:
            raise click.ClickException(f"a weight of magnitude {largest:g} does not fit float16")
        save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in state.items()},
                  str(dest / "model.safetensors"))
        model.integer = None
    else:
        shutil.copyfile(f"{checkpoint}/model.safetensors", dest / "model.safetensors")
    cfg = model.config()
    if half:
        cfg["info"]["weights_dtype"] = "float16"
    cfg["name"] = name
    cfg["info"]["codec"] = {"steps": steps, "r": grid_ratio, "grid_power": grid_power}
    cfg["info"]["bundled_from"] = str(checkpoint)
    cfg["weights_sha256"] = sha256_file(dest / "model.safetensors")
    write_json_atomic(dest / "config.json", cfg)
    click.echo(f"bundled {checkpoint} as {name} ({cfg['weights_sha256'][:12]}…) in {dest}", err=True)


@main.command()
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False))
@click.option("--dataset", required=True, help=DATASET_HELP)
@click.option("--items", type=click.IntRange(min=1), default=64, show_default=True,
              help="Training items whose trajectories calibrate the activation ranges.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--act-bits", type=click.IntRange(4, 16), default=12, show_default=True,
              help="Signed bits of every activation.")
@click.option("--weight-bits", type=click.IntRange(4, 12), default=10, show_default=True,
              help="Signed bits of every weight (per output channel scale).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads.")
@friendly_errors
def calibrate(checkpoint, dataset, items, seed, act_bits, weight_bits, threads):
    """Give a model its integer network, which portable coding (coder revisions 6-8) runs.

    The largest activation of every layer is measured on the float network's inputs at each
    step of the model's default time grid, for the first ITEMS training items; from these the
    fractional bits of the activations are fixed and written to the checkpoint's config.json
    ("integer", with the weights' hash and this command). The weights are not changed. Fewer
    bits code faster (more convolutions fit one float32 kernel call) and cost rate
    (benchmarks/integer_ptq.py measures both). A decoder never recalibrates: a portable file's
    model hash covers the weights and the calibration, so a new calibration makes another model
    for such files; the previous one moves to "integer_earlier", so files written with it still
    decode."""
    from .api import codec_settings
    from .data import load_dataset
    from .models import integer_config, load_model, write_json_atomic
    from .portable import power_times

    _set_threads(threads)
    model = load_model(checkpoint)
    data = load_dataset(dataset, "train")
    _check_match(model, data)
    steps, _, grid_power = codec_settings(model)
    cal = integer_config(model, data.images[:items], steps, power_times(steps, grid_power), seed=seed,
                         act_bits=act_bits, weight_bits=weight_bits)
    cal["command"] = shlex.join(["bfn-codec", "calibrate", str(checkpoint), "--dataset", dataset,
                                 "--items", str(items), "--seed", str(seed), "--act-bits", str(act_bits),
                                 "--weight-bits", str(weight_bits)])
    from pathlib import Path

    from .zoo import portable_identity

    path = Path(checkpoint) / "config.json"
    cfg = json.loads(path.read_text())
    old = cfg.get("integer")
    new_id = portable_identity(model.weights_sha256, cal)
    earlier, seen = [], {None, new_id}
    for c in [old, *(cfg.get("integer_earlier") or [])]:
        ident = portable_identity(model.weights_sha256, c)
        if ident not in seen:
            earlier.append(c)
            seen.add(ident)
    cfg["integer"] = cal
    if earlier:  # still this model's: files written with them keep decoding
        cfg["integer_earlier"] = earlier
    else:
        cfg.pop("integer_earlier", None)
    write_json_atomic(path, cfg)
    click.echo(f"calibrated {checkpoint}: {len(cal['scales'])} activation scales, "
               f"{cal['weight_bits']}-bit weights, {cal['act_bits']}-bit activations", err=True)


@main.command()
def models():
    """List the bundled models (name, data type, item shape, default n and r).

    Bundled models live in the package (bfn_codec/zoo/NAME: model.safetensors + config.json)
    and are chosen by name with --model NAME; compress picks fmnist-binary for 0/1 data and
    fmnist for 8-bit data when --model is not given."""
    from .models import ZOO_DIR, available_models

    names = available_models()
    if not names:
        click.echo("no bundled models")
    for name in names:
        cfg = json.loads((ZOO_DIR / name / "config.json").read_text())
        flow = cfg["flow"]
        codec = cfg.get("info", {}).get("codec", {})
        click.echo(f"{name}: {flow['data_type']} K={flow['K']}, items {tuple(cfg['shape'])}, "
                   f"default n={codec.get('steps', '?')} r={codec.get('r', '?')} grid p={codec.get('grid_power', 1.0)}, "
                   f"weights {cfg.get('weights_sha256', '')[:12]}")


if __name__ == "__main__":  # pragma: no cover
    main()
