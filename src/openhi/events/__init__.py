"""Events: every state change of data stores, import jobs and image sets (guide 20221-20911).

``model`` and ``catalogue`` are pure (the EventBridge envelope and the guide's detail types); ``emit`` appends
events to the outbox in the unit of work of the change; ``outbox`` publishes them in commit order and serves the
pull API; ``delivery`` hands them to the sinks of ``sinks/`` (NDJSON file, HTTP webhook, NATS JetStream).
"""
