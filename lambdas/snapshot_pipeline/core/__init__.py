"""Plumbing every step shares: AWS clients and error translation, the error names the state machine
routes on, Powertools observability, tags, the handlers' settings, and image references, registry
probes and the CUDA gate (resolve_input uses them; the operator CLI's doctor reuses the gate)."""
