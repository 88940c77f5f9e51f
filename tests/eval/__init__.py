"""The brain's conversation eval: what a person says, and what the answer must (or must not)
contain, scored automatically per category."""
