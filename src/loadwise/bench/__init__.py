"""Measuring loaders: samples/s per epoch, time to first batch, peak memory; and plots."""

from loadwise.bench.measure import Measurement, batch_size_of, measure

__all__ = ["Measurement", "batch_size_of", "measure"]
