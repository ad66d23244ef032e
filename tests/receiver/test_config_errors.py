"""`serve` config errors name the config file, the key and the file it points to; swapped TLS files
say so (issue 8, item 7). Real `genai-meter serve` processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.receiver.test_serve_security import self_signed
from tests.support.otlp import REPO, write_config

PORTS = ["--grpc-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]


def serve_error(config: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "genai_meter", "serve", "--config", str(config), *PORTS],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr


def test_a_missing_tokens_file_names_the_config_file_the_key_and_the_file(tmp_path: Path) -> None:
    config = write_config(tmp_path / "meter.yaml", {"server": {"auth_tokens_file": "tokens.txt"}})
    error = serve_error(config)
    assert str(config.resolve()) in error and "server.auth_tokens_file" in error
    assert str(tmp_path / "tokens.txt") in error and "No such file" in error


def test_swapped_tls_cert_and_key_say_so(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    config = write_config(tmp_path / "meter.yaml", {"server": {"tls_cert_file": str(key), "tls_key_file": str(cert)}})
    error = serve_error(config)
    assert "Failed to bind" not in error
    assert str(config.resolve()) in error and "swapped" in error
    assert f"{key} holds a private key and {cert} a certificate" in error


def test_a_key_that_does_not_match_the_certificate_is_named(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    cert, _ = self_signed(first)
    _, other_key = self_signed(second)
    config = write_config(tmp_path / "meter.yaml", {"server": {"tls_cert_file": str(cert),
                                                               "tls_key_file": str(other_key)}})
    error = serve_error(config)
    assert "Failed to bind" not in error and "server.tls_key_file" in error and str(other_key) in error
