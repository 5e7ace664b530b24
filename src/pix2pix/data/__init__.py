"""Paired image data: discovery, decoding, joint augmentation, batch order."""

from pix2pix.data.datasets import PairedDataset, load_pair
from pix2pix.data.folders import PairFiles, find_pairs
from pix2pix.data.sampler import EpochBatchSampler
from pix2pix.data.transforms import JointParams, apply_params, sample_params

__all__ = [
    "EpochBatchSampler",
    "JointParams",
    "PairFiles",
    "PairedDataset",
    "apply_params",
    "find_pairs",
    "load_pair",
    "sample_params",
]
