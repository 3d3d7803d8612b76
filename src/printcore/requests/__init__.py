"""The print-request flow: a student's model from upload to pickup.

``job`` (the entity and its values), ``lifecycle`` (the state machine), ``pricing``,
``naming`` (folders and file names), ``validation`` (what students type), ``ports`` (jobs,
files, the flow's unit of work), ``service`` (``PrintRequests``: one method per use case)
and ``memory`` (in-memory fakes). It imports the shared root of printcore, never the queue.
"""
