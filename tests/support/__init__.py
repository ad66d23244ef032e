"""Shared test support: a fake OpenAI server, span fixture recording and loading."""
