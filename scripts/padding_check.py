"""Which padding is closest to real surroundings when a tight face crop (UTKFace-like: landmark box ~1.1x
the side) is padded out to the 1.4-margin training crop. Uses faces68/test, whose images have real context:
cut each to a tight 200 px crop, pad back out with each border mode, compare the padded region to the real pixels.

    python scripts/padding_check.py   # from the repository root, with ../shared/data
"""
import cv2
import numpy as np
from jasr_video.model.data import find_pairs, read_pts, crop_transform, apply_affine
pairs = find_pairs("../shared/data/faces68/test")
modes = {"reflect101": cv2.BORDER_REFLECT101, "reflect": cv2.BORDER_REFLECT, "edge": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}
err = {m: [] for m in modes}
for img_p, pts_p in pairs:
    img = cv2.imread(str(img_p)); pts = read_pts(pts_p)
    # UTK-like tight crop: square, side = 1.1 x landmark box, 200x200
    M = crop_transform(pts, 1.1, 200)
    tight = cv2.warpAffine(img, M, (200, 200), flags=cv2.INTER_LINEAR)
    tp = apply_affine(pts, M)
    truth_M = crop_transform(tp, 1.4, 128)
    # truth: same crop from the real image (full context)
    full_M = crop_transform(pts, 1.4, 128)
    truth = cv2.warpAffine(img, full_M, (128, 128), flags=cv2.INTER_LINEAR).astype(np.float32)
    # mask of pixels outside the tight crop
    inside = cv2.warpAffine(np.ones((200, 200), np.uint8), truth_M, (128, 128), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0) == 0
    for m, b in modes.items():
        val = tight.reshape(-1,3).mean(0).tolist() if m == "constant" else 0
        out = cv2.warpAffine(tight, truth_M, (128, 128), flags=cv2.INTER_LINEAR, borderMode=b, borderValue=val).astype(np.float32)
        err[m].append(((out - truth)[inside] ** 2).mean())
for m, e in err.items():
    print(m, "border PSNR %.2f dB" % (10 * np.log10(255**2 / np.mean(e))), "border frac", inside.mean())
