"""Metric names and the stated protocol (light: no torch), shared by scoring, reports and gates."""

METRICS = ("psnr", "ssim", "lpips")
HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "lpips": False}
PROTOCOL = {
    "psnr": "RGB uint8, data range 255, no border crop",
    "ssim": "RGB, Gaussian 11x11 sigma 1.5, K1 0.01, K2 0.03, population covariance, valid region, channel mean",
    "lpips": "v0.1 AlexNet (ImageNet trunk), RGB in [-1, 1], spatial mean, no resize",
}

# skimage's call that our SSIM equals (to about 1e-6); tests and the benchmark use it as the reference
SKIMAGE_SSIM_ARGS = {
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
    "data_range": 255,
    "channel_axis": -1,
}
ABOUT = "about.json"  # beside a metrics file's numbers: what they are (text, not a DVC metric)
