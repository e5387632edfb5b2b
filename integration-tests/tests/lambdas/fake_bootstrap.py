#!/usr/bin/env python3
"""A stand-in `bootstrap` for the tests of the local gateway's Runtime API: it polls the
Runtime API as a real function does and answers route events like the subscribe function,
except that a message containing "crash" makes it exit with status 7 mid-invocation, one
containing "hang" makes it sleep past any timeout, and one containing "fail" answers with
an invocation error. With FAKE_EXIT_AT_INIT set, it writes that text and exits with status 3
before it asks for an invocation."""

import json
import os
import sys
import time
import urllib.request

if os.environ.get("FAKE_EXIT_AT_INIT"):
    print(os.environ["FAKE_EXIT_AT_INIT"], file=sys.stderr, flush=True)
    sys.exit(3)

api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
while True:
    with urllib.request.urlopen(api + "next") as response:
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        assert response.headers["Lambda-Runtime-Deadline-Ms"], "a deadline"
        assert response.headers["Lambda-Runtime-Invoked-Function-Arn"], "an ARN"
        event = json.loads(response.read())
    body = event.get("body") or ""
    if "crash" in body:
        print("crashing on purpose", flush=True)
        os._exit(7)
    if "hang" in body:
        time.sleep(3600)
    if "fail" in body:
        answer, path = {"errorType": "Fake", "errorMessage": "failed on purpose"}, "/error"
    else:
        answer, path = {"statusCode": 200, "body": json.dumps({"ok": True, "fake": True})}, "/response"
    request = urllib.request.Request(
        api + request_id + path, data=json.dumps(answer).encode(), method="POST"
    )
    urllib.request.urlopen(request).read()
