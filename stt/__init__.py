"""Speech to text: fine-tuning (finetune/), Whisper model folders (models/) and model-assisted review (review/).

Nothing here knows about HTTP: the web app in training/src maps what these raise to statuses.
"""
