"""SQS client code run against wharf's SQS endpoint by tests/sqs.rs: plain boto3, pointed at
the broker with endpoint_url. Each scenario asserts what SQS would answer and prints a JSON
object for the Rust side, which checks the broker through wharf's own API.

    python3 client.py SCENARIO ENDPOINT '{"key": ...}'
"""

import base64
import hashlib
import json
import struct
import sys

import boto3
import botocore.config
from botocore.exceptions import ClientError


def client(endpoint, key="unused", secret=None):
    return boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret if secret is not None else key,
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )


def md5(data):
    return hashlib.md5(data).hexdigest()


def md5_of_attributes(attributes):
    """SQS's digest of message attributes, written from its documentation (as the Java SDK
    checks it): name, type, transport byte, value, each length-prefixed but the byte."""
    out = b""
    for name in sorted(attributes):
        value = attributes[name]
        data_type = value["DataType"]
        out += struct.pack(">I", len(name.encode())) + name.encode()
        out += struct.pack(">I", len(data_type.encode())) + data_type.encode()
        if "BinaryValue" in value:
            raw = value["BinaryValue"]
            out += b"\x02" + struct.pack(">I", len(raw)) + raw
        else:
            text = value["StringValue"].encode()
            out += b"\x01" + struct.pack(">I", len(text)) + text
    return md5(out)


def error_of(call, *args, **kwargs):
    """The error code SQS gives for the call (which must fail)."""
    try:
        call(*args, **kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError(f"{call.__name__} succeeded")


def lifecycle(endpoint, _args):
    sqs = client(endpoint)
    url = sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    assert url.endswith("/default/orders"), url
    # Again with the same attributes: the same URL; with other ones: refused.
    assert sqs.create_queue(QueueName="orders", Attributes={"VisibilityTimeout": "60"})["QueueUrl"] == url
    assert error_of(sqs.create_queue, QueueName="orders", Attributes={"VisibilityTimeout": "5"}) == "QueueAlreadyExists"
    sqs.create_queue(QueueName="other")
    assert sqs.get_queue_url(QueueName="orders")["QueueUrl"] == url
    assert sqs.list_queues(QueueNamePrefix="ord")["QueueUrls"] == [url]
    assert len(sqs.list_queues()["QueueUrls"]) == 2
    page = sqs.list_queues(MaxResults=1)
    assert len(page["QueueUrls"]) == 1 and "NextToken" in page, page
    rest = sqs.list_queues(MaxResults=1, NextToken=page["NextToken"])
    assert len(rest["QueueUrls"]) == 1 and "NextToken" not in rest and rest["QueueUrls"] != page["QueueUrls"]

    attributes = {
        "customer": {"DataType": "String", "StringValue": "acme"},
        "weight": {"DataType": "Number.kg", "StringValue": "12.5"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xffwharf"},
    }
    body = "héllo, wharf 🚢"
    sent = sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
    assert sent["MD5OfMessageBody"] == md5(body.encode()), sent
    assert sent["MD5OfMessageAttributes"] == md5_of_attributes(attributes), sent

    batch = sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "a", "MessageBody": "second"},
            {"Id": "b", "MessageBody": "third"},
            {"Id": "bad", "MessageBody": "x", "DelaySeconds": 901},
            {"Id": "late", "MessageBody": "delayed", "DelaySeconds": 600},
        ],
    )
    assert sorted(s["Id"] for s in batch["Successful"]) == ["a", "b", "late"], batch
    assert [(f["Id"], f["Code"], f["SenderFault"]) for f in batch["Failed"]] == [("bad", "InvalidParameterValue", True)]
    for entries, code in [
        ([], "AWS.SimpleQueueService.EmptyBatchRequest"),
        ([{"Id": str(i), "MessageBody": "m"} for i in range(11)], "AWS.SimpleQueueService.TooManyEntriesInBatchRequest"),
        ([{"Id": "x", "MessageBody": "m"}, {"Id": "x", "MessageBody": "n"}], "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"),
        ([{"Id": "no spaces", "MessageBody": "m"}], "AWS.SimpleQueueService.InvalidBatchEntryId"),
    ]:
        assert error_of(sqs.send_message_batch, QueueUrl=url, Entries=entries) == code, code

    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "3", counts
    assert counts["ApproximateNumberOfMessagesDelayed"] == "1", counts
    assert counts["VisibilityTimeout"] == "60", counts

    got = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    )["Messages"]
    # FIFO within a priority: in the order sent.
    assert [m["Body"] for m in got] == [body, "second", "third"], got
    first = got[0]
    assert first["MessageId"] == sent["MessageId"]
    assert first["MD5OfBody"] == md5(body.encode())
    assert first["MessageAttributes"] == attributes, first["MessageAttributes"]
    assert first["MD5OfMessageAttributes"] == md5_of_attributes(attributes)
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    assert "MessageAttributes" not in got[1]
    inflight = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessages"]
    )["Attributes"]
    assert inflight == {"ApproximateNumberOfMessagesNotVisible": "3", "ApproximateNumberOfMessages": "0"}, inflight
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []

    # Giving one back (visibility 0) delivers it again, with a new handle; the old one is stale.
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=got[1]["ReceiptHandle"], VisibilityTimeout=0)
    again = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert [m["Body"] for m in again] == ["second"] and again[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    assert again[0]["ReceiptHandle"] != got[1]["ReceiptHandle"]
    assert error_of(sqs.delete_message, QueueUrl=url, ReceiptHandle=got[1]["ReceiptHandle"]) == "ReceiptHandleIsInvalid"
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=again[0]["ReceiptHandle"], VisibilityTimeout=120)

    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    # A retried delete of a deleted message succeeds, as in SQS.
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"])
    deleted = sqs.delete_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "again", "ReceiptHandle": again[0]["ReceiptHandle"]},
            {"Id": "third", "ReceiptHandle": got[2]["ReceiptHandle"]},
            {"Id": "junk", "ReceiptHandle": "not-a-handle"},
        ],
    )
    assert sorted(s["Id"] for s in deleted["Successful"]) == ["again", "third"], deleted
    assert [(f["Id"], f["Code"]) for f in deleted["Failed"]] == [("junk", "ReceiptHandleIsInvalid")]
    # A handle of this queue is no handle of another.
    other = sqs.get_queue_url(QueueName="other")["QueueUrl"]
    assert error_of(sqs.delete_message, QueueUrl=other, ReceiptHandle=got[2]["ReceiptHandle"]) == "ReceiptHandleIsInvalid"

    missing = url.rsplit("/", 1)[0] + "/nope"
    assert error_of(sqs.get_queue_url, QueueName="nope") == "AWS.SimpleQueueService.NonExistentQueue"
    assert error_of(sqs.send_message, QueueUrl=missing, MessageBody="m") == "AWS.SimpleQueueService.NonExistentQueue"
    assert error_of(sqs.receive_message, QueueUrl=missing) == "AWS.SimpleQueueService.NonExistentQueue"
    assert error_of(sqs.create_queue, QueueName="jobs.fifo", Attributes={"FifoQueue": "true"}) == "AWS.SimpleQueueService.UnsupportedOperation"
    assert error_of(sqs.create_queue, QueueName="q", Attributes={"KmsMasterKeyId": "k"}) == "InvalidAttributeName"
    assert error_of(sqs.create_queue, QueueName="bad name!") == "InvalidParameterValue"
    assert error_of(sqs.get_queue_attributes, QueueUrl=url, AttributeNames=["Policy"]) == "InvalidAttributeName"
    assert error_of(sqs.send_message, QueueUrl=url, MessageBody="") == "InvalidParameterValue"
    assert error_of(sqs.send_message, QueueUrl=url, MessageBody="\x01") == "InvalidMessageContents"
    assert error_of(sqs.receive_message, QueueUrl=url, MaxNumberOfMessages=11) == "InvalidParameterValue"
    assert error_of(sqs.receive_message, QueueUrl=url, WaitTimeSeconds=21) == "InvalidParameterValue"
    assert error_of(sqs.set_queue_attributes, QueueUrl=url, Attributes={}) == "AWS.SimpleQueueService.UnsupportedOperation"
    bad_attribute = {"AWS.x": {"DataType": "String", "StringValue": "v"}}
    assert error_of(sqs.send_message, QueueUrl=url, MessageBody="m", MessageAttributes=bad_attribute) == "InvalidParameterValue"

    # The delayed message is still there; purge takes it.
    sqs.purge_queue(QueueUrl=url)
    left = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert left["ApproximateNumberOfMessages"] == left["ApproximateNumberOfMessagesDelayed"] == "0", left

    # DeleteQueue takes a queue with its messages, in flight or not; its URL then names nothing.
    sqs.send_message(QueueUrl=other, MessageBody="in flight")
    sqs.send_message(QueueUrl=other, MessageBody="waiting")
    in_flight = sqs.receive_message(QueueUrl=other)["Messages"][0]
    sqs.delete_queue(QueueUrl=other)
    assert error_of(sqs.get_queue_url, QueueName="other") == "AWS.SimpleQueueService.NonExistentQueue"
    assert error_of(sqs.delete_message, QueueUrl=other, ReceiptHandle=in_flight["ReceiptHandle"]) == "AWS.SimpleQueueService.NonExistentQueue"
    assert sqs.list_queues()["QueueUrls"] == [url]
    return {"queue_url": url, "sent": sent["MessageId"], "deleted_message": in_flight["MessageId"]}


def send(endpoint, args):
    sqs = client(endpoint, args.get("key", "unused"))
    url = sqs.get_queue_url(QueueName=args["queue"])["QueueUrl"]
    sent = sqs.send_message(QueueUrl=url, MessageBody=args["body"], MessageGroupId=args.get("group", "g"))
    return {"id": sent["MessageId"]}


def receive(endpoint, args):
    sqs = client(endpoint, args.get("key", "unused"))
    url = sqs.get_queue_url(QueueName=args["queue"])["QueueUrl"]
    got = sqs.receive_message(
        QueueUrl=url,
        VisibilityTimeout=args.get("visibility", 30),
        WaitTimeSeconds=args.get("wait", 0),
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    ).get("Messages", [])
    return {"messages": got}


def delete(endpoint, args):
    sqs = client(endpoint, args.get("key", "unused"))
    url = sqs.get_queue_url(QueueName=args["queue"])["QueueUrl"]
    try:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=args["handle"])
        return {"deleted": True}
    except ClientError as e:
        return {"deleted": False, "code": e.response["Error"]["Code"]}


def keys(endpoint, args):
    """With keys on: the token as access key id and secret, and every way to be refused."""
    token = args["key"]
    sqs = client(endpoint, token)
    url = sqs.create_queue(QueueName="jobs-main")["QueueUrl"]
    assert url.endswith("/acme/jobs-main"), url
    sqs.send_message(QueueUrl=url, MessageBody="for acme")
    assert [m["Body"] for m in sqs.receive_message(QueueUrl=url)["Messages"]] == ["for acme"]
    sqs.purge_queue(QueueUrl=url)
    refusals = {
        "wrong secret": error_of(client(endpoint, token, "not the token").list_queues),
        "not a key": error_of(client(endpoint, "AKIAIOSFODNN7EXAMPLE", "x").list_queues),
        "revoked": error_of(client(endpoint, args["revoked"]).list_queues),
        "no scope": error_of(client(endpoint, args["enqueue_only"]).receive_message, QueueUrl=url),
        "outside patterns": error_of(sqs.create_queue, QueueName="billing"),
        "other tenant": error_of(sqs.send_message, QueueUrl=url.replace("/acme/", "/globex/"), MessageBody="m"),
        "prefixed name": error_of(sqs.get_queue_url, QueueName="globex:jobs-main"),
    }
    assert refusals == {
        "wrong secret": "SignatureDoesNotMatch",
        "not a key": "InvalidClientTokenId",
        "revoked": "InvalidClientTokenId",
        "no scope": "AccessDenied",
        "outside patterns": "AccessDenied",
        "other tenant": "AWS.SimpleQueueService.NonExistentQueue",
        "prefixed name": "InvalidParameterValue",
    }, refusals
    # The enqueue-only key may send, but not read queue URLs: it uses the URL it was given.
    client(endpoint, args["enqueue_only"]).send_message(QueueUrl=url, MessageBody="from the producer")
    return {"queue_url": url}


SCENARIOS = {f.__name__: f for f in [lifecycle, send, receive, delete, keys]}

if __name__ == "__main__":
    scenario, endpoint = sys.argv[1], sys.argv[2]
    args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    print(json.dumps(SCENARIOS[scenario](endpoint, args)))
