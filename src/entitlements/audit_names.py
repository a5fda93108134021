"""Audit actions, so the log speaks one vocabulary."""

CREATED = "created"
UPDATED = "updated"
OPENED = "opened"
TRANSFERRED = "transferred"
VOIDED = "voided"
CLAIM = "claim_"
