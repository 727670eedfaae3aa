"""`python -m runner.vm`: see runner/vm/cli.py."""

import sys

from .cli import main

sys.exit(main())
