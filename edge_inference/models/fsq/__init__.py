"""FSQ behavior classifier (IMU window -> class probabilities + FSQ code index).

Modules: ``configuration_fsq`` (config dataclass), ``features`` and ``codes`` (numpy,
robot side), ``quantizer`` and ``modeling_fsq`` (torch), ``checkpoint`` (save/load),
``training`` (train + evaluate). This package imports no torch itself.
"""
