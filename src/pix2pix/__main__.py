"""`python -m pix2pix ...` (what `torchrun -m pix2pix train ...` runs)."""

from pix2pix.cli import main

if __name__ == "__main__":
    main()
