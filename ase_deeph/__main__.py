"""Run the command line: ``python -m ase_deeph``."""

from .cli import main

raise SystemExit(main())
