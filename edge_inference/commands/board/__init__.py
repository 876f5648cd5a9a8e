"""`edge-inference` commands of the board family (see edge_inference/commands/__init__.py)."""
