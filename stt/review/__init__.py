"""Model-assisted review: what the deployed model hears in a clip, kept beside each transcript."""
