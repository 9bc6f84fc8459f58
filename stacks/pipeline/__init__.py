"""Constructs of the snapshot pipeline stack (functions, state machine, triggers, alarms, builder)."""
