"""The model as the assistant hears with it: how it decodes (profile), a folder loaded and decoded that
way (decoder), and sets of clips measured through it (evaluation). Runs, model imports and
`main.py evaluate` judge every model here, on the very folder the assistant loads."""
