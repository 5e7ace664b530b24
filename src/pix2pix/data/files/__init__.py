"""Image files: reading and writing every format and depth, colour spaces, the tensor
encoding the networks see, and the decompression-bomb guard."""
