"""Paired data: discovering pairs on disk, the dataset, joint transforms, batch order,
the held-out split."""
