"""Running a training or import job: planned and recorded (jobs), run in its own process (worker),
with the clips it reads (clips) and the import's measuring (model_import). The fine-tuning itself is
stt.finetune; the model folder and its versions are stt.models."""
