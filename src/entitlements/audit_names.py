"""Audit actions, so the log speaks one vocabulary."""

CREATED = "created"
UPDATED = "updated"
OPENED = "opened"
TRANSFERRED = "transferred"
VOIDED = "voided"
CLAIM = "claim_"
AGENT_ACTION = "agent_action"  # what an agent did in the console, with their name
ERASED = "erased"  # a person erased: their name, email, phone and external ref tombstoned
