def torch_exported_onnx_flow(model, disable_fuse_bn=False):
    from ktc import record
    record("ktc.onnx_optimizer.torch_exported_onnx_flow", disable_fuse_bn=disable_fuse_bn)
    return model
