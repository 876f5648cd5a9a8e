"""edge_inference: learned driving and behavior models on a Pi 5 + Hailo-8 RC car."""

__version__ = "0.1.0"
