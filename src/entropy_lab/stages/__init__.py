"""One module per DVC stage, each the same short sequence (stages.common): read params and
check the stage's arguments, inputs and outputs before any work; call the science in the
strand packages; write the outputs atomically with their manifest, then the run record.
`dvc.yaml` runs each through `entropy-lab <stage>`, and its code dependencies are the
stage module's import closure (tests/test_stage_deps.py keeps them true)."""
