"""Domain rules R1–R7 and the transfer decision: pure functions over plain records."""
