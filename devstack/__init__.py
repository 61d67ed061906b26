"""The local stack: the template's resources on an embedded moto server, the
HTTP API in front of the same handler modules, and the event sources (stream,
S3 notifications, SQS) delivered to them in the background."""
