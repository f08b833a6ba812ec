"""Media relay benchmark runner (tongdai media vs rtpengine), driving rtpgen."""
