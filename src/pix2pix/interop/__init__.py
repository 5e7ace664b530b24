"""Models from elsewhere: official pytorch-CycleGAN-and-pix2pix checkpoints imported."""

from pix2pix.interop.official import import_official, infer_discriminator, infer_generator

__all__ = ["import_official", "infer_discriminator", "infer_generator"]
