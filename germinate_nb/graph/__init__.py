"""Pure graph algorithms over adjacency mappings (the bottom layer: imports no other layer)."""
