"""`edge-inference` commands of the evaluate family (see edge_inference/commands/__init__.py)."""
