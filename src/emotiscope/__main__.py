"""`python -m emotiscope ...`: the same as the `emotiscope` command (torchrun and recipes use it)."""

import sys

from .cli import main

sys.exit(main())
