"""Bearer-token auth and TLS on both receivers, with real clients."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from genai_meter.collector_processor.receiver.auth import TokenAuth
from genai_meter.config import ServerConfig
from tests.support.otlp import (
    Serve,
    http_request,
    llm_attributes,
    make_request,
    make_span,
    post_traces,
    scrape,
    start_serve,
    total,
    write_config,
)

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
TOKEN = "s3cret-token-1"


def test_token_auth_unit(tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text("# ops\n\nfile-token\n", encoding="utf-8")
    auth = TokenAuth.from_config(ServerConfig(auth_tokens=["a"], auth_tokens_file=tokens_file))
    assert auth.check("Bearer a") and auth.check("bearer file-token") and auth.check(b"Bearer  a ")
    assert not auth.check(None) and not auth.check("Bearer b") and not auth.check("Basic a")
    assert not auth.check("Bearer ") and not auth.check("a")
    assert TokenAuth([]).check(None)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cryptography if installed, else the openssl CLI)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        private = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                       .public_key(private.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - datetime.timedelta(minutes=5))
                       .not_valid_after(now + datetime.timedelta(days=1))
                       .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                                   x509.DNSName("localhost")]), critical=False)
                       .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                       .sign(private, hashes.SHA256()))
        cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor the openssl CLI is available")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, Path]]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(directory)
    (directory / "tokens").write_text(f"{TOKEN}\n", encoding="utf-8")
    config = write_config(directory / "genai-meter.yaml", {"server": {
        "auth_tokens_file": "tokens", "tls_cert_file": "cert.pem", "tls_key_file": "key.pem",
        "shutdown_scrape_wait_seconds": 5}})
    service = start_serve(config)
    yield service, cert
    assert service.stop() == 0, service.log()


@pytest.mark.slow
def test_auth_and_tls_on_http(secured: tuple[Serve, Path]) -> None:
    serve, cert = secured
    context = ssl.create_default_context(cafile=str(cert))
    body = make_request([make_span(llm_attributes(customer="tls-http"))])
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        reply = post_traces(serve.http, body, headers=headers, ssl_context=context)
        assert reply.status == 401
        assert reply.headers["www-authenticate"] == "Bearer"
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        post_traces(serve.http, body, headers={"Authorization": f"Bearer {TOKEN}"})  # plain HTTP to a TLS port
    assert total(scrape(serve.metrics), "llm_requests_total", customer="tls-http") == 0
    reply = post_traces(serve.http, body, headers={"Authorization": f"Bearer {TOKEN}"}, ssl_context=context)
    assert reply.status == 200
    assert total(scrape(serve.metrics), "llm_requests_total", customer="tls-http") == 1
    assert http_request(serve.metrics, "GET", "/readyz").status == 200  # /metrics stays plain HTTP


@pytest.mark.slow
def test_auth_and_tls_on_grpc(secured: tuple[Serve, Path]) -> None:
    serve, cert = secured
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    body = make_request([make_span(llm_attributes(customer="tls-grpc"))]).SerializeToString()
    with grpc.secure_channel(serve.grpc, credentials) as channel:
        export = channel.unary_unary(EXPORT_METHOD)
        for metadata in (None, (("authorization", "Bearer nope"),)):
            with pytest.raises(grpc.RpcError) as denied:
                export(body, timeout=10, metadata=metadata)
            assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert total(scrape(serve.metrics), "llm_requests_total", customer="tls-grpc") == 0
        export(body, timeout=10, metadata=(("authorization", f"Bearer {TOKEN}"),))
    exporter = GrpcSpanExporter(endpoint=f"https://{serve.grpc}", credentials=credentials,
                                headers={"authorization": f"Bearer {TOKEN}"})
    from tests.receiver.test_serve_clients import send_with_sdk

    send_with_sdk(exporter, "tls-sdk-grpc", 3)
    unauthorized = GrpcSpanExporter(endpoint=f"https://{serve.grpc}", credentials=credentials, timeout=5)
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("chat") as span:
        span.set_attributes(llm_attributes(customer="tls-denied"))
    assert unauthorized.export([span]) == SpanExportResult.FAILURE
    samples = scrape(serve.metrics)
    assert total(samples, "llm_requests_total", customer="tls-grpc") == 1
    assert total(samples, "llm_requests_total", customer="tls-sdk-grpc") == 3
    assert total(samples, "llm_requests_total", customer="tls-denied") == 0
