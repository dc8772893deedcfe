"""Data synthesis: source images, framing, degradations, progression clips and dataset folders."""
