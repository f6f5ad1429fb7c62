"""Run the command line: ``python -m ase_deeph``."""

from ase_deeph.cli.app import main

raise SystemExit(main())
