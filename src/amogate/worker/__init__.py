"""The delivery worker: claims queued leads and delivers them to amoCRM."""
