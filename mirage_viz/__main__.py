"""``python -m mirage_viz``: the command line (the same as the ``mirage-viz`` script)."""

from mirage_viz.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
