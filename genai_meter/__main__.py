"""`python -m genai_meter` is the `genai-meter` command."""

import sys

from genai_meter.cli import main

sys.exit(main())
