"""The feature store (one HDF5 file a slide) and the one-pass multi-FM extraction engine."""
