"""CogVideoX image-to-video: model profiles, building/loading, and the image conditioning shared by
training and inference."""
