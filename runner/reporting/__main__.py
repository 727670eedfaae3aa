"""``python -m runner.reporting report|matrix|diff|baseline ...``: the report subcommands
without the engine's command line."""

from __future__ import annotations

import sys

from runner.reporting.cli import main

sys.exit(main())
