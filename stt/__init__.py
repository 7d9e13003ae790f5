"""Speech-to-text model handling: detecting, importing and exporting Whisper model folders."""
