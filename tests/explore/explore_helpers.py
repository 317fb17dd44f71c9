"""Shared by the exploration tests."""

#: a small space on the shipped real model: 2 devices x 2 densities x 2 A x 2 P x 2 R = 32 points (A = 4:
#: fewer arrays than fmnist_vgg's layers have tiles; A = fit: 19-146 arrays, most of them idle)
SMALL = {"models": ["fmnist_vgg"], "devices": ["u200", "zcu102"], "density": [0.125, 0.5],
         "design": {"arrays": [4, "fit"], "pes": [4, 8], "banks": [20], "ports": [1, 2]},
         "objectives": ["latency", "dsp", "bram"]}
