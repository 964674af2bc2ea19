"""An S3-compatible server (moto's) on 127.0.0.1, started and stopped here, and a bucket per
test; datasets are packed into it with ``loadwise.pack`` itself."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer
from tests.data import array_columns

import loadwise


@dataclass
class S3:
    """The running server: its endpoint and the fsspec options that reach it."""

    endpoint: str
    server: ThreadedMotoServer

    def options(self, **extra: Any) -> dict[str, Any]:
        return {
            "key": "testing",
            "secret": "testing",
            "endpoint_url": self.endpoint,
            "client_kwargs": {"region_name": "us-east-1"},
            "config_kwargs": {"connect_timeout": 2, "read_timeout": 10,
                              "retries": {"max_attempts": 1}},
            **extra,
        }  # fmt: skip

    def client(self) -> Any:
        return boto3.client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip

    def new_bucket(self) -> str:
        name = f"b{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


def start_server(port: int = 0) -> ThreadedMotoServer:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3]:
    server = start_server()
    host, port = server.get_host_and_port()
    yield S3(f"http://{host}:{port}", server)
    server.stop()


@pytest.fixture
def bucket(s3: S3) -> str:
    return s3.new_bucket()


@pytest.fixture
def arrays_url(s3: S3, bucket: str) -> str:
    """``array_columns()`` packed into about 8 shards at ``s3://<bucket>/arrays``."""
    url = f"s3://{bucket}/arrays"
    loadwise.pack(array_columns(), url, shard_bytes=1_500, progress=False,
                  storage_options=s3.options())  # fmt: skip
    return url


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"
