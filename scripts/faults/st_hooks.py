"""Schemathesis hooks for the fault suite (scripts/faults.sh, scenario
`schemathesis`): `POST /v1/imports` takes a streamed body as `text/csv` or
`application/x-ndjson`, which schemathesis cannot serialize by itself. These
turn whatever it generated into such a body (one JSON value per line, or a
CSV of the values' text), so the endpoint is fuzzed too: a malformed body
must still never give a 5xx.
"""
import csv
import io
import json

import schemathesis


def _rows(value):
    if isinstance(value, list):
        return value
    return [value]


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    return "".join(json.dumps(v) + "\n" for v in _rows(value)).encode("utf-8", "surrogatepass")


@schemathesis.serializer("text/csv")
def text_csv(ctx, value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    out = io.StringIO()
    w = csv.writer(out)
    for row in _rows(value):
        if isinstance(row, dict):
            w.writerow([str(v) for v in row.values()])
        elif isinstance(row, list):
            w.writerow([str(v) for v in row])
        else:
            w.writerow([str(row)])
    return out.getvalue().encode("utf-8", "surrogatepass")
