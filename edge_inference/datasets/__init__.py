"""Dataset readers that turn recordings into labelled model inputs."""
