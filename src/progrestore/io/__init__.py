"""File formats and safe writes: the only place that touches ffmpeg, image codecs and renames."""
