"""The stages of a model's life, one module each, every one a call on a
:class:`~mloops.stages.layout.RunContext`.

=============  ==============================================================================
``validate``   ``validate_batch``: the GX data contract; failing batches quarantined
``train``      ``train_model``: fit on the window's validated partitions, logged to MLflow
``test``       ``test_model``: thresholds, champion comparison, slices, smoke test, report
``registry``   ``register_model``, ``promote_model``, ``registry_action`` (manual, audited)
``score``      ``score_batch``: the champion scores the validated partition
``drift``      ``check_drift``: Evidently against the champion's training reference
``layout``     the run context, partition folders, verdict files and statuses they share
=============  ==============================================================================

Nothing here imports Airflow, so each stage runs the same from a task, a test or a notebook.
Stages return the typed results of :mod:`mloops.contracts`; failures raise the errors of
:mod:`mloops.errors`, carrying the failing report in ``.result`` for the operator to publish.
"""
