"""Queue systems under benchmark: arqd in process, peers in virtual environments of their own."""
