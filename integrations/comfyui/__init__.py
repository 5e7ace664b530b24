"""pix2pix nodes for ComfyUI: put (or link) this folder in ComfyUI/custom_nodes/ and
`pip install pix2pix` into ComfyUI's Python."""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
