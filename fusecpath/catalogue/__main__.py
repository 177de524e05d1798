"""``python -m fusecpath.catalogue --write`` (``make catalogue``): regenerate the TOML from the registrations."""

import sys

from fusecpath.catalogue import catalogue_dir, write
from fusecpath.plugins import get_registry

if sys.argv[1:] != ["--write"]:
    sys.exit("usage: python -m fusecpath.catalogue --write")
for path in write(catalogue_dir(), get_registry()):
    print(path)
