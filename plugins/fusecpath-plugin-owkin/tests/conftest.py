from fusecpath.testing import hf_cache  # noqa: F401
