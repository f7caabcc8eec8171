"""The notebook layer: magics and the explorer widget (the only importer of IPython/ipywidgets)."""
