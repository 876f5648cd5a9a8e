"""`edge-inference` commands of the deploy family (see edge_inference/commands/__init__.py)."""
