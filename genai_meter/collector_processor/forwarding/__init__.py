"""Forwarding: counted spans go on to a trace store with `genai_meter.cost.*` attributes."""
