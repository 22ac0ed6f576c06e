"""Runs the `rag` command from a checkout: `python cli.py --help` (the app lives in rag/cli.py)."""

from rag.cli import main

if __name__ == "__main__":
    main()
