"""boto3, the reference AWS client, as a one-shot command for the end-to-end tests: sets up and
reads back what the tests need from moto (secrets, their versions and stages, IAM users).

usage: python aws_ctl.py SERVICE OPERATION [JSON_KWARGS]

Calls `boto3.client(SERVICE).OPERATION(**kwargs)` against AWS_ENDPOINT_URL with the credentials
and region of the environment, and prints the response as JSON (timestamps as ISO 8601). An AWS
error prints {"Error": {"Code", "Message"}, "HTTPStatusCode"} and exits 3.
"""

import json
import sys

import boto3
import botocore.exceptions


def main() -> int:
    service, operation = sys.argv[1], sys.argv[2]
    kwargs = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    client = boto3.client(service)
    try:
        response = getattr(client, operation)(**kwargs)
    except botocore.exceptions.ClientError as e:
        print(json.dumps({"Error": e.response.get("Error", {}),
                          "HTTPStatusCode": e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")}))
        return 3
    response.pop("ResponseMetadata", None)
    print(json.dumps(response, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
