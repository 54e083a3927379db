"""arqd: a production task queue on Redis."""
