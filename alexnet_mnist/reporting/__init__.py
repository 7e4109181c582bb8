"""Reporting: a run's pictures, robustness on corrupted test images, and the sweep summary."""
