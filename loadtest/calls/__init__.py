"""Call-setup benchmark runner: tongdai B2BUA vs Kamailio + rtpengine (see calls_bench.py)."""
