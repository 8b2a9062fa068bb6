"""A small convolutional backbone with FPN for fast experiments on sketches (the toy demo)."""

from detectron2.layers import Conv2d, ShapeSpec, get_norm
from detectron2.modeling import BACKBONE_REGISTRY, FPN, Backbone
from detectron2.modeling.backbone.fpn import LastLevelMaxPool
from torch import nn


class SketchNet(Backbone):
    """Four stages of two 3x3 convolutions (the first strided), outputs res2..res5.

    Strides 4, 8, 16, 32; widths given per stage. Much cheaper than a ResNet on CPU.
    """

    def __init__(self, widths=(16, 32, 64, 128), norm: str = "BN", in_channels: int = 3):
        """
        Args:
            widths: output channels of res2..res5.
            norm: detectron2 norm name for every conv ("", "BN", "GN", ...).
            in_channels: image channels.
        """
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"SketchNet needs 4 stage widths, got {list(widths)}")

        def conv(cin, cout, stride):
            return Conv2d(
                cin,
                cout,
                3,
                stride=stride,
                padding=1,
                bias=not norm,
                norm=get_norm(norm, cout),
                activation=nn.ReLU(inplace=True),
            )

        self.stem = conv(in_channels, widths[0], 2)
        self.stages = nn.ModuleList()
        cin = widths[0]
        for w in widths:
            self.stages.append(nn.Sequential(conv(cin, w, 2), conv(w, w, 1)))
            cin = w
        self._out_features = ["res2", "res3", "res4", "res5"]
        self._out_feature_channels = dict(zip(self._out_features, widths))
        self._out_feature_strides = {f: 2 ** (i + 2) for i, f in enumerate(self._out_features)}
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        """(N, 3, H, W) -> {"res2": (N, w0, H/4, W/4), ..., "res5": (N, w3, H/32, W/32)}."""
        x = self.stem(x)
        out = {}
        for name, stage in zip(self._out_features, self.stages):
            x = stage(x)
            out[name] = x
        return out

    def output_shape(self):
        return {
            f: ShapeSpec(
                channels=self._out_feature_channels[f], stride=self._out_feature_strides[f]
            )
            for f in self._out_features
        }


@BACKBONE_REGISTRY.register()
def build_grm_sketchnet_fpn_backbone(cfg, input_shape: ShapeSpec):
    """SketchNet (``MODEL.GRMNET.BACKBONE.WIDTHS``) + detectron2's FPN (``MODEL.FPN.*``)."""
    bottom_up = SketchNet(
        widths=cfg.MODEL.GRMNET.BACKBONE.WIDTHS,
        norm=cfg.MODEL.GRMNET.BACKBONE.NORM,
        in_channels=input_shape.channels,
    )
    return FPN(
        bottom_up=bottom_up,
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )
