"""Entry shim: ``python cli.py ...`` behaves exactly like the ``bfn-codec`` console script."""
from bfn_codec.cli import main

if __name__ == "__main__":
    main()
