"""Reports of a fuse run: plots and the results table."""
