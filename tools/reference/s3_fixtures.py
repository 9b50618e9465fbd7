"""Requests for S3 objects signed by botocore (the AWS SDK for Python's signer, S3SigV4Auth), for the S3 signing
tests: for each object URL, store settings and time, the HTTP(S) URL and the headers botocore sends (the empty
payload's hash signed, as for any GET; the endpoint built by S3's addressing rules: virtual-hosted on AWS, path style
for bucket names with dots and for other stores).

    python3 -m venv venv && venv/bin/pip install botocore==1.44.18
    venv/bin/python tools/reference/s3_fixtures.py > Tests/ImageSourcesTests/Fixtures/s3_requests.json
"""

import datetime
import json
import sys
import urllib.parse
from unittest import mock

import botocore.auth
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

CASES = [
    {"url": "s3://photos/a.jpg", "region": "us-east-1", "access_key": "AKIDEXAMPLE",
     "secret_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "time": "2026-12-05T03:30:00Z"},
    {"url": "s3://photos/2026/a b+c/ü €.png", "region": "eu-west-3", "access_key": "AKIA1",
     "secret_key": "secret/with+signs=", "time": "2026-01-31T23:59:59Z"},
    {"url": "s3://my.dotted.bucket/x/y.jpg", "region": "ap-south-1", "access_key": "AKIA2", "secret_key": "s2",
     "session_token": "FwoGZXIvYXdzEJr//////////wEaDA==", "time": "2025-06-01T12:00:00Z"},
    {"url": "s3://shards/00001.tar", "region": "us-east-1", "endpoint": "http://127.0.0.1:9000",
     "access_key": "minio", "secret_key": "minio-secret", "time": "2026-12-05T00:00:00Z"},
    {"url": "s3://data/k~e_y-1.webp", "region": "auto", "endpoint": "https://account.r2.cloudflarestorage.com/",
     "access_key": "r2key", "secret_key": "r2secret", "time": "2026-07-04T08:09:10Z"},
    {"url": "s3://data/a/../b.png", "region": "us-east-1", "endpoint": "https://minio.example:443",
     "access_key": "k", "secret_key": "s", "time": "2026-02-03T04:05:06Z"},
    {"url": "s3://Old_Bucket/x.jpg", "region": "us-west-2", "access_key": "k", "secret_key": "s",
     "time": "2026-02-03T04:05:06Z"},
    {"url": "s3://data/x.jpg", "region": "us-east-1", "endpoint": "http://gateway:8080/storage/s3/",
     "access_key": "k", "secret_key": "s", "time": "2026-02-03T04:05:06Z"},
]


def http_url(case):
    bucket, key = case["url"][5:].split("/", 1)
    path = urllib.parse.quote(key, safe="/~")
    if "endpoint" in case:
        return case["endpoint"].rstrip("/") + "/" + urllib.parse.quote(bucket, safe="~") + "/" + path
    if "." in bucket or "_" in bucket or bucket != bucket.lower():
        return f"https://s3.{case['region']}.amazonaws.com/{bucket}/{path}"
    return f"https://{bucket}.s3.{case['region']}.amazonaws.com/{path}"


def sign(case):
    url = http_url(case)
    request = AWSRequest(method="GET", url=url)
    credentials = Credentials(case["access_key"], case["secret_key"], case.get("session_token"))
    when = datetime.datetime.strptime(case["time"], "%Y-%m-%dT%H:%M:%SZ")
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=when):
        S3SigV4Auth(credentials, "s3", case["region"]).add_auth(request)
    headers = {name.lower(): value for name, value in request.headers.items()}
    return dict(case, http_url=url, headers=headers)


json.dump({"botocore": botocore.__version__, "cases": [sign(case) for case in CASES]}, sys.stdout, indent=1,
          ensure_ascii=False)
sys.stdout.write("\n")
