"""What the tests share: real peers, daemons, simulated instances and media, sample paths."""
