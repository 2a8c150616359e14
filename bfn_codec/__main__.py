"""``python -m bfn_codec ...`` is ``bfn-codec ...``; under torchrun:
``torchrun --nproc_per_node N -m bfn_codec train ...`` (docs/training.md)."""
from .cli import main

if __name__ == "__main__":
    main(prog_name="python -m bfn_codec")
