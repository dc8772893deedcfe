"""CogVideoX image-to-video (1.0 and 1.5 layouts): configs, components, conditioning, and its
:class:`~progrestore.model.specification.ModelSpecification`."""
