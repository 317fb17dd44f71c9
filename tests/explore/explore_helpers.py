"""Shared by the exploration tests."""

#: a small space on the shipped real model: 2 devices x 2 densities x 2 P x 2 R = 16 points
SMALL = {"models": ["fmnist_vgg"], "devices": ["u200", "zcu102"], "density": [0.125, 0.5],
         "design": {"pes": [4, 8], "banks": [20], "ports": [1, 2]},
         "objectives": ["latency", "dsp", "bram"]}
