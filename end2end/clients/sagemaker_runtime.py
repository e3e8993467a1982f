"""Invokes a Capstan endpoint with boto3's SageMaker Runtime client, signing
with an invoke key (AWS Signature Version 4), as a user's script would.

usage: sagemaker_runtime.py <capstan url> <endpoint name> <access key id> <secret> <calls>
where <calls> is a JSON list of {"body": str, "content_type": str,
"variant": str|null}. Prints one JSON object per call: the answer
(body, content type, variant) or the error (code, HTTP status, message,
OriginalStatusCode)."""

import json
import sys

import boto3
import botocore.config
import botocore.exceptions

url, name, key_id, secret, calls = sys.argv[1:6]
client = boto3.client(
    "sagemaker-runtime",
    endpoint_url=url,
    region_name="us-east-1",
    aws_access_key_id=key_id,
    aws_secret_access_key=secret,
    config=botocore.config.Config(retries={"max_attempts": 1, "mode": "standard"}),
)
for call in json.loads(calls):
    args = {"EndpointName": name, "Body": call["body"].encode(), "ContentType": call["content_type"],
            "Accept": "application/json"}
    if call.get("variant"):
        args["TargetVariant"] = call["variant"]
    try:
        r = client.invoke_endpoint(**args)
        out = {"body": r["Body"].read().decode(), "content_type": r.get("ContentType"),
               "variant": r.get("InvokedProductionVariant")}
    except botocore.exceptions.ClientError as e:
        out = {"error": e.response["Error"]["Code"], "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
               "message": e.response["Error"].get("Message"), "original_status": e.response.get("OriginalStatusCode")}
    print(json.dumps(out), flush=True)
