"""The pipeline's stages, one module each: its command line, its body (params and args -> the library's
compute functions -> outputs) and its :class:`~progrestore.entry.Stage`.

:data:`STAGES` is the one list of them: dvc.yaml's stage name -> (module, its Stage). The modules are
imported only when a stage runs (``progrestore stage NAME``, ``stages/<name>.py``), so that a stage loads
only its own code (dvc.yaml's deps are each stage's import closure).
"""

STAGES = {
    "prepare": ("progrestore.stages.prepare", "PREPARE"),
    "degrade": ("progrestore.stages.degrade", "DEGRADE"),
    "prompts": ("progrestore.stages.prompts", "PROMPTS"),
    "encode_video": ("progrestore.stages.encode", "ENCODE_VIDEO"),
    "encode_text": ("progrestore.stages.encode", "ENCODE_TEXT"),
    "train": ("progrestore.stages.train", "TRAIN"),
    "restore": ("progrestore.stages.restore", "RESTORE"),
    "reconstruct": ("progrestore.stages.reconstruct", "RECONSTRUCT"),
    "score_baselines": ("progrestore.stages.score_baselines", "SCORE_BASELINES"),
    "evaluate": ("progrestore.stages.evaluate", "EVALUATE"),
}
