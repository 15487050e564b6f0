"""posepipe: MMPose models to verified edge-accelerator artifacts, in Docker, by recipe."""

__version__ = "0.1.0"
