"""LoRA fine-tuning: latent and text-embedding caches, the accelerate + peft loop, checkpoints and resume."""
