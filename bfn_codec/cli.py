"""Command-line interface: a thin layer of click commands over the library.

Errors the user can fix (missing files, bad input, unknown models) end with a one-line
message on stderr and exit code 1, never a traceback.
"""
from __future__ import annotations

import functools
import json
import shlex
import sys

import click

from . import __version__


class UserError(click.ClickException):
    exit_code = 1


def friendly_errors(fn):
    """Turn the library's user-facing exceptions into one-line errors with exit code 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from .data import DataError
        from .models import ModelError

        errors = (DataError, ModelError)
        try:
            from .container import FormatError
            errors = errors + (FormatError,)
        except ImportError:  # pragma: no cover
            pass
        try:
            return fn(*args, **kwargs)
        except errors as e:
            raise UserError(str(e)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper


def _set_threads(threads):
    if threads:
        import torch

        torch.set_num_threads(threads)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bfn-codec")
def main():
    """bfn-codec: lossless compression with Bayesian Flow Networks and bits-back ANS coding.

    \b
    Compress / decompress (zstd-like):
      bfn-codec compress images.npy          -> images.npy.bfn
      bfn-codec decompress images.npy.bfn    -> images.npy
      bfn-codec info images.npy.bfn          header, achieved bits/dim vs the model's loss
      bfn-codec test images.npy.bfn          decode and verify the checksum
    Models:
      bfn-codec train --dataset fmnist-binary --out runs/bin
      bfn-codec loss --model runs/bin --dataset fmnist-binary --steps 25
      bfn-codec sample --model runs/bin -n 64 -o grid.png
      bfn-codec models                       list the bundled models
    """


DATASET_HELP = ("fmnist (8-bit, 256 bins), fmnist-binary (pixel >= 128 -> 1) or npy:PATH "
                "(uint8 array (N, H, W); values <= 1 are treated as binary)")


@main.command()
@click.option("--dataset", required=True, help=DATASET_HELP)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Checkpoint directory (model.safetensors, config.json, train_state.safetensors).")
@click.option("--steps", default=1000, show_default=True, help="Total optimiser steps to reach.")
@click.option("--batch-size", default=64, show_default=True)
@click.option("--lr", default=2e-4, show_default=True, help="AdamW learning rate.")
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
@friendly_errors
def train(dataset, out_dir, steps, batch_size, lr, device, seed, resume, channels, channel_mult,
          res_blocks, unshuffle, attention, validate_every, checkpoint_every, ema_decay, data_dir, threads):
    """Train a BFN with the continuous-time loss L^inf (AdamW, EMA, gradient clipping).

    Shows a progress bar with the loss, it/s and ETA; validates L^inf (bits/dim) every
    --validate-every steps and writes a checkpoint every --checkpoint-every steps."""
    from .data import train_validation
    from .train import DEFAULT_NETWORK, train as run

    _set_threads(threads)
    train_data, val_data = train_validation(dataset, data_dir)
    network = dict(DEFAULT_NETWORK, channels=channels, num_res_blocks=res_blocks, unshuffle=unshuffle,
                   attention=attention,
                   channel_mult=[int(c) for c in channel_mult.split(",")])
    command = "bfn-codec " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    run(train_data, val_data, out_dir, steps=steps, batch_size=batch_size, lr=lr, seed=seed,
        resume=resume, network=network, validate_every=validate_every,
        checkpoint_every=checkpoint_every, ema_decay=ema_decay, device=device, command=command,
        log=lambda m: click.echo(m, err=True))
    click.echo(f"checkpoint written to {out_dir}", err=True)


@main.command()
@click.option("--model", "model_spec", required=True, help="Checkpoint directory or bundled model name.")
@click.option("--dataset", required=True, help=DATASET_HELP)
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "test", "validation"]))
@click.option("--steps", "-n", default=100, show_default=True, help="Number of transmission steps n.")
@click.option("--limit", default=1000, show_default=True, help="Evaluate the first N items (0 = all).")
@click.option("--repeats", default=1, show_default=True, help="Monte-Carlo passes over the items.")
@click.option("--all-steps", is_flag=True, help="Sum all n steps exactly instead of one random step per item.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--data-dir", default=None)
@click.option("--threads", type=int, default=None)
@friendly_errors
def loss(model_spec, dataset, split, steps, limit, repeats, all_steps, as_json, data_dir, threads):
    """Print L^n + L^r (the n-step code length) and L^inf in bits/dim with standard errors."""
    from .data import load_dataset
    from .evaluate import evaluate_loss
    from .models import load_model

    _set_threads(threads)
    model = load_model(model_spec)
    data = load_dataset(dataset, split, data_dir)
    _check_match(model, data)
    items = data.images[:limit] if limit else data.images
    res = evaluate_loss(model, items, steps=steps, repeats=repeats, all_steps=all_steps,
                        progress=not as_json)
    res.update({"model": model.name, "dataset": data.name})
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    tot, inf = res["n_step_plus_reconstruction_bits_per_dim"], res["infinity_bits_per_dim"]
    click.echo(f"{data.name}, {len(items)} items x {repeats}, model {model.name}")
    click.echo(f"L^n + L^r (n={steps}): {tot['mean']:.4f} ± {tot['stderr']:.4f} bits/dim")
    click.echo(f"  L^n {res['n_step_bits_per_dim']['mean']:.4f}, L^r {res['reconstruction_bits_per_dim']['mean']:.4f}")
    click.echo(f"L^inf:              {inf['mean']:.4f} ± {inf['stderr']:.4f} bits/dim")


def _check_match(model, data):
    from .models import ModelError

    if model.flow.data_type != data.data_type or model.flow.K != data.K:
        raise ModelError(f"model {model.name} is for {model.flow.data_type} data with K={model.flow.K}, "
                         f"but {data.name} is {data.data_type} with K={data.K}")
    if tuple(data.images.shape[1:]) != model.shape:
        raise ModelError(f"model {model.name} expects items of shape {model.shape}, got {data.images.shape[1:]}")


@main.command()
@click.option("--model", "model_spec", required=True, help="Checkpoint directory or bundled model name.")
@click.option("-n", "--count", default=64, show_default=True, help="Number of samples.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--steps", default=100, show_default=True, help="Generation steps.")
@click.option("--seed", default=0, show_default=True)
@friendly_errors
def sample(model_spec, count, output, steps, seed):
    """Generate samples and write them as a PNG grid."""
    import torch

    from .models import load_model
    from .sample import grid, sample as draw, to_grayscale, write_png

    model = load_model(model_spec)
    if len(model.shape) != 3 or model.shape[0] != 1:
        raise UserError("sampling to PNG needs a single-channel image model")
    items = draw(model, count, steps, generator=torch.Generator().manual_seed(seed))
    write_png(output, grid(to_grayscale(items[:, 0], model.flow.K)))
    click.echo(f"wrote {count} samples to {output}", err=True)


@main.command()
def models():
    """List the bundled models."""
    from .models import ZOO_DIR, available_models

    names = available_models()
    if not names:
        click.echo("no bundled models")
    for name in names:
        cfg = json.loads((ZOO_DIR / name / "config.json").read_text())
        flow = cfg["flow"]
        click.echo(f"{name}: {flow['data_type']} K={flow['K']}, items {tuple(cfg['shape'])}")


if __name__ == "__main__":  # pragma: no cover
    main()
