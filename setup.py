"""The optional C accelerators of the receiver's hot path (docs/performance.md): span extraction, the
bulk tally, its ledger parameters and the series additions of a group; and the report service's per-call CSV.

pyproject.toml holds the project's metadata; this file only declares the extensions. `optional=True`:
without a C compiler the install still succeeds and each module runs its pure-Python reference.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("genai_meter.collector_processor.receiver._extract",
                             ["genai_meter/collector_processor/receiver/_extract.c"], optional=True),
                   Extension("genai_meter.collector_processor.receiver._tally_params",
                             ["genai_meter/collector_processor/receiver/_tally_params.c"], optional=True),
                   Extension("genai_meter.exporters._group_add", ["genai_meter/exporters/_group_add.c"],
                             optional=True),
                   Extension("genai_meter.collector_processor.metering._tally",
                             ["genai_meter/collector_processor/metering/_tally.c"], optional=True),
                   Extension("genai_meter.reports.render._call_csv",
                             ["genai_meter/reports/render/_call_csv.c", "genai_meter/reports/render/_flat_json.c"],
                             depends=["genai_meter/reports/render/_flat_json.h"], optional=True)])
