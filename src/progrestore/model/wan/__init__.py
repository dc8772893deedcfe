"""The Wan family: Wan2.2-TI2V-5B image-to-video (first-frame latent at timestep 0), and its tiny random twin."""
