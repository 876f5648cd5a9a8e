"""`edge-inference` commands of the bench family (see edge_inference/commands/__init__.py)."""
