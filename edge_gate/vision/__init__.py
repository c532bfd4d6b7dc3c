"""Vision: safe image loading, MTCNN detection, alignment, quality and embeddings on TFLite.

Entry point for other subsystems: :class:`edge_gate.vision.pipeline.FacePipeline`
(see its module docstring for the stable API) and the value types in
:mod:`edge_gate.vision.types`. Pure-core modules (``__layer__ = "core"``): ``types``, ``mtcnn``,
``align``, ``quality``, ``metrics``. Adapters: ``image_io``, ``imgops``, ``runtime``.
Composition: ``pipeline``, ``evaluate``, ``bench``.
"""
