"""ENet in PyTorch with the parameter names of rwt::models::Enet (Paszke et al. 2016), shared
by the fixture script (tests/fixtures/make_enet_fixture.py) and the CPU benchmark
(benches/peers/torch_enet_bench.py). Written independently of the Rust code."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Initial(nn.Module):
    def __init__(self, c_out=16):
        super().__init__()
        self.conv = nn.Conv2d(3, c_out - 3, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.prelu = nn.PReLU(c_out)

    def forward(self, x):
        return self.prelu(self.bn(torch.cat([self.conv(x), F.max_pool2d(x, 2)], 1)))


class Regular(nn.Module):
    def __init__(self, c, kind="regular", d=1):
        super().__init__()
        i = c // 4
        self.kind = kind
        self.conv1, self.bn1, self.act1 = nn.Conv2d(c, i, 1, bias=False), nn.BatchNorm2d(i), nn.PReLU(i)
        if kind == "asym":
            self.conv2, self.bn2, self.act2 = nn.Conv2d(i, i, (5, 1), padding=(2, 0), bias=False), nn.BatchNorm2d(i), nn.PReLU(i)
            self.conv2b, self.bn2b, self.act2b = nn.Conv2d(i, i, (1, 5), padding=(0, 2), bias=False), nn.BatchNorm2d(i), nn.PReLU(i)
        else:
            self.conv2, self.bn2, self.act2 = nn.Conv2d(i, i, 3, padding=d, dilation=d, bias=False), nn.BatchNorm2d(i), nn.PReLU(i)
        self.conv3, self.bn3 = nn.Conv2d(i, c, 1, bias=False), nn.BatchNorm2d(c)
        self.act_out = nn.PReLU(c)

    def forward(self, x):
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.act2(self.bn2(self.conv2(y)))
        if self.kind == "asym":
            y = self.act2b(self.bn2b(self.conv2b(y)))
        y = self.bn3(self.conv3(y))
        return self.act_out(x + y)


class Down(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        i = c_in // 4
        self.pad = c_out - c_in
        self.conv1, self.bn1, self.act1 = nn.Conv2d(c_in, i, 2, stride=2, bias=False), nn.BatchNorm2d(i), nn.PReLU(i)
        self.conv2, self.bn2, self.act2 = nn.Conv2d(i, i, 3, padding=1, bias=False), nn.BatchNorm2d(i), nn.PReLU(i)
        self.conv3, self.bn3 = nn.Conv2d(i, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
        self.act_out = nn.PReLU(c_out)

    def forward(self, x):
        main, idx = F.max_pool2d(x, 2, return_indices=True)
        main = F.pad(main, (0, 0, 0, 0, 0, self.pad))
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.act2(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.act_out(main + y), idx


class Up(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        i = c_in // 4
        self.main_conv, self.main_bn = nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
        self.conv1, self.bn1, self.act1 = nn.Conv2d(c_in, i, 1, bias=False), nn.BatchNorm2d(i), nn.PReLU(i)
        self.deconv2, self.bn2, self.act2 = nn.ConvTranspose2d(i, i, 2, stride=2, bias=False), nn.BatchNorm2d(i), nn.PReLU(i)
        self.conv3, self.bn3 = nn.Conv2d(i, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
        self.act_out = nn.PReLU(c_out)

    def forward(self, x, idx):
        main = self.main_bn(self.main_conv(x))
        main = F.max_unpool2d(main, idx, 2, output_size=(idx.shape[2] * 2, idx.shape[3] * 2))
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.act2(self.bn2(self.deconv2(y)))
        y = self.bn3(self.conv3(y))
        return self.act_out(main + y)


MIDDLE = [("regular", 1), ("dilated", 2), ("asym", 1), ("dilated", 4), ("regular", 1), ("dilated", 8), ("asym", 1), ("dilated", 16)]


class ENet(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.initial = Initial(16)
        self.b1_0 = Down(16, 64)
        for k in range(1, 5):
            setattr(self, f"b1_{k}", Regular(64))
        self.b2_0 = Down(64, 128)
        for s in (2, 3):
            for k, (kind, d) in enumerate(MIDDLE, 1):
                setattr(self, f"b{s}_{k}", Regular(128, kind, d))
        self.b4_0 = Up(128, 64)
        self.b4_1, self.b4_2 = Regular(64), Regular(64)
        self.b5_0 = Up(64, 16)
        self.b5_1 = Regular(16)
        self.fullconv = nn.ConvTranspose2d(16, classes, 2, stride=2, bias=True)

    def forward(self, x):
        x = self.initial(x)
        x, i1 = self.b1_0(x)
        for k in range(1, 5):
            x = getattr(self, f"b1_{k}")(x)
        x, i2 = self.b2_0(x)
        for s in (2, 3):
            for k in range(1, 9):
                x = getattr(self, f"b{s}_{k}")(x)
        x = self.b4_2(self.b4_1(self.b4_0(x, i2)))
        x = self.b5_1(self.b5_0(x, i1))
        return self.fullconv(x)
