"""`edge-inference` commands of the run family (see edge_inference/commands/__init__.py)."""
