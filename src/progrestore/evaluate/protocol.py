"""The names of the evaluation's files that writers and readers (the gates) share (light: no torch)."""

ABOUT = "about.json"  # beside a metrics file's numbers: what they are (text, not a DVC metric)
CLIPS = "clips.json"  # beside it: every clip's values
