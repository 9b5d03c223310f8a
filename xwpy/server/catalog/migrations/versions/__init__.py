"""One file per migration, numbered: NNNN_what.py (revision "NNNN", down_revision the one before)."""
