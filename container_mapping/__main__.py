"""`python -m container_mapping` runs the CLI."""

import sys

from container_mapping.cli import main

sys.exit(main())
