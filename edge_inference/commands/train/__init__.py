"""`edge-inference` commands of the train family (see edge_inference/commands/__init__.py)."""
