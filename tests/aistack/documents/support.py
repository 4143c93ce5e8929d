"""Test helpers of the documents tests: a real S3 endpoint (moto in server mode on 127.0.0.1)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

BUCKET = "aistack-documents"


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """A moto S3 server on a free 127.0.0.1 port for the block; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
