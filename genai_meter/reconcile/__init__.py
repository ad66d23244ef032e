"""Reconciliation, the provider side: the providers' own usage and cost figures as `ProviderLine`s.

`read_export(path)` reads an export file (kind told from the content), `pull(provider, days)` fetches
the same reports from the provider's admin API; both give an `Export`: lines plus the
(provider, day, kind) reports they cover. `model_key` is the model name both sides are matched on.
docs/reconciliation.md describes every source and what each field becomes.
"""

from genai_meter.reconcile.client import Limits, PullError
from genai_meter.reconcile.lines import Coverage, Export, ProviderLine, ReconcileError, Source, merge_exports
from genai_meter.reconcile.models import model_key
from genai_meter.reconcile.pull import ENDPOINTS, pull
from genai_meter.reconcile.read import read_export, read_text

__all__ = ["ENDPOINTS", "Coverage", "Export", "Limits", "ProviderLine", "PullError", "ReconcileError", "Source",
           "merge_exports", "model_key", "pull", "read_export", "read_text"]
