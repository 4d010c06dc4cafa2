"""The code a trial runs: the built-in sentiment trainer or the user's own function, behind one interface."""
