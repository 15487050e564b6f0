class FORMAT:
    YUYV_422, YUV420, RGB, BGR, GRAY = "YUYV_422", "YUV420", "RGB", "BGR", "GRAY"

class ORDER:
    HWC, CHW = "HWC", "CHW"

class TYPE:
    UINT8, FP16, FP32 = "UINT8", "FP16", "FP32"
