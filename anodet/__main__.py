"""``python -m anodet``: the command line."""

from anodet.cli import main

raise SystemExit(main())
