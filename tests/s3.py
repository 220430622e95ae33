"""A real S3 API server on 127.0.0.1 for the object-storage tests (moto's server mode).

``s3_server`` starts moto's threaded server on a free port once a session and points every S3
client of this process at it through the standard AWS variables: pyarrow's ``S3FileSystem``
(what ``activessf.io.fs`` and Ray Train's storage use) and boto3 both read ``AWS_ENDPOINT_URL``.
The session's Ray runtime starts after it (``tests/conftest.py``), so its workers inherit the
same variables. ``S3Server.make_bucket`` gives a test a fresh, empty bucket.
"""

from __future__ import annotations

import itertools
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

# Fake credentials: the server accepts any; real ones in the environment must never be used.
_AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
# Variables that would send a client elsewhere (a profile, a config file, another endpoint).
_AWS_DROP = ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL_S3")
_names = itertools.count()


@dataclass
class S3Server:
    """The running server: its endpoint and a client."""

    endpoint: str

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def make_bucket(self, prefix: str) -> str:
        """Create a new empty bucket (unique name) and return its name."""
        name = f"{prefix}-{os.getpid()}-{next(_names)}"
        self.client().create_bucket(Bucket=name)
        return name

    def upload_tree(self, folder: Path, uri: str) -> list[str]:
        """Upload every file under ``folder`` to ``s3://bucket/prefix`` (``uri``); the object URIs."""
        bucket, _, prefix = uri.removeprefix("s3://").partition("/")
        client, uris = self.client(), []
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            key = "/".join(filter(None, [prefix.strip("/"), path.relative_to(folder).as_posix()]))
            client.upload_file(str(path), bucket, key)
            uris.append(f"s3://{bucket}/{key}")
        return uris

    def keys(self, bucket: str, prefix: str = "") -> dict[str, int]:
        """Every object under ``prefix``: key -> size (folder markers ``.../`` left out)."""
        found: dict[str, int] = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.update({o["Key"]: o["Size"] for o in page.get("Contents", []) if not o["Key"].endswith("/")})
        return found


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a free loopback port, this process's S3 clients pointed at it."""
    from moto.server import ThreadedMotoServer

    from activessf.io import fs as afs

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {**_AWS_ENV, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    saved = {k: os.environ.get(k) for k in (*env, *_AWS_DROP)}
    os.environ.update(env)
    for key in _AWS_DROP:
        os.environ.pop(key, None)
    afs._filesystem_for.cache_clear()  # a filesystem made before would keep its old endpoint
    try:
        yield S3Server(env["AWS_ENDPOINT_URL"])
    finally:
        afs._filesystem_for.cache_clear()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()
