"""The data tools behind `pix2pix data`: prepare, check, derive (edges, colorization,
inpainting masks), download, and the demo's synthetic pairs."""
