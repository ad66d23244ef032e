"""`genai-meter demo`: the whole stack on this machine, without Docker, and its traffic."""
