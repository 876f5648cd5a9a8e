"""Model definitions: ``act`` (driving policy) and ``fsq`` (IMU behavior classifier)."""
