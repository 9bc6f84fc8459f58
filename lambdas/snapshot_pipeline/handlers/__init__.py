"""Lambda entry points, one module per state (the stack's STEPS table names them): parse the event,
call one function in ``steps/`` (which module serves which handler: ``steps/__init__.py``), shape
the output. Clients come from ``core.clients``; logging, metrics and tracing from ``core.observability``."""
