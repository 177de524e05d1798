"""``python -m fusecpath.catalogue --write``: the catalogue TOML from the installed plugins' registrations,
and docs/models.md when run from a source checkout."""

import sys

from fusecpath.catalogue import catalogue_dir, load_catalogue, write, write_docs
from fusecpath.catalogue.docs import docs_dir
from fusecpath.plugins import get_registry


def main(argv: list[str]) -> int:
    if argv != ["--write"]:
        print("usage: python -m fusecpath.catalogue --write", file=sys.stderr)
        return 2
    target = catalogue_dir()
    for path in write(target, get_registry()):
        print(path)
    if (docs := docs_dir()) is not None:
        print(write_docs(docs, load_catalogue(target)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
