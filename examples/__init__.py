"""Example scripts: training, the motion data set and the demo."""
