"""Runnable examples: fine-tuning and evaluating XViT with Trainer and Accelerate (`run_video_classification.py`)."""
