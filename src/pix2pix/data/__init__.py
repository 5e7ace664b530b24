"""Paired image data: discovery, decoding, joint augmentation, batch order."""

from pix2pix.data.pairs.datasets import PairedDataset, load_pair
from pix2pix.data.pairs.folders import PairFiles, find_pairs
from pix2pix.data.pairs.sampler import EpochBatchSampler
from pix2pix.data.pairs.transforms import JointParams, apply_params, sample_params

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
