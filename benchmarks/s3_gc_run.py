#!/usr/bin/env python3
"""One ``regfs gc --dry-run --json --min-age 0 --skip-live-check`` on a bucket, as its own
process, for benchmarks/s3_gc.py: the run the command makes (the library's ``collect`` on an
:class:`regfs.storage.s3.S3Storage`, the collector paused and no teardown, as ``regfs`` does),
until the command line takes ``s3://`` ROOTs on main.

    python benchmarks/s3_gc_run.py BUCKET PREFIX ENDPOINT_URL   # keys from AWS_* variables
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from regfs.gc.plan import GcOptions
from regfs.gc.run import collect
from regfs.parallel.heap import collector_paused
from regfs.render.json_gc import gc_dict
from regfs.storage.s3 import S3Storage
from regfs.storage.s3client import make_client


def main() -> None:
    bucket, prefix, endpoint = sys.argv[1:4]
    with collector_paused():
        client = make_client(endpoint_url=endpoint, region=os.environ.get("AWS_DEFAULT_REGION"))
        storage = S3Storage(client, bucket, prefix, workers=16)
        outcome = collect(storage, GcOptions(min_age=0), dry_run=True, skip_live_check=True)
        sys.stdout.write(json.dumps(gc_dict(outcome)))
        sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
