"""The optional C accelerator of the receiver's span extraction (genai_meter/collector_processor/receiver/_extract.c).

pyproject.toml holds the project's metadata; this file only declares the extension. `optional=True`:
without a C compiler the install still succeeds and spans.py runs its pure-Python path.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("genai_meter.collector_processor.receiver._extract",
                             ["genai_meter/collector_processor/receiver/_extract.c"], optional=True),
                   Extension("genai_meter.exporters._group_add", ["genai_meter/exporters/_group_add.c"],
                             optional=True),
                   Extension("genai_meter.collector_processor.metering._tally",
                             ["genai_meter/collector_processor/metering/_tally.c"], optional=True)])
